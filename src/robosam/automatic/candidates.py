"""Candidate masks of automatic generation, kept as low-resolution logits until they survive every filter."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from robosam.masks import upscale_logits
from robosam.models import ImageGeometry


@dataclass
class Candidates:
    """Parallel arrays for N candidate masks.

    logits: (N, L, L) float32 low-resolution logits, each in the frame of its crop's encoder input.
    iou: (N,) float32 predicted IoU. points: (N, 2) float64 prompt (x, y) in pixels (crop or image frame).
    stability: (N,) float32 stability score. boxes: (N, 4) float32 (x1, y1, x2, y2) inclusive, of the mask
    at the crop's full resolution (crop or image frame). crop: (N,) int64 index of the crop it came from.
    """

    logits: np.ndarray
    iou: np.ndarray
    points: np.ndarray
    stability: np.ndarray
    boxes: np.ndarray
    crop: np.ndarray

    def __len__(self) -> int:
        return int(self.iou.shape[0])

    def take(self, index: np.ndarray) -> Candidates:
        return Candidates(*(getattr(self, name)[index] for name in _FIELDS))

    @classmethod
    def concat(cls, parts: list[Candidates], lowres_size: int) -> Candidates:
        if not parts:
            return cls.empty(lowres_size)
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS))

    @classmethod
    def empty(cls, lowres_size: int) -> Candidates:
        return cls(
            logits=np.zeros((0, lowres_size, lowres_size), np.float32),
            iou=np.zeros(0, np.float32),
            points=np.zeros((0, 2), np.float64),
            stability=np.zeros(0, np.float32),
            boxes=np.zeros((0, 4), np.float32),
            crop=np.zeros(0, np.int64),
        )


_FIELDS = ("logits", "iou", "points", "stability", "boxes", "crop")


def full_resolution_stats(
    logits: np.ndarray,
    geometry: ImageGeometry,
    mask_threshold: float,
    offset: float,
    chunk: int = 8,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Stability score and tight box of each mask at its crop's full resolution, exactly as Meta's generator
    computes them on upscaled logits, without keeping the upscaled masks (``chunk`` at a time in memory).

    Bilinear upscaling never leaves the range of the source pixels it mixes, so output pixels whose
    low-resolution support is all at or below ``mask_threshold - offset`` count for nothing: a mask with no
    such logit is not upscaled at all, and the counts and box are taken inside the window of output rows
    and columns that its positive low-resolution cells can reach.
    logits: (N, L, L). Returns stability (N,) float32 (NaN where even the low threshold selects nothing, as
    Meta's 0 / 0) and boxes (N, 4) float32 (x1, y1, x2, y2) inclusive, zeros for an empty mask.
    workers: threads the chunks are spread over (OpenCV and numpy release the GIL in this work).
    """
    count = logits.shape[0]
    stability = np.full(count, np.nan, dtype=np.float32)
    boxes = np.zeros((count, 4), dtype=np.float32)
    low = mask_threshold - offset
    rows_any = (logits > low).any(axis=2)  # (N, L)
    cols_any = (logits > low).any(axis=1)
    live = np.flatnonzero(rows_any.any(axis=1))
    row_reach, col_reach = _reach(geometry)
    frame = geometry.upscale_frame()

    def measure(start: int) -> None:
        index = live[start : start + chunk]
        full = upscale_logits(logits[index], geometry.original_hw, **frame)
        for i, upscaled in zip(index, full):
            y0, y1 = _window(row_reach, rows_any[i])
            x0, x1 = _window(col_reach, cols_any[i])
            if y0 >= y1 or x0 >= x1:  # only cells of the padding are set: nothing reaches the image
                continue
            # numpy's vectorised compare + count is ~10x OpenCV's threshold + countNonZero + reduce here
            window = upscaled[y0:y1, x0:x1]
            inner = np.count_nonzero(window > mask_threshold + offset)
            outer = np.count_nonzero(window > low)
            if outer:
                stability[i] = inner / outer
            foreground = window > mask_threshold
            ys, xs = np.flatnonzero(foreground.any(axis=1)), np.flatnonzero(foreground.any(axis=0))
            if ys.size:
                boxes[i] = (xs[0] + x0, ys[0] + y0, xs[-1] + x0, ys[-1] + y0)

    starts = range(0, len(live), chunk)
    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(min(workers, len(starts))) as pool:
            list(pool.map(measure, starts))  # each chunk writes its own rows
    else:
        for start in starts:
            measure(start)
    return stability, boxes


def _window(reach: tuple[np.ndarray, np.ndarray], cells: np.ndarray) -> tuple[int, int]:
    """[start, stop) of the output indexes whose low-res support meets the first..last set cell."""
    first_cell, last_cell = np.flatnonzero(cells)[[0, -1]]
    lowest, highest = reach
    return int(np.searchsorted(highest, first_cell)), int(np.searchsorted(lowest, last_cell, side="right"))


@lru_cache(maxsize=16)
def _reach_of(
    original_hw: tuple[int, int], resized_hw: tuple[int, int], input_size: int, lowres: int, padded: bool
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    def support(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        source = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        first = np.minimum(np.floor(source).astype(np.int64), n_in - 1)
        return np.maximum(first - 1, 0), np.minimum(first + 2, n_in - 1)  # one cell of slack each side

    reach = []
    for axis in (0, 1):
        out = original_hw[axis]
        if padded:  # low-res -> padded input square, cropped to the resized image, -> original
            lo1, hi1 = support(lowres, input_size)
            lo2, hi2 = support(resized_hw[axis], out)
            reach.append((lo1[lo2], hi1[hi2]))
        else:
            reach.append(support(lowres, out))
    return reach[0], reach[1]


def _reach(geometry: ImageGeometry) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Per output row and column of ``geometry``: the lowest and highest low-res cell it can draw on
    (monotone non-decreasing arrays, one cell of slack on each side)."""
    return _reach_of(
        geometry.original_hw, geometry.resized_hw, geometry.input_size, geometry.lowres_size, geometry.padded
    )


def full_resolution_mask(
    logits: np.ndarray, geometry: ImageGeometry, mask_threshold: float, crop_box: list[int], image_hw
) -> np.ndarray:
    """One candidate's (L, L) logits to a bool (H, W) mask of the whole image: upscaled to its crop, thresholded
    and placed at the crop's position (zeros elsewhere)."""
    full = upscale_logits(logits[None], geometry.original_hw, **geometry.upscale_frame())[0] > mask_threshold
    x0, y0, x1, y1 = crop_box
    if (x0, y0) == (0, 0) and full.shape == tuple(image_hw):
        return full
    canvas = np.zeros(image_hw, dtype=bool)
    canvas[y0:y1, x0:x1] = full
    return canvas
