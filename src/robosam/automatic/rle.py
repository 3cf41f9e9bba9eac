"""Mask encodings of Meta's generator: uncompressed RLE (column-major run lengths, starting with zeros)."""

from __future__ import annotations

from typing import Any

import numpy as np

from robosam.errors import InputError


def mask_to_uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) bool to ``{"size": [H, W], "counts": [int, ...]}``: run lengths in column-major order, the
    first run counting zeros (0 when the first pixel is set); pycocotools' ``frPyObjects`` reads it."""
    height, width = mask.shape
    flat = np.asarray(mask, dtype=bool).T.ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(height), int(width)], "counts": [int(c) for c in counts]}


def uncompressed_rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """The inverse of ``mask_to_uncompressed_rle``: (H, W) bool."""
    if not isinstance(rle, dict) or not isinstance(rle.get("counts"), list) or "size" not in rle:
        raise InputError("rle", "an uncompressed RLE dict with 'size' and a 'counts' list", rle)
    height, width = (int(v) for v in rle["size"])
    counts = np.asarray(rle["counts"], dtype=np.int64)
    if counts.sum() != height * width:
        raise InputError("rle", f"counts summing to H * W = {height * width}", int(counts.sum()))
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(width, height).T
