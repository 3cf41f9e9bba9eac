"""Automatic-generation results as Meta's record dicts and as a COCO results file."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from robosam.automatic.rle import mask_to_uncompressed_rle
from robosam.errors import InputError
from robosam.masks import box_to_xywh, encode_rle
from robosam.results import MaskResult

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")


def _segmentation(mask: np.ndarray, output_mode: str) -> Any:
    if output_mode == "binary_mask":
        return mask
    if output_mode == "uncompressed_rle":
        return mask_to_uncompressed_rle(mask)
    if output_mode == "coco_rle":
        return encode_rle(mask)
    raise InputError("output_mode", f"one of {', '.join(OUTPUT_MODES)}", output_mode)


def to_records(result: MaskResult, output_mode: str = "binary_mask") -> list[dict[str, Any]]:
    """One dict per mask, as ``SamAutomaticMaskGenerator.generate`` returns them.

    segmentation: (H, W) bool (``binary_mask``), ``{"size", "counts": [int]}`` (``uncompressed_rle``) or
    COCO RLE with a string ``counts`` (``coco_rle``); area: pixels; bbox: [x, y, w, h] (w = x2 - x1 of the
    inclusive box, as Meta writes it); predicted_iou; point_coords: [[x, y]]; stability_score;
    crop_box: [x, y, w, h] of the crop the mask came from.
    result: from ``AutoMasker.generate`` (needs ``data`` ``stability_score``, ``point_coords``, ``crop_box``).
    """
    if output_mode not in OUTPUT_MODES:
        raise InputError("output_mode", f"one of {', '.join(OUTPUT_MODES)}", output_mode)
    missing = [k for k in ("stability_score", "point_coords", "crop_box") if k not in result.data]
    if missing:
        raise InputError("result", "a MaskResult from AutoMasker.generate", f"data without {missing}")
    masks = result._require_masks()
    records = []
    for i, (mask, box) in enumerate(zip(masks, result.boxes)):
        x0, y0, x1, y1 = (int(v) for v in result.data["crop_box"][i])
        records.append(
            {
                "segmentation": _segmentation(mask, output_mode),
                "area": int(np.count_nonzero(mask)),
                "bbox": box_to_xywh(box),
                "predicted_iou": float(result.scores[i]),
                "point_coords": [[float(v) for v in result.data["point_coords"][i]]],
                "stability_score": float(result.data["stability_score"][i]),
                "crop_box": [x0, y0, x1 - x0, y1 - y0],
            }
        )
    return records


def to_coco_results(result: MaskResult, image_id: int = 0, category_id: int = 1) -> list[dict[str, Any]]:
    """The masks as COCO detection results (what ``COCO.loadRes`` reads): image_id, category_id,
    segmentation (COCO RLE), bbox [x, y, w, h], score (predicted IoU), area, plus stability_score."""
    stability = result.data.get("stability_score")
    out = []
    for i, record in enumerate(result.to_coco()):
        entry = {"image_id": int(image_id), "category_id": int(category_id), **record}
        if stability is not None:
            entry["stability_score"] = float(stability[i])
        out.append(entry)
    return out


def write_coco_results(
    path: str | os.PathLike, result: MaskResult, image_id: int = 0, category_id: int = 1
) -> None:
    """``to_coco_results`` written atomically as a JSON list."""
    from robosam.io import write_json_atomic

    write_json_atomic(to_coco_results(result, image_id, category_id), path)
