"""The SAM 2 / 2.1 video step to ONNX: memory attention, video mask decoders and memory encoder (see
``robosam.export.video_graphs``), added to an exported folder next to the image graphs.

``export_video_graphs`` writes the files and returns the ``graphs`` entries and the ``video`` section of
``robosam.json``: the facts a caller needs to keep the memory bank itself (how many memories and pointers the
model reads, which frames they come from, when the decoder gives three masks) and the frame preprocessing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from robosam.errors import InputError
from robosam.export.manifest import tensor_spec
from robosam.export.video_graphs import (
    ATTENTION_INPUTS,
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    ENCODER_INPUTS,
    MASK_INPUTS,
    MaskPromptGraph,
    MemoryAttentionGraph,
    MemoryEncoderGraph,
    VideoDecoderGraph,
    top_level_position,
)
from robosam.models import LoadedModel

VIDEO_GRAPHS = {"video_decoder_multimask": True, "video_decoder_single": False}


def is_video_source(model: Any) -> bool:
    """Whether ``model`` names a SAM 2 / 2.1 video model (a ``sam2_video`` folder or hub repository, a
    tracker preset, or an official checkpoint, which holds the memory modules)."""
    import json

    from robosam.models.registry import find_preset_by_hub_id, presets_of_kind

    if isinstance(model, LoadedModel):
        return type(model.model).__name__ == "Sam2VideoModel"
    source = os.fspath(model)
    path = Path(source).expanduser()
    if path.is_dir():
        try:
            return json.loads((path / "config.json").read_text()).get("model_type") == "sam2_video"
        except (OSError, ValueError):
            return False
    if path.is_file():
        return path.suffix in (".pt", ".pth")
    return source in presets_of_kind("tracker") or find_preset_by_hub_id(source, "tracker") is not None


def export_video_graphs(
    model: Any, out: Path, image_embeddings: torch.Tensor, high_res: list[torch.Tensor], opset: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the video step graphs of ``model`` (a float32 CPU ``Sam2VideoModel``) into ``out``.

    image_embeddings (1, C, h, w) and high_res (the two (1, C_l, H_l, W_l) maps): example encoder outputs.
    Returns (graph specs for ``robosam.json``'s ``graphs``, its ``video`` section).
    """
    from robosam.export.onnx_export import _export
    from robosam.video.loading import VideoModelFacts

    facts = VideoModelFacts.of(model)
    size, hidden, mem_dim = facts.image_size, int(model.hidden_dim), int(model.mem_dim)
    height, width = (int(v) for v in model.backbone_feature_sizes[-1])
    cells, lowres = height * width, 4 * width
    generator = torch.Generator().manual_seed(4)
    pixel_values = torch.randn(1, 3, size, size, generator=generator)
    with torch.no_grad():
        top_position = top_level_position(model, pixel_values)
        masks = torch.randn(2, 1, size, size, generator=generator)
        memory_position = model.memory_encoder(image_embeddings.expand(2, -1, -1, -1), masks)[1][0]
    memory_position = memory_position.flatten(1).transpose(0, 1)  # (h*w, D)

    bank = (
        image_embeddings,
        torch.randn(2, 3, cells, mem_dim, generator=generator),
        torch.tensor([[0, 1, 2], [0, 0, 1]]),
        torch.randn(2, 4, hidden, generator=generator),
        torch.rand(2, 4, generator=generator),
    )
    _export(
        MemoryAttentionGraph(model, top_position, memory_position),
        bank,
        out / "memory_attention.onnx",
        list(ATTENTION_INPUTS),
        ["conditioned"],
        {
            "memory_features": {0: "objects", 1: "memories"},
            "memory_offsets": {0: "objects", 1: "memories"},
            "object_pointers": {0: "objects", 1: "pointers"},
            "pointer_offsets": {0: "objects", 1: "pointers"},
            "conditioned": {0: "objects"},
        },
        opset,
    )
    share_constants(out / "memory_attention.onnx")  # the tracer stores the rotary tables once per use
    prompts = (
        torch.randn(2, hidden, height, width, generator=generator),
        *high_res,
        torch.rand(2, 3, 2, generator=generator) * size,
        torch.tensor([[1, 0, -1], [2, 3, -1]]),
        torch.randn(2, 1, lowres, lowres, generator=generator),
        torch.tensor([1.0, 0.0]),
    )
    decoder_axes = {name: {0: "objects"} for name in (*DECODER_INPUTS, *DECODER_OUTPUTS)}
    decoder_axes.pop("high_res_feats_0"), decoder_axes.pop("high_res_feats_1")
    decoder_axes["point_coords"] = {0: "objects", 1: "points"}
    decoder_axes["point_labels"] = {0: "objects", 1: "points"}
    for graph, multimask in VIDEO_GRAPHS.items():
        _export(
            VideoDecoderGraph(model, multimask),
            prompts,
            out / f"{graph}.onnx",
            list(DECODER_INPUTS),
            list(DECODER_OUTPUTS),
            decoder_axes,
            opset,
        )
    _export(
        MaskPromptGraph(model),
        (image_embeddings, *high_res, (masks[:1] > 0).float()),
        out / "mask_prompt.onnx",
        list(MASK_INPUTS),
        list(DECODER_OUTPUTS),
        {},
        opset,
    )
    _export(
        MemoryEncoderGraph(model),
        (image_embeddings, masks, torch.randn(2, 1, generator=generator), torch.tensor([1.0, 0.0])),
        out / "memory_encoder.onnx",
        list(ENCODER_INPUTS),
        ["memory_features"],
        {name: {0: "objects"} for name in (*ENCODER_INPUTS[1:], "memory_features")},
        opset,
    )
    embeddings = tensor_spec("image_embeddings", [1, hidden, height, width], "float32")
    high_res_specs = [
        tensor_spec(f"high_res_feats_{i}", [1, *(int(v) for v in level.shape[1:])], "float32")
        for i, level in enumerate(high_res)
    ]
    specs: dict[str, Any] = {
        "memory_attention": {
            "files": {"float32": "memory_attention.onnx"},
            "inputs": [
                embeddings,
                tensor_spec("memory_features", ["objects", "memories", cells, mem_dim], "float32"),
                tensor_spec("memory_offsets", ["objects", "memories"], "int64"),
                tensor_spec("object_pointers", ["objects", "pointers", hidden], "float32"),
                tensor_spec("pointer_offsets", ["objects", "pointers"], "float32"),
            ],
            "outputs": [tensor_spec("conditioned", ["objects", hidden, height, width], "float32")],
        },
        "memory_encoder": {
            "files": {"float32": "memory_encoder.onnx"},
            "inputs": [
                embeddings,
                tensor_spec("mask_logits", ["objects", 1, size, size], "float32"),
                tensor_spec("object_scores", ["objects", 1], "float32"),
                tensor_spec("binarize", ["objects"], "float32"),
            ],
            "outputs": [tensor_spec("memory_features", ["objects", cells, mem_dim], "float32")],
        },
    }
    decoder_outputs = [
        tensor_spec("logits", ["objects", 1, lowres, lowres], "float32"),
        tensor_spec("high_res_logits", ["objects", 1, size, size], "float32"),
        tensor_spec("scores", ["objects"], "float32"),
        tensor_spec("object_pointers", ["objects", hidden], "float32"),
        tensor_spec("object_scores", ["objects", 1], "float32"),
    ]
    mask_inputs = [embeddings, *high_res_specs, tensor_spec("mask", [1, 1, size, size], "float32")]
    kept = _graph_inputs(out / "mask_prompt.onnx")  # the exporter drops inputs the pointer does not read
    specs["mask_prompt"] = {
        "files": {"float32": "mask_prompt.onnx"},
        "inputs": [spec for spec in mask_inputs if spec["name"] in kept],
        "outputs": [{**spec, "shape": [1, *spec["shape"][1:]]} for spec in decoder_outputs],
    }
    for graph in VIDEO_GRAPHS:
        specs[graph] = {
            "files": {"float32": f"{graph}.onnx"},
            "inputs": [
                tensor_spec("conditioned", ["objects", hidden, height, width], "float32"),
                *high_res_specs,
                tensor_spec("point_coords", ["objects", "points", 2], "float32"),
                tensor_spec("point_labels", ["objects", "points"], "int64"),
                tensor_spec("mask_input", ["objects", 1, lowres, lowres], "float32"),
                tensor_spec("has_mask_input", ["objects"], "float32"),
            ],
            "outputs": decoder_outputs,
        }
    config = model.config
    video = {
        "dtype": "float32",
        "image_size": size,
        "lowres_size": lowres,
        "hidden_dim": hidden,
        "memory_dim": mem_dim,
        "memory_grid": [height, width],
        "num_maskmem": facts.num_maskmem,
        "max_object_pointers": facts.max_object_pointers,
        "max_cond_frame_num": int(config.max_cond_frame_num),
        "multimask": {
            "in_sam": bool(config.multimask_output_in_sam),
            "for_tracking": bool(config.multimask_output_for_tracking),
            "min_points": int(config.multimask_min_pt_num),
            "max_points": int(config.multimask_max_pt_num),
        },
        "preprocessing": {
            "channels": "RGB",
            "mean": list(facts.mean),
            "std": list(facts.std),
            "steps": "resize the uint8 frame to S x S with PIL bicubic (stretched), scale by 1/255, normalise "
            "with mean/std; encoder.onnx gives image_embeddings and the high-res maps",
        },
        "step": (
            "per object: a prompted frame of a new object decodes image_embeddings as conditioned; otherwise "
            "memory_attention over its bank: every conditioning frame (offset 0) and the memories of the "
            "num_maskmem - 1 frames before (offset k), object pointers of its conditioning frames up to now and "
            "of the max_object_pointers - 1 frames before; then video_decoder_multimask when the model uses "
            "three masks (tracking: multimask.in_sam and for_tracking; clicks: in_sam and min_points <= "
            "points <= max_points), else video_decoder_single (tracking prompts: two padding points, label -1); "
            "a mask prompt (resized to S x S, antialiased bilinear, >= 0.5) goes through mask_prompt instead, "
            "with no memory; memory_encoder of high_res_logits (binarize 1 for prompted masks, one object per "
            "call; 0 for tracked ones) gives the memory to store"
        ),
    }
    return specs, video


def video_model(source: Any) -> Any:
    """The float32 CPU ``Sam2VideoModel`` of ``source`` (a ``LoadedModel`` or anything ``load_model`` takes)."""
    from robosam.models import load_model

    loaded = source if isinstance(source, LoadedModel) else load_model(source, device="cpu", kind="tracker")
    if getattr(loaded, "missing_weights", None):  # random memory modules would export silently
        raise InputError(
            "model",
            "a video checkpoint holding the memory weights",
            loaded.source,
            detail="export with --no-video",
        )
    return loaded.model.to(device="cpu", dtype=torch.float32).eval()


def _graph_inputs(path: Path) -> set[str]:
    import onnx

    return {value.name for value in onnx.load(str(path), load_external_data=False).graph.input}


def share_constants(path: Path, least_bytes: int = 1 << 16) -> int:
    """Keep one copy of each large constant tensor that an ONNX graph stores several times (the tracer records
    transformers' rotary tables once per attention use: ~100 MB of the hiera-tiny memory attention). Rewrites
    ``path`` in place (atomically); returns the bytes saved."""
    import onnx

    model = onnx.load(str(path))
    first: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    kept, saved = [], 0
    for node in model.graph.node:
        tensor = node.attribute[0].t if node.op_type == "Constant" and len(node.attribute) == 1 else None
        if tensor is not None and node.attribute[0].name == "value" and len(tensor.raw_data) >= least_bytes:
            key = (tensor.data_type, tuple(tensor.dims), hashlib.sha256(tensor.raw_data).hexdigest())
            if key in first:
                rename[node.output[0]] = first[key]
                saved += len(tensor.raw_data)
                continue
            first[key] = node.output[0]
        kept.append(node)
    if not rename:
        return 0
    for node in kept:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as scratch:
        target = Path(scratch) / path.name
        onnx.save(model, str(target))
        os.replace(target, path)
    return saved
