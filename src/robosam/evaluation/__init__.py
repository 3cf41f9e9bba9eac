"""Evaluation toolkit: metrics, prompt protocols, runners and reports (datasets are in ``robosam.data``).

Example (scoring existing predictions, no model)::

    from robosam.evaluation import evaluate_folders
    scores = evaluate_folders("results/osvos", "DAVIS/Annotations/480p", ["blackswan"])
    scores.global_metrics()["J&F-Mean"]
"""

from robosam.evaluation.davis import DavisScores, ObjectScores, evaluate_folders, score_sequence
from robosam.evaluation.metrics import (
    boundary_f1,
    boundary_map,
    contour_accuracy,
    dice,
    iou,
    region_similarity,
    sequence_statistics,
)
from robosam.evaluation.protocols import (
    PROTOCOL_NAMES,
    ClickProtocol,
    ImagePredictor,
    SinglePromptProtocol,
    VideoProtocol,
    VideoTracker,
    make_protocol,
    next_click,
)
from robosam.evaluation.report import write_report
from robosam.evaluation.runner import ImageEvalResult, evaluate_images, evaluate_videos

__all__ = [
    "PROTOCOL_NAMES",
    "ClickProtocol",
    "DavisScores",
    "ImageEvalResult",
    "ImagePredictor",
    "ObjectScores",
    "SinglePromptProtocol",
    "VideoProtocol",
    "VideoTracker",
    "boundary_f1",
    "boundary_map",
    "contour_accuracy",
    "dice",
    "evaluate_folders",
    "evaluate_images",
    "evaluate_videos",
    "iou",
    "make_protocol",
    "next_click",
    "region_similarity",
    "score_sequence",
    "sequence_statistics",
    "write_report",
]
