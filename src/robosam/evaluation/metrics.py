"""Mask quality measures: IoU, Dice, boundary F1, and the DAVIS region (J) / contour (F) statistics.

Every measure takes a prediction and a ground truth of the same shape, either one mask ``(H, W)`` or a
batch ``(N, H, W)`` (any dtype; non-zero is foreground), and returns a float or an ``(N,)`` float64 array.
The batch is processed with whole-array operations; nothing loops over masks in Python.

The DAVIS definitions follow the DAVIS-2017 benchmark (Pont-Tuset et al., "The 2017 DAVIS Challenge on
Video Object Segmentation"): J is the IoU with an empty-versus-empty pair scoring 1; F is the boundary F1 of
one-pixel boundary maps matched within a tolerance of ``ceil(0.008 * image diagonal)`` pixels (a disk);
per-sequence statistics are the mean, the recall (fraction of frames scoring above 0.5) and the decay
(mean of the first quarter of the frames minus mean of the last quarter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from robosam.errors import InputError

DAVIS_BOUNDARY_TOLERANCE = 0.008
"""Default boundary tolerance: below 1 it is a fraction of the image diagonal, from 1 up it is pixels."""


def _as_batch(masks: np.ndarray, argument: str) -> np.ndarray:
    array = np.asarray(masks)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise InputError(argument, "a mask (H, W) or a batch of masks (N, H, W)", array)
    return array.astype(bool, copy=False)


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    single = np.ndim(pred) == 2
    pred_b, gt_b = _as_batch(pred, "pred"), _as_batch(gt, "gt")
    if pred_b.shape != gt_b.shape:
        raise InputError("pred", f"masks of the same shape as gt {tuple(gt_b.shape)}", tuple(pred_b.shape))
    return pred_b, gt_b, single


def _out(values: np.ndarray, single: bool) -> float | np.ndarray:
    return float(values[0]) if single else values


def iou(pred: np.ndarray, gt: np.ndarray) -> float | np.ndarray:
    """Intersection over union (the DAVIS region similarity J).

    pred, gt: (H, W) or (N, H, W), non-zero = foreground. Returns a float or (N,) float64 in [0, 1];
    a pair of empty masks scores 1.0.
    """
    pred_b, gt_b, single = _pair(pred, gt)
    inter = np.count_nonzero(pred_b & gt_b, axis=(1, 2))
    union = np.count_nonzero(pred_b | gt_b, axis=(1, 2))
    values = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    return _out(values, single)


def dice(pred: np.ndarray, gt: np.ndarray) -> float | np.ndarray:
    """Dice coefficient ``2 |P & G| / (|P| + |G|)``.

    pred, gt: (H, W) or (N, H, W), non-zero = foreground. Returns a float or (N,) float64 in [0, 1];
    a pair of empty masks scores 1.0.
    """
    pred_b, gt_b, single = _pair(pred, gt)
    inter = np.count_nonzero(pred_b & gt_b, axis=(1, 2))
    total = np.count_nonzero(pred_b, axis=(1, 2)) + np.count_nonzero(gt_b, axis=(1, 2))
    values = np.where(total == 0, 1.0, 2.0 * inter / np.maximum(total, 1))
    return _out(values, single)


def boundary_map(masks: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundaries of binary masks, half a pixel towards the origin.

    A pixel is on the boundary when it differs from its right, lower or lower-right neighbour; beyond the
    last row and column the image is extended by repeating its edge, so the image border itself is not a
    boundary. masks: (H, W) or (N, H, W). Returns bool of the same shape.
    """
    single = np.ndim(masks) == 2
    batch = _as_batch(masks, "masks")
    padded = np.pad(batch, ((0, 0), (0, 1), (0, 1)), mode="edge")
    right = padded[:, :-1, 1:]
    down = padded[:, 1:, :-1]
    diagonal = padded[:, 1:, 1:]
    edges = (batch ^ right) | (batch ^ down) | (batch ^ diagonal)
    return edges[0] if single else edges


def tolerance_pixels(tolerance: float, height: int, width: int) -> int:
    """The boundary match radius in pixels: ``tolerance`` itself when >= 1, else ``ceil(tolerance * diagonal)``."""
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance > 0):
        raise InputError(
            "tolerance", "a positive number (pixels, or a fraction of the diagonal if < 1)", tolerance
        )
    if tolerance >= 1:
        return int(math.ceil(tolerance))
    return int(math.ceil(tolerance * math.hypot(height, width)))


def disk(radius: int) -> np.ndarray:
    """A filled disk structuring element: uint8 (2r+1, 2r+1), 1 where ``dx^2 + dy^2 <= r^2``."""
    offsets = np.arange(-radius, radius + 1)
    return ((offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2).astype(np.uint8)


def dilate(masks: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of every mask by a disk of ``radius`` pixels (pixels outside the image count as 0).

    masks: (N, H, W) bool. Returns (N, H, W) bool. The batch is stacked into one tall image with ``radius``
    empty rows between masks, so a single OpenCV call dilates them all without any mask bleeding into the next.
    """
    n, height, width = masks.shape
    if radius <= 0 or n == 0:
        return masks.copy()
    tall = np.zeros((n, height + radius, width), dtype=np.uint8)
    tall[:, :height] = masks
    grown = cv2.dilate(tall.reshape(n * (height + radius), width), disk(radius))
    return grown.reshape(n, height + radius, width)[:, :height].astype(bool)


def boundary_f1(
    pred: np.ndarray, gt: np.ndarray, tolerance: float = DAVIS_BOUNDARY_TOLERANCE
) -> float | np.ndarray:
    """Boundary F1 (the DAVIS contour accuracy F) with a match tolerance.

    pred, gt: (H, W) or (N, H, W), non-zero = foreground. tolerance: pixels when >= 1, otherwise a fraction
    of the image diagonal (DAVIS uses 0.008, i.e. 8 px at 854x480). A boundary pixel of one mask counts as
    matched when a boundary pixel of the other lies within the tolerance disk. Precision = matched predicted
    boundary / predicted boundary, recall = matched true boundary / true boundary, F = harmonic mean.
    Both boundaries empty gives 1.0; exactly one empty gives 0.0. Returns a float or (N,) float64.
    """
    pred_b, gt_b, single = _pair(pred, gt)
    radius = tolerance_pixels(tolerance, pred_b.shape[1], pred_b.shape[2])
    pred_b, gt_b = _crop_to_content(pred_b, gt_b)
    pred_edge = boundary_map(pred_b)
    gt_edge = boundary_map(gt_b)
    pred_near = dilate(pred_edge, radius)
    gt_near = dilate(gt_edge, radius)
    n_pred = np.count_nonzero(pred_edge, axis=(1, 2))
    n_gt = np.count_nonzero(gt_edge, axis=(1, 2))
    precision = np.count_nonzero(pred_edge & gt_near, axis=(1, 2)) / np.maximum(n_pred, 1)
    recall = np.count_nonzero(gt_edge & pred_near, axis=(1, 2)) / np.maximum(n_gt, 1)
    total = precision + recall
    values = np.where(total > 0, 2.0 * precision * recall / np.where(total > 0, total, 1.0), 0.0)
    values = np.where((n_pred == 0) | (n_gt == 0), 0.0, values)
    values = np.where((n_pred == 0) & (n_gt == 0), 1.0, values)
    return _out(values, single)


def _crop_to_content(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both batches cut to the box holding every foreground pixel of either, plus one empty pixel each side.

    Boundaries lie within one pixel of the foreground, so their counts and matches are unchanged while the
    dilation works on far fewer pixels (the tolerance is taken from the full image size beforehand).
    """
    rows = np.flatnonzero((pred.any(axis=(0, 2))) | gt.any(axis=(0, 2)))
    if rows.size == 0:
        return pred[:, :1, :1], gt[:, :1, :1]
    cols = np.flatnonzero((pred.any(axis=(0, 1))) | gt.any(axis=(0, 1)))
    y0, y1 = max(rows[0] - 1, 0), rows[-1] + 2
    x0, x1 = max(cols[0] - 1, 0), cols[-1] + 2
    return pred[:, y0:y1, x0:x1], gt[:, y0:y1, x0:x1]


region_similarity = iou
"""DAVIS J: an alias of :func:`iou`."""

contour_accuracy = boundary_f1
"""DAVIS F: an alias of :func:`boundary_f1`."""


@dataclass
class SequenceStatistics:
    """DAVIS statistics of one object's per-frame scores: mean, recall (share > threshold), decay."""

    mean: float
    recall: float
    decay: float


def sequence_statistics(values: np.ndarray, threshold: float = 0.5, n_bins: int = 4) -> SequenceStatistics:
    """Mean, recall and decay of per-frame scores (NaN frames are left out of the means).

    values: (T,) float, T >= 1. recall: fraction of frames with a score above ``threshold``. decay: the mean of
    the first of ``n_bins`` temporal bins minus the mean of the last; bin edges are the frame indices nearest
    to ``n_bins + 1`` evenly spaced points from the first to the last frame (halves round up), and each bin
    includes both of its edges, as in the DAVIS-2017 evaluation. (That tool stores the edges as uint8, which
    wraps for sequences over 256 frames; here they stay exact, so only such long sequences can differ.)
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise InputError("values", "at least one per-frame score", values)
    with np.errstate(invalid="ignore"):
        mean = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        recall = float(np.mean(values > threshold))
    edges = np.floor(np.linspace(1, values.size, n_bins + 1) + 0.5).astype(np.int64) - 1
    first = values[edges[0] : edges[1] + 1]
    last = values[edges[-2] : edges[-1] + 1]
    decay = _nanmean(first) - _nanmean(last)
    return SequenceStatistics(mean=mean, recall=recall, decay=decay)


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")
