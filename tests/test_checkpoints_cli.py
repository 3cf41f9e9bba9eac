"""`robosam convert CHECKPOINT OUT_DIR` end to end, and the converted folder driving `robosam segment`."""

from __future__ import annotations

import json

import pytest
from helpers import require_peer, run_cli
from parity_reference import build_sam1, save_sam1

require_peer("segment_anything")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_sam1(build_sam1(), tmp_path_factory.mktemp("ckpt") / "sam_small.pth")


def test_convert_writes_a_folder_that_segment_uses(checkpoint, sample_image_path, tmp_path, capsys):
    folder = tmp_path / "sam-small"
    assert run_cli(["convert", str(checkpoint), str(folder)]) == 0
    printed = capsys.readouterr().out
    assert "SAM ViT (width 64, depth 2)" in printed and "SamModel" in printed
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    ]
    out = tmp_path / "out"
    code = run_cli(
        ["segment", str(sample_image_path), "--point", "500,375", "--model", str(folder), "--out", str(out)]
    )
    assert code == 0
    assert len(json.loads((out / "masks.json").read_text())["masks"]) == 1


def test_convert_errors_are_one_line_and_exit_2(checkpoint, tmp_path, capsys):
    corrupt = tmp_path / "broken.pth"
    corrupt.write_bytes(checkpoint.read_bytes()[:5000])
    assert run_cli(["convert", str(corrupt), str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "truncated or corrupt" in err
    assert not (tmp_path / "a").exists()

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    assert run_cli(["convert", str(checkpoint), str(busy)]) == 2
    assert "OUT_DIR: expected a new or empty folder" in capsys.readouterr().err

    assert run_cli(["convert", str(checkpoint), str(tmp_path / "b"), "--video"]) == 2
    assert "SAM 1 has no video model" in capsys.readouterr().err
