"""Mask + depth image to a 3D point cloud in the camera optical frame (x right, y down, z forward)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.geometry.intrinsics import CameraIntrinsics


@dataclass
class PointCloud:
    """Points deprojected from one mask.

    points: (N, 3) float32 metres in the camera optical frame (or whatever frame a transform moved them to).
    colors: (N, 3) uint8 RGB per point, or None.
    valid: (H, W) bool, the pixels the points came from (row-major order of the points), or None when the
        cloud was not made from an image.
    """

    points: np.ndarray
    colors: np.ndarray | None = None
    valid: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def pixels(self) -> np.ndarray:
        """(N, 2) int64 pixel coordinates ``(u, v)`` of each point (needs ``valid``)."""
        if self.valid is None:
            raise InputError("cloud", "a point cloud made from an image (with valid pixels)", "no valid mask")
        v, u = np.nonzero(self.valid)
        return np.stack([u, v], axis=1)

    def select(self, keep: np.ndarray) -> PointCloud:
        """The sub-cloud of the points where ``keep`` (N,) bool is True (``valid`` updated to match)."""
        keep = np.asarray(keep, dtype=bool)
        valid = None
        if self.valid is not None:
            valid = np.zeros_like(self.valid)
            valid.ravel()[np.flatnonzero(self.valid)[keep]] = True
        colors = None if self.colors is None else self.colors[keep]
        return PointCloud(points=self.points[keep], colors=colors, valid=valid)

    def transformed(self, transform: np.ndarray) -> PointCloud:
        """The cloud moved by a 4x4 rigid transform (e.g. camera-to-base); points stay float32."""
        matrix = as_transform(transform, "transform")
        points = self.points.astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
        return PointCloud(points=points.astype(np.float32), colors=self.colors, valid=self.valid)


def mask_to_points(
    mask: np.ndarray | None,
    depth: np.ndarray,
    intrinsics: CameraIntrinsics,
    depth_scale: float = 1.0,
    z_range: tuple[float, float] = (0.0, math.inf),
    rgb: Any = None,
) -> PointCloud:
    """Deproject the masked pixels of a depth image to 3D points.

    mask: (H, W) bool (or integer, non-zero is foreground); None for every pixel.
    depth: (H, W) z-depth in the camera's units (uint16 millimetres, float metres, ...); 0, negative, NaN and
        inf are "no depth".
    intrinsics: the depth image's CameraIntrinsics; its (height, width) must equal depth's shape.
    depth_scale: metres per depth unit (0.001 for millimetre depth, 1.0 for metres).
    z_range: (near, far) metres; points with z outside the open interval are dropped.
    rgb: optional (H, W, 3) image (array, PIL or path) registered to the depth image; gives colours.
    Returns a PointCloud of (N, 3) float32 points in metres. Raises InputError for mismatched shapes, bad
    parameters, and a mask that holds no pixel with valid depth (never returns NaNs or an empty cloud).
    """
    depth = _check_depth(depth, intrinsics)
    _check_scale(depth_scale)
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


def as_transform(transform: Any, argument: str) -> np.ndarray:
    """A 4x4 rigid transform as float64, or InputError (not 4x4, non-finite, or not a rotation)."""
    matrix = np.asarray(transform, dtype=np.float64) if transform is not None else None
    if matrix is None or matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise InputError(argument, "a finite 4x4 rigid transform matrix", transform)
    rotation = matrix[:3, :3]
    if (
        not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4)
        or np.linalg.det(rotation) < 0
        or not np.allclose(matrix[3], (0, 0, 0, 1))
    ):
        raise InputError(
            argument, "a rigid transform (orthonormal rotation, det +1, last row 0 0 0 1)", matrix
        )
    return matrix


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


def _check_scale(depth_scale: Any) -> float:
    if not isinstance(depth_scale, (int, float, np.integer, np.floating)) or not (
        math.isfinite(depth_scale) and depth_scale > 0
    ):
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
