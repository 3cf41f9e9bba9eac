"""`robosam segment` and `robosam models` end to end on the bundled image with a tiny model folder."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from robosam.masks import decode_rle


def test_segment_writes_masks_overlay_and_json(tiny_sam_dir, sample_image_path, tmp_path, capsys):
    out = tmp_path / "out"
    code = run_cli(
        ["segment", str(sample_image_path), "--point", "500,375", "--point", "450,300,0",
         "--model", str(tiny_sam_dir), "--multimask", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.count("mask ") == 3
    report = json.loads((out / "masks.json").read_text())
    assert report["image_size"] == {"height": 1200, "width": 1800}
    assert len(report["masks"]) == 3
    for record in report["masks"]:
        png = np.asarray(Image.open(out / record["file"])) > 0
        assert png.shape == (1200, 1800)
        assert (decode_rle(record["segmentation"]) == png).all()
        assert record["area"] == int(png.sum())
    overlay = np.asarray(Image.open(out / "overlay.png"))
    assert overlay.shape == (1200, 1800, 3)


def test_segment_with_boxes_gives_one_mask_per_box(tiny_sam_dir, sample_image_path, tmp_path):
    out = tmp_path / "boxes"
    code = run_cli(
        ["segment", str(sample_image_path), "--box", "75,275,1725,850", "--box", "10,10,400,400",
         "--model", str(tiny_sam_dir), "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "masks.json").read_text())
    assert [m["object"] for m in report["masks"]] == [0, 1]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--point", "5000,375"], "points: expected"),
        (["--point", "500"], "--point: expected"),
        (["--point", "500,375,7"], "labels: expected"),
        (["--box", "10,10,5,50"], "box: expected"),
        ([], "--point/--box"),
    ],
)
def test_segment_bad_input_exits_2_with_one_line(args, needle, sample_image_path, tiny_sam_dir, capsys):
    code = run_cli(["segment", str(sample_image_path), "--model", str(tiny_sam_dir), *args])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_segment_unreadable_image(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    assert run_cli(["segment", str(bad), "--point", "1,1"]) == 2
    assert "IMAGE: expected a readable" in capsys.readouterr().err


def test_models_lists_every_preset():
    from robosam.models import PRESETS

    out = subprocess.run(
        [sys.executable, "-m", "robosam.cli", "models"], capture_output=True, text=True, check=True
    ).stdout
    for name in PRESETS:
        assert name in out
    trackers = subprocess.run(
        [sys.executable, "-m", "robosam.cli", "models", "--kind", "tracker"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = {line.split()[0] for line in trackers.splitlines()[1:-1]}
    assert listed == {"sam2-hiera-tiny", "sam2-hiera-small", "sam2-hiera-base-plus", "sam2-hiera-large",
                      "sam2.1-hiera-tiny", "sam2.1-hiera-small", "sam2.1-hiera-base-plus", "sam2.1-hiera-large",
                      "sam3-tracker", "edgetam"}  # fmt: skip


def test_help_has_an_example():
    out = subprocess.run(
        [sys.executable, "-m", "robosam.cli", "segment", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "Example: robosam segment" in out
