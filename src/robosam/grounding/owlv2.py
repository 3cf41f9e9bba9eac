"""OWLv2 (transformers ``Owlv2ForObjectDetection`` with ``Owlv2Processor``).

Each phrase is its own text query; every image patch predicts one box and a score per query. OWLv2 pads
the image to a square at the bottom and right before resizing, so boxes are relative to that square.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from robosam.grounding.base import Detections, clip_boxes, model_inputs, nms_per_label
from robosam.io import load_image


class Owlv2Detector:
    """Open-vocabulary boxes from OWLv2. A box's label is its best-scoring phrase; ``text_threshold`` is
    not used (OWLv2 scores each phrase as a whole). nms_iou: per-phrase NMS (OWLv2 predicts a box per patch,
    so neighbours repeat an object; 1 keeps all)."""

    gives_masks = False

    def __init__(self, model: Any, processor: Any, name: str = "owlv2", nms_iou: float = 0.3):
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.nms_iou = nms_iou

    def detect(
        self, image: Any, phrases: list[str], box_threshold: float = 0.3, text_threshold: float = 0.25
    ) -> Detections:
        """Boxes for ``phrases`` on ``image`` (H, W, 3 RGB; path, PIL or array), best first."""
        rgb = load_image(image)
        height, width = rgb.shape[:2]
        start = time.perf_counter()
        inputs = self.processor(text=[phrases], images=rgb, return_tensors="pt", padding=True)
        inputs = model_inputs(inputs, self.model)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        probs = outputs.logits[0].float().sigmoid().cpu().numpy()  # (patches, P)
        best = probs.argmax(axis=1)
        scores = probs[np.arange(len(best)), best]
        keep = scores > box_threshold
        cx, cy, w, h = outputs.pred_boxes[0].float().cpu().numpy()[keep].T
        side = max(height, width)
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1) * side
        found = Detections(
            boxes=clip_boxes(boxes, (height, width)),
            scores=scores[keep],
            labels=[phrases[i] for i in best[keep]],
        )
        found = nms_per_label(found, self.nms_iou) if self.nms_iou < 1 else found.sorted()
        found.timings = {"detector_s": time.perf_counter() - start}
        return found
