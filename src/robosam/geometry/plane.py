"""RANSAC plane fitting for the support surface (table) or the floor."""

from __future__ import annotations

from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.geometry.outliers import as_points
from robosam.geometry.types import Plane, PointCloud


def fit_plane(
    points: PointCloud | np.ndarray,
    distance_threshold: float = 0.005,
    *,
    iterations: int = 256,
    sample_size: int = 4000,
    toward: Any = (0.0, 0.0, 0.0),
    seed: int | None = 0,
) -> Plane:
    """Fit the dominant plane of a cloud by RANSAC, then refine it by least squares on its inliers.

    points: PointCloud or (N, 3) metres, N >= 3. distance_threshold: inlier distance in metres.
    iterations: random 3-point hypotheses, all scored at once on up to ``sample_size`` points.
    toward: (3,) a point the normal should face (default the camera origin). seed: RNG seed (None: random).
    Returns a Plane whose ``inliers`` index ``points``. Raises InputError for fewer than 3 points or points
    that do not span a plane.
    """
    xyz = as_points(points).astype(np.float64)
    if xyz.shape[0] < 3:
        raise InputError("points", "at least 3 points to fit a plane", f"{xyz.shape[0]} points")
    if not distance_threshold > 0:
        raise InputError("distance_threshold", "a positive distance in metres", distance_threshold)
    if not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise InputError("iterations", "a positive integer", iterations)
    rng = np.random.default_rng(seed)
    sample = xyz if xyz.shape[0] <= sample_size else xyz[rng.choice(xyz.shape[0], sample_size, replace=False)]
    triples = sample[rng.integers(0, sample.shape[0], size=(iterations, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    scale = float(np.ptp(sample, axis=0).max())
    usable = lengths > 1e-9 * max(scale, 1e-9) ** 2
    if not usable.any():
        raise InputError("points", "points that span a plane (not all on one line)")
    normals = normals[usable] / lengths[usable, None]
    offsets = -np.einsum("ij,ij->i", normals, triples[usable, 0])
    counts = (np.abs(sample @ normals.T + offsets) < distance_threshold).sum(axis=0)
    best = int(np.argmax(counts))
    normal, offset = normals[best], float(offsets[best])
    for _ in range(3):
        inliers = np.abs(xyz @ normal + offset) < distance_threshold
        if inliers.sum() < 3:
            break
        normal, offset = _least_squares_plane(xyz[inliers])
    inliers = np.abs(xyz @ normal + offset) < distance_threshold
    toward = np.asarray(toward, dtype=np.float64).reshape(3)
    if normal @ toward + offset < 0:
        normal, offset = -normal, -offset
    residual = xyz[inliers] @ normal + offset
    rmse = float(np.sqrt(np.mean(residual**2))) if residual.size else 0.0
    return Plane(normal=normal, offset=offset, inliers=inliers, rmse=rmse)


def _least_squares_plane(points: np.ndarray) -> tuple[np.ndarray, float]:
    centre = points.mean(axis=0)
    centred = points - centre
    _, vectors = np.linalg.eigh(centred.T @ centred)
    normal = vectors[:, 0]
    return normal, float(-normal @ centre)
