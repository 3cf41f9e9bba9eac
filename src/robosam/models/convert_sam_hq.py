"""SAM-HQ (``sam_hq_vit_b.pth`` ... ``_h``, package ``segment_anything_hq``) state dict -> ``SamHQConfig`` +
``SamHQModel`` state dict.

A SAM-HQ file is a SAM 1 file plus the HQ parts of the mask decoder: the HQ output token (``hf_token``) and its
MLP (``hf_mlp``), and three small conv stacks that fuse the encoder's first global-attention features with the
image embedding (``compress_vit_feat``, ``embedding_encoder``, ``embedding_maskfeature``). The SAM 1 part goes
through ``convert_sam`` (same rename rules, same shape inference); the HQ part is renamed here; ``vit_dim``
(encoder width the HQ fusion reads) comes from ``compress_vit_feat.0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import SamHQConfig

from robosam.models import convert_sam
from robosam.models.convert_common import merge_overrides, mlp_renamer, rename, rule, shape

HQ_PREFIXES = tuple(
    f"mask_decoder.{name}."
    for name in ("hf_token", "hf_mlp", "compress_vit_feat", "embedding_encoder", "embedding_maskfeature")
)
# index in Meta's nn.Sequential -> transformers' attribute suffix (index 2 is the parameter-free GELU)
SEQUENTIAL = {0: "conv1", 1: "norm", 3: "conv2"}
STACKS = {
    "compress_vit_feat": "compress_vit",
    "embedding_encoder": "encoder",
    "embedding_maskfeature": "mask",
}


def is_sam_hq(state: Mapping[str, Any]) -> bool:
    """A ``segment_anything_hq`` ViT ``Sam`` state dict (SAM 1 keys plus ``mask_decoder.hf_token``)."""
    return convert_sam.is_sam1(state) and "mask_decoder.hf_token.weight" in state


def describe(config: SamHQConfig) -> str:
    """``SAM-HQ ViT-B`` for a released size, else widths."""
    return convert_sam.describe(config).replace("SAM ", "SAM-HQ ", 1)


def _split(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    hq = {key: value for key, value in state.items() if key.startswith(HQ_PREFIXES)}
    return {key: value for key, value in state.items() if key not in hq}, hq


def infer_config(
    state: Mapping[str, torch.Tensor], overrides: Mapping[str, Any] | None = None
) -> SamHQConfig:
    """The ``SamHQConfig`` whose ``SamHQModel`` has exactly the tensors of ``state`` (SAM 1's inference plus
    ``vit_dim``)."""
    sam_part, _ = _split(state)
    base = convert_sam.infer_config(sam_part).to_dict()
    config = {
        name: {
            key: value
            for key, value in base[name].items()
            if key not in ("model_type", "transformers_version")
        }
        for name in ("vision_config", "prompt_encoder_config", "mask_decoder_config")
    }
    # ConvTranspose2d weights are (in, out, k, k): the input width is the ViT's
    config["mask_decoder_config"]["vit_dim"] = shape(
        state, "mask_decoder.compress_vit_feat.0.weight", "HQ feature fusion"
    )[0]
    merge_overrides(config, overrides)
    return SamHQConfig(**config)


def convert_state(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """SAM-HQ keys -> ``SamHQModel`` keys. Returns (renamed state dict, keys nothing maps)."""
    sam_part, hq = _split(state)
    renamed, unmapped = convert_sam.convert_state(sam_part)
    dec = r"mask_decoder"
    rules = [
        rule(rf"{dec}\.hf_token\.weight", r"mask_decoder.hq_token.weight"),
        mlp_renamer(hq, rf"{dec}\.hf_mlp", r"mask_decoder.hq_mask_mlp"),
        *(
            rule(rf"{dec}\.{source}\.{index}\.(weight|bias)", rf"mask_decoder.{target}_{suffix}.\1")
            for source, target in STACKS.items()
            for index, suffix in SEQUENTIAL.items()
        ),
    ]
    hq_renamed, hq_unmapped = rename(hq, rules)
    return {**renamed, **hq_renamed}, unmapped + hq_unmapped
