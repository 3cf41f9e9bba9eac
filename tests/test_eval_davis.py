"""DAVIS J&F scoring: the official evaluator's numbers on real data, and synthetic folders with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robosam.cli import main
from robosam.errors import InputError
from robosam.evaluation.davis import evaluate_folders
from robosam.evaluation.metrics import boundary_f1, iou

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "eval" / "davis2017_osvos_reference.json"
SEQUENCES = ["blackswan", "car-shadow", "car-roundabout", "dog", "drift-chicane", "drift-straight", "libby"]
STATS = ["J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]


def write_palette(ids: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [255] * (3 * 252))
    image.save(path)


def make_sequence(root: Path, name: str, frames: list[np.ndarray]) -> None:
    for index, ids in enumerate(frames):
        write_palette(ids, root / name / f"{index:05d}.png")


def two_objects(t: int, shape: tuple[int, int] = (48, 64), shift: int = 0) -> np.ndarray:
    ids = np.zeros(shape, dtype=np.uint8)
    ids[5 + t : 20 + t, 5 + shift : 25 + shift] = 1
    ids[28:44, 30:60] = 2
    return ids


def test_matches_official_davis2017_evaluator_on_osvos(shared_data: Path) -> None:
    osvos = shared_data / "davis2017_osvos_results" / "results" / "semi-supervised" / "osvos"
    gt = shared_data / "davis2016_val_subset" / "Annotations_indexed" / "480p"
    if not osvos.is_dir() or not gt.is_dir():
        pytest.skip("DAVIS data missing")
    reference = json.loads(FIXTURE.read_text())
    scores = evaluate_folders(osvos, gt, SEQUENCES)
    per_object = scores.per_object()
    assert list(per_object) == [f"{s}_1" for s in SEQUENCES]
    for name, expected in reference["per_object"].items():
        for key in STATS:
            assert per_object[name][key] == pytest.approx(expected[key], abs=1e-6), (name, key)
    for key, value in reference["global"].items():
        assert scores.global_metrics()[key] == pytest.approx(value, abs=1e-6), key


def test_synthetic_two_object_sequence(tmp_path: Path) -> None:
    frames = [two_objects(t) for t in range(6)]
    make_sequence(tmp_path / "gt", "seq", frames)
    pred_frames = [two_objects(t, shift=2) for t in range(6)]
    for ids in pred_frames[3:]:
        ids[ids == 2] = 0  # object 2 lost from frame 3 on
    make_sequence(tmp_path / "pred", "seq", pred_frames)
    scores = evaluate_folders(tmp_path / "pred", tmp_path / "gt")
    assert [o.name for o in scores.objects] == ["seq_1", "seq_2"]
    first, second = scores.objects
    assert first.frames == ["00001", "00002", "00003", "00004"]  # first and last frame not scored
    gt1 = np.stack([f == 1 for f in frames[1:5]])
    pr1 = np.stack([f == 1 for f in pred_frames[1:5]])
    np.testing.assert_allclose(first.j, iou(pr1, gt1))
    np.testing.assert_allclose(first.f, boundary_f1(pr1, gt1))
    np.testing.assert_allclose(second.j, [1, 1, 0, 0])
    row = scores.per_object()["seq_2"]
    assert row["J-Mean"] == 0.5 and row["J-Recall"] == 0.5
    assert row["J-Decay"] == pytest.approx(1.0)  # four frames: first bin frames 0-1, last bin frames 2-3
    g = scores.global_metrics()
    assert g["J&F-Mean"] == pytest.approx((g["J-Mean"] + g["F-Mean"]) / 2)
    assert g["J-Mean"] == pytest.approx((first.j.mean() + 0.5) / 2)


def test_void_and_bad_predictions(tmp_path: Path) -> None:
    frames = [two_objects(t) for t in range(4)]
    frames[0][0, :] = 255  # void in the first frame does not make 255 objects
    make_sequence(tmp_path / "gt", "seq", frames)
    bad = [f.copy() for f in frames]
    bad[1][0, 0] = 3
    make_sequence(tmp_path / "pred", "seq", bad)
    with pytest.raises(InputError, match="object ids up to 2"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt")
    (tmp_path / "pred" / "seq" / "00002.png").unlink()
    with pytest.raises(InputError, match="00002.png"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt")
    with pytest.raises(InputError, match="sequences"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt", ["nope"])


def test_cli_pred_gt_writes_official_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = [two_objects(t) for t in range(5)]
    make_sequence(tmp_path / "gt", "alpha", frames)
    make_sequence(tmp_path / "pred", "alpha", [two_objects(t, shift=1) for t in range(5)])
    make_sequence(tmp_path / "gt", "beta", frames)
    make_sequence(tmp_path / "pred", "beta", frames)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--out", str(out)])
    assert exit_info.value.code in (0, None)
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["global"]) == [
        "J&F-Mean",
        "J-Mean",
        "J-Recall",
        "J-Decay",
        "F-Mean",
        "F-Recall",
        "F-Decay",
    ]
    assert set(metrics["per_object"]) == {"alpha_1", "alpha_2", "beta_1", "beta_2"}
    assert metrics["per_object"]["beta_1"]["J-Mean"] == 1.0
    assert metrics["per_object"]["alpha_1"]["J-Mean"] < 1.0
    assert (out / "report.md").is_file() and (out / "per_sequence.png").stat().st_size > 1000
    assert "J&F-Mean" in capsys.readouterr().out

    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--sequences", "gamma"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("robosam: error: sequences:") and "gamma" in err[-1]
