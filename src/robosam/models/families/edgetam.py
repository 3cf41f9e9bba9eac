"""EdgeTAM: SAM 2's prompt path and geometry on a RepViT encoder (through timm), for on-device use."""

from __future__ import annotations

from robosam.models.families.sam2 import Sam2Adapter


class EdgeTamAdapter(Sam2Adapter):
    """EdgeTAM (``EdgeTamModel``, video ``EdgeTamVideoModel``)."""

    name = "edgetam"
    model_types = ("edgetam", "edgetam_video")
    image_model_class = "EdgeTamModel"
    video_model_class = "EdgeTamVideoModel"
