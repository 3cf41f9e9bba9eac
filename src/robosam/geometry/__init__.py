"""From masks to 3D objects and grasps: deprojection, outlier removal, poses, planes, grasps, scenes.

All 3D quantities are metres in the camera optical frame (x right, y down, z forward) unless a transform
is passed; rotations are 3x3 matrices (axes as columns) with quaternions (x, y, z, w) derived.
Depth units follow ROS REP 118 unless depth_scale is given: integer depth is millimetres, float depth metres.

    cloud = mask_to_points(mask, depth, intrinsics, depth_scale=0.001)
    table = fit_plane(mask_to_points(~mask, depth, intrinsics, depth_scale=0.001))
    obj = object_pose(remove_outliers(cloud), support=table)
    grasps = grasp_candidates(obj, gripper_width=0.08, support=table)
"""

from robosam.geometry.deproject import mask_to_points, valid_depth
from robosam.geometry.depth_io import load_depth, write_depth_png
from robosam.geometry.draw import draw_grasps
from robosam.geometry.grasp import Gripper, grasp_candidates
from robosam.geometry.intrinsics import CameraIntrinsics
from robosam.geometry.outliers import outlier_mask, remove_outliers
from robosam.geometry.pipeline import ObjectGrasps, find_support, grasp_from_mask
from robosam.geometry.plane import fit_plane
from robosam.geometry.ply import read_ply, write_ply
from robosam.geometry.pose import object_pose
from robosam.geometry.scene import SceneSummary, Segment, scene_summary
from robosam.geometry.types import Grasp, ObjectPose, Plane, PointCloud

__all__ = [
    "CameraIntrinsics",
    "Grasp",
    "Gripper",
    "ObjectGrasps",
    "ObjectPose",
    "Plane",
    "PointCloud",
    "SceneSummary",
    "Segment",
    "draw_grasps",
    "find_support",
    "fit_plane",
    "grasp_candidates",
    "grasp_from_mask",
    "load_depth",
    "mask_to_points",
    "object_pose",
    "outlier_mask",
    "read_ply",
    "remove_outliers",
    "scene_summary",
    "valid_depth",
    "write_depth_png",
    "write_ply",
]
