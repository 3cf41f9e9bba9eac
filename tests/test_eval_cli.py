"""``robosam eval`` end to end with a tiny random-weight SAM on real still images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

from robosam.masks import read_mask_png


@pytest.fixture(scope="module")
def still_images(shared_data: Path) -> Path:
    folder = shared_data / "still_images_davis2016"
    if not (folder / "images").is_dir():
        pytest.skip("still_images_davis2016 missing")
    return folder


def test_eval_clicks_with_tiny_model(still_images: Path, tiny_sam_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "clicks"
    argv = ["eval", "--data", str(still_images), "--protocol", "clicks", "--model", str(tiny_sam_dir)]
    assert run_cli([*argv, "--max-clicks", "3", "--limit", "2", "--device", "cpu", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    summary = metrics["summary"]
    assert summary["images"] == 2 and summary["objects"] == 2
    assert list(summary["mIoU@k"]) == ["1", "2", "3"]
    assert 1 <= summary["NoC@90"] <= 3 and 0 <= summary["mIoU"] <= 1
    objects = metrics["per_object"]
    assert summary["mIoU"] == pytest.approx(np.mean([o["iou"] for o in objects]))
    assert summary["mIoU@k"]["3"] == pytest.approx(np.mean([o["ious"][2] for o in objects]))
    for record in objects:
        gt = read_mask_png(still_images / "masks" / f"{record['sample']}.png")
        x, y, label = record["clicks"][0]
        assert label == 1 and gt[y, x]  # the first click lies inside the object
    latency = metrics["latency"]
    assert latency["encoder"]["count"] == 2 and latency["decoder"]["count"] == sum(
        len(o["clicks"]) for o in objects
    )
    assert latency["encoder"]["median_ms"] > 0
    for name in ("report.md", "miou_vs_clicks.png", "latency.png", "per_sequence.png"):
        assert (out / name).stat().st_size > 0


def test_eval_box_protocol_and_user_errors(
    still_images: Path, tiny_sam_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "box"
    argv = [
        "eval",
        "--data",
        str(still_images),
        "--model",
        str(tiny_sam_dir),
        "--device",
        "cpu",
        "--limit",
        "1",
    ]
    assert run_cli([*argv, "--protocol", "box", "--jitter", "5", "--out", str(out), "--no-plots"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    record = metrics["per_object"][0]
    gt_box = np.array([0, 0, 0, 0], float)
    gt = read_mask_png(still_images / "masks" / f"{record['sample']}.png")
    ys, xs = np.nonzero(gt)
    gt_box[:] = [xs.min(), ys.min(), xs.max(), ys.max()]  # last pixels, inclusive
    assert np.abs(np.array(record["prompt"]["box"]) - gt_box).max() <= 5
    assert not (out / "latency.png").exists() and (out / "report.md").is_file()
    capsys.readouterr()

    assert run_cli([*argv, "--protocol", "video-mask", "--out", str(out)]) == 2
    assert run_cli([*argv, "--protocol", "lasso", "--out", str(out)]) == 2
    assert run_cli(["eval", "--data", str(still_images), "--out", str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("robosam: error:")]
    assert len(errors) == 3
    assert "--data" in errors[0] and "protocol" in errors[1] and "--model" in errors[2]
