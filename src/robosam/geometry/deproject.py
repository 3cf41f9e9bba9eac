"""Mask + depth image to a 3D point cloud in the camera optical frame (x right, y down, z forward)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.geometry.intrinsics import CameraIntrinsics
from robosam.geometry.types import PointCloud

DEFAULT_INTEGER_SCALE = 0.001  # REP 118: integer depth images hold millimetres


def mask_to_points(
    mask: np.ndarray | None,
    depth: np.ndarray,
    intrinsics: CameraIntrinsics,
    depth_scale: float | None = None,
    z_range: tuple[float, float] = (0.0, math.inf),
    rgb: Any = None,
) -> PointCloud:
    """Deproject the masked pixels of a depth image to 3D points.

    mask: (H, W) bool (or integer, non-zero is foreground); None for every pixel.
    depth: (H, W) z-depth in the camera's units (uint16 millimetres, float metres, ...); 0, negative, NaN and
        inf are "no depth".
    intrinsics: the depth image's CameraIntrinsics; its (height, width) must equal depth's shape.
    depth_scale: metres per depth unit; None follows ROS REP 118 by dtype: integer depth is millimetres
        (0.001), float depth is metres (1.0).
    z_range: (near, far) metres; points with z outside the open interval are dropped.
    rgb: optional (H, W, 3) image (array, PIL or path) registered to the depth image; gives colours.
    Returns a PointCloud of (N, 3) float32 points in metres. Raises InputError for mismatched shapes, bad
    parameters, and a mask that holds no pixel with valid depth (never returns NaNs or an empty cloud).
    """
    depth = _check_depth(depth, intrinsics)
    depth_scale = resolve_depth_scale(depth, depth_scale)
    near, far = _check_z_range(z_range)
    valid = valid_depth(depth, depth_scale, (near, far))
    if mask is not None:
        mask = _check_mask(mask, depth.shape)
        valid &= mask
    flat = valid.ravel()
    z = depth.ravel()[flat].astype(np.float32)
    if z.size == 0:
        area = int(mask.sum()) if mask is not None else depth.size
        raise InputError(
            "mask" if mask is not None else "depth",
            "a mask with at least one pixel of valid depth" if area else "a non-empty mask",
            detail=f"{area} mask pixels, none with depth in ({near:g}, {far:g}) m at depth_scale {depth_scale:g}",
        )
    if depth_scale != 1.0:
        z *= np.float32(depth_scale)
    ray_x, ray_y = intrinsics.rays()
    points = np.empty((z.size, 3), dtype=np.float32)
    np.multiply(ray_x[flat], z, out=points[:, 0])
    np.multiply(ray_y[flat], z, out=points[:, 1])
    points[:, 2] = z
    colors = None
    if rgb is not None:
        from robosam.io import load_image

        image = load_image(rgb, argument="rgb")
        if image.shape[:2] != depth.shape:
            raise InputError("rgb", f"an image of {depth.shape[1]}x{depth.shape[0]} like the depth", image)
        colors = image.reshape(-1, 3)[flat]
    return PointCloud(points=points, colors=colors, valid=valid)


def valid_depth(depth: np.ndarray, depth_scale: float, z_range: tuple[float, float]) -> np.ndarray:
    """(H, W) bool: pixels whose depth, in metres, lies strictly inside ``z_range`` (NaN/inf never do).

    Compares in the depth's own units so integer depth is never converted as a whole image.
    """
    near, far = z_range
    if np.issubdtype(depth.dtype, np.integer):
        info = np.iinfo(depth.dtype)
        low = max(math.floor(near / depth_scale), 0)
        valid = depth > min(low, info.max)
        if math.isfinite(far):
            high = math.ceil(far / depth_scale)
            if high <= info.max:
                valid &= depth < high
        return valid
    valid = depth > near / depth_scale
    valid &= depth < (far / depth_scale if math.isfinite(far) else np.inf)
    return valid


def _check_depth(depth: Any, intrinsics: CameraIntrinsics) -> np.ndarray:
    if not isinstance(intrinsics, CameraIntrinsics):
        raise InputError("intrinsics", "a CameraIntrinsics", type(intrinsics).__name__)
    if not isinstance(depth, np.ndarray):
        raise InputError("depth", "a numpy array (H, W)", type(depth).__name__)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2 or not (
        np.issubdtype(depth.dtype, np.integer) or np.issubdtype(depth.dtype, np.floating)
    ):
        raise InputError("depth", "a 2D integer or float depth image (H, W)", depth)
    if depth.shape != intrinsics.shape:
        raise InputError(
            "depth",
            f"shape {intrinsics.shape} (height, width) to match the intrinsics",
            depth,
        )
    return depth


def _check_mask(mask: Any, shape: tuple[int, int]) -> np.ndarray:
    if not isinstance(mask, np.ndarray):
        raise InputError("mask", "a numpy array (H, W) of bool", type(mask).__name__)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.ndim != 2 or not (mask.dtype == np.bool_ or np.issubdtype(mask.dtype, np.number)):
        raise InputError("mask", "a 2D bool mask (H, W)", mask)
    if mask.shape != shape:
        raise InputError("mask", f"shape {shape} (height, width) like the depth image", mask)
    return mask if mask.dtype == np.bool_ else mask != 0


def resolve_depth_scale(depth: np.ndarray, depth_scale: Any = None) -> float:
    """Metres per depth unit: ``depth_scale`` when given (checked), else by ROS REP 118 from the dtype:
    0.001 for integer depth (millimetres), 1.0 for float depth (metres)."""
    if depth_scale is None:
        return DEFAULT_INTEGER_SCALE if np.issubdtype(np.asarray(depth).dtype, np.integer) else 1.0
    number = isinstance(depth_scale, (int, float, np.integer, np.floating)) and not isinstance(
        depth_scale, bool
    )
    if not (number and math.isfinite(depth_scale) and depth_scale > 0):
        raise InputError("depth_scale", "a positive, finite number of metres per depth unit", depth_scale)
    return float(depth_scale)


def _check_z_range(z_range: Any) -> tuple[float, float]:
    try:
        near, far = (float(v) for v in z_range)
    except (TypeError, ValueError):
        raise InputError("z_range", "(near, far) in metres", z_range) from None
    if not (math.isfinite(near) and near >= 0 and far > near) or math.isnan(far):
        raise InputError("z_range", "(near, far) metres with 0 <= near < far", z_range)
    return near, far
