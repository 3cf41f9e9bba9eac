"""The one detector interface: an image and phrases in, boxes with their matched phrase and score out.

Every open-vocabulary detector family (Grounding DINO and MM Grounding DINO, OWLv2, SAM 3 concept
segmentation) implements ``Detector.detect``; ``TextSegmenter`` and the tracking code only see this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from robosam.errors import InputError


@dataclass
class Detections:
    """Open-vocabulary detections on one image, in pixels of the original image.

    boxes: (N, 4) float32 ``(x1, y1, x2, y2)``. scores: (N,) float32 confidence in [0, 1].
    labels: (N,) str, the phrase each box matched (one of the phrases asked for).
    masks: (N, H, W) bool from detectors that segment themselves (SAM 3), else None.
    mask_logits: (N, L, L) float32 low-resolution mask logits of such detectors, else None.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None = None
    mask_logits: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.labels = np.asarray(list(self.labels), dtype=object).reshape(-1)
        if not len(self.boxes) == len(self.scores) == len(self.labels):
            raise InputError(
                "detections", "boxes, scores and labels of one length", (len(self.boxes), len(self.scores))
            )

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index: Any) -> Detections:
        return Detections(
            boxes=self.boxes[index],
            scores=self.scores[index],
            labels=self.labels[index],
            masks=None if self.masks is None else self.masks[index],
            mask_logits=None if self.mask_logits is None else self.mask_logits[index],
            timings=dict(self.timings),
        )

    @classmethod
    def empty(cls, image_hw: tuple[int, int] | None = None, with_masks: bool = False) -> Detections:
        masks = np.zeros((0, *image_hw), dtype=bool) if with_masks and image_hw else None
        return cls(np.zeros((0, 4)), np.zeros(0), [], masks=masks)

    def sorted(self) -> Detections:
        """The detections by descending score."""
        return self[np.argsort(-self.scores, kind="stable")]


@runtime_checkable
class Detector(Protocol):
    """What ``TextSegmenter`` needs from a detector.

    name: a short description (preset or source). gives_masks: True when ``detect`` fills ``masks``
    (no separate SAM needed). ``detect(image, phrases, box_threshold, text_threshold)``: image (H, W, 3)
    RGB uint8, phrases a non-empty list of lower-case phrases; returns ``Detections`` whose labels are
    taken from ``phrases``, boxes clipped to the image, nothing below the thresholds.
    """

    name: str
    gives_masks: bool

    def detect(
        self, image: np.ndarray, phrases: list[str], box_threshold: float, text_threshold: float
    ) -> Detections: ...


def parse_phrases(text: str | list[str] | tuple[str, ...], argument: str = "text") -> list[str]:
    """``"Red cup. bowl . spoon"`` or ``["red cup", "bowl"]`` to ``["red cup", "bowl", "spoon"]``: lower case,
    spaces collapsed, empty and repeated phrases dropped; ``InputError`` when nothing is left."""
    parts = [text] if isinstance(text, str) else list(text) if isinstance(text, (list, tuple)) else None
    if parts is None or not all(isinstance(p, str) for p in parts):
        raise InputError(argument, "a phrase or phrases separated by '.' (\"red cup. bowl\")", text)
    phrases: list[str] = []
    for part in parts:
        for phrase in part.split("."):
            phrase = re.sub(r"\s+", " ", phrase).strip().lower()
            if phrase and phrase not in phrases:
                phrases.append(phrase)
    if not phrases:
        raise InputError(argument, 'a non-empty phrase such as "red cup" (several: "cup. bowl")', text)
    return phrases


def check_threshold(value: Any, argument: str) -> float:
    """A threshold in [0, 1] as float, else ``InputError``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0.0 <= number <= 1.0:
        raise InputError(argument, "a number between 0 and 1", value)
    return number


def clip_boxes(boxes: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """(N, 4) boxes clipped to the image, x2/y2 at most the last column/row."""
    height, width = image_hw
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width - 1)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height - 1)
    return boxes


def model_inputs(inputs: Any, model: Any) -> dict[str, Any]:
    """A processor's output moved to ``model``'s device, floating tensors cast to its dtype (bfloat16 models)."""
    parameter = next(model.parameters())
    return {
        key: value.to(parameter.device, parameter.dtype if value.is_floating_point() else value.dtype)
        if hasattr(value, "is_floating_point")
        else value
        for key, value in inputs.items()
    }


def nms_per_label(detections: Detections, iou_threshold: float = 0.7) -> Detections:
    """Drop boxes overlapping a higher-scoring box of the same phrase by more than ``iou_threshold``
    (torchvision's batched NMS); the result sorted by score."""
    if len(detections) < 2:
        return detections.sorted()
    import torch
    from torchvision.ops import batched_nms

    _, groups = np.unique(detections.labels.astype(str), return_inverse=True)
    keep = batched_nms(
        torch.from_numpy(detections.boxes),
        torch.from_numpy(detections.scores),
        torch.from_numpy(groups.astype(np.int64)),
        iou_threshold,
    ).numpy()
    return detections[keep].sorted()
