"""One object's prompt on one frame: clicks and / or a box, or a mask; validated against the frame size."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from robosam.errors import InputError
from robosam.prompts import parse_prompts

logger = logging.getLogger(__name__)
MASK_SIZE_TOLERANCE = 0.01  # relative size difference of a mask prompt that is resized rather than refused


@dataclass(frozen=True)
class VideoPrompt:
    """Prompts for one object on one frame, in pixels of the original frame.

    points: (P, 2) float32 (x, y) or None; labels: (P,) int64, 1 positive / 0 negative, or None;
    box: (4,) float32 (x1, y1, x2, y2) or None; mask: (H, W) bool or None (never with points or a box).
    """

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask: np.ndarray | None = None

    @property
    def is_mask(self) -> bool:
        return self.mask is not None


def make_prompt(
    frame_hw: tuple[int, int] | None,
    points: Any = None,
    labels: Any = None,
    box: Any = None,
    mask: Any = None,
) -> VideoPrompt:
    """Validate one object's prompt. With ``frame_hw`` None (a live stream before its first frame) the
    coordinates are checked against the frame later (:func:`check_against_frame`)."""
    if mask is not None:
        if points is not None or labels is not None or box is not None:
            raise InputError(
                "mask", "a mask alone (not together with points or a box)", "mask and points/box"
            )
        array = np.asarray(mask)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim != 2 or array.size == 0:
            raise InputError("mask", "a 2-D mask (H, W)", array)
        if array.dtype != np.bool_ and not np.issubdtype(array.dtype, np.number):
            raise InputError("mask", "a boolean or numeric (H, W) array", array)
        prompt = VideoPrompt(mask=array.astype(bool) if array.dtype == np.bool_ else array > 0)
    else:
        if points is None and box is None:
            raise InputError("points/box/mask", "at least one of points (with labels), box or mask", None)
        hw = frame_hw if frame_hw is not None else (2**31, 2**31)
        parsed = parse_prompts(hw, points=points, labels=labels, box=box)
        if len(parsed) != 1:
            raise InputError(
                "points/box", "prompts for one object (points (P, 2), box (4,))", f"{len(parsed)} objects"
            )
        one = parsed[0]
        prompt = VideoPrompt(points=one.points, labels=one.labels, box=one.box)
    if frame_hw is not None:
        prompt = check_against_frame(prompt, frame_hw)
    return prompt


def check_against_frame(prompt: VideoPrompt, frame_hw: tuple[int, int]) -> VideoPrompt:
    """The prompt fitted to a frame of size ``frame_hw`` (H, W), or ``InputError`` when it does not fit.

    A mask a pixel or two off the frame size (within ``MASK_SIZE_TOLERANCE``; annotation tools and odd-sized
    videos produce those) is resized to the frame (nearest neighbour); any other size is an error.
    """
    if prompt.mask is not None:
        mask_hw = tuple(prompt.mask.shape)
        if mask_hw == tuple(frame_hw):
            return prompt
        if not all(abs(m - f) <= max(1, MASK_SIZE_TOLERANCE * f) for m, f in zip(mask_hw, frame_hw)):
            raise InputError(
                "mask", f"a mask of the frame's size {frame_hw[0]}x{frame_hw[1]} (H x W)", prompt.mask
            )
        logger.info("mask of size %s resized to the frame's %s", mask_hw, tuple(frame_hw))
        resized = cv2.resize(
            prompt.mask.astype(np.uint8), (frame_hw[1], frame_hw[0]), interpolation=cv2.INTER_NEAREST
        )
        return VideoPrompt(mask=resized.astype(bool))
    (fitted,) = parse_prompts(frame_hw, points=prompt.points, labels=prompt.labels, box=prompt.box)
    return VideoPrompt(points=fitted.points, labels=fitted.labels, box=fitted.box)


def check_obj_id(obj_id: Any) -> int:
    """Object ids are non-negative integers (palette PNGs need 1..255)."""
    if isinstance(obj_id, bool) or not isinstance(obj_id, (int, np.integer)) or int(obj_id) < 0:
        raise InputError("obj_id", "a non-negative integer object id", obj_id)
    return int(obj_id)
