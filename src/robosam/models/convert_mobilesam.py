"""MobileSAM (``mobile_sam.pt``) state dict -> ``MobileSamConfig`` + ``MobileSamModel`` state dict.

The TinyViT encoder keeps the checkpoint's own parameter names under ``vision_encoder`` (robosam's module
mirrors them); the prompt encoder and mask decoder are SAM 1's and go through ``convert_sam``'s rename rules.
The ImageNet classifier that TinyViT carries (``image_encoder.norm_head``, ``image_encoder.head``) is never run
by MobileSAM and is dropped by name. Everything else must map.

From shapes: stage widths, depths, heads (rows of ``attention_biases``), window sizes (its columns are the
w*w distinct offsets), MLP and MBConv expansion, local conv size, neck width, decoder sizes. Not in the weights:
the input size (1024, the only release; override ``{"tiny_vit_config": {"image_size": s}}``) and the patch
merging strides, which follow from SAM's fixed output stride of 16: 2 until the stride reaches 16, then 1
(MobileSAM's ``(2, 2, 1)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from robosam.errors import InputError
from robosam.models import convert_sam
from robosam.models.convert_common import count_indexed, merge_overrides, rename, rule, shape
from robosam.models.tiny_vit import TinyViTSettings

RELEASED = {(64, 128, 160, 320): "TinyViT-5M"}
OUTPUT_STRIDE = 16  # SAM's image embedding is 1/16 of the input side
PATCH_EMBED_STRIDE = 4
DEFAULT_IMAGE_SIZE = 1024
ENC = "image_encoder"


def is_mobilesam(state: Mapping[str, Any]) -> bool:
    """A MobileSAM ``Sam`` state dict (TinyViT ``patch_embed.seq`` + SAM's prompt encoder and mask decoder)."""
    return f"{ENC}.patch_embed.seq.0.c.weight" in state and "mask_decoder.iou_token.weight" in state


def describe(config: Any) -> str:
    """``MobileSAM TinyViT-5M`` for the release, else the stage widths."""
    dims = tuple(config.tiny_vit_config["embed_dims"])
    return f"MobileSAM {RELEASED.get(dims, 'TinyViT ' + '/'.join(map(str, dims)))}"


def infer_tiny_vit(state: Mapping[str, torch.Tensor], image_size: int) -> TinyViTSettings:
    """``TinyViTSettings`` whose encoder has exactly the ``image_encoder.*`` tensors of ``state``."""
    stages = count_indexed(state, f"{ENC}.layers")
    if stages < 2:
        raise InputError("checkpoint", f"{ENC}.layers.0 and .1 (TinyViT stages)", detail=f"found {stages}")
    first = shape(state, f"{ENC}.patch_embed.seq.2.c.weight", "TinyViT patch embedding")[0]
    dims, depths, heads, windows, mlp_ratios = [first], [], [0], [0], set()
    for stage in range(stages):
        depths.append(count_indexed(state, f"{ENC}.layers.{stage}.blocks"))
        if stage == 0:
            continue
        block = f"{ENC}.layers.{stage}.blocks.0"
        biases = shape(state, f"{block}.attn.attention_biases", "TinyViT attention biases")
        window = math.isqrt(biases[1])
        if window * window != biases[1]:
            raise InputError("checkpoint", "a square attention window (w*w offset biases)", biases[1])
        dim = shape(state, f"{block}.attn.proj.weight", "TinyViT attention")[0]
        dims.append(dim)
        heads.append(biases[0])
        windows.append(window)
        mlp_ratios.add(shape(state, f"{block}.mlp.fc1.weight", "TinyViT MLP")[0] / dim)
    if len(mlp_ratios) != 1:
        raise InputError("checkpoint", "one MLP ratio across TinyViT stages", sorted(mlp_ratios))
    merges = stages - 1
    strides, stride = [], PATCH_EMBED_STRIDE
    for _ in range(merges):
        strides.append(2 if stride < OUTPUT_STRIDE else 1)
        stride *= strides[-1]
    if stride != OUTPUT_STRIDE:
        raise InputError("checkpoint", f"a TinyViT with output stride {OUTPUT_STRIDE}", f"stride {stride}")
    expand = shape(state, f"{ENC}.layers.0.blocks.0.conv1.c.weight", "TinyViT MBConv")[0] / first
    return TinyViTSettings(
        image_size=image_size,
        embed_dims=dims,
        depths=depths,
        num_heads=heads,
        window_sizes=windows,
        merge_strides=strides,
        mlp_ratio=mlp_ratios.pop(),
        mbconv_expand_ratio=expand,
        local_conv_size=shape(state, f"{ENC}.layers.1.blocks.0.local_conv.c.weight", "local conv")[-1],
        in_channels=shape(state, f"{ENC}.patch_embed.seq.0.c.weight", "patch embedding")[1],
        out_channels=shape(state, f"{ENC}.neck.0.weight", "encoder neck")[0],
    )


def infer_config(state: Mapping[str, torch.Tensor], overrides: Mapping[str, Any] | None = None) -> Any:
    """The ``MobileSamConfig`` whose ``MobileSamModel`` has exactly the tensors of ``state``."""
    from robosam.models.families.mobilesam import MobileSamConfig

    image_size = int(
        dict((overrides or {}).get("tiny_vit_config") or {}).get("image_size", DEFAULT_IMAGE_SIZE)
    )
    tiny_vit = infer_tiny_vit(state, image_size)
    pos_feats = shape(
        state, "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix", "prompt encoding"
    )[1]
    width = shape(state, "mask_decoder.iou_token.weight", "mask decoder")[1]
    prompt_width = shape(state, "prompt_encoder.not_a_point_embed.weight", "prompt encoder")[1]
    if not (tiny_vit.out_channels == prompt_width == width == 2 * pos_feats):
        raise InputError(
            "checkpoint",
            "one embedding width across encoder neck, prompt encoder and mask decoder",
            f"{tiny_vit.out_channels}, {prompt_width}, {width} and positional features {pos_feats}",
        )
    cross_dim = shape(
        state, "mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight", "decoder"
    )[0]
    config: dict[str, Any] = {
        "tiny_vit_config": tiny_vit.to_dict(),
        "vision_config": {
            "image_size": image_size,
            "patch_size": OUTPUT_STRIDE,
            "output_channels": tiny_vit.out_channels,
            "num_pos_feats": pos_feats,
        },
        "prompt_encoder_config": {
            "hidden_size": prompt_width,
            "image_size": image_size,
            "patch_size": OUTPUT_STRIDE,
            "mask_input_channels": shape(state, "prompt_encoder.mask_downscaling.3.weight", "mask input")[0],
            "num_point_embeddings": count_indexed(state, "prompt_encoder.point_embeddings"),
        },
        "mask_decoder_config": {
            "hidden_size": width,
            "mlp_dim": shape(state, "mask_decoder.transformer.layers.0.mlp.lin1.weight", "decoder MLP")[0],
            "num_hidden_layers": count_indexed(state, "mask_decoder.transformer.layers"),
            "num_attention_heads": convert_sam.DECODER_HEADS,
            "attention_downsample_rate": width // cross_dim,
            "num_multimask_outputs": shape(state, "mask_decoder.mask_tokens.weight", "mask tokens")[0] - 1,
            "iou_head_depth": count_indexed(state, "mask_decoder.iou_prediction_head.layers"),
            "iou_head_hidden_dim": shape(
                state, "mask_decoder.iou_prediction_head.layers.0.weight", "IoU head"
            )[0],
            "layer_norm_eps": convert_sam.DECODER_LAYER_NORM_EPS,
        },
    }
    merge_overrides(config, overrides)
    return MobileSamConfig(**config)


def convert_state(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """MobileSAM keys -> ``MobileSamModel`` keys. Returns (renamed state dict, keys nothing maps)."""
    encoder = {key: value for key, value in state.items() if key.startswith(f"{ENC}.")}
    rest = {key: value for key, value in state.items() if key not in encoder}
    renamed, unmapped = rename(
        encoder,
        [
            rule(rf"{ENC}\.(norm_head|head)\.(weight|bias)", lambda _: []),  # ImageNet classifier, unused
            rule(rf"{ENC}\.((?:patch_embed|layers|neck)\..+)", r"vision_encoder.\1"),
        ],
    )
    decoder, decoder_unmapped = convert_sam.convert_state(rest)
    return {**renamed, **decoder}, unmapped + decoder_unmapped
