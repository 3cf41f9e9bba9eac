"""Text grounding: open-vocabulary detectors behind one interface, text-prompted segmentation, CLIP
re-ranking, language-guided grasping and text-driven tracking (identity bookkeeping over a live video
tracker, or SAM 3 video's own concept tracking)."""

from robosam.grounding.base import Detections, Detector, check_threshold, parse_phrases
from robosam.grounding.clip_rank import ClipRanker, masked_crops
from robosam.grounding.grasp import TextGrasp, grasp_from_text
from robosam.grounding.loading import load_detector
from robosam.grounding.sam3_video import Sam3VideoTextTracker
from robosam.grounding.text_segmenter import TextSegmenter
from robosam.grounding.tracking import IdentityTracker, TextTracker, text_tracker

__all__ = [
    "ClipRanker",
    "Detections",
    "Detector",
    "IdentityTracker",
    "Sam3VideoTextTracker",
    "TextGrasp",
    "TextSegmenter",
    "TextTracker",
    "check_threshold",
    "grasp_from_text",
    "load_detector",
    "masked_crops",
    "parse_phrases",
    "text_tracker",
]
