"""Named presets for the SAM family: which hub repository, which model family, what size."""

from __future__ import annotations

from dataclasses import dataclass

from robosam.errors import InputError


@dataclass(frozen=True)
class Preset:
    """One named model.

    name: robosam's short name (``sam2.1-hiera-tiny``).
    hub_id: Hugging Face repository holding transformers weights.
    family: adapter key in ``robosam.models.families`` (``sam``, ``sam_hq``, ``sam2``, ``sam3_tracker``, ``edgetam``).
    input_size: side of the square the image encoder sees, in pixels.
    params_m: parameters of the transformers image model in millions (video memory modules not counted;
        SlimSAM as published by its authors).
    checkpoint: file name of Meta's official checkpoint in the same hub repository, converted on load
        when the repository holds no transformers weights.
    """

    name: str
    hub_id: str
    family: str
    input_size: int
    params_m: float
    note: str = ""
    checkpoint: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("sam-vit-base", "facebook/sam-vit-base", "sam", 1024, 93.7, "SAM 1, ViT-B"),
        Preset("sam-vit-large", "facebook/sam-vit-large", "sam", 1024, 312.3, "SAM 1, ViT-L"),
        Preset("sam-vit-huge", "facebook/sam-vit-huge", "sam", 1024, 641.1, "SAM 1, ViT-H"),
        Preset("sam-hq-vit-base", "syscv-community/sam-hq-vit-base", "sam_hq", 1024, 94.8, "SAM-HQ, ViT-B"),
        Preset(
            "sam-hq-vit-large", "syscv-community/sam-hq-vit-large", "sam_hq", 1024, 313.7, "SAM-HQ, ViT-L"
        ),
        Preset("sam-hq-vit-huge", "syscv-community/sam-hq-vit-huge", "sam_hq", 1024, 642.7, "SAM-HQ, ViT-H"),
        Preset("slimsam-50", "nielsr/slimsam-50-uniform", "sam", 1024, 26.1, "SlimSAM, 50% pruned ViT-B"),
        Preset("slimsam-77", "nielsr/slimsam-77-uniform", "sam", 1024, 9.3, "SlimSAM, 77% pruned ViT-B"),
        Preset(
            "sam2-hiera-tiny",
            "facebook/sam2-hiera-tiny",
            "sam2",
            1024,
            31.4,
            "SAM 2, Hiera-T",
            checkpoint="sam2_hiera_tiny.pt",
        ),
        Preset(
            "sam2-hiera-small",
            "facebook/sam2-hiera-small",
            "sam2",
            1024,
            38.5,
            "SAM 2, Hiera-S",
            checkpoint="sam2_hiera_small.pt",
        ),
        Preset(
            "sam2-hiera-base-plus",
            "facebook/sam2-hiera-base-plus",
            "sam2",
            1024,
            73.3,
            "SAM 2, Hiera-B+",
            checkpoint="sam2_hiera_base_plus.pt",
        ),
        Preset(
            "sam2-hiera-large",
            "facebook/sam2-hiera-large",
            "sam2",
            1024,
            216.9,
            "SAM 2, Hiera-L",
            checkpoint="sam2_hiera_large.pt",
        ),
        Preset(
            "sam2.1-hiera-tiny",
            "facebook/sam2.1-hiera-tiny",
            "sam2",
            1024,
            31.4,
            "SAM 2.1, Hiera-T",
            checkpoint="sam2.1_hiera_tiny.pt",
        ),
        Preset(
            "sam2.1-hiera-small",
            "facebook/sam2.1-hiera-small",
            "sam2",
            1024,
            38.5,
            "SAM 2.1, Hiera-S",
            checkpoint="sam2.1_hiera_small.pt",
        ),
        Preset(
            "sam2.1-hiera-base-plus",
            "facebook/sam2.1-hiera-base-plus",
            "sam2",
            1024,
            73.3,
            "SAM 2.1, Hiera-B+",
            checkpoint="sam2.1_hiera_base_plus.pt",
        ),
        Preset(
            "sam2.1-hiera-large",
            "facebook/sam2.1-hiera-large",
            "sam2",
            1024,
            216.9,
            "SAM 2.1, Hiera-L",
            checkpoint="sam2.1_hiera_large.pt",
        ),
        Preset(
            "sam3-tracker", "facebook/sam3", "sam3_tracker", 1008, 458.3, "SAM 3 tracker (visual prompts)"
        ),
        Preset("edgetam", "yonigozlan/EdgeTAM-hf", "edgetam", 1024, 9.1, "EdgeTAM, on-device SAM 2"),
    ]
}

DEFAULT_PRESET = "sam2.1-hiera-tiny"


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ``InputError`` listing the known names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError("model", f"a preset name ({', '.join(PRESETS)}), a hub id or a path", name) from None


def find_preset_by_hub_id(hub_id: str) -> Preset | None:
    """The preset whose hub repository is ``hub_id``, if any."""
    return next((p for p in PRESETS.values() if p.hub_id == hub_id), None)
