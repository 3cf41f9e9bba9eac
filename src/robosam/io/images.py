"""Reading images into the one internal form: RGB uint8 (H, W, 3) numpy arrays."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from robosam.errors import InputError

ImageLike = str | os.PathLike | Image.Image | np.ndarray


def load_image(
    image: ImageLike, *, image_format: Literal["RGB", "BGR"] = "RGB", argument: str = "image"
) -> np.ndarray:
    """Any supported image to RGB uint8 of shape (H, W, 3).

    Accepts a path, a PIL image or a numpy array: (H, W) gray, (H, W, 1), (H, W, 3) RGB or BGR
    (with ``image_format="BGR"``), (H, W, 4) RGBA (alpha dropped). Float arrays must lie in [0, 1].
    Raises ``InputError`` naming ``argument`` for anything else, and for unreadable or truncated files.
    """
    if image_format not in ("RGB", "BGR"):
        raise InputError("image_format", "'RGB' or 'BGR'", image_format)
    if isinstance(image, (str, os.PathLike)):
        return _read_image_file(Path(image), argument)
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image)
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image, image_format, argument)
    raise InputError(argument, "a path, PIL.Image or numpy array", type(image).__name__)


def _read_image_file(path: Path, argument: str) -> np.ndarray:
    if not path.is_file():
        raise InputError(argument, "an existing image file", str(path))
    try:
        with Image.open(path) as pil:
            pil.load()
            return _pil_to_rgb(pil)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, ImportError) as error:
        # ImportError: packages that wrap Pillow (ultralytics retries unknown files with an optional HEIF
        # decoder) fail that way on a file no format claims
        raise InputError(argument, "a readable, complete image file", str(path), detail=str(error)) from error


def _pil_to_rgb(pil: Image.Image) -> np.ndarray:
    if pil.mode != "RGB":
        pil = pil.convert("RGB")
    return np.asarray(pil, dtype=np.uint8).copy()


def _array_to_rgb(array: np.ndarray, image_format: str, argument: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(argument, "an array of shape (H, W), (H, W, 3) or (H, W, 4)", array)
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(argument, "a non-empty image", array)
    if array.dtype == np.uint8:
        pass
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
            raise InputError(argument, "float values in [0, 1] (or a uint8 array)", array)
        array = np.round(array * 255.0).astype(np.uint8)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    else:
        raise InputError(argument, "dtype uint8 or float in [0, 1]", array)
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    array = array[:, :, :3]
    if image_format == "BGR":
        array = array[:, :, ::-1]
    return np.ascontiguousarray(array)
