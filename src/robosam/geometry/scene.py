"""Scene summary for navigation: the floor plane and every segment's 3D extent, distance and obstacle flag."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.geometry.deproject import _check_depth, _check_z_range, mask_to_points, resolve_depth_scale
from robosam.geometry.intrinsics import CameraIntrinsics
from robosam.geometry.plane import fit_plane
from robosam.geometry.pose import object_pose
from robosam.geometry.types import ObjectPose, Plane


@dataclass
class Segment:
    """One mask of the scene in 3D (camera frame, metres).

    index: the mask's index in the input. n_points: valid depth points. distance: distance from the camera
    to the segment's nearest points (2nd percentile of point distances, robust to stray pixels).
    pose: its oriented box (upright on the floor when a floor was found). height: top of the segment above
    the floor (None without a floor). obstacle: rises more than ``obstacle_height`` above the floor (True
    when no floor was found: unknown counts as an obstacle).
    """

    index: int
    n_points: int
    distance: float
    pose: ObjectPose
    height: float | None
    obstacle: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "n_points": self.n_points,
            "distance": self.distance,
            "height": self.height,
            "obstacle": self.obstacle,
            "pose": self.pose.to_dict(),
        }


@dataclass
class SceneSummary:
    """floor: the fitted floor (or table) plane, or None. segments: sorted by increasing distance.
    skipped: indices of masks without any valid depth."""

    floor: Plane | None
    segments: list[Segment]
    skipped: list[int] = field(default_factory=list)

    @property
    def obstacles(self) -> list[Segment]:
        """The segments flagged as obstacles, nearest first."""
        return [s for s in self.segments if s.obstacle]

    def to_dict(self) -> dict[str, Any]:
        return {
            "floor": None if self.floor is None else self.floor.to_dict(),
            "segments": [s.to_dict() for s in self.segments],
            "skipped": list(self.skipped),
        }


def scene_summary(
    masks: np.ndarray,
    depth: np.ndarray,
    intrinsics: CameraIntrinsics,
    depth_scale: float | None = None,
    *,
    z_range: tuple[float, float] = (0.0, math.inf),
    floor: Plane | None = None,
    obstacle_height: float = 0.03,
    floor_threshold: float = 0.01,
    floor_stride: int = 4,
    min_floor_fraction: float = 0.1,
    seed: int | None = 0,
) -> SceneSummary:
    """Summarise a segmented depth image for navigation.

    masks: (N, H, W) bool segments (e.g. from automatic mask generation). depth, intrinsics, depth_scale,
    z_range: as for ``mask_to_points``. floor: a known floor plane (camera frame); otherwise one is fitted by
    RANSAC (``floor_threshold`` metres) to the valid depth outside every mask, sampled every
    ``floor_stride`` pixels, and kept when its inliers are at least ``min_floor_fraction`` of those points.
    obstacle_height: metres above the floor from which a segment counts as an obstacle.
    Returns a SceneSummary with the segments sorted by distance; masks without valid depth are skipped.
    """
    depth = _check_depth(depth, intrinsics)
    depth_scale = resolve_depth_scale(depth, depth_scale)
    z_range = _check_z_range(z_range)
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3 or masks.shape[1:] != depth.shape:
        raise InputError(
            "masks", f"an (N, {depth.shape[0]}, {depth.shape[1]}) bool array like the depth", masks
        )
    masks = masks.astype(bool, copy=False)
    if not obstacle_height >= 0:
        raise InputError("obstacle_height", "a height >= 0 in metres", obstacle_height)
    if not isinstance(floor_stride, int) or floor_stride < 1:
        raise InputError("floor_stride", "a positive integer", floor_stride)
    if floor is not None and not isinstance(floor, Plane):
        raise InputError("floor", "a Plane or None", type(floor).__name__)
    if floor is None:
        floor = _fit_floor(
            masks,
            depth,
            intrinsics,
            depth_scale,
            z_range,
            floor_threshold,
            floor_stride,
            min_floor_fraction,
            seed,
        )

    segments, skipped = [], []
    for index, mask in enumerate(masks):
        try:
            cloud = mask_to_points(mask, depth, intrinsics, depth_scale, z_range)
        except InputError:
            skipped.append(index)
            continue
        if len(cloud) < 3:
            skipped.append(index)
            continue
        distances = np.linalg.norm(cloud.points, axis=1)
        height = None
        obstacle = True
        if floor is not None:
            heights = floor.distance(cloud.points)
            height = float(np.percentile(heights, 98))
            obstacle = height > obstacle_height
        pose = object_pose(cloud, floor if floor is not None and obstacle else None)
        segments.append(
            Segment(
                index=index,
                n_points=len(cloud),
                distance=float(np.percentile(distances, 2)),
                pose=pose,
                height=height,
                obstacle=bool(obstacle),
            )
        )
    segments.sort(key=lambda s: s.distance)
    return SceneSummary(floor=floor, segments=segments, skipped=skipped)


def _fit_floor(
    masks: np.ndarray,
    depth: np.ndarray,
    intrinsics: CameraIntrinsics,
    depth_scale: float,
    z_range: tuple[float, float],
    threshold: float,
    stride: int,
    min_fraction: float,
    seed: int | None,
) -> Plane | None:
    background = ~masks.any(axis=0)
    for region in (background, np.ones_like(background)):  # the floor may itself be one of the masks
        sampled = np.zeros_like(region)
        sampled[::stride, ::stride] = region[::stride, ::stride]
        try:
            cloud = mask_to_points(sampled, depth, intrinsics, depth_scale, z_range)
        except InputError:
            continue
        if len(cloud) < 50:
            continue
        plane = fit_plane(cloud, threshold, seed=seed)
        if plane.inliers is not None and plane.inliers.mean() >= min_fraction:
            return plane
    return None
