"""SAM 3 tracker: SAM 2's prompt path on SAM 3's ViT; 1008 input, normalised with mean = std = 0.5."""

from __future__ import annotations

from robosam.models.families.sam2 import Sam2Adapter


class Sam3TrackerAdapter(Sam2Adapter):
    """SAM 3 tracker (``Sam3TrackerModel``, video ``Sam3TrackerVideoModel``)."""

    name = "sam3_tracker"
    model_types = ("sam3_tracker", "sam3_tracker_video", "sam3", "sam3_video")
    image_model_class = "Sam3TrackerModel"
    video_model_class = "Sam3TrackerVideoModel"
    image_mean = (0.5, 0.5, 0.5)
    image_std = (0.5, 0.5, 0.5)
