"""What every dataset gives: images with their object masks, and video sequences with per-frame annotations."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from robosam.errors import InputError
from robosam.io import load_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class ImageSample:
    """One image and its ground-truth objects.

    name: unique id within the dataset. image_path: the image file. masks: (K, H, W) bool, one per object.
    labels: K names (category or object id). Load the pixels with :meth:`load_image` (RGB uint8 (H, W, 3)).
    """

    name: str
    image_path: Path
    masks: np.ndarray
    labels: list[str]

    def load_image(self) -> np.ndarray:
        return load_image(self.image_path, argument="data")


@dataclass
class VideoSample:
    """One video sequence: frame files in order and, per frame, the ground-truth object-id PNG (or None).

    object_ids: the objects of the sequence (ids in the annotation PNGs).
    """

    name: str
    frames: list[Path]
    annotations: list[Path | None]
    object_ids: list[int] = field(default_factory=list)

    def load_masks(self, index: int) -> dict[int, np.ndarray]:
        """Object id -> (H, W) bool mask on frame ``index`` (empty dict when the frame has no annotation)."""
        path = self.annotations[index]
        if path is None:
            return {}
        ids = read_object_ids(path)
        return {oid: ids == oid for oid in self.object_ids}


def read_object_ids(path: Path) -> np.ndarray:
    """An annotation PNG to object ids (H, W) int: palette/gray values; a 0/255 binary mask becomes 0/1."""
    try:
        with Image.open(path) as pil:
            array = np.asarray(pil.convert("L") if pil.mode not in ("P", "L", "1") else pil).astype(np.int64)
    except OSError as error:
        raise InputError("data", "readable mask PNGs", str(path), detail=str(error)) from error
    values = np.unique(array)
    if values.size <= 2 and set(values.tolist()) <= {0, 255}:
        array = (array > 0).astype(np.int64)
    return array


def ids_to_masks(ids: np.ndarray, void: int | None = 255) -> tuple[np.ndarray, list[str]]:
    present = [int(v) for v in np.unique(ids) if v != 0 and v != void]
    masks = np.stack([ids == v for v in present]) if present else np.zeros((0, *ids.shape), dtype=bool)
    return masks, [str(v) for v in present]
