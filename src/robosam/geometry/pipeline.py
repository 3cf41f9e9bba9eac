"""One call from a mask and a depth image to a cleaned cloud, the support plane, the pose and ranked grasps."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from robosam.errors import InputError
from robosam.geometry.deproject import _check_mask, mask_to_points, resolve_depth_scale
from robosam.geometry.grasp import Gripper, grasp_candidates
from robosam.geometry.intrinsics import CameraIntrinsics
from robosam.geometry.outliers import remove_outliers
from robosam.geometry.plane import fit_plane
from robosam.geometry.pose import object_pose
from robosam.geometry.types import Grasp, ObjectPose, Plane, PointCloud


@dataclass
class ObjectGrasps:
    """cloud: the object's cleaned points (camera frame). support: the plane under it, or None.
    pose: its ObjectPose (camera frame). grasps: ranked Grasp list (base frame when a transform was given)."""

    cloud: PointCloud
    support: Plane | None
    pose: ObjectPose
    grasps: list[Grasp]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: pose, support plane, grasps, number of points."""
        return {
            "n_points": len(self.cloud),
            "pose": self.pose.to_dict(),
            "support_plane": None if self.support is None else self.support.to_dict(),
            "grasps": [g.to_dict() for g in self.grasps],
        }


def grasp_from_mask(
    mask: np.ndarray,
    depth: np.ndarray,
    intrinsics: CameraIntrinsics,
    depth_scale: float | None = None,
    *,
    rgb: Any = None,
    gripper_width: float = 0.08,
    gripper: Gripper | None = None,
    z_range: tuple[float, float] = (0.0, math.inf),
    clean: bool = True,
    support: Plane | bool = True,
    camera_to_base: Any = None,
) -> ObjectGrasps:
    """Mask + depth to pose and grasps: deproject, remove outliers, find the support, fit the box, rank grasps.

    mask: (H, W) bool object mask; depth (H, W), intrinsics, depth_scale, z_range, rgb: as for
    ``mask_to_points``. clean: statistical outlier removal on the object's points. support: True to fit the
    plane around the object by RANSAC (kept only if the object stands on its camera side), False for none,
    or a known Plane in the camera frame. gripper_width, gripper, camera_to_base: as for ``grasp_candidates``.
    """
    depth_scale = resolve_depth_scale(depth, depth_scale)
    cloud = mask_to_points(mask, depth, intrinsics, depth_scale, z_range, rgb=rgb)
    if clean and len(cloud) >= 20:
        cloud = remove_outliers(cloud)
    if support is True:
        plane = find_support(mask, depth, intrinsics, depth_scale, cloud, z_range)
    elif support is False or support is None:
        plane = None
    elif isinstance(support, Plane):
        plane = support
    else:
        raise InputError("support", "True, False or a Plane", type(support).__name__)
    pose = object_pose(cloud, plane)
    grasps = grasp_candidates(
        pose, gripper_width, support=plane, gripper=gripper, camera_to_base=camera_to_base
    )
    return ObjectGrasps(cloud=cloud, support=plane, pose=pose, grasps=grasps)


def find_support(
    mask: np.ndarray,
    depth: np.ndarray,
    intrinsics: CameraIntrinsics,
    depth_scale: float,
    cloud: PointCloud,
    z_range: tuple[float, float] = (0.0, math.inf),
    *,
    threshold: float = 0.005,
    min_fraction: float = 0.3,
) -> Plane | None:
    """The plane the masked object stands on, fitted to the depth around it, or None.

    Uses the pixels in a window twice the mask's box, minus the mask grown by a few pixels (mixed depth at
    the border), every second pixel. The plane is kept when at least ``min_fraction`` of those points are
    inliers and most of the object lies on its camera side.
    """
    mask = _check_mask(mask, depth.shape)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    height, width = mask.shape
    pad_y, pad_x = max(rows[-1] - rows[0], 8), max(cols[-1] - cols[0], 8)
    window = np.zeros_like(mask)
    window[
        max(rows[0] - pad_y, 0) : min(rows[-1] + pad_y + 1, height) : 2,
        max(cols[0] - pad_x, 0) : min(cols[-1] + pad_x + 1, width) : 2,
    ] = True
    grow = max(3, round(min(height, width) / 160))
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0
    window &= ~grown
    try:
        around = mask_to_points(window, depth, intrinsics, depth_scale, z_range)
    except InputError:
        return None
    if len(around) < 30:
        return None
    plane = fit_plane(around, threshold)
    if plane.inliers is None or plane.inliers.mean() < min_fraction:
        return None
    heights = plane.distance(cloud.points)
    if np.median(heights) <= threshold:
        return None
    return plane
