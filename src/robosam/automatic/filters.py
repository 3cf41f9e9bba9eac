"""Per-mask tests of automatic mask generation: stability, crop-edge boxes, NMS, small regions."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torchvision.ops import nms as _torch_nms


def stability_score(logits: np.ndarray, mask_threshold: float, offset: float) -> np.ndarray:
    """IoU of a mask thresholded at ``mask_threshold + offset`` with the same mask at ``- offset``.

    logits: (N, H, W) float. Returns (N,) float32 (NaN where the low threshold selects nothing, which no
    ``>=`` test passes, as in Meta's code).
    """
    flat = logits.reshape(logits.shape[0], -1)
    inner = np.count_nonzero(flat > mask_threshold + offset, axis=1)
    outer = np.count_nonzero(flat > mask_threshold - offset, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (inner / outer).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indexes kept by greedy box NMS, best score first (torchvision's ``nms``).

    boxes: (N, 4) x1, y1, x2, y2; scores: (N,). Returns (K,) int64.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    keep = _torch_nms(
        torch.as_tensor(boxes, dtype=torch.float32),
        torch.as_tensor(scores, dtype=torch.float32),
        iou_threshold,
    )
    return keep.numpy().astype(np.int64)


def box_near_crop_edge(
    boxes: np.ndarray, crop_box: list[int], image_box: list[int], atol: float = 20.0
) -> np.ndarray:
    """(N,) bool: a box (in crop coordinates) within ``atol`` pixels of a crop edge that is not also an
    image edge, i.e. a mask the crop probably cut off. crop_box / image_box: (x0, y0, x1, y1)."""
    offset = np.array([crop_box[0], crop_box[1], crop_box[0], crop_box[1]], dtype=np.float32)
    uncropped = boxes.astype(np.float32) + offset
    near_crop = np.abs(uncropped - np.asarray(crop_box, dtype=np.float32)) <= atol
    near_image = np.abs(uncropped - np.asarray(image_box, dtype=np.float32)) <= atol
    return np.any(near_crop & ~near_image, axis=1)


def remove_small_regions(mask: np.ndarray, area_thresh: float, mode: str) -> tuple[np.ndarray, bool]:
    """Fill holes (``mode="holes"``) or drop islands (``"islands"``) under ``area_thresh`` pixels (8-connected).

    mask: (H, W) bool. Returns (mask, changed). When every island is small the largest one stays.
    """
    holes = mode == "holes"
    working = (holes ^ mask).astype(np.uint8)
    n_labels, regions, stats, _ = cv2.connectedComponentsWithStats(working, 8)
    sizes = stats[1:, cv2.CC_STAT_AREA]
    small = [i + 1 for i, size in enumerate(sizes) if size < area_thresh]
    if not small:
        return mask, False
    fill = [0, *small]
    if not holes:
        fill = [i for i in range(n_labels) if i not in fill] or [int(np.argmax(sizes)) + 1]
    return np.isin(regions, fill), True
