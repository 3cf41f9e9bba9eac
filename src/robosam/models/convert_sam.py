"""SAM 1 (``segment_anything``) state dict -> transformers ``SamConfig`` + ``SamModel`` state dict.

Everything the architecture needs is read from key names and tensor shapes: encoder width and depth
(``patch_embed``, ``blocks.N``), heads and window / global attention layout (the relative-position tables:
``(2 * window - 1, head_dim)`` in windowed blocks, ``(2 * grid - 1, head_dim)`` in global ones), input size
(``pos_embed`` grid x patch size), decoder width, depth, MLP and IoU-head sizes. The one thing the weights
cannot show is the mask decoder's attention head count, which Meta's builders fix at 8 (override with
``{"mask_decoder_config": {"num_attention_heads": n}}``).

One port difference is corrected here: transformers' ``SamMaskDecoderConfig.layer_norm_eps`` defaults to
1e-6 while Meta's two-way transformer normalises with 1e-5; the converted config says 1e-5, which brings
low-resolution logits from ~5e-4 to ~1e-6 of Meta's on random weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import SamConfig

from robosam.errors import InputError
from robosam.models.convert_common import (
    count_indexed,
    mask_decoder_tail_rules,
    merge_overrides,
    prompt_encoder_rules,
    rename,
    rule,
    shape,
)

# ImageNet statistics in 0..255, the ``pixel_mean`` / ``pixel_std`` SAM normalises with.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
# Released encoders by (width, depth).
RELEASED = {(768, 12): "ViT-B", (1024, 24): "ViT-L", (1280, 32): "ViT-H"}
DECODER_HEADS = 8  # TwoWayTransformer(num_heads=8) in every segment_anything builder
DECODER_LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm default, used by segment_anything's TwoWayTransformer


def is_sam1(state: Mapping[str, Any]) -> bool:
    """A ``segment_anything`` ``Sam`` state dict (ViT image encoder + prompt encoder + mask decoder)."""
    return "image_encoder.patch_embed.proj.weight" in state and "mask_decoder.iou_token.weight" in state


def describe(config: SamConfig) -> str:
    """``ViT-B`` for a released size, else ``ViT (width 64, depth 2)``."""
    vision = config.vision_config
    name = RELEASED.get((vision.hidden_size, vision.num_hidden_layers))
    if name:
        return f"SAM {name}"
    return f"SAM ViT (width {vision.hidden_size}, depth {vision.num_hidden_layers})"


def infer_config(state: Mapping[str, torch.Tensor], overrides: Mapping[str, Any] | None = None) -> SamConfig:
    """The ``SamConfig`` whose ``SamModel`` has exactly the tensors of ``state`` (see module docstring)."""
    width, channels, patch, _ = shape(state, "image_encoder.patch_embed.proj.weight", "patch embedding")
    depth = count_indexed(state, "image_encoder.blocks")
    if depth == 0:
        raise InputError("checkpoint", "image_encoder.blocks.0.* (ViT blocks)", detail="the file has none")
    if "image_encoder.pos_embed" in state:
        grid = shape(state, "image_encoder.pos_embed", "absolute position embedding")[1]
    else:
        raise InputError(
            "checkpoint",
            "image_encoder.pos_embed (the ViT's absolute position embedding, which fixes the input size)",
            detail="the file lacks it",
        )
    heads, window, global_indexes = _attention_layout(state, depth, width, grid)
    mlp_dim = shape(state, "image_encoder.blocks.0.mlp.lin1.weight", "encoder MLP")[0]
    neck_channels = shape(state, "image_encoder.neck.0.weight", "encoder neck")[0]
    pos_feats = shape(
        state, "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix", "prompt encoding"
    )[1]

    prompt_width = shape(state, "prompt_encoder.not_a_point_embed.weight", "prompt encoder")[1]
    mask_channels = shape(state, "prompt_encoder.mask_downscaling.3.weight", "mask input encoder")[0]
    decoder_width = shape(state, "mask_decoder.iou_token.weight", "mask decoder")[1]
    mask_tokens = shape(state, "mask_decoder.mask_tokens.weight", "mask decoder tokens")[0]
    cross_dim = shape(
        state, "mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight", "decoder"
    )
    iou_depth = count_indexed(state, "mask_decoder.iou_prediction_head.layers")
    if not (neck_channels == prompt_width == decoder_width == 2 * pos_feats):
        raise InputError(
            "checkpoint",
            "one embedding width across encoder neck, prompt encoder and mask decoder",
            f"{neck_channels}, {prompt_width}, {decoder_width} and positional features {pos_feats}",
        )
    image_size = grid * patch
    config = {
        "vision_config": {
            "hidden_size": width,
            "output_channels": neck_channels,
            "num_hidden_layers": depth,
            "num_attention_heads": heads,
            "num_channels": channels,
            "image_size": image_size,
            "patch_size": patch,
            "qkv_bias": "image_encoder.blocks.0.attn.qkv.bias" in state,
            "mlp_dim": mlp_dim,
            "mlp_ratio": mlp_dim / width,
            "use_abs_pos": True,
            "use_rel_pos": True,
            "window_size": window,
            "global_attn_indexes": global_indexes,
            "num_pos_feats": pos_feats,
        },
        "prompt_encoder_config": {
            "hidden_size": prompt_width,
            "image_size": image_size,
            "patch_size": patch,
            "mask_input_channels": mask_channels,
            "num_point_embeddings": count_indexed(state, "prompt_encoder.point_embeddings"),
        },
        "mask_decoder_config": {
            "hidden_size": decoder_width,
            "mlp_dim": shape(state, "mask_decoder.transformer.layers.0.mlp.lin1.weight", "decoder MLP")[0],
            "num_hidden_layers": count_indexed(state, "mask_decoder.transformer.layers"),
            "num_attention_heads": DECODER_HEADS,
            "attention_downsample_rate": decoder_width // cross_dim[0],
            "num_multimask_outputs": mask_tokens - 1,
            "iou_head_depth": iou_depth,
            "iou_head_hidden_dim": shape(
                state, "mask_decoder.iou_prediction_head.layers.0.weight", "IoU head"
            )[0],
            # Meta's TwoWayTransformer uses nn.LayerNorm's default eps; SamMaskDecoderConfig defaults to 1e-6
            "layer_norm_eps": DECODER_LAYER_NORM_EPS,
        },
    }
    merge_overrides(config, overrides)
    return SamConfig(**config)


def _attention_layout(
    state: Mapping[str, torch.Tensor], depth: int, width: int, grid: int
) -> tuple[int, int, list[int]]:
    """(heads, window size, global attention block indexes) from the relative-position tables."""
    lengths, head_dims = [], set()
    for block in range(depth):
        key = f"image_encoder.blocks.{block}.attn.rel_pos_h"
        if key not in state:
            raise InputError(
                "checkpoint",
                f"{key} (relative position tables, which give the attention heads and windows)",
                detail="every released SAM encoder has them",
            )
        length, head_dim = state[key].shape
        lengths.append(int(length))
        head_dims.add(int(head_dim))
    if len(head_dims) != 1 or width % next(iter(head_dims)):
        raise InputError(
            "checkpoint", "one attention head size dividing the encoder width", sorted(head_dims)
        )
    global_indexes = [block for block, length in enumerate(lengths) if length == 2 * grid - 1]
    windowed = {length for length in lengths if length != 2 * grid - 1}
    if len(windowed) > 1 or any(length % 2 == 0 for length in windowed):
        raise InputError("checkpoint", "one window size across windowed blocks", sorted(windowed))
    window = (windowed.pop() + 1) // 2 if windowed else grid
    return width // next(iter(head_dims)), window, global_indexes


def convert_state(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Meta SAM 1 keys -> ``SamModel`` keys. Returns (renamed state dict, keys nothing maps)."""
    extra = {key: state[key] for key in ("pixel_mean", "pixel_std") if key in state}
    _check_normalisation(extra)
    weights = {key: value for key, value in state.items() if key not in extra}
    enc, dec = r"image_encoder", r"mask_decoder"
    rules = [
        rule(rf"{enc}\.pos_embed", r"vision_encoder.pos_embed"),
        rule(rf"{enc}\.patch_embed\.proj\.(weight|bias)", r"vision_encoder.patch_embed.projection.\1"),
        rule(rf"{enc}\.blocks\.(\d+)\.norm(1|2)\.(weight|bias)", r"vision_encoder.layers.\1.layer_norm\2.\3"),
        rule(
            rf"{enc}\.blocks\.(\d+)\.attn\.(qkv|proj)\.(weight|bias)", r"vision_encoder.layers.\1.attn.\2.\3"
        ),
        rule(rf"{enc}\.blocks\.(\d+)\.attn\.rel_pos_(h|w)", r"vision_encoder.layers.\1.attn.rel_pos_\2"),
        rule(
            rf"{enc}\.blocks\.(\d+)\.mlp\.lin(1|2)\.(weight|bias)", r"vision_encoder.layers.\1.mlp.lin\2.\3"
        ),
        rule(rf"{enc}\.neck\.0\.weight", r"vision_encoder.neck.conv1.weight"),
        rule(rf"{enc}\.neck\.1\.(weight|bias)", r"vision_encoder.neck.layer_norm1.\1"),
        rule(rf"{enc}\.neck\.2\.weight", r"vision_encoder.neck.conv2.weight"),
        rule(rf"{enc}\.neck\.3\.(weight|bias)", r"vision_encoder.neck.layer_norm2.\1"),
        rule(r"prompt_encoder\.point_embeddings\.(\d+)\.weight", r"prompt_encoder.point_embed.\1.weight"),
        *prompt_encoder_rules("prompt_encoder"),
        rule(
            rf"{dec}\.transformer\.(layers\.\d+\.|)"
            r"(self_attn|cross_attn_token_to_image|cross_attn_image_to_token|final_attn_token_to_image)"
            r"\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)",
            r"mask_decoder.transformer.\1\2.\3.\4",
        ),
        rule(
            rf"{dec}\.transformer\.layers\.(\d+)\.mlp\.lin(1|2)\.(weight|bias)",
            r"mask_decoder.transformer.layers.\1.mlp.lin\2.\3",
        ),
        rule(rf"{dec}\.(iou_token|mask_tokens)\.weight", r"mask_decoder.\1.weight"),
        *mask_decoder_tail_rules(weights, dec),
    ]
    return rename(weights, rules)


def _check_normalisation(buffers: Mapping[str, torch.Tensor]) -> None:
    """Meta's ``Sam`` keeps ``pixel_mean`` / ``pixel_std`` out of its state dict; if a file has them they must
    be the standard values, because robosam's image processor normalises with those."""
    for key, expected in (("pixel_mean", PIXEL_MEAN), ("pixel_std", PIXEL_STD)):
        if key in buffers and not torch.allclose(
            buffers[key].flatten().float(), torch.tensor(expected), atol=1e-3
        ):
            raise InputError(
                "checkpoint",
                f"{key} = {expected} (the normalisation SAM was trained with)",
                [round(float(v), 3) for v in buffers[key].flatten()],
            )
