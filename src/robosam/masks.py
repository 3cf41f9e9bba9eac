"""Mask helpers shared by every task: COCO RLE, boxes, areas, PNG files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

from robosam.errors import InputError
from robosam.io import atomic_write


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """One bool mask (H, W) to COCO RLE: ``{"size": [H, W], "counts": str}`` (JSON-ready)."""
    return _jsonable_rle(coco_mask.encode(np.asfortranarray(mask.astype(np.uint8))))


def _jsonable_rle(rle: dict[str, Any]) -> dict[str, Any]:
    """pycocotools' RLE (bytes counts) as ``{"size": [H, W], "counts": str}``."""
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def encode_rles_with_stats(masks: np.ndarray) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """Masks (N, H, W) bool to COCO RLEs in one pycocotools call, with their areas and boxes.

    Area and box come from the run lengths (no further pass over the pixels). Returns the JSON-ready RLEs,
    areas (N,) int64 and boxes (N, 4) float32 ``(x1, y1, x2, y2)`` inclusive, as ``mask_to_box`` gives
    (zeros for an empty mask).
    """
    if masks.ndim != 3:
        raise InputError("masks", "a (N, H, W) bool array", getattr(masks, "shape", masks))
    if masks.shape[0] == 0:
        return [], np.zeros(0, dtype=np.int64), np.zeros((0, 4), dtype=np.float32)
    pixels = masks.view(np.uint8) if masks.dtype == np.bool_ else (masks != 0).view(np.uint8)
    encoded = coco_mask.encode(np.asfortranarray(pixels.transpose(1, 2, 0)))
    areas = coco_mask.area(encoded).astype(np.int64)
    xywh = coco_mask.toBbox(encoded).astype(np.float32)  # w, h count pixels: x2 = x + w - 1
    boxes = np.zeros((len(encoded), 4), dtype=np.float32)
    present = areas > 0
    boxes[present, :2] = xywh[present, :2]
    boxes[present, 2:] = xywh[present, :2] + xywh[present, 2:] - 1
    return [_jsonable_rle(rle) for rle in encoded], areas, boxes


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """COCO RLE (compressed string/bytes counts, or uncompressed list counts) to bool (H, W)."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise InputError("rle", "a dict with 'size' and 'counts'", rle)
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        compressed = coco_mask.frPyObjects(rle, height, width)
    else:
        compressed = {
            "size": [height, width],
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
        }
    return coco_mask.decode(compressed).astype(bool)


def mask_to_box(masks: np.ndarray) -> np.ndarray:
    """Tight boxes ``(x1, y1, x2, y2)``: the first and last foreground column and row, inclusive.

    The convention of supervision's ``mask_to_xyxy`` and Meta's ``batched_mask_to_box``: a one-pixel mask
    at (x, y) has the box (x, y, x, y). COCO ``xywh`` boxes derive from it as ``box_to_xywh`` does.
    masks: (N, H, W) or (H, W) bool. Returns (N, 4) or (4,) float32; an empty mask gives zeros.
    """
    single = masks.ndim == 2
    masks = masks[None] if single else masks
    boxes = np.zeros((masks.shape[0], 4), dtype=np.float32)
    rows_any = masks.any(axis=2)
    cols_any = masks.any(axis=1)
    for i in range(masks.shape[0]):
        ys = np.flatnonzero(rows_any[i])
        xs = np.flatnonzero(cols_any[i])
        if ys.size:
            boxes[i] = (xs[0], ys[0], xs[-1], ys[-1])
    return boxes[0] if single else boxes


def box_to_xywh(box: np.ndarray) -> list[float]:
    """One ``(x1, y1, x2, y2)`` box to COCO ``[x, y, w, h]`` with ``w = x2 - x1`` (as Meta's AMG writes)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def polygons_to_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """COCO polygon list ``[[x1, y1, x2, y2, ...], ...]`` to bool (H, W) via pycocotools."""
    rles = coco_mask.frPyObjects(polygons, height, width)
    return coco_mask.decode(coco_mask.merge(rles)).astype(bool)


def read_mask_png(path: str | os.PathLike, *, argument: str = "mask") -> np.ndarray:
    """A mask PNG (any non-zero pixel is foreground; palette and gray alike) to bool (H, W)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(argument, "an existing mask image file", str(path))
    try:
        with Image.open(path) as pil:
            array = np.asarray(pil)
    except OSError as error:
        raise InputError(argument, "a readable mask image", str(path), detail=str(error)) from error
    if array.ndim == 3:
        array = array[:, :, :3].max(axis=2)
    return array > 0


def write_png_atomic(image: np.ndarray | Image.Image, path: str | os.PathLike) -> Path:
    """Write a PNG through a temporary file and rename, so a crash never leaves half a file."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    with atomic_write(path) as tmp:
        pil.save(tmp, format="PNG")
    return Path(path)


def write_mask_png(mask: np.ndarray, path: str | os.PathLike) -> Path:
    """bool (H, W) mask to an 8-bit 0/255 PNG, written atomically."""
    return write_png_atomic(mask.astype(np.uint8) * 255, path)


def upscale_logits(
    logits: np.ndarray,
    out_hw: tuple[int, int],
    padded_hw: tuple[int, int] | None = None,
    crop_hw: tuple[int, int] | None = None,
) -> np.ndarray:
    """Low-resolution mask logits to the original image size, bilinear with half-pixel centres.

    logits: (N, L, L) float32. Returns (N, H, W) float32 with (H, W) = ``out_hw``.
    With ``padded_hw`` (SAM 1 family), the logits first go to the padded encoder input, are cropped to
    ``crop_hw`` (the resized image inside the padding), then go to ``out_hw``: the two steps of Meta's
    ``SamPredictor``. Without it (SAM 2 family), one resize straight to ``out_hw``, as Meta's
    ``SAM2ImagePredictor`` does. OpenCV does the same arithmetic as ``torch.nn.functional.interpolate``
    (align_corners=False) at a fraction of the cost.
    """
    out_h, out_w = out_hw
    out = np.empty((logits.shape[0], out_h, out_w), dtype=np.float32)
    for i, low_res in enumerate(logits.astype(np.float32, copy=False)):
        if padded_hw is not None:
            crop_h, crop_w = crop_hw or padded_hw
            low_res = cv2.resize(low_res, (padded_hw[1], padded_hw[0]), interpolation=cv2.INTER_LINEAR)
            low_res = low_res[:crop_h, :crop_w]
        cv2.resize(low_res, (out_w, out_h), dst=out[i], interpolation=cv2.INTER_LINEAR)
    return out
