"""`robosam bench` and the --dtype / --compile checks, on tiny random-weight models (CPU)."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import run_cli

from robosam.bench import bench_model, synthetic_image
from robosam.errors import InputError
from robosam.export.accelerate import check_compile, check_dtype, compile_model

STAGES = ("encoder_ms", "decode_ms", "postprocess_ms", "peak_memory_mib")


def test_bench_torch_times_every_stage(tiny_sam_dir):
    result = bench_model(str(tiny_sam_dir), device="cpu", images=1, prompts=3, image=synthetic_image(96, 128))
    assert result["family"] == "sam" and result["backend"] == "torch" and result["dtype"] == "float32"
    assert all(result[key] > 0 for key in STAGES)
    assert result["encoder_ms"] < 60_000 and result["decode_ms"] < 10_000
    assert result["tracking_fps"] is None and result["image_hw"] == [96, 128]
    json.dumps(result)  # JSON-safe


def test_bench_tracks_frames_with_a_video_model(tmp_path):
    from test_video_models import build_sam2_video

    folder = tmp_path / "sam2_video"
    build_sam2_video().save_pretrained(folder)
    result = bench_model(
        str(folder), device="cpu", images=1, prompts=1, frames=2, image=synthetic_image(64, 96)
    )
    assert result["family"] == "sam2"
    assert result["tracking_fps"] is not None and result["tracking_fps"] > 0


def test_bench_cli_onnx_backend_exports_and_writes_json(tiny_sam_dir, tmp_path, capsys):
    out = tmp_path / "bench"
    code = run_cli(["bench", "--model", str(tiny_sam_dir), "--backend", "onnx", "--device", "cpu",
                    "--images", "1", "--prompts", "2", "--out", str(out)])  # fmt: skip
    assert code == 0
    assert "robosam bench" in capsys.readouterr().out
    (result,) = json.loads((out / "bench.json").read_text())["results"]
    assert result["backend"] == "onnx" and result["family"] == "sam"
    assert all(result[key] > 0 for key in STAGES)


@pytest.mark.parametrize(
    "args",
    [
        ["--backend", "tensorflow"],
        ["--backend", "onnx", "--compile"],
        ["--backend", "onnx", "--dtype", "bfloat16"],
        ["--dtype", "float64"],
        ["--prompts", "0"],
    ],
)
def test_bench_cli_rejects_bad_options(tiny_sam_dir, args, capsys):
    assert run_cli(["bench", "--model", str(tiny_sam_dir), "--device", "cpu", *args]) == 2
    assert "robosam: error:" in capsys.readouterr().err


def test_dtype_and_compile_checks():
    assert check_dtype(None) == "float32"
    assert check_dtype("bfloat16", "cpu") == "bfloat16"
    with pytest.raises(InputError, match="--dtype"):
        check_dtype("bfloat16", "cpu", backend="onnx")
    with pytest.raises(InputError, match="--compile"):
        check_compile("onnx")
    check_compile("torch")  # this machine has a C++ compiler and a dynamo-supported Python
    model = torch.nn.Module()
    model.vision_encoder, model.mask_decoder = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    assert compile_model(model) == ["vision_encoder", "mask_decoder"]


def test_segment_cli_takes_dtype(tiny_sam_dir, sample_image_path, tmp_path):
    out = tmp_path / "seg"
    code = run_cli(["segment", str(sample_image_path), "--point", "500,375", "--model", str(tiny_sam_dir),
                    "--device", "cpu", "--dtype", "bfloat16", "--out", str(out)])  # fmt: skip
    assert code == 0 and (out / "masks.json").is_file()
    assert run_cli(["segment", str(sample_image_path), "--point", "1,1", "--dtype", "int8"]) == 2
