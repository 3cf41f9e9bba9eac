"""``export_onnx``: a SAM-family image model to an ONNX folder (encoder + two prompt decoders + robosam.json).

Files: ``encoder.onnx`` (pixel_values (B, 3, S, S) -> features), ``decoder_multimask.onnx`` (K = 3 masks per
object) and ``decoder_single.onnx`` (K = 1), each also as ``*.fp16.onnx`` when float16 is asked for; the image
processor's ``preprocessor_config.json``; ``robosam.json`` last, so a folder without it is an unfinished export.
The export checks itself: ONNX Runtime on CPU against PyTorch on random prompts, recorded under ``parity``.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robosam.errors import InputError
from robosam.export.graphs import (
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    EncoderGraph,
    PromptDecoderGraph,
    feature_names,
)
from robosam.export.manifest import FORMAT, FORMAT_VERSION, LABEL_CODES, MANIFEST_NAME, tensor_spec
from robosam.export.video_export import export_video_graphs, is_video_source, video_model
from robosam.io import write_json_atomic
from robosam.models import LoadedModel, load_model

EXPORTABLE = ("sam", "sam_hq", "mobilesam", "sam2")
DTYPES = ("float32", "float16")
DEFAULT_OPSET = 17
GRAPHS = {"decoder_multimask": True, "decoder_single": False}


def export_onnx(
    model: str | os.PathLike | LoadedModel,
    out_dir: str | os.PathLike,
    dtypes: tuple[str, ...] = DTYPES,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    video: bool | None = None,
) -> dict[str, Any]:
    """Export the image encoder and prompt decoders of ``model`` (preset, hub id, folder, checkpoint or a
    ``LoadedModel``) to ``out_dir``; returns the manifest written to ``out_dir/robosam.json``.

    dtypes: ``float32`` always, plus ``float16`` (a converted copy with float32 inputs and outputs).
    check: run ONNX Runtime and PyTorch on the same random inputs and record the differences under ``parity``.
    video: also export the SAM 2 / 2.1 video step (``robosam.export.video_export``; float32); None: when
        ``model`` is a SAM 2 video model (a ``sam2_video`` folder, tracker preset or official checkpoint).
    """
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown or "float32" not in dtypes:
        raise InputError("dtypes", f"float32, optionally with float16 (of {', '.join(DTYPES)})", dtypes)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, device="cpu", dtype="float32")
    if loaded.family not in EXPORTABLE:
        raise InputError("model", f"an image model of family {', '.join(EXPORTABLE)}", loaded.family)
    if video is None:
        video = loaded.family == "sam2" and is_video_source(model)
    if video and (loaded.family != "sam2" or not is_video_source(model)):  # checked before writing anything
        raise InputError(
            "video",
            "a SAM 2 / 2.1 video model for the video step (a sam2_video folder, tracker preset or checkpoint)",
            loaded.family if loaded.family != "sam2" else "an image-only SAM 2 model",
        )
    adapter = loaded.adapter
    net = loaded.model
    if adapter.device.type != "cpu" or adapter.dtype != torch.float32:
        net = copy.deepcopy(net).to(device="cpu", dtype=torch.float32)  # the caller's model stays where it is
    net = net.eval()
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_NAME).unlink(missing_ok=True)  # the folder is unfinished until the manifest is back
    names = feature_names(loaded.family, net)
    size, lowres = adapter.input_size, adapter.lowres_size
    pixel_values = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = EncoderGraph(net, loaded.family)(pixel_values)
    feature_shapes = {name: list(f.shape[1:]) for name, f in zip(names, features)}

    files: dict[str, dict[str, str]] = {}
    files["encoder"] = {"float32": "encoder.onnx"}
    _export(
        EncoderGraph(net, loaded.family),
        (pixel_values,),
        out / "encoder.onnx",
        ["pixel_values"],
        list(names),
        {"pixel_values": {0: "batch"}, **{n: {0: "batch"} for n in names}},
        opset,
    )
    for graph, multimask in GRAPHS.items():
        files[graph] = {"float32": f"{graph}.onnx"}
        export_decoder_graph(net, loaded.family, multimask, features, out / f"{graph}.onnx", opset)
    if "float16" in dtypes:
        for graph, by_dtype in files.items():
            by_dtype["float16"] = f"{graph}.fp16.onnx"
            convert_to_float16(out / by_dtype["float32"], out / by_dtype["float16"])
    adapter.image_processor.save_pretrained(out)
    video_specs, video_section = {}, None
    if video:
        video_specs, video_section = export_video_graphs(
            video_model(model), out, features[-1], list(features[:-1]), opset
        )

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": loaded.family,
        "source": loaded.source,
        "opset": opset,
        "dtypes": list(dtypes),
        "geometry": {
            "input_size": size,
            "lowres_size": lowres,
            "padded": bool(adapter.padded),
            "embedding_hw": feature_shapes["image_embeddings"][-2:],
            "resized_hw": (
                "longest side to S: (int(H * S / max(H, W) + 0.5), int(W * S / max(H, W) + 0.5)), padded to S x S"
                if adapter.padded
                else "(S, S): stretched"
            ),
        },
        "postprocessing": (
            "logits (L x L) resized bilinearly (half-pixel centres) to S x S, cropped to resized_hw, then to H x W"
            if adapter.padded
            else "logits (L x L) resized bilinearly (half-pixel centres) to H x W"
        )
        + "; foreground where > 0",
        "preprocessing": _preprocessing(adapter),
        "prompts": {
            "frame": "encoder input pixels: x * resized_w / W, y * resized_h / H (see geometry)",
            "labels": LABEL_CODES,
            "padding_point": (
                "always last: (0, 0) with label -1 after the points and box corners"
                if loaded.family == "sam2"
                else "(0, 0) with label -1 after the points when there is no box; none with a box"
            ),
            "no_prompt": "N = 0 points with mask_input only"
            if loaded.family != "sam2"
            else "two padding points with mask_input only",
        },
        "graphs": {**_graph_specs(files, names, feature_shapes, size, lowres), **video_specs},
    }
    if video_section is not None:
        manifest["video"] = video_section
    if check:
        manifest["parity"] = check_parity(out, manifest, net, loaded.family, features)
    write_json_atomic(manifest, out / MANIFEST_NAME)
    return manifest


def export_decoder_graph(
    net,
    family: str,
    multimask: bool,
    features: tuple[torch.Tensor, ...],
    path: Path,
    opset: int = DEFAULT_OPSET,
) -> None:
    """Write the prompt decoder of ``net`` (see ``PromptDecoderGraph``) to ``path`` with dynamic objects and
    points; ``features`` are example encoder outputs (batch 1 is used) that fix the feature shapes."""
    embeddings = features[feature_names(family, net).index("image_embeddings")]
    lowres = 4 * int(embeddings.shape[-1])  # the mask input side: 4x the embedding grid in every family
    size = int(net.prompt_encoder.input_image_size)
    dynamic = {
        "point_coords": {0: "objects", 1: "points"},
        "point_labels": {0: "objects", 1: "points"},
        "logits": {0: "objects"},
        "scores": {0: "objects"},
    }
    _export(
        PromptDecoderGraph(net, family, multimask),
        _example_prompts(features, size, lowres, objects=2, points=3),
        path,
        [*feature_names(family, net), *DECODER_INPUTS],
        list(DECODER_OUTPUTS),
        dynamic,
        opset,
    )


def _export(module, args, path: Path, inputs, outputs, dynamic_axes, opset: int) -> None:
    """torch.onnx.export (TorchScript exporter) into a temporary file, then renamed into place."""
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as scratch:
        target = Path(scratch) / path.name
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python-level shape checks
            torch.onnx.export(
                module.eval(),
                args,
                str(target),
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        _move_with_data(target, path)


def _move_with_data(source: Path, target: Path) -> None:
    """Move an ONNX file (and any external-data files beside it, for models over 2 GB) into place."""
    for extra in source.parent.iterdir():
        if extra != source:
            os.replace(extra, target.parent / extra.name)
    os.replace(source, target)


def convert_to_float16(source: Path, target: Path) -> None:
    """A float16 copy of an ONNX graph whose inputs and outputs stay float32 (casts at the edges)."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(source))
    # Resize takes float32 scales only; the blocked ops run in float32 between casts
    converted = convert_float_to_float16(
        model, keep_io_types=True, op_block_list=[*DEFAULT_OP_BLOCK_LIST, "Resize"]
    )
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as scratch:
        path = Path(scratch) / target.name
        onnx.save(converted, str(path))
        os.replace(path, target)


def _example_prompts(features, size: int, lowres: int, objects: int, points: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(1)
    coords = torch.rand(objects, points, 2, generator=generator) * size
    labels = torch.tensor([[1, 0, -1], [2, 3, -1]], dtype=torch.int64)[:objects, :points]
    mask = torch.randn(1, 1, lowres, lowres, generator=generator)
    return (*[f[:1] for f in features], coords, labels, mask, torch.ones(1))


def _preprocessing(adapter) -> dict[str, Any]:
    processor = adapter.image_processor
    resample = getattr(processor, "resample", 2)
    common = {
        "channels": "RGB",
        "layout": "NCHW float32",
        "mean": [float(v) for v in processor.image_mean],
        "std": [float(v) for v in processor.image_std],
        "resample": {0: "nearest", 2: "bilinear", 3: "bicubic"}.get(int(resample), str(resample)),
    }
    if adapter.padded:
        return {
            **common,
            "steps": "resize (uint8, PIL) so the longest side is input_size (other side rounded), scale by "
            "1/255, normalise with mean/std, pad bottom-right with zeros to input_size x input_size",
        }
    return {
        **common,
        "steps": "scale by 1/255 to float, resize (stretch) to input_size x input_size, normalise with mean/std",
    }


def _graph_specs(files, names, feature_shapes, size: int, lowres: int) -> dict[str, Any]:
    features = [tensor_spec(n, ["batch", *feature_shapes[n]], "float32") for n in names]
    decoder_features = [tensor_spec(n, [1, *feature_shapes[n]], "float32") for n in names]
    prompts = [
        tensor_spec("point_coords", ["objects", "points", 2], "float32"),
        tensor_spec("point_labels", ["objects", "points"], "int64"),
        tensor_spec("mask_input", [1, 1, lowres, lowres], "float32"),
        tensor_spec("has_mask_input", [1], "float32"),
    ]
    specs = {
        "encoder": {
            "files": files["encoder"],
            "inputs": [tensor_spec("pixel_values", ["batch", 3, size, size], "float32")],
            "outputs": features,
        }
    }
    for graph, multimask in GRAPHS.items():
        k = 3 if multimask else 1
        specs[graph] = {
            "files": files[graph],
            "inputs": decoder_features + prompts,
            "outputs": [
                tensor_spec("logits", ["objects", k, lowres, lowres], "float32"),
                tensor_spec("scores", ["objects", k], "float32"),
            ],
        }
    return specs


def check_parity(folder: Path, manifest: dict[str, Any], net, family: str, features) -> dict[str, Any]:
    """ONNX Runtime (CPU) vs PyTorch float32 on one random image and prompts, per exported dtype: largest
    absolute differences of features, logits and scores, and the IoU of the masks (logits > 0)."""
    from robosam.onnx_runtime import OnnxModel

    size = manifest["geometry"]["input_size"]
    lowres = manifest["geometry"]["lowres_size"]
    pixel_values = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        reference = EncoderGraph(net, family)(pixel_values)
    names = [spec["name"] for spec in manifest["graphs"]["encoder"]["outputs"]]
    # unit-scale features: a random-weight encoder's output can be tiny, which would hide decoder errors
    generator = torch.Generator().manual_seed(3)
    decoder_features = [torch.randn(r[:1].shape, generator=generator) for r in reference]
    prompts = _example_prompts(decoder_features, size, lowres, objects=2, points=3)
    expected = {}
    with torch.no_grad():
        for graph, multimask in GRAPHS.items():
            expected[graph] = PromptDecoderGraph(net, family, multimask)(*prompts)
    report: dict[str, Any] = {}
    for dtype in manifest["dtypes"]:
        onnx_model = OnnxModel(folder, manifest=manifest, device="cpu", dtype=dtype)
        encoded = onnx_model.encode(pixel_values.numpy())
        entry: dict[str, Any] = {
            "encoder_max_abs": max(
                float(np.abs(encoded[n] - r.numpy()).max()) for n, r in zip(names, reference)
            )
        }
        for graph, multimask in GRAPHS.items():
            logits, scores = (t.numpy() for t in expected[graph])
            got_logits, got_scores = onnx_model.run_decoder(
                {n: f.numpy() for n, f in zip(names, decoder_features)},
                *(p.numpy() for p in prompts[len(names) :]),
                multimask=multimask,
            )
            entry[graph] = {
                "logits_max_abs": float(np.abs(got_logits - logits).max()),
                "scores_max_abs": float(np.abs(got_scores - scores).max()),
                "mask_iou": mask_iou(got_logits > 0, logits > 0),
            }
        report[dtype] = entry
    return report


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean arrays of the same shape (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
