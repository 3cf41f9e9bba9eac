"""Depth image files: 16-bit PNG (millimetres by convention), ``.npy`` arrays, 32-bit float TIFF."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from robosam.errors import InputError
from robosam.geometry.deproject import resolve_depth_scale
from robosam.masks import write_png_atomic


def load_depth(path: str | os.PathLike, depth_scale: float | None = None) -> tuple[np.ndarray, float]:
    """Read a depth image and the scale that turns it into metres.

    path: ``.png`` (16-bit or 8-bit gray), ``.tif``/``.tiff`` (integer or float) or ``.npy`` (2D numeric).
    depth_scale: metres per unit; None picks 0.001 for integer depth (millimetres) and 1.0 for float depth
        (metres).
    Returns ``(depth (H, W) in file units, depth_scale)``. Raises InputError for missing, unreadable or
    non-2D files.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("depth", "an existing depth file (.png, .tif, .npy)", str(path))
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            depth = np.load(path, allow_pickle=False)
        elif suffix in (".png", ".tif", ".tiff"):
            with Image.open(path) as pil:
                if pil.mode not in ("I;16", "I;16B", "I;16L", "I", "F", "L"):
                    raise InputError(
                        "depth",
                        "a single-channel depth image (16-bit, 32-bit or float)",
                        str(path),
                        detail=f"PIL mode {pil.mode}",
                    )
                depth = np.asarray(pil)
        else:
            raise InputError("depth", "a .png, .tif, .tiff or .npy depth file", str(path))
    except InputError:
        raise
    except (OSError, ValueError) as error:
        raise InputError("depth", "a readable depth file", str(path), detail=str(error)) from None
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2 or not (
        np.issubdtype(depth.dtype, np.integer) or np.issubdtype(depth.dtype, np.floating)
    ):
        raise InputError("depth", "a 2D integer or float depth image", depth)
    return depth, resolve_depth_scale(depth, depth_scale)


def write_depth_png(depth_mm: np.ndarray, path: str | os.PathLike) -> Path:
    """(H, W) uint16 depth (millimetres by convention) to a 16-bit gray PNG, atomically."""
    depth_mm = np.asarray(depth_mm)
    if depth_mm.ndim != 2 or depth_mm.dtype != np.uint16:
        raise InputError("depth_mm", "an (H, W) uint16 array", depth_mm)
    return write_png_atomic(Image.fromarray(depth_mm), path)
