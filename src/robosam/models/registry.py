"""Named presets: which hub repository, which model family, which kinds of task, what size.

Kinds: ``segmenter`` (promptable image segmentation), ``tracker`` (video object tracking), ``detector``
(open-vocabulary detection from text). A SAM 2 preset is both a segmenter and a tracker: the same hub
repository holds the image and the video model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robosam.errors import InputError

Kind = Literal["segmenter", "tracker", "detector"]
KINDS: tuple[str, ...] = ("segmenter", "tracker", "detector")


@dataclass(frozen=True)
class Preset:
    """One named model.

    name: robosam's short name (``sam2.1-hiera-tiny``).
    hub_id: Hugging Face repository holding transformers weights.
    family: adapter key in ``robosam.models.families`` (``sam``, ``sam_hq``, ``mobilesam``, ``sam2``,
        ``sam3_tracker``, ``edgetam``) for segmenters and trackers; the detector family (``grounding_dino``, ``owlv2``, ``sam3``)
        for detectors.
    input_size: side of the square the image encoder sees, in pixels.
    params_m: parameters of the transformers image model in millions (video memory modules not counted;
        SlimSAM as published by its authors).
    checkpoint: file name of Meta's official checkpoint in the same hub repository, converted on load
        when the repository holds no transformers weights.
    kinds: the tasks the preset serves.
    """

    name: str
    hub_id: str
    family: str
    input_size: int
    params_m: float
    note: str = ""
    checkpoint: str = ""
    kinds: tuple[str, ...] = ("segmenter",)


SEGMENTER_AND_TRACKER = ("segmenter", "tracker")
DETECTOR = ("detector",)

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
            "mobilesam",
            "dhkim2810/MobileSAM",
            "mobilesam",
            1024,
            9.8,
            "MobileSAM, TinyViT-5M encoder + SAM decoder",
            checkpoint="mobile_sam.pt",
        ),
        Preset(
            "sam2-hiera-tiny",
            "facebook/sam2-hiera-tiny",
            "sam2",
            1024,
            31.4,
            "SAM 2, Hiera-T",
            checkpoint="sam2_hiera_tiny.pt",
            kinds=SEGMENTER_AND_TRACKER,
        ),
        Preset(
            "sam2-hiera-small",
            "facebook/sam2-hiera-small",
            "sam2",
            1024,
            38.5,
            "SAM 2, Hiera-S",
            checkpoint="sam2_hiera_small.pt",
            kinds=SEGMENTER_AND_TRACKER,
        ),
        Preset(
            "sam2-hiera-base-plus",
            "facebook/sam2-hiera-base-plus",
            "sam2",
            1024,
            73.3,
            "SAM 2, Hiera-B+",
            checkpoint="sam2_hiera_base_plus.pt",
            kinds=SEGMENTER_AND_TRACKER,
        ),
        Preset(
            "sam2-hiera-large",
            "facebook/sam2-hiera-large",
            "sam2",
            1024,
            216.9,
            "SAM 2, Hiera-L",
            checkpoint="sam2_hiera_large.pt",
            kinds=SEGMENTER_AND_TRACKER,
        ),
        Preset(
            "sam2.1-hiera-tiny",
            "facebook/sam2.1-hiera-tiny",
            "sam2",
            1024,
            31.4,
            "SAM 2.1, Hiera-T",
            checkpoint="sam2.1_hiera_tiny.pt",
            kinds=SEGMENTER_AND_TRACKER,
        ),
        Preset(
            "sam2.1-hiera-small",
            "facebook/sam2.1-hiera-small",
            "sam2",
            1024,
            38.5,
            "SAM 2.1, Hiera-S",
            checkpoint="sam2.1_hiera_small.pt",
            kinds=SEGMENTER_AND_TRACKER,
        ),
        Preset(
            "sam2.1-hiera-base-plus",
            "facebook/sam2.1-hiera-base-plus",
            "sam2",
            1024,
            73.3,
            "SAM 2.1, Hiera-B+",
            checkpoint="sam2.1_hiera_base_plus.pt",
            kinds=SEGMENTER_AND_TRACKER,
        ),
        Preset(
            "sam2.1-hiera-large",
            "facebook/sam2.1-hiera-large",
            "sam2",
            1024,
            216.9,
            "SAM 2.1, Hiera-L",
            checkpoint="sam2.1_hiera_large.pt",
            kinds=SEGMENTER_AND_TRACKER,
        ),
        Preset(
            "sam3-tracker",
            "facebook/sam3",
            "sam3_tracker",
            1008,
            458.3,
            "SAM 3 tracker (visual prompts)",
            kinds=SEGMENTER_AND_TRACKER,
        ),
        Preset(
            "edgetam",
            "yonigozlan/EdgeTAM-hf",
            "edgetam",
            1024,
            9.1,
            "EdgeTAM, on-device SAM 2",
            kinds=SEGMENTER_AND_TRACKER,
        ),
        # open-vocabulary detectors (input size: the processor's shortest edge; 0 where it varies)
        Preset(
            "grounding-dino-tiny",
            "IDEA-Research/grounding-dino-tiny",
            "grounding_dino",
            800,
            172.3,
            "Grounding DINO, Swin-T",
            kinds=DETECTOR,
        ),
        Preset(
            "grounding-dino-base",
            "IDEA-Research/grounding-dino-base",
            "grounding_dino",
            800,
            232.3,
            "Grounding DINO, Swin-B (as published)",
            kinds=DETECTOR,
        ),
        Preset(
            "mm-grounding-dino-tiny",
            "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det",
            "mm_grounding_dino",
            800,
            172.3,
            "MM Grounding DINO, Swin-T",
            kinds=DETECTOR,
        ),
        Preset(
            "owlv2-base",
            "google/owlv2-base-patch16-ensemble",
            "owlv2",
            960,
            154.0,
            "OWLv2, ViT-B/16",
            kinds=DETECTOR,
        ),
        Preset(
            "sam3",
            "facebook/sam3",
            "sam3",
            1008,
            840.4,
            "SAM 3 concept segmentation (text prompts, masks included)",
            kinds=DETECTOR,
        ),
    ]
}

DEFAULT_PRESET = "sam2.1-hiera-tiny"


def presets_of_kind(kind: str) -> dict[str, Preset]:
    """The presets serving ``kind`` (``segmenter``, ``tracker`` or ``detector``)."""
    if kind not in KINDS:
        raise InputError("kind", f"one of {', '.join(KINDS)}", kind)
    return {name: p for name, p in PRESETS.items() if kind in p.kinds}


def get_preset(name: str, kind: str | None = None) -> Preset:
    """The preset called ``name`` (serving ``kind`` when given); ``InputError`` listing the names otherwise."""
    known = PRESETS if kind is None else presets_of_kind(kind)
    try:
        return known[name]
    except KeyError:
        what = "a preset name" if kind is None else f"a {kind} preset"
        raise InputError("model", f"{what} ({', '.join(known)}), a hub id or a path", name) from None


def find_preset_by_hub_id(hub_id: str, kind: str = "segmenter") -> Preset | None:
    """The preset of ``kind`` whose hub repository is ``hub_id``, if any."""
    return next((p for p in presets_of_kind(kind).values() if p.hub_id == hub_id), None)
