"""Ground truth in the decoder's frame and prompts sampled from it, as in SAM's training recipe.

Training works in the model's low-resolution mask frame (L x L, L = encoder input side / 4): targets are the
ground-truth masks resized there once per image, and every prompt is drawn from them and handed to the
decoder in the encoder's input frame. First prompts: a box (the tight box with each side moved by up to 10%
of the box size, at most 20 input pixels) or one positive point uniformly inside the object; then correction
clicks at the most interior pixel of the largest error region of the previous prediction (positive in a
missed region, negative in a false one), as the SAM paper and its interactive protocol do. The point and box
helpers are the evaluation toolkit's own (``robosam.evaluation.protocols``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from robosam.evaluation.protocols import jittered_box, next_click, random_point
from robosam.models.families import ImageGeometry

PromptKind = Literal["box", "point", "mixed"]
PROMPT_KINDS = ("box", "point", "mixed")
BOX_JITTER_FRACTION = 0.1  # of the box side, SAM's training noise
BOX_JITTER_MAX_INPUT_PX = 20.0  # ... capped at 20 pixels of the encoder input
PAD_LABEL = -1  # a point the prompt encoder ignores (keeps every object's point count equal in a batch)


@dataclass
class Targets:
    """One image's objects in the decoder's low-resolution frame.

    masks: (K, L, L) bool, objects too small to survive the resize dropped. valid: (L, L) bool, the pixels
    that show the image (SAM 1 pads the image bottom-right into the square). scale: input pixels per
    low-resolution pixel (4). names: the kept objects' labels.
    """

    masks: np.ndarray
    valid: np.ndarray
    scale: float
    names: list[str]


def lowres_targets(masks: np.ndarray, geometry: ImageGeometry, names: list[str] | None = None) -> Targets:
    """Ground-truth masks (K, H, W) at the original size to ``Targets`` in the low-resolution frame.

    Each mask is area-resized to the part of the L x L frame the image covers (all of it for SAM 2, the
    top-left ``resized_hw / 4`` for SAM 1) and thresholded at half coverage.
    """
    size = geometry.lowres_size
    scale = geometry.input_size / size
    height = max(1, min(size, round(geometry.resized_hw[0] / scale)))
    width = max(1, min(size, round(geometry.resized_hw[1] / scale)))
    valid = np.zeros((size, size), dtype=bool)
    valid[:height, :width] = True
    names = list(names) if names is not None else [str(i) for i in range(len(masks))]
    kept, kept_names = [], []
    for mask, name in zip(masks, names):
        small = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA) >= 0.5
        if small.any():
            full = np.zeros((size, size), dtype=bool)
            full[:height, :width] = small
            kept.append(full)
            kept_names.append(name)
    stacked = np.stack(kept) if kept else np.zeros((0, size, size), dtype=bool)
    return Targets(masks=stacked, valid=valid, scale=scale, names=kept_names)


def to_input_points(points_xy: np.ndarray, scale: float) -> np.ndarray:
    """Low-resolution pixel coordinates (..., 2) to the encoder's input frame (pixel centres), float32."""
    return ((np.asarray(points_xy, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)


def to_input_box(box: np.ndarray, scale: float) -> np.ndarray:
    """A low-resolution box (x1, y1, x2, y2), x2/y2 the last pixel, to the input frame (4,) float32."""
    x1, y1, x2, y2 = np.asarray(box, dtype=np.float64)
    return np.array([x1 * scale, y1 * scale, (x2 + 1) * scale - 1, (y2 + 1) * scale - 1], dtype=np.float32)


def first_prompt_kind(kind: PromptKind, rng: np.random.Generator) -> Literal["box", "point"]:
    """``box`` or ``point``; ``mixed`` picks either with equal probability (SAM's recipe)."""
    if kind == "mixed":
        return "box" if rng.random() < 0.5 else "point"
    return kind


def sample_box(mask: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """The object's box in the input frame (4,), each coordinate moved by U(-j, j) with j = 10% of the
    box's mean side, at most 20 input pixels. mask: (L, L) bool, non-empty."""
    ys, xs = np.nonzero(mask)
    side = 0.5 * ((xs.max() - xs.min() + 1) + (ys.max() - ys.min() + 1))
    jitter = min(BOX_JITTER_FRACTION * side, BOX_JITTER_MAX_INPUT_PX / scale)
    return to_input_box(jittered_box(mask, jitter, rng), scale)


def sample_point(mask: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random object pixel in the input frame (2,). mask: (L, L) bool, non-empty."""
    return to_input_points(np.array(random_point(mask, rng), dtype=np.float64), scale)


def correction_click(
    pred: np.ndarray, target: np.ndarray, valid: np.ndarray, scale: float
) -> tuple[np.ndarray, int]:
    """The simulated user's next click for a prediction: ((2,) input-frame point, label 1 / 0), or a padding
    point (label -1) when the prediction is already right. pred, target, valid: (L, L) bool."""
    click = next_click(pred & valid, target)
    if click is None:
        return np.zeros(2, dtype=np.float32), PAD_LABEL
    x, y, label = click
    return to_input_points(np.array([x, y], dtype=np.float64), scale), int(label)
