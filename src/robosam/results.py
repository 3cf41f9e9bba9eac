"""Plain result dataclasses returned by the tasks, with conversions to the field's formats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robosam.masks import encode_rle, mask_to_box


@dataclass
class MaskResult:
    """Masks for one prompt set on one image.

    masks: (N, H, W) bool at the original image resolution.
    scores: (N,) float32 predicted IoU per mask.
    logits: (N, L, L) float32 low-resolution mask logits in the model's input frame (L = 256 for the
        released models); pass one (``result.best().logits``) back as ``mask_input`` to refine a prediction.
    object_ids: (N,) int64 index of the prompted object each mask belongs to (all 0 for one object).
    """

    masks: np.ndarray
    scores: np.ndarray
    logits: np.ndarray
    object_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.object_ids is None:
            self.object_ids = np.zeros(len(self.scores), dtype=np.int64)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def best(self) -> MaskResult:
        """The highest-scoring mask of each object (one mask for a single-object prompt)."""
        keep = [
            max(np.flatnonzero(self.object_ids == obj), key=lambda i: self.scores[i])
            for obj in np.unique(self.object_ids)
        ]
        return self[np.asarray(keep, dtype=np.int64)]

    def __getitem__(self, index: int | slice | np.ndarray) -> MaskResult:
        index = slice(index, index + 1) if isinstance(index, (int, np.integer)) else index
        return MaskResult(
            masks=self.masks[index],
            scores=self.scores[index],
            logits=self.logits[index],
            object_ids=self.object_ids[index],
        )

    @property
    def boxes(self) -> np.ndarray:
        """(N, 4) float32 tight boxes ``(x1, y1, x2, y2)`` in pixels."""
        return mask_to_box(self.masks)

    @property
    def areas(self) -> np.ndarray:
        """(N,) int64 pixel count per mask."""
        return self.masks.reshape(len(self), -1).sum(axis=1)

    def to_coco(self) -> list[dict[str, Any]]:
        """One dict per mask: ``segmentation`` (COCO RLE), ``bbox`` (x, y, w, h), ``area``, ``score``."""
        records = []
        for mask, score, box, area in zip(self.masks, self.scores, self.boxes, self.areas):
            x1, y1, x2, y2 = (float(v) for v in box)
            records.append(
                {
                    "segmentation": encode_rle(mask),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": int(area),
                    "score": float(score),
                }
            )
        return records

    def to_supervision(self) -> Any:
        """A ``supervision.Detections`` (needs the optional ``supervision`` package)."""
        import supervision as sv

        return sv.Detections(xyxy=self.boxes, mask=self.masks, confidence=self.scores.astype(np.float32))


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
        from scipy.spatial.transform import Rotation

        return Rotation.from_matrix(self.rotation).as_quat()

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
    orientation: (4,) float64 quaternion (x, y, z, w) of the gripper frame: its z axis is the approach
        direction (from the hand into the object), its y axis the closing line between the fingers,
        x = y cross z.
    width: jaw opening in metres before closing. score: higher is better, in [0, 1].
    approach: "top" (down along the support normal) or "side" (parallel to the support).
    depth: how far the fingertips reach past the object's surface along the approach, metres.
    frame: name of the frame the numbers are in.
    """

    position: np.ndarray
    orientation: np.ndarray
    width: float
    score: float
    approach: str
    depth: float = 0.0
    frame: str = "camera"

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) float64 gripper axes as columns (x, y = closing, z = approach)."""
        from scipy.spatial.transform import Rotation

        return Rotation.from_quat(self.orientation).as_matrix()

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
        from scipy.spatial.transform import Rotation

        transform = np.asarray(transform, dtype=np.float64)
        rotation = transform[:3, :3] @ self.rotation
        return Grasp(
            position=transform[:3, :3] @ self.position + transform[:3, 3],
            orientation=Rotation.from_matrix(rotation).as_quat(),
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
            "quaternion_xyzw": [float(v) for v in self.orientation],
            "approach": self.approach,
            "approach_vector": [float(v) for v in self.approach_vector],
            "closing_vector": [float(v) for v in self.closing_vector],
            "width": float(self.width),
            "depth": float(self.depth),
            "score": float(self.score),
        }
