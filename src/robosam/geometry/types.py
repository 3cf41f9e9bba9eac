"""The 3D result types: point clouds, planes, object poses and grasps. Each states its frame.

Metres throughout; the default frame is the camera optical frame (x right, y down, z forward). Rotations
are (3, 3) matrices with the axes as columns; quaternions (x, y, z, w) derive from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robosam.errors import InputError


def rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix to a (4,) float64 quaternion (x, y, z, w), w >= 0."""
    quaternion = Rotation.from_matrix(np.asarray(rotation, dtype=np.float64)).as_quat()
    return -quaternion if quaternion[3] < 0 else quaternion


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


@dataclass
class PointCloud:
    """Points deprojected from one mask.

    points: (N, 3) float32 metres in the camera optical frame (or whatever frame a transform moved them to).
    colors: (N, 3) uint8 RGB per point, or None.
    valid: (H, W) bool, the pixels the points came from (row-major order of the points), or None when the
        cloud was not made from an image.
    frame: name of the frame the points are in ("camera" is the optical frame: x right, y down, z forward).
    """

    points: np.ndarray
    colors: np.ndarray | None = None
    valid: np.ndarray | None = None
    frame: str = "camera"

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
        return PointCloud(points=self.points[keep], colors=colors, valid=valid, frame=self.frame)

    def transformed(self, transform: np.ndarray, frame: str = "base") -> PointCloud:
        """The cloud moved by a 4x4 rigid transform (e.g. camera-to-base); points stay float32."""
        matrix = as_transform(transform, "transform")
        points = self.points.astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
        return PointCloud(points=points.astype(np.float32), colors=self.colors, valid=self.valid, frame=frame)


@dataclass
class Plane:
    """The plane ``normal . p + offset = 0``.

    normal: (3,) float64 unit vector, oriented towards the side the camera is on (for a table or floor:
        "up", away from the surface). offset: float metres (the camera's signed distance to the plane).
    inliers: (N,) bool over the fitted points, or None. rmse: inlier RMS distance in metres.
    frame: name of the frame the plane is in ("camera" is the optical frame).
    """

    normal: np.ndarray
    offset: float
    inliers: np.ndarray | None = field(default=None, repr=False)
    rmse: float = 0.0
    frame: str = "camera"

    def distance(self, points: PointCloud | np.ndarray) -> np.ndarray:
        """(N,) float64 signed distances in metres; positive on the side the normal points to."""
        xyz = points.points if isinstance(points, PointCloud) else np.asarray(points)
        return xyz.reshape(-1, 3).astype(np.float64) @ self.normal + self.offset

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) points moved along the normal onto the plane."""
        xyz = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return xyz - self.distance(xyz)[:, None] * self.normal

    def transformed(self, transform: Any, frame: str = "base") -> Plane:
        """The same plane expressed in another frame; ``transform`` (4x4) maps this frame to that one."""
        matrix = as_transform(transform, "transform")
        normal = matrix[:3, :3] @ self.normal
        point = matrix[:3, :3] @ (-self.offset * self.normal) + matrix[:3, 3]
        return Plane(
            normal=normal, offset=float(-normal @ point), inliers=self.inliers, rmse=self.rmse, frame=frame
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"normal": [3], "offset": m, "rmse": m, "inliers": count}``."""
        return {
            "normal": [float(v) for v in self.normal],
            "offset": float(self.offset),
            "rmse": float(self.rmse),
            "inliers": None if self.inliers is None else int(self.inliers.sum()),
        }


@dataclass
class ObjectPose:
    """A 3D object from one view: oriented bounding box, principal axes and centroid, all in metres.

    center: (3,) float64 centre of the oriented box. When fitted against a support plane the box reaches
        down to the plane, so for an object resting on it this is the object's centre, not that of the
        visible surface.
    rotation: (3, 3) float64, columns are the box axes (right-handed). Upright boxes: (long horizontal,
        short horizontal, plane normal "up"); otherwise PCA axes by decreasing variance.
    extents: (3,) float64 full side lengths of the box along the rotation's columns.
    centroid: (3,) float64 mean of the observed points (biased towards the camera for solid objects).
    n_points: number of points the pose was fitted on. upright: True when axis 2 is the support normal.
    frame: name of the frame the numbers are in ("camera" is the optical frame: x right, y down, z forward).
    """

    center: np.ndarray
    rotation: np.ndarray
    extents: np.ndarray
    centroid: np.ndarray
    n_points: int
    upright: bool = False
    frame: str = "camera"

    @property
    def quaternion(self) -> np.ndarray:
        """(4,) float64 orientation of the box axes as a quaternion (x, y, z, w)."""
        return rotation_to_quaternion(self.rotation)

    @property
    def matrix(self) -> np.ndarray:
        """(4, 4) float64 box-to-frame transform."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.rotation
        matrix[:3, 3] = self.center
        return matrix

    def corners(self) -> np.ndarray:
        """(8, 3) float64 corners of the oriented box."""
        signs = np.array(
            [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64
        )
        return self.center + (signs * (self.extents / 2)) @ self.rotation.T

    def transformed(self, transform: np.ndarray, frame: str = "base") -> ObjectPose:
        """The pose expressed in another frame; ``transform`` (4, 4) maps this frame's points to that one."""
        transform = np.asarray(transform, dtype=np.float64)
        rotation, translation = transform[:3, :3], transform[:3, 3]
        return ObjectPose(
            center=rotation @ self.center + translation,
            rotation=rotation @ self.rotation,
            extents=self.extents.copy(),
            centroid=rotation @ self.centroid + translation,
            n_points=self.n_points,
            upright=self.upright,
            frame=frame,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: center, quaternion (x, y, z, w), rotation, extents, centroid (metres)."""
        return {
            "frame": self.frame,
            "center": [float(v) for v in self.center],
            "quaternion_xyzw": [float(v) for v in self.quaternion],
            "rotation": [[float(v) for v in row] for row in self.rotation],
            "extents": [float(v) for v in self.extents],
            "centroid": [float(v) for v in self.centroid],
            "n_points": int(self.n_points),
            "upright": bool(self.upright),
        }


@dataclass
class Grasp:
    """One parallel-jaw grasp.

    position: (3,) float64 metres, the tool centre point: midway between the two fingertips.
    rotation: (3, 3) float64 gripper axes as columns: z the approach direction (from the hand into the
        object), y the closing line between the fingers, x = y cross z. ``quaternion`` derives from it.
    width: jaw opening in metres before closing. score: higher is better, in [0, 1].
    approach: "top" (down along the support normal) or "side" (parallel to the support).
    depth: how far the fingertips reach past the object's surface along the approach, metres.
    frame: name of the frame the numbers are in.
    """

    position: np.ndarray
    rotation: np.ndarray
    width: float
    score: float
    approach: str
    depth: float = 0.0
    frame: str = "camera"

    @property
    def quaternion(self) -> np.ndarray:
        """(4,) float64 orientation of the gripper axes as a quaternion (x, y, z, w)."""
        return rotation_to_quaternion(self.rotation)

    @property
    def approach_vector(self) -> np.ndarray:
        """(3,) unit vector the hand moves along to reach the object."""
        return self.rotation[:, 2]

    @property
    def closing_vector(self) -> np.ndarray:
        """(3,) unit vector along which the jaws close."""
        return self.rotation[:, 1]

    @property
    def matrix(self) -> np.ndarray:
        """(4, 4) float64 gripper-to-frame transform."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.rotation
        matrix[:3, 3] = self.position
        return matrix

    def transformed(self, transform: np.ndarray, frame: str = "base") -> Grasp:
        """The grasp expressed in another frame; ``transform`` (4, 4) maps this frame's points to that one."""
        transform = np.asarray(transform, dtype=np.float64)
        return Grasp(
            position=transform[:3, :3] @ self.position + transform[:3, 3],
            rotation=transform[:3, :3] @ self.rotation,
            width=self.width,
            score=self.score,
            approach=self.approach,
            depth=self.depth,
            frame=frame,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: position (m), quaternion (x, y, z, w), approach and closing vectors, width, score."""
        return {
            "frame": self.frame,
            "position": [float(v) for v in self.position],
            "quaternion_xyzw": [float(v) for v in self.quaternion],
            "approach": self.approach,
            "approach_vector": [float(v) for v in self.approach_vector],
            "closing_vector": [float(v) for v in self.closing_vector],
            "width": float(self.width),
            "depth": float(self.depth),
            "score": float(self.score),
        }
