"""``robosam track VIDEO --text ...``: text-driven tracking from the command line, on tiny random models (a SAM 2
video model, Grounding DINO, SAM 3 video) and a synthetic clip."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image
from test_grounding_tiny import build_grounding_dino
from test_text_tracking_sam3 import build_sam3_video
from test_video_models import (
    decode_video,
    one_torch_thread,  # noqa: F401 - autouse fixture
    synthetic_frames,
    tiny_video_model,
    write_video,
)

from robosam.masks import decode_rle


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("track_text")
    tiny_video_model("sam2").save_pretrained(root / "sam2")
    (root / "gdino").mkdir()
    (root / "sam3_video").mkdir()
    return {
        "sam2": root / "sam2",
        "gdino": build_grounding_dino(root / "gdino"),
        "sam3_video": build_sam3_video(root / "sam3_video"),
        "clip": write_video(root / "clip.mp4", synthetic_frames(8)),
    }


def _check_outputs(out: Path, frames: int) -> dict:
    data = json.loads((out / "tracks.json").read_text())
    assert len(data["frames"]) == frames and [f["frame"] for f in data["frames"]] == list(range(frames))
    pngs = sorted((out / "masks").glob("*.png"))
    assert len(pngs) == frames
    for record_frame, png in zip(data["frames"], pngs):
        with Image.open(png) as image:
            ids = np.asarray(image)
        top = max((r["obj_id"] for r in record_frame["objects"]), default=None)
        if top is not None:  # the highest id is painted last: its pixels are exactly its mask
            mask = decode_rle(next(r for r in record_frame["objects"] if r["obj_id"] == top)["segmentation"])
            assert np.array_equal(ids == top, mask)
        assert set(np.unique(ids)) <= {0} | {r["obj_id"] for r in record_frame["objects"]}
    return data


def test_track_text_with_a_detector_sam_and_the_live_tracker(tmp_path: Path, folders, capsys):
    out = tmp_path / "out"
    argv = ["track", str(folders["clip"]), "--text", "Red cup. box", "--detector", str(folders["gdino"])]
    argv += ["--model", str(folders["sam2"]), "--detect-every", "3", "--box-threshold", "0.2"]
    argv += ["--text-threshold", "0", "--device", "cpu", "--out", str(out)]
    assert run_cli(argv) == 0
    printed = capsys.readouterr().out
    assert re.search(r"tracked \d+ object\(s\) named by 'Red cup. box' over 8 frame\(s\)", printed)
    assert "wrote masks/, tracks.json, overlay.mp4" in printed
    data = _check_outputs(out, 8)
    assert data["text"] == ["red cup", "box"] and data["detect_every"] == 3
    records = [r for f in data["frames"] for r in f["objects"]]
    assert records and {r["label"] for r in records} <= {"red cup", "box"}
    births = {}
    for f in data["frames"]:
        for r in f["objects"]:
            births.setdefault(r["obj_id"], f["frame"])
    assert set(births.values()) <= {0, 3, 6}  # tracks start on detection frames
    assert len(decode_video(out / "overlay.mp4")) == 8


def test_track_text_with_sam3_video_tracks_natively(tmp_path: Path, folders, capsys):
    argv = ["track", str(folders["clip"]), "--text", "box", "--detector", str(folders["sam3_video"])]
    argv += ["--max-frames", "3", "--no-overlay", "--device", "cpu", "--out", str(tmp_path)]
    assert run_cli(argv) == 0
    printed = capsys.readouterr().out
    assert "over 3 frame(s)" in printed and "wrote masks/, tracks.json to" in printed
    data = _check_outputs(tmp_path, 3)
    assert data["model"] is None and data["detect_every"] == 1
    records = [r for f in data["frames"] for r in f["objects"]]
    assert records and {r["label"] for r in records} == {"box"} and min(r["obj_id"] for r in records) >= 1
    assert not (tmp_path / "overlay.mp4").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--text", ""], '--text: expected a non-empty phrase such as "red cup"'),
        (["--text", " . "], "--text: expected a non-empty phrase"),
        (["--text", "box", "--box-threshold", "1.5"], "--box-threshold: expected a number between 0 and 1"),
        (
            ["--text", "box", "--text-threshold", "-0.1"],
            "--text-threshold: expected a number between 0 and 1",
        ),
        (["--text", "box", "--detect-every", "0"], "--detect-every: expected a positive number of frames"),
        (["--text", "box", "--point", "1,1"], "--text: expected text alone"),
        (["--text", "box", "--max-frames", "0"], "--max-frames: expected a positive number"),
    ],
)
def test_track_text_input_errors(tmp_path: Path, folders, capsys, extra, message):
    argv = ["track", str(folders["clip"]), "--model", "no-such-model", "--detector", "no-such-detector"]
    assert run_cli([*argv, "--out", str(tmp_path / "out"), *extra]) == 2  # refused before loading anything
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_track_help_shows_the_text_example(capsys):
    assert run_cli(["track", "--help"]) == 0
    out = capsys.readouterr().out
    assert (
        "--text" in out and "--detect-every" in out and 'robosam track clip.mp4 --text "person. dog"' in out
    )
