"""Rerun recordings (``.rrd``) of robosam results over time: images, masks, 3D points, poses and grasps.

Needs the ``rerun-sdk`` package (``pip install robosam[viz]``). Entities: ``camera/image`` (RGB),
``camera/image/masks`` (object-id segmentation), ``camera/image/boxes``, ``world/points`` (coloured object
points, metres, camera optical frame), ``world/objects/<id>`` (oriented boxes), ``world/grasps`` (gripper
axes). Time: the ``frame`` sequence, plus ``stamp`` in seconds where a stamp is known.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from robosam.errors import InputError


def _rerun() -> Any:
    try:
        import rerun
    except ImportError:
        raise InputError("--rerun", "the rerun-sdk package (pip install robosam[viz])", None) from None
    return rerun


class RerunRecording:
    """Writes one ``.rrd`` file; use as a context manager (or call ``close``) so the file is complete."""

    def __init__(self, path: str | os.PathLike, application: str = "robosam"):
        self.path = self.check_path(path)
        self.rr = _rerun()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.stream = self.rr.RecordingStream(application)
        self.stream.save(str(self.path))
        self.stream.log("world", self.rr.ViewCoordinates.RDF, static=True)  # camera optical frame

    @staticmethod
    def check_path(path: str | os.PathLike) -> Path:
        """``path`` as a Path; ``InputError`` unless it ends in .rrd or where rerun-sdk is missing."""
        _rerun()
        if Path(path).suffix != ".rrd":
            raise InputError("--rerun", "a file path ending in .rrd", str(path))
        return Path(path)

    def __enter__(self) -> RerunRecording:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.stream.flush()
        self.stream.disconnect()

    def set_frame(self, frame: int, stamp_s: float | None = None) -> None:
        self.stream.set_time("frame", sequence=int(frame))
        if stamp_s is not None:
            self.stream.set_time("stamp", duration=float(stamp_s))

    def log_image(self, rgb: np.ndarray, masks: np.ndarray | None = None, ids: list[int] | None = None,
                  boxes: np.ndarray | None = None) -> None:  # fmt: skip
        """RGB (H, W, 3) uint8 with masks (N, H, W) bool of object ``ids`` and their boxes (N, 4) xyxy."""
        rr = self.rr
        self.stream.log("camera/image", rr.Image(rgb))
        if masks is not None and len(masks):
            ids = list(ids) if ids is not None else list(range(1, len(masks) + 1))
            labels = np.zeros(masks.shape[1:], dtype=np.uint16)
            for mask, obj_id in zip(masks, ids):
                labels[mask] = obj_id
            self.stream.log("camera/image/masks", rr.SegmentationImage(labels))
            if boxes is not None:
                self.stream.log(
                    "camera/image/boxes",
                    rr.Boxes2D(array=np.asarray(boxes, np.float32), array_format=rr.Box2DFormat.XYXY,
                               class_ids=ids, labels=[str(i) for i in ids]),
                )  # fmt: skip

    def log_points(
        self, points: np.ndarray, colors: np.ndarray | None = None, name: str = "world/points"
    ) -> None:
        """Points (N, 3) metres with optional colours (N, 3) uint8."""
        self.stream.log(name, self.rr.Points3D(np.asarray(points, np.float32), colors=colors))

    def log_object(self, obj_id: int, pose: Any) -> None:
        """An ``ObjectPose`` as an oriented box at ``world/objects/<id>``."""
        self.stream.log(
            f"world/objects/{obj_id}",
            self.rr.Boxes3D(
                centers=[pose.center], half_sizes=[np.asarray(pose.extents) / 2],
                quaternions=[self.rr.Quaternion(xyzw=pose.quaternion)], labels=[str(obj_id)],
            ),
        )  # fmt: skip

    def log_grasps(self, grasps: list[Any], name: str = "world/grasps", length: float = 0.05) -> None:
        """Grasps as arrows: approach (blue) and closing (green) directions from each tool centre point (an
        empty list clears the entity for this frame)."""
        if not grasps:
            self.stream.log(
                name,
                self.rr.Arrows3D(origins=np.zeros((0, 3), np.float32), vectors=np.zeros((0, 3), np.float32)),
            )
            return
        origins = np.array([g.position for g in grasps] * 2, np.float32)
        vectors = np.array(
            [g.approach_vector * length for g in grasps] + [g.closing_vector * length / 2 for g in grasps]
        )
        colors = [(40, 120, 255)] * len(grasps) + [(40, 220, 80)] * len(grasps)
        self.stream.log(
            name, self.rr.Arrows3D(origins=origins, vectors=vectors.astype(np.float32), colors=colors)
        )
