"""Plain result dataclasses returned by the tasks, with conversions to the field's formats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from robosam.masks import encode_rle, mask_to_box


@dataclass
class MaskResult:
    """Masks for one prompt set on one image.

    masks: (N, H, W) bool at the original image resolution.
    scores: (N,) float32 predicted IoU per mask.
    logits: (N, 256, 256) float32 low-resolution mask logits in the model's input frame; pass one
        (``result.best().logits``) back as ``mask_input`` to refine a prediction.
    """

    masks: np.ndarray
    scores: np.ndarray
    logits: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def best(self) -> MaskResult:
        """The single highest-scoring mask as a MaskResult of length 1."""
        index = int(np.argmax(self.scores))
        return self[index : index + 1]

    def __getitem__(self, index: int | slice) -> MaskResult:
        index = slice(index, index + 1) if isinstance(index, int) else index
        return MaskResult(masks=self.masks[index], scores=self.scores[index], logits=self.logits[index])

    @property
    def boxes(self) -> np.ndarray:
        """(N, 4) float32 tight boxes ``(x1, y1, x2, y2)`` in pixels."""
        return mask_to_box(self.masks)

    @property
    def areas(self) -> np.ndarray:
        """(N,) int64 pixel count per mask."""
        return self.masks.reshape(len(self), -1).sum(axis=1)

    def to_coco(self) -> list[dict[str, Any]]:
        """One dict per mask: ``segmentation`` (COCO RLE), ``bbox`` (x, y, w, h), ``area``, ``score``."""
        records = []
        for mask, score, box, area in zip(self.masks, self.scores, self.boxes, self.areas):
            x1, y1, x2, y2 = (float(v) for v in box)
            records.append(
                {
                    "segmentation": encode_rle(mask),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": int(area),
                    "score": float(score),
                }
            )
        return records

    def to_supervision(self) -> Any:
        """A ``supervision.Detections`` (needs the optional ``supervision`` package)."""
        import supervision as sv

        return sv.Detections(xyxy=self.boxes, mask=self.masks, confidence=self.scores.astype(np.float32))

    @staticmethod
    def from_tensors(masks: torch.Tensor, scores: torch.Tensor, logits: torch.Tensor) -> MaskResult:
        return MaskResult(
            masks=masks.detach().cpu().numpy().astype(bool),
            scores=scores.detach().float().cpu().numpy(),
            logits=logits.detach().float().cpu().numpy(),
        )
