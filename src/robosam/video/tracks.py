"""Frame records to ``Track`` results at the frame's original resolution."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from robosam.masks import mask_to_box, upscale_logits
from robosam.results import Track
from robosam.video.memory import FrameRecord


def records_to_tracks(records: dict[int, FrameRecord], frame_hw: tuple[int, int]) -> dict[int, Track]:
    """One ``Track`` per object: the low-resolution logits upscaled bilinearly to (H, W) and thresholded at 0,
    as Meta's predictor does; presence = sigmoid(object score); visible = presence > 0.5."""
    usable = {obj_id: r for obj_id, r in records.items() if r.logits is not None}
    if not usable:
        return {}
    masks = _upscale([r.logits for r in usable.values()], frame_hw)
    tracks = {}
    for (obj_id, record), mask in zip(usable.items(), masks):
        presence = 1.0 / (1.0 + math.exp(-max(min(record.object_score, 80.0), -80.0)))
        tracks[obj_id] = Track(
            obj_id=obj_id,
            mask=mask,
            score=float(record.score),
            presence=presence,
            visible=record.object_score > 0,
            box=mask_to_box(mask),
        )
    return tracks


def _upscale(logits: list[Any], frame_hw: tuple[int, int]) -> np.ndarray:
    """(1, 1, L, L) logits to (N, H, W) bool: numpy arrays (the ONNX engine) and CPU tensors with OpenCV, GPU
    tensors with torch (same arithmetic)."""
    if isinstance(logits[0], np.ndarray):
        return upscale_logits(np.concatenate(logits).astype(np.float32, copy=False)[:, 0], frame_hw) > 0
    import torch
    import torch.nn.functional as F

    stacked = torch.cat(logits).float()  # (N, 1, L, L)
    if stacked.device.type == "cpu":
        return upscale_logits(stacked[:, 0].numpy(), frame_hw) > 0
    high = F.interpolate(stacked, size=frame_hw, mode="bilinear", align_corners=False)
    return (high[:, 0] > 0).cpu().numpy()
