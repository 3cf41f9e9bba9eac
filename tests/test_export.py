"""ONNX export and the ONNX Runtime backend against PyTorch, on tiny random-weight SAM 1 and SAM 2 models.

The reference is transformers' own prompt path (``Segmenter(..., fast_decoder=False)`` and the family
adapter's ``decode``), independent of the export code; tolerances sit near what was measured (float32 logits
differ by ~1e-10 here, scores by <= 6e-8).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tiny_models
import torch
from helpers import run_cli

from robosam.errors import InputError
from robosam.export import choose_providers, pack_prompts, read_manifest
from robosam.export.onnx_export import export_onnx
from robosam.models import load_model
from robosam.segmenter import Segmenter

pytest.importorskip("onnxruntime")

PROMPTS = [  # (the decoder test covers every prompt kind; these cover the geometry and object grouping)
    dict(points=[(60, 40), (100, 80)], labels=[1, 0], box=(30, 10, 160, 90)),
    dict(points=[[(60, 40)], [(150, 100)], [(20, 100)]], labels=[[1], [1], [0]]),  # three objects
]


def iou_per_mask(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = (a & b).reshape(len(a), -1).sum(1)
    union = (a | b).reshape(len(a), -1).sum(1)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def unit_scale_model(family: str, seed: int = 0):
    """A tiny model whose weights are redrawn at unit gain (std 1/sqrt(fan_in)): transformers' small init
    leaves logits near 1e-5, where a mask comparison would test noise; here they are of order 1."""
    model = tiny_models.BUILDERS[family]().eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() >= 2:
                parameter.copy_(
                    torch.randn(parameter.shape, generator=generator) / math.sqrt(parameter[0].numel())
                )
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """SAM 1 exported through the CLI (float32 + float16, self-checked); SAM 2 through the API (float32)."""
    root = tmp_path_factory.mktemp("onnx")
    dirs = {}
    for family in ("sam", "sam2", "sam_hq"):
        dirs[family] = root / f"{family}-torch"
        unit_scale_model(family).save_pretrained(dirs[family])
    code = run_cli(["export", "onnx", "--model", str(dirs["sam"]), "--out", str(root / "sam")])
    assert code == 0
    for family in ("sam2", "sam_hq"):
        export_onnx(dirs[family], root / family, dtypes=("float32",), check=False)
    return {"sam": root / "sam", "sam2": root / "sam2", "sam_hq": root / "sam_hq", "dirs": dirs}


def test_manifest_describes_the_folder(exported):
    manifest = read_manifest(exported["sam"])
    torch_adapter = load_model(exported["dirs"]["sam"], device="cpu").adapter
    assert manifest["family"] == "sam"
    assert manifest["geometry"]["input_size"] == torch_adapter.input_size == 128
    assert manifest["geometry"]["lowres_size"] == torch_adapter.lowres_size == 32
    assert manifest["geometry"]["padded"] is True
    assert manifest["dtypes"] == ["float32", "float16"]
    decoder = manifest["graphs"]["decoder_multimask"]
    assert [spec["name"] for spec in decoder["inputs"]] == [
        "image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"
    ]  # fmt: skip
    assert decoder["outputs"][0]["shape"] == ["objects", 3, 32, 32]
    parity = manifest["parity"]["float32"]["decoder_multimask"]
    assert parity["mask_iou"] >= 0.999 and parity["scores_max_abs"] < 1e-6
    assert (exported["sam"] / "preprocessor_config.json").is_file()
    sam2 = read_manifest(exported["sam2"])
    assert [s["name"] for s in sam2["graphs"]["encoder"]["outputs"]] == [
        "high_res_feats_0", "high_res_feats_1", "image_embeddings"
    ]  # fmt: skip
    assert sam2["geometry"]["padded"] is False
    assert "cropped" in manifest["postprocessing"] and "cropped" not in sam2["postprocessing"]


def torch_features(family: str, features: dict[str, torch.Tensor]):
    """The family adapter's feature object from the exported graph's named features."""
    values = list(features.values())
    if family == "sam2":
        return values
    if family == "sam_hq":
        return values[0], values[1:]
    return values[0]


@pytest.mark.parametrize("family", ["sam", "sam2", "sam_hq"])
def test_decoder_matches_pytorch_on_unit_scale_features(exported, family):
    """The same random features (unit scale, so logits are far from 0) through both decoders."""
    onnx_adapter = Segmenter(exported[family], device="cpu").adapter
    torch_adapter = load_model(exported["dirs"][family], device="cpu").adapter
    generator = torch.Generator().manual_seed(0)
    shapes = {
        spec["name"]: spec["shape"][1:]
        for spec in onnx_adapter.model.manifest["graphs"]["encoder"]["outputs"]
    }
    features = {name: torch.randn(1, *shape, generator=generator) for name, shape in shapes.items()}
    numpy_features = {name: value.numpy() for name, value in features.items()}
    points = torch.rand(3, 4, 2, generator=generator) * 128
    labels = torch.tensor([[1, 0, 1, 1], [1, 1, 0, 0], [0, 1, 1, 1]])
    boxes = torch.tensor([[10.0, 20, 90, 100], [5, 5, 60, 70], [40, 30, 120, 110]])
    mask = torch.randn(1, 1, 32, 32, generator=generator) * 4
    cases = [(points, labels, None, None), (None, None, boxes, None), (points, labels, boxes, None),
             (points[:1], labels[:1], None, mask), (None, None, None, mask)]  # fmt: skip
    for case in cases:
        for multimask in (True, False):
            with torch.no_grad():
                want = torch_adapter.decode(torch_features(family, features), *case, multimask)
            got = onnx_adapter.decode(numpy_features, *case, multimask)
            assert got.logits.shape == want.logits.shape
            assert np.abs(want.logits.numpy()).mean() > 0.05  # logits far enough from 0 to test masks
            ious = iou_per_mask(
                got.logits.numpy().reshape(-1, 32, 32) > 0, want.logits.numpy().reshape(-1, 32, 32) > 0
            )
            assert ious.min() >= 0.999
            np.testing.assert_allclose(got.scores.numpy(), want.scores.numpy(), atol=1e-4)
            np.testing.assert_allclose(got.logits.numpy(), want.logits.numpy(), atol=1e-4)


@pytest.mark.parametrize("family", ["sam", "sam2"])  # SAM-HQ shares SAM 1's geometry
def test_segmenter_on_exported_folder_matches_pytorch(exported, family, rgb_image):
    onnx_seg = Segmenter(exported[family], device="cpu")
    torch_seg = Segmenter(exported["dirs"][family], device="cpu", fast_decoder=False)
    assert onnx_seg.adapter.family == family and onnx_seg.fast is None
    got_emb, want_emb = onnx_seg.embed(rgb_image), torch_seg.embed(rgb_image)
    assert got_emb.geometry == want_emb.geometry
    want_features = {"sam": lambda f: [f], "sam2": list, "sam_hq": lambda f: [f[0], *f[1]]}[family](
        want_emb.features
    )
    for got, want in zip(got_emb.features.values(), want_features):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-5, rtol=1e-4)
    for prompt in PROMPTS:
        for multimask in (True, False):
            got, want = (
                onnx_seg.decode(got_emb, multimask=multimask, **prompt),
                torch_seg.decode(want_emb, multimask=multimask, **prompt),
            )
            assert got.masks.shape == want.masks.shape == (len(want.scores), 120, 200)
            assert iou_per_mask(got.masks, want.masks).min() >= 0.999
            np.testing.assert_allclose(got.scores, want.scores, atol=1e-4)
            np.testing.assert_array_equal(got.object_ids, want.object_ids)
    first = torch_seg.decode(want_emb, points=[(60, 40)], labels=[1]).best().logits
    got = onnx_seg.decode(got_emb, points=[(60, 40)], labels=[1], mask_input=first)
    want = torch_seg.decode(want_emb, points=[(60, 40)], labels=[1], mask_input=first)
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-4)
    assert iou_per_mask(got.masks, want.masks).min() >= 0.999


def test_float16_graphs_run_close_to_float32(exported, rgb_image):
    manifest = read_manifest(exported["sam"])
    fp16 = manifest["parity"]["float16"]
    # measured on the unit-scale tiny SAM: logits within 2e-3, scores within 1.1e-3, mask IoU >= 0.9987
    assert fp16["decoder_multimask"]["scores_max_abs"] < 3e-3
    assert fp16["decoder_multimask"]["mask_iou"] >= 0.995
    assert fp16["decoder_single"]["mask_iou"] >= 0.995
    half = Segmenter(exported["sam"], device="cpu", dtype="float16")
    full = Segmenter(exported["sam"], device="cpu")
    assert half.adapter.model.dtype == "float16"
    got = half.decode(half.embed(rgb_image), box=(30, 10, 160, 90), multimask=False)
    want = full.decode(full.embed(rgb_image), box=(30, 10, 160, 90), multimask=False)
    np.testing.assert_allclose(got.scores, want.scores, atol=3e-3)
    assert iou_per_mask(got.masks, want.masks).min() >= 0.99


def test_segment_cli_runs_the_exported_folder(exported, sample_image_path, tmp_path):
    out = tmp_path / "seg"
    code = run_cli(["segment", str(sample_image_path), "--point", "500,375", "--model", str(exported["sam2"]),
                    "--out", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads((out / "masks.json").read_text())
    assert len(report["masks"]) == 1 and report["image_size"] == {"height": 1200, "width": 1800}


def test_pack_prompts_follows_each_family_padding():
    points, labels = np.array([[[1.0, 2.0]]]), np.array([[1]])
    box = np.array([[10.0, 20.0, 30.0, 40.0]])
    coords, codes = pack_prompts("sam", points, labels, None)
    assert codes.tolist() == [[1, -1]] and coords.tolist() == [[[1, 2], [0, 0]]]
    assert pack_prompts("sam", points, labels, box)[1].tolist() == [[1, 2, 3]]
    assert pack_prompts("sam", None, None, box)[0].tolist() == [[[10, 20], [30, 40]]]
    assert pack_prompts("sam", None, None, None)[0].shape == (1, 0, 2)
    assert pack_prompts("sam2", points, labels, box)[1].tolist() == [[1, 2, 3, -1]]
    assert pack_prompts("sam2", None, None, None)[1].tolist() == [[-1, -1]]


def test_providers_are_chosen_in_order():
    offered = [
        "CPUExecutionProvider",
        "CUDAExecutionProvider",
        "TensorrtExecutionProvider",
        "AzureExecutionProvider",
    ]
    assert choose_providers("auto", offered) == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
    ]  # fmt: skip
    assert choose_providers("cpu", offered) == ["CPUExecutionProvider"]
    assert (
        choose_providers("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"])[0]
        == "CUDAExecutionProvider"
    )
    with pytest.raises(InputError, match="device"):
        choose_providers("cuda", ["CPUExecutionProvider"])
    with pytest.raises(InputError, match="device"):
        choose_providers("mps", offered)


def test_bad_exports_and_folders_are_input_errors(exported, tmp_path):
    with pytest.raises(InputError, match="family"):
        export_onnx(load_model(tiny_models.build_sam3_tracker(), device="cpu"), tmp_path / "x", check=False)
    with pytest.raises(InputError, match="dtype"):
        Segmenter(exported["sam2"], device="cpu", dtype="float16")  # exported in float32 only
    with pytest.raises(InputError, match="tracker"):
        load_model(exported["sam"], device="cpu", kind="tracker")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "robosam.json").write_text("{not json")
    with pytest.raises(InputError, match="robosam.json"):
        read_manifest(broken)
    assert (
        run_cli(["export", "tflite", "--model", str(exported["dirs"]["sam"]), "--out", str(tmp_path / "y")])
        == 2
    )


def test_onnx_runtime_path_runs_without_torch(exported):
    """``OnnxModel`` + ``pack_prompts`` (what a deployment without torch uses) never import torch."""
    script = f"""
import sys
import numpy as np
from robosam.export import OnnxModel, pack_prompts
model = OnnxModel({str(exported["sam2"])!r}, device="cpu")
features = model.encode(np.zeros((1, 3, 128, 128), np.float32))
coords, labels = pack_prompts("sam2", np.array([[[40.0, 50.0]]]), np.array([[1]]), None)
logits, scores = model.run_decoder(features, coords, labels, np.zeros((1, 1, 32, 32), np.float32),
                                   np.zeros(1, np.float32), multimask=True)
assert logits.shape == (1, 3, 32, 32) and scores.shape == (1, 3), (logits.shape, scores.shape)
assert "torch" not in sys.modules and "transformers" not in sys.modules
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
