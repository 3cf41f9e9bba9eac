"""Tracking outputs (palette PNGs, COCO RLE JSON, overlay mp4) and the ``robosam track`` command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image
from test_video_models import (
    decode_video,
    one_torch_thread,  # noqa: F401 - autouse fixture
    synthetic_frames,
    tiny_video_model,
    write_video,
)

from robosam.masks import decode_rle, mask_to_box
from robosam.results import Track
from robosam.video.overlay import OverlayVideoWriter
from robosam.video.writers import DAVIS_PALETTE, MaskFolderWriter, TrackLog, tracks_to_ids


def _track(obj_id: int, mask: np.ndarray, presence: float = 0.9) -> Track:
    return Track(
        obj_id=obj_id, mask=mask, score=0.8, presence=presence, visible=presence > 0.5, box=mask_to_box(mask)
    )


def _tracks() -> dict[int, Track]:
    a = np.zeros((31, 45), dtype=bool)
    a[2:20, 3:30] = True
    b = np.zeros((31, 45), dtype=bool)
    b[10:28, 20:40] = True  # overlaps a
    return {1: _track(1, a), 2: _track(2, b, presence=0.3)}


def test_palette_is_the_davis_palette(shared_data: Path) -> None:
    """Against the full 256-colour palette of the results published with the DAVIS-2017 evaluation code."""
    files = sorted((shared_data / "davis2017_osvos_results").rglob("*.png"))[:1]
    if not files:
        pytest.skip("no DAVIS results in the shared data")
    with Image.open(files[0]) as image:
        assert image.mode == "P"
        official = np.array(image.getpalette(), dtype=np.uint8).reshape(-1, 3)
    assert official.shape == (256, 3) and np.array_equal(official, DAVIS_PALETTE)


def test_palette_pngs_hold_object_ids(tmp_path: Path) -> None:
    from robosam.data.samples import read_object_ids

    tracks = _tracks()
    ids = tracks_to_ids(tracks, (31, 45))
    assert (ids[15, 25], ids[5, 5], ids[0, 0]) == (2, 1, 0)  # the higher id wins where masks overlap
    path = MaskFolderWriter(tmp_path / "masks").write(7, tracks, (31, 45))
    assert path.name == "00007.png"
    with Image.open(path) as image:
        assert image.mode == "P" and np.array_equal(np.asarray(image), ids)
    assert np.array_equal(read_object_ids(path), ids)


def test_track_log_is_coco_rle_per_frame_and_object(tmp_path: Path) -> None:
    tracks = _tracks()
    log = TrackLog(source="clip.mp4")
    log.add(0, tracks)
    log.add(1, {1: tracks[1]})
    data = json.loads(log.write(tmp_path / "tracks.json").read_text())
    assert data["source"] == "clip.mp4" and data["objects"] == [1, 2]
    assert [f["frame"] for f in data["frames"]] == [0, 1]
    first = data["frames"][0]["objects"]
    assert [r["obj_id"] for r in first] == [1, 2]
    assert np.array_equal(decode_rle(first[1]["segmentation"]), tracks[2].mask)
    assert first[1]["bbox"] == [20.0, 10.0, 19.0, 17.0] and first[1]["area"] == int(tracks[2].mask.sum())
    assert (first[1]["visible"], first[1]["presence"]) == (False, pytest.approx(0.3))
    assert log.visible_counts() == {1: 2, 2: 0}


def test_overlay_video_decodes_with_pyav(tmp_path: Path) -> None:
    frames = [np.full((31, 45, 3), 40 * i, dtype=np.uint8) for i in range(5)]  # odd size: padded to even
    with OverlayVideoWriter(tmp_path / "overlay.mp4", fps=5) as writer:
        for frame in frames:
            writer.write(frame, _tracks())
    decoded = decode_video(tmp_path / "overlay.mp4")
    assert len(decoded) == 5 and decoded[0].shape == (32, 46, 3)
    colour = DAVIS_PALETTE[1].astype(float)
    inside = decoded[2][8, 8].astype(float)  # object 1, blended half-way towards its colour
    assert np.abs(inside - (0.5 * 80 + 0.5 * colour)).max() < 25  # video compression
    assert not list(tmp_path.glob(".*tmp*"))  # written beside and renamed


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_video_model")
    tiny_video_model("sam2").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", synthetic_frames(12))


def test_track_command_writes_masks_json_and_overlay(
    tmp_path: Path, model_dir: Path, clip: Path, capsys
) -> None:
    mask = np.zeros((60, 80), dtype=np.uint8)
    mask[30:50, 10:40] = 255
    Image.fromarray(mask).save(tmp_path / "obj3.png")
    prompts = [
        {"frame": 0, "obj_id": 2, "box": [50, 34, 75, 56]},
        {"frame": 4, "obj_id": 3, "mask": "obj3.png"},
    ]
    (tmp_path / "prompts.json").write_text(json.dumps({"prompts": prompts}))
    out = tmp_path / "out"
    argv = ["track", str(clip), "--frame", "0", "--obj", "1", "--point", "15,16", "--point", "60,10,0"]
    argv += ["--prompts", str(tmp_path / "prompts.json"), "--model", str(model_dir), "--device", "cpu"]
    assert run_cli([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "tracked 3 object(s) over 12 frame(s)" in printed
        and "wrote masks/, tracks.json, overlay.mp4" in printed
    )
    data = json.loads((out / "tracks.json").read_text())
    assert data["objects"] == [1, 2, 3] and len(data["frames"]) == 12
    assert [r["obj_id"] for r in data["frames"][3]["objects"]] == [1, 2]
    assert [r["obj_id"] for r in data["frames"][4]["objects"]] == [1, 2, 3]
    pngs = sorted((out / "masks").glob("*.png"))
    assert [p.name for p in pngs[:2]] == ["00000.png", "00001.png"] and len(pngs) == 12
    with Image.open(pngs[6]) as image:
        ids = np.asarray(image)
    masks = {r["obj_id"]: decode_rle(r["segmentation"]) for r in data["frames"][6]["objects"]}
    assert np.array_equal(ids == 3, masks[3])  # the highest id is never painted over
    assert len(decode_video(out / "overlay.mp4")) == 12


def test_track_command_reverse_and_max_frames(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    argv = [
        "track",
        str(clip),
        "--frame",
        "5",
        "--point",
        "40,30",
        "--model",
        str(model_dir),
        "--device",
        "cpu",
    ]
    assert run_cli([*argv, "--reverse", "--max-frames", "3", "--no-overlay", "--out", str(tmp_path)]) == 0
    frames = [f["frame"] for f in json.loads((tmp_path / "tracks.json").read_text())["frames"]]
    assert frames == [0, 1, 2, 3, 4, 5, 6, 7] and not (tmp_path / "overlay.mp4").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "at least one prompt"),
        (["--point", "15,16", "--frame", "12"], r"--frame: expected a frame index in \[0, 12\)"),
        (["--point", "15,16", "--obj", "300"], "--obj: expected an object id in 1..255"),
        (["--point", "15"], "--point: expected 2 or 3 comma-separated numbers"),
        (["--point", "150,16"], "points inside the 80x60 image"),
        (["--prompts", "missing.json"], "--prompts: expected an existing JSON file"),
    ],
)
def test_track_command_input_errors(
    tmp_path: Path, model_dir: Path, clip: Path, capsys, extra, message
) -> None:
    argv = ["track", str(clip), "--model", str(model_dir), "--device", "cpu", "--out", str(tmp_path), *extra]
    assert run_cli(argv) == 2
    assert re.search(message, capsys.readouterr().err)


def test_track_command_bad_prompt_file_and_source(
    tmp_path: Path, model_dir: Path, clip: Path, capsys
) -> None:
    (tmp_path / "p.json").write_text(json.dumps([{"frame": 0, "obj_id": 1, "point": [1, 2]}]))
    assert (
        run_cli(["track", str(clip), "--prompts", str(tmp_path / "p.json"), "--model", str(model_dir)]) == 2
    )
    assert "prompts[0]: expected only the keys" in capsys.readouterr().err
    assert run_cli(["track", str(tmp_path / "nothing.mp4"), "--point", "1,1", "--model", str(model_dir)]) == 2
    assert "source: expected an existing folder of frames or a video file" in capsys.readouterr().err


def test_track_help_has_an_example(capsys) -> None:
    assert run_cli(["track", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example: robosam track" in out and "--prompts" in out
