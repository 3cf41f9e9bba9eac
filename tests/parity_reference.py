"""Meta's own SAM 1 / SAM 2.1 models at small sizes, random weights, saved in Meta's checkpoint formats.

Built with the reference packages' constructors (``segment_anything.modeling``, ``sam2.modeling``), so the
parity tests compare robosam against code robosam does not share. Every parameter is re-drawn at random
(LayerNorm gains around 1, the rest around 0) so that a swapped or dropped weight cannot hide behind a
constant initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

SAM1_IMAGE_SIZE = 256  # ViT grid 16 x 16, low-res masks 64 x 64
SAM2_IMAGE_SIZE = 256  # Hiera stages at 64, 32, 16, 8; low-res masks 64 x 64

# Fields of the small Hiera trunk that its weights cannot show (see robosam.models.convert_sam2).
SAM2_SMALL_TRUNK = {"heads": 1, "stages": (1, 2, 2, 1), "windows": (8, 4, 4, 2), "global": (4,)}
SAM2_SMALL_OVERRIDES = {
    "image_size": SAM2_IMAGE_SIZE,
    "vision_config": {
        "backbone_config": {
            "num_attention_heads_per_stage": [1, 2, 4, 8],
            "window_size_per_stage": list(SAM2_SMALL_TRUNK["windows"]),
            "global_attention_blocks": list(SAM2_SMALL_TRUNK["global"]),
        }
    },
}


def randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Redraw every parameter and persistent buffer: norms' gains ~ 1 +- 0.1, everything else ~ N(0, s)
    with s = 1 / sqrt(fan_in) for matrices (keeps activations in range) and 0.05 for vectors."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if tensor.dim() == 1 and name.endswith("weight"):
                tensor.copy_(1 + 0.1 * noise)
            elif tensor.dim() >= 2 and "positional_encoding_gaussian_matrix" not in name:
                fan_in = tensor[0].numel() if tensor.dim() > 1 else 1
                tensor.copy_(noise / max(fan_in, 1) ** 0.5)
            else:
                tensor.copy_(noise * (1.0 if "gaussian" in name else 0.05))
    return model.eval()


def build_sam1(
    *,
    image_size: int = SAM1_IMAGE_SIZE,
    width: int = 64,
    depth: int = 2,
    heads: int = 2,
    window: int = 4,
    global_blocks: tuple[int, ...] = (1,),
    prompt_dim: int = 32,
    seed: int = 0,
) -> torch.nn.Module:
    """A ``segment_anything.modeling.Sam`` with a small ViT (same classes as ``build_sam_vit_b``)."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    grid = image_size // 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=image_size,
            patch_size=16,
            embed_dim=width,
            depth=depth,
            num_heads=heads,
            mlp_ratio=4,
            out_chans=prompt_dim,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=window,
            global_attn_indexes=global_blocks,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=64, num_heads=8),
            transformer_dim=prompt_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=32,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return randomize(sam, seed)


def build_sam2(*, image_size: int = SAM2_IMAGE_SIZE, width: int = 16, hidden: int = 32, seed: int = 0):
    """A ``sam2.modeling.sam2_base.SAM2Base`` with a small Hiera trunk and the SAM 2.1 settings of
    ``sam2.1_hiera_t.yaml`` (built directly instead of through hydra)."""
    from sam2.modeling.backbones.hieradet import Hiera
    from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
    from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
    from sam2.modeling.memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
    from sam2.modeling.position_encoding import PositionEmbeddingSine
    from sam2.modeling.sam.transformer import RoPEAttention
    from sam2.modeling.sam2_base import SAM2Base

    memory_dim = 64  # transformers' Sam2VideoModel fixes the memory width at 64, as every release has it
    grid = image_size // 16
    trunk = Hiera(
        embed_dim=width,
        num_heads=SAM2_SMALL_TRUNK["heads"],
        stages=SAM2_SMALL_TRUNK["stages"],
        global_att_blocks=SAM2_SMALL_TRUNK["global"],
        window_spec=SAM2_SMALL_TRUNK["windows"],
        window_pos_embed_bkg_spatial_size=(7, 7),
    )
    neck = FpnNeck(
        position_encoding=PositionEmbeddingSine(num_pos_feats=hidden, image_size=image_size),
        d_model=hidden,
        backbone_channel_list=[width * 8, width * 4, width * 2, width],
        fpn_top_down_levels=[2, 3],
        fpn_interp_model="nearest",
    )

    def rope(**extra) -> RoPEAttention:
        return RoPEAttention(
            rope_theta=10000.0,
            feat_sizes=[grid, grid],
            embedding_dim=hidden,
            num_heads=1,
            downsample_rate=1,
            dropout=0.1,
            **extra,
        )

    memory_attention = MemoryAttention(
        d_model=hidden,
        pos_enc_at_input=True,
        layer=MemoryAttentionLayer(
            activation="relu",
            dim_feedforward=64,
            dropout=0.1,
            pos_enc_at_attn=False,
            self_attention=rope(),
            d_model=hidden,
            pos_enc_at_cross_attn_keys=True,
            pos_enc_at_cross_attn_queries=False,
            cross_attention=rope(rope_k_repeat=True, kv_in_dim=memory_dim),
        ),
        num_layers=2,
    )
    memory_encoder = MemoryEncoder(
        out_dim=memory_dim,
        position_encoding=PositionEmbeddingSine(num_pos_feats=memory_dim, image_size=image_size),
        mask_downsampler=MaskDownSampler(embed_dim=hidden, kernel_size=3, stride=2, padding=1),
        fuser=Fuser(CXBlock(dim=hidden, kernel_size=7, padding=3, layer_scale_init_value=1e-6), num_layers=2),
        in_dim=hidden,
    )
    model = SAM2Base(
        image_encoder=ImageEncoder(trunk=trunk, neck=neck, scalp=1),
        memory_attention=memory_attention,
        memory_encoder=memory_encoder,
        num_maskmem=7,
        image_size=image_size,
        sigmoid_scale_for_mem_enc=20.0,
        sigmoid_bias_for_mem_enc=-10.0,
        use_mask_input_as_output_without_sam=True,
        directly_add_no_mem_embed=True,
        no_obj_embed_spatial=True,
        use_high_res_features_in_sam=True,
        multimask_output_in_sam=True,
        iou_prediction_use_sigmoid=True,
        use_obj_ptrs_in_encoder=True,
        add_tpos_enc_to_obj_ptrs=True,
        proj_tpos_enc_in_obj_ptrs=True,
        use_signed_tpos_enc_to_obj_ptrs=True,
        only_obj_ptrs_in_the_past_for_eval=True,
        pred_obj_scores=True,
        pred_obj_scores_mlp=True,
        fixed_no_obj_ptr=True,
        multimask_output_for_tracking=True,
        use_multimask_token_for_obj_ptr=True,
        multimask_min_pt_num=0,
        multimask_max_pt_num=1,
        use_mlp_for_obj_ptr_proj=True,
        # what build_sam2(apply_postprocessing=True) adds for inference
        sam_mask_decoder_extra_args={
            "dynamic_multimask_via_stability": True,
            "dynamic_multimask_stability_delta": 0.05,
            "dynamic_multimask_stability_thresh": 0.98,
        },
    )
    return randomize(model, seed)


def save_sam1(model: torch.nn.Module, path: Path) -> Path:
    """The SAM 1 release format: a bare state dict."""
    torch.save(model.state_dict(), path)
    return path


def save_sam2(model: torch.nn.Module, path: Path) -> Path:
    """The SAM 2 release format: ``{"model": state_dict}``."""
    torch.save({"model": model.state_dict()}, path)
    return path


# --- predictor-level comparison -------------------------------------------------------------------------

# Prompts on truck.jpg (1800 x 1200), the image of Meta's notebooks: its reference click and box, plus a
# negative click and a second positive one.
POINTS = np.array([[500.0, 375.0], [1100.0, 600.0], [300.0, 700.0]])
LABELS = np.array([1, 0, 1])
BOX = np.array([75.0, 275.0, 1725.0, 850.0])
CASES: dict[str, dict[str, Any]] = {
    "one point": {"points": 1},
    "points with a negative": {"points": 3},
    "box": {"box": True},
    "box and points": {"points": 3, "box": True},
    "mask input": {"points": 1, "mask": True},
}


@dataclass
class Agreement:
    """Meta's predictor vs robosam's ``Segmenter`` for one prompt: worst mask IoU over the returned masks,
    largest |score difference| and |low-res logit difference|."""

    min_iou: float
    max_score_diff: float
    max_logit_diff: float
    num_masks: int
    logit_scale: float  # mean |low-res logit| of the reference, for scale


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def compare(reference: Any, segmenter: Any, case: str, multimask: bool) -> Agreement:
    """Run one case through Meta's ``SamPredictor`` / ``SAM2ImagePredictor`` (image already set) and
    robosam's ``Segmenter`` (same image set). The mask-input case feeds both the same logits: Meta's best
    low-res mask for the first click."""
    spec = CASES[case]
    count = spec.get("points", 0)
    mask_input = None
    if spec.get("mask"):
        _, scores, logits = reference.predict(point_coords=POINTS[:1], point_labels=LABELS[:1])
        mask_input = logits[int(np.argmax(scores))][None]
    masks, scores, logits = reference.predict(
        point_coords=POINTS[:count] if count else None,
        point_labels=LABELS[:count] if count else None,
        box=BOX if spec.get("box") else None,
        mask_input=mask_input,
        multimask_output=multimask,
    )
    result = segmenter.predict(
        points=POINTS[:count] if count else None,
        labels=LABELS[:count] if count else None,
        box=BOX if spec.get("box") else None,
        mask_input=mask_input,
        multimask=multimask,
    )
    assert result.masks.shape == masks.shape, (result.masks.shape, masks.shape)
    return Agreement(
        min_iou=min(mask_iou(np.asarray(a, bool), b) for a, b in zip(masks, result.masks)),
        max_score_diff=float(np.abs(np.asarray(scores) - result.scores).max()),
        max_logit_diff=float(np.abs(np.asarray(logits) - result.logits).max()),
        num_masks=len(masks),
        logit_scale=float(np.abs(np.asarray(logits)).mean()),
    )


def reference_pixels(reference: Any, image: np.ndarray) -> torch.Tensor:
    """The normalised (1, 3, S, S) tensor Meta's predictor feeds its image encoder for ``image``."""
    if hasattr(reference, "_transforms"):  # SAM2ImagePredictor
        return reference._transforms(image)[None]
    resized = reference.transform.apply_image(image)  # SamPredictor
    return reference.model.preprocess(torch.as_tensor(resized).permute(2, 0, 1)[None].float())


def feed_pixels(segmenter: Any, pixels: torch.Tensor) -> Any:
    """Make ``segmenter`` encode ``pixels`` instead of preprocessing the image itself (a test seam to
    separate preprocessing differences from everything after it). Returns the segmenter."""
    segmenter.adapter.preprocess = lambda images: pixels
    return segmenter


def sam2_reference_predictor(model: torch.nn.Module) -> Any:
    """``SAM2ImagePredictor`` for a model of any input size (its feature sizes are written for 1024)."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    predictor = SAM2ImagePredictor(model)
    side = model.image_size // 4
    predictor._bb_feat_sizes = [(side, side), (side // 2, side // 2), (side // 4, side // 4)]
    return predictor


def agreement_table(reference: Any, segmenter: Any) -> dict[tuple[str, bool], Agreement]:
    """``compare`` for every case, multimask on and off."""
    return {
        (case, multimask): compare(reference, segmenter, case, multimask)
        for case in CASES
        for multimask in (True, False)
    }


def build_release_sam1(name: str = "vit_b", seed: int = 0) -> torch.nn.Module:
    """A released SAM 1 architecture (``vit_b``, ``vit_l``, ``vit_h``) from Meta's registry, random weights."""
    from segment_anything import sam_model_registry

    return randomize(sam_model_registry[name](), seed)


def build_release_sam2(config: str = "configs/sam2.1/sam2.1_hiera_t.yaml", seed: int = 0) -> torch.nn.Module:
    """A released SAM 2 / 2.1 architecture from Meta's hydra config (as ``build_sam2``), random weights."""
    from sam2.build_sam import build_sam2 as meta_build_sam2

    return randomize(meta_build_sam2(config, ckpt_path=None, device="cpu"), seed)
