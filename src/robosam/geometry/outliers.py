"""Outlier removal for object point clouds: mixed pixels at mask borders, flying depth, stray segments."""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np
from scipy.spatial import cKDTree

from robosam.errors import InputError
from robosam.geometry.types import PointCloud

CloudT = TypeVar("CloudT", PointCloud, np.ndarray)


def outlier_mask(
    points: PointCloud | np.ndarray,
    method: Literal["statistical", "radius"] = "statistical",
    *,
    neighbors: int = 16,
    std_ratio: float = 2.0,
    radius: float = 0.01,
    min_neighbors: int = 5,
) -> np.ndarray:
    """(N,) bool: True for inliers.

    statistical: a point is an outlier when its mean distance to its ``neighbors`` nearest points exceeds
        the cloud's mean of that distance by ``std_ratio`` standard deviations.
    radius: a point is an outlier when fewer than ``min_neighbors`` other points lie within ``radius`` m.
    points: a PointCloud or (N, 3) array in metres.
    """
    xyz = as_points(points)
    if method not in ("statistical", "radius"):
        raise InputError("method", "'statistical' or 'radius'", method)
    if xyz.shape[0] < 2:
        return np.ones(xyz.shape[0], dtype=bool)
    tree = cKDTree(xyz)
    if method == "statistical":
        if not isinstance(neighbors, (int, np.integer)) or neighbors < 1:
            raise InputError("neighbors", "a positive integer", neighbors)
        if not std_ratio > 0:
            raise InputError("std_ratio", "a positive number", std_ratio)
        k = min(int(neighbors), xyz.shape[0] - 1)
        distances, _ = tree.query(xyz, k=k + 1, workers=-1)
        mean_distance = distances[:, 1:].mean(axis=1)
        threshold = mean_distance.mean() + std_ratio * mean_distance.std()
        return mean_distance <= threshold
    if not radius > 0:
        raise InputError("radius", "a positive distance in metres", radius)
    if not isinstance(min_neighbors, (int, np.integer)) or min_neighbors < 0:
        raise InputError("min_neighbors", "a non-negative integer", min_neighbors)
    counts = tree.query_ball_point(xyz, r=radius, return_length=True, workers=-1)
    return counts - 1 >= min_neighbors


def remove_outliers(
    points: CloudT,
    method: Literal["statistical", "radius"] = "statistical",
    *,
    neighbors: int = 16,
    std_ratio: float = 2.0,
    radius: float = 0.01,
    min_neighbors: int = 5,
) -> CloudT:
    """The inliers of ``points`` (same type as given: PointCloud or (N, 3) array); see :func:`outlier_mask`."""
    keep = outlier_mask(
        points, method, neighbors=neighbors, std_ratio=std_ratio, radius=radius, min_neighbors=min_neighbors
    )
    if isinstance(points, PointCloud):
        return points.select(keep)
    return np.asarray(points)[keep]


def as_points(points: PointCloud | np.ndarray, argument: str = "points") -> np.ndarray:
    """A PointCloud or array-like to a finite (N, 3) float array (float32 kept, others as float64)."""
    xyz = points.points if isinstance(points, PointCloud) else np.asarray(points)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or not np.issubdtype(xyz.dtype, np.number):
        raise InputError(argument, "a PointCloud or an (N, 3) array of points in metres", xyz)
    if xyz.dtype != np.float32:
        xyz = xyz.astype(np.float64)
    if not np.isfinite(xyz).all():
        raise InputError(argument, "finite point coordinates", xyz, detail="NaN or inf present")
    return xyz
