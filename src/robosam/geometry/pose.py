"""Object pose from a point cloud: oriented bounding box, principal axes, extents, centroid."""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from robosam.errors import InputError
from robosam.geometry.outliers import as_points
from robosam.geometry.types import ObjectPose, Plane, PointCloud


def object_pose(
    points: PointCloud | np.ndarray,
    support: Plane | None = None,
    *,
    extend_to_support: bool = True,
    trim: float = 0.0,
) -> ObjectPose:
    """Fit an oriented bounding box to an object's points.

    points: PointCloud or (N, 3) metres, N >= 3 (remove outliers first for real sensors).
    support: the plane the object stands on (``fit_plane`` on the table). Without it the box axes are the
        PCA axes of the points by decreasing variance. With it the box is upright: axis 2 is the plane
        normal, axes 0 and 1 (long, short) come from the minimum-area rectangle of the points projected on
        the plane, which is exact for boxes even when only some faces are visible.
    extend_to_support: with a support plane, let the box reach down to the plane (a resting object's
        hidden bottom); False keeps it to the observed points.
    trim: fraction in [0, 0.2) of points ignored at each end of every axis when measuring extents
        (robustness to stray points); 0 uses the full min/max.
    Returns an ObjectPose in the points' frame. Raises InputError for fewer than 3 points or bad arguments.
    """
    xyz = as_points(points).astype(np.float64)
    if xyz.shape[0] < 3:
        raise InputError("points", "at least 3 points for an object pose", f"{xyz.shape[0]} points")
    if not 0.0 <= trim < 0.2:
        raise InputError("trim", "a fraction in [0, 0.2)", trim)
    if support is not None and not isinstance(support, Plane):
        raise InputError("support", "a Plane (from fit_plane) or None", type(support).__name__)
    centroid = xyz.mean(axis=0)
    if support is None:
        rotation = _pca_axes(xyz, centroid)
        local = (xyz - centroid) @ rotation
        low, high = _bounds(local, trim)
        center = centroid + rotation @ ((low + high) / 2)
        return ObjectPose(
            center=center, rotation=rotation, extents=high - low, centroid=centroid, n_points=xyz.shape[0]
        )
    up = support.normal / np.linalg.norm(support.normal)
    e1, e2 = _plane_basis(up)
    flat = np.stack([xyz @ e1, xyz @ e2], axis=1)
    axis0_2d = _min_area_direction(flat)
    side0 = axis0_2d[0] * e1 + axis0_2d[1] * e2
    side1 = np.cross(up, side0)
    if np.ptp(xyz @ side1) > np.ptp(xyz @ side0):  # axis 0 is the long horizontal side
        side0 = side1
    axis0 = _orient(side0, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    rotation = np.stack([axis0, np.cross(up, axis0), up], axis=1)
    local = xyz @ rotation
    local[:, 2] = support.distance(xyz)
    low, high = _bounds(local, trim)
    if extend_to_support:
        low[2] = min(low[2], 0.0)
    mid = (low + high) / 2
    plane_origin = -support.offset * up
    center = plane_origin + rotation[:, 0] * mid[0] + rotation[:, 1] * mid[1] + up * mid[2]
    return ObjectPose(
        center=center,
        rotation=rotation,
        extents=high - low,
        centroid=centroid,
        n_points=xyz.shape[0],
        upright=True,
    )


def _pca_axes(xyz: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    """(3, 3) right-handed PCA axes as columns, by decreasing variance, signs fixed deterministically."""
    centred = xyz - centroid
    _, vectors = np.linalg.eigh(centred.T @ centred)
    axis0 = _orient(vectors[:, 2], np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    towards_camera = -centroid if np.linalg.norm(centroid) > 0 else np.array([0.0, 0.0, -1.0])
    axis2 = _orient(vectors[:, 0], towards_camera, np.array([0.0, 0.0, -1.0]))
    axis1 = np.cross(axis2, axis0)
    return np.stack([axis0, axis1, axis2], axis=1)


def _orient(vector: np.ndarray, preferred: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """``vector`` or its negation, whichever points along ``preferred`` (``fallback`` on a tie)."""
    dot = float(vector @ preferred)
    if abs(dot) < 1e-9:
        dot = float(vector @ fallback)
    return vector if dot >= 0 else -vector


def _plane_basis(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(normal, helper)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(normal, e1)


def _min_area_direction(flat: np.ndarray) -> np.ndarray:
    """(2,) unit direction of one side of the minimum-area rectangle around 2D points (N, 2)."""
    try:
        hull = flat[ConvexHull(flat).vertices]
    except (QhullError, ValueError):  # collinear or too few distinct points: fall back to 2D PCA
        centred = flat - flat.mean(axis=0)
        _, vectors = np.linalg.eigh(centred.T @ centred)
        return vectors[:, 1]
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    cos, sin = np.cos(angles), np.sin(angles)
    u = hull @ np.stack([cos, sin])  # (M, A) coordinates along each candidate side
    v = hull @ np.stack([-sin, cos])
    areas = np.ptp(u, axis=0) * np.ptp(v, axis=0)
    best = int(np.argmin(areas))
    return np.array([cos[best], sin[best]])


def _bounds(local: np.ndarray, trim: float) -> tuple[np.ndarray, np.ndarray]:
    if trim > 0:
        low, high = np.quantile(local, [trim, 1.0 - trim], axis=0)
        return low, high
    return local.min(axis=0), local.max(axis=0)
