"""SAM 2 / SAM 2.1 (``sam2``) state dict -> transformers ``Sam2Config`` / ``Sam2VideoConfig`` + state dict.

Read from shapes: Hiera width per stage and blocks per stage (stages change where a block has ``proj``, the
width doubling), patch kernel, the windowed position embedding sizes, FPN channels, decoder width and
depths, memory encoder / memory attention sizes. Not stored in the weights at all: the Hiera attention heads,
window sizes and global-attention blocks, and the input size (1024 in every release). For the four released
trunks (tiny, small, base-plus, large) they come from Meta's configs; any other trunk needs
``overrides={"vision_config": {"backbone_config": {"num_attention_heads_per_stage": [...],
"window_size_per_stage": [...], "global_attention_blocks": [...]}}, "image_size": 512}`` (``image_size`` is
optional and sets the encoder, prompt encoder and feature sizes together).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import torch
from transformers import PretrainedConfig, Sam2Config

from robosam.errors import InputError
from robosam.models.convert_common import (
    count_indexed,
    last_index,
    mask_decoder_tail_rules,
    merge_overrides,
    mlp_renamer,
    prompt_encoder_rules,
    rename,
    rule,
    shape,
)

DEFAULT_IMAGE_SIZE = 1024
DECODER_HEADS = 8  # TwoWayTransformer(num_heads=8) in SAM2Base._build_sam_heads
VIDEO_MEMORY_DIM = 64  # Sam2VideoModel's memory cross-attention takes 64-channel keys / values, fixed
MEMORY_ATTENTION_HEADS = 1  # RoPEAttention(num_heads=1) in every released config


# Released trunks by (first-stage width, blocks per stage): name, heads per stage, windows, global blocks.
RELEASED: dict[tuple[int, tuple[int, ...]], dict[str, Any]] = {
    (96, (1, 2, 7, 2)): {
        "name": "Hiera-T",
        "heads": [1, 2, 4, 8],
        "windows": [8, 4, 14, 7],
        "global": [5, 7, 9],
    },
    (96, (1, 2, 11, 2)): {
        "name": "Hiera-S",
        "heads": [1, 2, 4, 8],
        "windows": [8, 4, 14, 7],
        "global": [7, 10, 13],
    },
    (112, (2, 3, 16, 3)): {
        "name": "Hiera-B+",
        "heads": [2, 4, 8, 16],
        "windows": [8, 4, 14, 7],
        "global": [12, 16, 20],
    },
    (144, (2, 6, 36, 4)): {
        "name": "Hiera-L",
        "heads": [2, 4, 8, 16],
        "windows": [8, 4, 16, 8],
        "global": [23, 33, 43],
    },
}
UNSTORED_TRUNK_FIELDS = ("num_attention_heads_per_stage", "window_size_per_stage", "global_attention_blocks")

# Modules of SAM2Base that only the video predictor uses (left out of the image model, mapped for video).
VIDEO_ONLY = re.compile(
    r"(memory_attention|memory_encoder|obj_ptr_proj|obj_ptr_tpos_proj|mask_downsample)\..+"
    r"|maskmem_tpos_enc|no_mem_pos_enc|no_obj_ptr|no_obj_embed_spatial"
)


def is_sam2(state: Mapping[str, Any]) -> bool:
    """A ``sam2`` ``SAM2Base`` state dict (Hiera trunk + SAM heads)."""
    return (
        "image_encoder.trunk.patch_embed.proj.weight" in state
        and "sam_mask_decoder.iou_token.weight" in state
    )


def describe(config: PretrainedConfig) -> str:
    """``SAM 2 Hiera-T`` for a released trunk, else the trunk's stage widths and depths."""
    backbone = config.vision_config.backbone_config
    key = (backbone.embed_dim_per_stage[0], tuple(backbone.blocks_per_stage))
    prefix = "SAM 2 video" if config.model_type == "sam2_video" else "SAM 2"
    if key in RELEASED:
        return f"{prefix} {RELEASED[key]['name']}"
    return f"{prefix} Hiera (widths {backbone.embed_dim_per_stage}, blocks {backbone.blocks_per_stage})"


def infer_config(
    state: Mapping[str, torch.Tensor], overrides: Mapping[str, Any] | None = None, *, video: bool = False
) -> PretrainedConfig:
    """``Sam2Config`` (or ``Sam2VideoConfig`` with ``video``) whose model has the tensors of ``state``."""
    overrides = copy.deepcopy(dict(overrides or {}))
    image_size = int(overrides.pop("image_size", DEFAULT_IMAGE_SIZE))
    trunk = _trunk_config(state, overrides, image_size)
    stride = 4 * 2 ** (len(trunk["blocks_per_stage"]) - 2)  # patch stride 4, halved per pooled stage, scalp 1
    channels, fpn_width = _neck(state, trunk)
    sides = [image_size // 4, image_size // 8, image_size // 16]
    width = shape(state, "sam_mask_decoder.iou_token.weight", "mask decoder")[1]
    if width != fpn_width:
        raise InputError(
            "checkpoint", "mask decoder width equal to the FPN width", f"{width} and {fpn_width}"
        )
    for key, what in (
        ("sam_mask_decoder.conv_s0.weight", "high-resolution features in the decoder"),
        ("sam_mask_decoder.obj_score_token.weight", "object score prediction"),
    ):
        shape(state, key, what + ", which transformers' SAM 2 always uses")
    cross = shape(
        state, "sam_mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight", "decoder"
    )
    config: dict[str, Any] = {
        "vision_config": {
            "backbone_config": trunk,
            "backbone_channel_list": channels,
            "backbone_feature_sizes": [[side, side] for side in sides],
            "fpn_hidden_size": fpn_width,
            "fpn_kernel_size": shape(state, "image_encoder.neck.convs.0.conv.weight", "FPN")[-1],
            "num_feature_levels": 3,
        },
        "prompt_encoder_config": {
            "hidden_size": shape(state, "sam_prompt_encoder.not_a_point_embed.weight", "prompt encoder")[1],
            "image_size": image_size,
            "patch_size": stride,
            "mask_input_channels": shape(
                state, "sam_prompt_encoder.mask_downscaling.3.weight", "mask encoder"
            )[0],
            "num_point_embeddings": count_indexed(state, "sam_prompt_encoder.point_embeddings"),
        },
        "mask_decoder_config": {
            "hidden_size": width,
            "mlp_dim": shape(
                state, "sam_mask_decoder.transformer.layers.0.mlp.layers.0.weight", "decoder MLP"
            )[0],
            "num_hidden_layers": count_indexed(state, "sam_mask_decoder.transformer.layers"),
            "num_attention_heads": DECODER_HEADS,
            "attention_downsample_rate": width // cross[0],
            "num_multimask_outputs": shape(state, "sam_mask_decoder.mask_tokens.weight", "mask tokens")[0]
            - 1,
            "iou_head_depth": count_indexed(state, "sam_mask_decoder.iou_prediction_head.layers"),
            "iou_head_hidden_dim": shape(
                state, "sam_mask_decoder.iou_prediction_head.layers.0.weight", "IoU head"
            )[0],
            # build_sam2(apply_postprocessing=True), the official inference path, turns this on
            "dynamic_multimask_via_stability": True,
            "dynamic_multimask_stability_delta": 0.05,
            "dynamic_multimask_stability_thresh": 0.98,
        },
    }
    if not video:
        merge_overrides(config, overrides)
        return Sam2Config(**config)
    from transformers import Sam2VideoConfig

    config.update(_video_fields(state, image_size, stride))
    merge_overrides(config, overrides)
    return Sam2VideoConfig(**config)


def _trunk_config(
    state: Mapping[str, torch.Tensor], overrides: dict[str, Any], image_size: int
) -> dict[str, Any]:
    """Hiera fields: stages from the widths, unstored fields from the release table or ``overrides``."""
    prefix = "image_encoder.trunk"
    embed, channels, kernel, _ = shape(state, f"{prefix}.patch_embed.proj.weight", "Hiera patch embedding")
    depth = count_indexed(state, f"{prefix}.blocks")
    blocks_per_stage, widths = [], []
    for block in range(depth):
        width = shape(state, f"{prefix}.blocks.{block}.norm2.weight", "Hiera block")[0]
        if block == 0 or f"{prefix}.blocks.{block}.proj.weight" in state:
            blocks_per_stage.append(0)
            widths.append(width)
        blocks_per_stage[-1] += 1
    background = list(shape(state, f"{prefix}.pos_embed", "Hiera position embedding")[2:])
    first_window = shape(state, f"{prefix}.pos_embed_window", "Hiera window position embedding")[-1]
    given = dict(overrides.get("vision_config", {}).get("backbone_config", {}))
    release = RELEASED.get((embed, tuple(blocks_per_stage)))
    if release is not None:
        known = {
            "num_attention_heads_per_stage": release["heads"],
            "window_size_per_stage": release["windows"],
            "global_attention_blocks": release["global"],
        }
    else:
        known = {}
        absent = [name for name in UNSTORED_TRUNK_FIELDS if name not in given]
        if absent:
            raise InputError(
                "overrides",
                f"vision_config.backbone_config values for {', '.join(absent)}",
                detail=f"the Hiera trunk (widths {widths}, blocks {blocks_per_stage}) is not a released size "
                "and its weights do not store heads, windows or global-attention blocks",
            )
    trunk = {
        "model_type": "sam2_hiera_det_model",
        "hidden_size": embed,
        "num_channels": channels,
        "image_size": [image_size, image_size],
        "patch_kernel_size": [kernel, kernel],
        "patch_stride": [4, 4],
        "patch_padding": [(kernel - 1) // 2, (kernel - 1) // 2],
        "query_stride": [2, 2],
        "window_positional_embedding_background_size": background,
        "num_query_pool_stages": min(3, len(blocks_per_stage) - 1),
        "blocks_per_stage": blocks_per_stage,
        "embed_dim_per_stage": widths,
        "mlp_ratio": shape(state, f"{prefix}.blocks.0.mlp.layers.0.weight", "Hiera MLP")[0] / embed,
        **known,
    }
    trunk.update(given)
    trunk["num_attention_heads"] = trunk["num_attention_heads_per_stage"][0]
    if trunk["window_size_per_stage"][0] != first_window:
        raise InputError(
            "checkpoint",
            f"a first-stage window of {trunk['window_size_per_stage'][0]} (pos_embed_window side)",
            first_window,
        )
    return trunk


def _neck(state: Mapping[str, torch.Tensor], trunk: Mapping[str, Any]) -> tuple[list[int], int]:
    """FPN input channels (deepest stage first) and FPN width; they must mirror the trunk's stage widths."""
    levels = count_indexed(state, "image_encoder.neck.convs")
    convs = [
        shape(state, f"image_encoder.neck.convs.{i}.conv.weight", "FPN lateral conv") for i in range(levels)
    ]
    channels = [conv[1] for conv in convs]
    if channels != list(reversed(trunk["embed_dim_per_stage"])):
        raise InputError(
            "checkpoint",
            f"FPN inputs {list(reversed(trunk['embed_dim_per_stage']))} (the Hiera widths)",
            channels,
        )
    return channels, convs[0][0]


def _video_fields(state: Mapping[str, torch.Tensor], image_size: int, stride: int) -> dict[str, Any]:
    """Sam2VideoConfig's memory fields from the memory encoder / attention tensors."""
    memory_dim = shape(state, "memory_encoder.out_proj.weight", "memory encoder output")[0]
    if memory_dim != VIDEO_MEMORY_DIM:
        raise InputError(
            "checkpoint",
            f"a memory width of {VIDEO_MEMORY_DIM} (transformers' Sam2VideoModel fixes it, as every release has it)",
            memory_dim,
        )
    attention_dim = shape(state, "memory_attention.norm.weight", "memory attention")[0]
    downsampler = last_index(state, "memory_encoder.mask_downsampler.encoder") + 1
    strided = (downsampler - 1) // 3  # conv, norm, activation per stride-2 layer, then a final 1x1 conv
    return {
        "num_maskmem": shape(state, "maskmem_tpos_enc", "memory temporal encoding")[0],
        "image_size": image_size,
        "enable_occlusion_spatial_embedding": "no_obj_embed_spatial" in state,
        "enable_temporal_pos_encoding_for_object_pointers": "obj_ptr_tpos_proj.weight" in state,
        "memory_attention_hidden_size": attention_dim,
        "memory_attention_num_layers": count_indexed(state, "memory_attention.layers"),
        "memory_attention_num_attention_heads": MEMORY_ATTENTION_HEADS,
        "memory_attention_downsample_rate": attention_dim
        // shape(state, "memory_attention.layers.0.self_attn.q_proj.weight", "memory attention")[0],
        "memory_attention_feed_forward_hidden_size": shape(
            state, "memory_attention.layers.0.linear1.weight", "memory attention MLP"
        )[0],
        "memory_attention_rope_feat_sizes": [image_size // stride, image_size // stride],
        "memory_encoder_hidden_size": shape(state, "memory_encoder.pix_feat_proj.weight", "memory encoder")[
            0
        ],
        "memory_encoder_output_channels": memory_dim,
        "mask_downsampler_embed_dim": shape(
            state, f"memory_encoder.mask_downsampler.encoder.{downsampler - 1}.weight", "mask downsampler"
        )[0],
        "mask_downsampler_kernel_size": shape(
            state, "memory_encoder.mask_downsampler.encoder.0.weight", "mask downsampler"
        )[-1],
        "mask_downsampler_total_stride": 2**strided,
        "memory_fuser_num_layers": count_indexed(state, "memory_encoder.fuser.layers"),
        "memory_fuser_embed_dim": shape(state, "memory_encoder.fuser.layers.0.dwconv.weight", "memory fuser")[
            0
        ],
        "memory_fuser_intermediate_dim": shape(
            state, "memory_encoder.fuser.layers.0.pwconv1.weight", "memory fuser"
        )[0],
        "memory_fuser_kernel_size": shape(
            state, "memory_encoder.fuser.layers.0.dwconv.weight", "memory fuser"
        )[-1],
        "memory_fuser_padding": shape(state, "memory_encoder.fuser.layers.0.dwconv.weight", "memory fuser")[
            -1
        ]
        // 2,
    }


def convert_state(
    state: Mapping[str, torch.Tensor], *, video: bool = False
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Meta SAM 2 keys -> ``Sam2Model`` (or ``Sam2VideoModel``) keys. Returns (renamed, keys nothing maps).

    For the image model the video-only modules (memory attention and encoder, object pointers, temporal
    encodings) are set aside on purpose: ``Sam2Model`` has no place for them.
    """
    weights = {key: value for key, value in state.items() if video or not VIDEO_ONLY.fullmatch(key)}
    point_keys = [
        f"sam_prompt_encoder.point_embeddings.{i}.weight"
        for i in range(count_indexed(weights, "sam_prompt_encoder.point_embeddings"))
    ]
    # Sam2 keeps the point-type embeddings as one (N, C) table instead of N (1, C) embeddings
    stacked = torch.cat([weights.pop(key) for key in point_keys], dim=0) if point_keys else None
    renamed, unmapped = rename(weights, _rules(weights, video))
    if stacked is not None:
        renamed["prompt_encoder.point_embed.weight"] = stacked
    return renamed, unmapped


def _rules(weights: Mapping[str, torch.Tensor], video: bool) -> list:
    trunk, dec = r"image_encoder\.trunk", r"sam_mask_decoder"
    rules = [
        rule(rf"{trunk}\.(pos_embed|pos_embed_window)", r"vision_encoder.backbone.\1"),
        rule(
            rf"{trunk}\.patch_embed\.proj\.(weight|bias)",
            r"vision_encoder.backbone.patch_embed.projection.\1",
        ),
        rule(
            rf"{trunk}\.blocks\.(\d+)\.norm(1|2)\.(weight|bias)",
            r"vision_encoder.backbone.blocks.\1.layer_norm\2.\3",
        ),
        rule(
            rf"{trunk}\.blocks\.(\d+)\.attn\.(qkv|proj)\.(weight|bias)",
            r"vision_encoder.backbone.blocks.\1.attn.\2.\3",
        ),
        rule(rf"{trunk}\.blocks\.(\d+)\.proj\.(weight|bias)", r"vision_encoder.backbone.blocks.\1.proj.\2"),
        mlp_renamer(weights, rf"{trunk}\.blocks\.(\d+)\.mlp", r"vision_encoder.backbone.blocks.\1.mlp"),
        rule(r"image_encoder\.neck\.convs\.(\d+)\.conv\.(weight|bias)", r"vision_encoder.neck.convs.\1.\2"),
        rule(r"no_mem_embed", r"no_memory_embedding"),
        *prompt_encoder_rules("sam_prompt_encoder"),
        rule(
            rf"{dec}\.transformer\.(layers\.\d+\.|)"
            r"(self_attn|cross_attn_token_to_image|cross_attn_image_to_token|final_attn_token_to_image)"
            r"\.(q|k|v)_proj\.(weight|bias)",
            r"mask_decoder.transformer.\1\2.\3_proj.\4",
        ),
        rule(
            rf"{dec}\.transformer\.(layers\.\d+\.|)"
            r"(self_attn|cross_attn_token_to_image|cross_attn_image_to_token|final_attn_token_to_image)"
            r"\.out_proj\.(weight|bias)",
            r"mask_decoder.transformer.\1\2.o_proj.\3",
        ),
        mlp_renamer(
            weights, rf"{dec}\.transformer\.layers\.(\d+)\.mlp", r"mask_decoder.transformer.layers.\1.mlp"
        ),
        rule(rf"{dec}\.(iou_token|mask_tokens|obj_score_token)\.weight", r"mask_decoder.\1.weight"),
        rule(rf"{dec}\.(conv_s0|conv_s1)\.(weight|bias)", r"mask_decoder.\1.\2"),
        mlp_renamer(weights, rf"{dec}\.pred_obj_score_head", r"mask_decoder.pred_obj_score_head"),
        *mask_decoder_tail_rules(weights, dec),
    ]
    return rules + (_video_rules(weights) if video else [])


def _video_rules(weights: Mapping[str, torch.Tensor]) -> list:
    attention, encoder = r"memory_attention", r"memory_encoder"
    downsampler_last = last_index(weights, "memory_encoder.mask_downsampler.encoder")

    def downsampler(match: re.Match[str]) -> str:
        index, kind = int(match.group(1)), match.group(2)
        base = "memory_encoder.mask_downsampler"
        if index == downsampler_last:
            return f"{base}.final_conv.{kind}"
        part = {0: "conv", 1: "layer_norm"}.get(index % 3)
        # an index 3k+2 is the parameter-free activation; a key there is not Meta's layout: leave it unmapped
        return f"{base}.layers.{index // 3}.{part}.{kind}" if part else match.group(0)

    return [
        rule(
            rf"{attention}\.layers\.(\d+)\.(self_attn|cross_attn_image)\.(q|k|v)_proj\.(weight|bias)",
            r"memory_attention.layers.\1.\2.\3_proj.\4",
        ),
        rule(
            rf"{attention}\.layers\.(\d+)\.(self_attn|cross_attn_image)\.out_proj\.(weight|bias)",
            r"memory_attention.layers.\1.\2.o_proj.\3",
        ),
        rule(
            rf"{attention}\.layers\.(\d+)\.linear(1|2)\.(weight|bias)",
            r"memory_attention.layers.\1.linear\2.\3",
        ),
        rule(
            rf"{attention}\.layers\.(\d+)\.norm(\d)\.(weight|bias)",
            r"memory_attention.layers.\1.layer_norm\2.\3",
        ),
        rule(rf"{attention}\.norm\.(weight|bias)", r"memory_attention.layer_norm.\1"),
        rule(rf"{encoder}\.mask_downsampler\.encoder\.(\d+)\.(weight|bias)", downsampler),
        rule(rf"{encoder}\.pix_feat_proj\.(weight|bias)", r"memory_encoder.feature_projection.\1"),
        rule(rf"{encoder}\.fuser\.layers\.(\d+)\.gamma", r"memory_encoder.memory_fuser.layers.\1.scale"),
        rule(
            rf"{encoder}\.fuser\.layers\.(\d+)\.dwconv\.(weight|bias)",
            r"memory_encoder.memory_fuser.layers.\1.depthwise_conv.\2",
        ),
        rule(
            rf"{encoder}\.fuser\.layers\.(\d+)\.norm\.(weight|bias)",
            r"memory_encoder.memory_fuser.layers.\1.layer_norm.\2",
        ),
        rule(
            rf"{encoder}\.fuser\.layers\.(\d+)\.pwconv(1|2)\.(weight|bias)",
            r"memory_encoder.memory_fuser.layers.\1.pointwise_conv\2.\3",
        ),
        rule(rf"{encoder}\.out_proj\.(weight|bias)", r"memory_encoder.projection.\1"),
        rule(r"maskmem_tpos_enc", r"memory_temporal_positional_encoding"),
        rule(r"no_mem_pos_enc", r"no_memory_positional_encoding"),
        rule(r"no_obj_ptr", r"no_object_pointer"),
        rule(r"no_obj_embed_spatial", r"occlusion_spatial_embedding_parameter"),
        mlp_renamer(weights, r"obj_ptr_proj", r"object_pointer_proj"),
        rule(r"obj_ptr_tpos_proj\.(weight|bias)", r"temporal_positional_encoding_projection_layer.\1"),
        rule(r"mask_downsample\.(weight|bias)", r"mask_downsample.\1"),
    ]
