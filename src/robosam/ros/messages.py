"""ROS 2 messages to numpy and back, with no ROS installation needed.

Reading works on any object with the message's field names (rclpy messages, rosbags' dataclasses, a
``types.SimpleNamespace``). Writing returns plain field trees (``dict`` per message, numpy arrays for byte
and number sequences) that ``robosam.ros.typestore.build`` turns into rosbags messages and the rclpy layer
into rclpy messages. Frames and units follow ROS: images row-major, REP 118 depth (16UC1 millimetres,
32FC1 metres), REP 103 camera optical frame for 3D (x right, y down, z forward).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.geometry.intrinsics import CameraIntrinsics

# encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3),
    "bgr8": ("u1", 3),
    "rgba8": ("u1", 4),
    "bgra8": ("u1", 4),
    "mono8": ("u1", 1),
    "8UC1": ("u1", 1),
    "mono16": ("u2", 1),
    "16UC1": ("u2", 1),
    "32FC1": ("f4", 1),
}
POINT_FIELD_FLOAT32 = 7
POINT_FIELD_UINT32 = 6

Fields = dict[str, Any]


# ------------------------------------------------------------------------------------------ reading
def image_to_array(msg: Any, argument: str = "image") -> np.ndarray:
    """A ``sensor_msgs/Image`` to an array (H, W) or (H, W, C) in its own encoding and dtype."""
    encoding = str(msg.encoding)
    if encoding not in IMAGE_ENCODINGS:
        raise InputError(argument, f"an image encoding in {', '.join(IMAGE_ENCODINGS)}", encoding)
    kind, channels = IMAGE_ENCODINGS[encoding]
    dtype = np.dtype(kind).newbyteorder(">" if msg.is_bigendian else "<")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
    data = np.frombuffer(
        bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data, dtype=np.uint8
    )
    if height == 0 or width == 0 or step < row_bytes or data.size < step * (height - 1) + row_bytes:
        raise InputError(
            argument, f"{height} rows of {step} bytes ({width}x{height} {encoding})", f"{data.size} bytes"
        )
    rows = np.lib.stride_tricks.as_strided(data, shape=(height, row_bytes), strides=(step, 1))
    array = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
    array = array.astype(dtype.newbyteorder("="), copy=False)
    return array[:, :, 0] if channels == 1 else array


def image_to_rgb(msg: Any, argument: str = "image") -> np.ndarray:
    """A colour or mono ``sensor_msgs/Image`` to RGB uint8 (H, W, 3)."""
    array = image_to_array(msg, argument)
    encoding = str(msg.encoding)
    if array.dtype != np.uint8:
        raise InputError(
            argument, "an 8-bit colour or mono image (rgb8, bgr8, rgba8, bgra8, mono8)", encoding
        )
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    rgb = array[:, :, :3]
    if encoding.startswith("bgr"):
        rgb = rgb[:, :, ::-1]
    return np.ascontiguousarray(rgb)


def depth_to_array(msg: Any, argument: str = "depth") -> tuple[np.ndarray, float]:
    """An aligned depth ``sensor_msgs/Image`` to (depth (H, W), metres per unit) per REP 118:
    16UC1 / mono16 millimetres (0.001), 32FC1 metres (1.0)."""
    encoding = str(msg.encoding)
    if encoding not in ("16UC1", "mono16", "32FC1"):
        raise InputError(argument, "a depth image in 16UC1 (mm) or 32FC1 (m)", encoding)
    depth = image_to_array(msg, argument)
    return depth, (1.0 if encoding == "32FC1" else 0.001)


def camera_info_to_intrinsics(msg: Any) -> CameraIntrinsics:
    """A ``sensor_msgs/CameraInfo`` (ROS 2 ``k`` / ``d``) to ``CameraIntrinsics``."""
    return CameraIntrinsics.from_dict(
        {
            "k": [float(v) for v in msg.k],
            "d": [float(v) for v in msg.d],
            "width": int(msg.width),
            "height": int(msg.height),
            "distortion_model": str(msg.distortion_model or "plumb_bob"),
        }
    )


def detections_to_boxes(msg: Any) -> tuple[list[str], np.ndarray]:
    """A ``vision_msgs/Detection2DArray`` to (ids, boxes (N, 4) float32 ``x1, y1, x2, y2`` pixels).

    The id is the detection's ``id``, else its best hypothesis ``class_id``, else its index.
    """
    ids, boxes = [], []
    for index, detection in enumerate(msg.detections):
        bbox = detection.bbox
        cx, cy = float(bbox.center.position.x), float(bbox.center.position.y)
        half_w, half_h = float(bbox.size_x) / 2, float(bbox.size_y) / 2
        boxes.append((cx - half_w, cy - half_h, cx + half_w, cy + half_h))
        best = max(detection.results, key=lambda r: float(r.hypothesis.score), default=None)
        ids.append(str(detection.id or (best.hypothesis.class_id if best is not None else "") or index))
    return ids, np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def stamp_seconds(header: Any) -> float:
    """A header's stamp in seconds."""
    return float(header.stamp.sec) + float(header.stamp.nanosec) * 1e-9


# ------------------------------------------------------------------------------------------ writing
def header_fields(header: Any) -> Fields:
    """The input's header copied field by field (outputs are stamped like their input)."""
    return {
        "stamp": {"sec": int(header.stamp.sec), "nanosec": int(header.stamp.nanosec)},
        "frame_id": str(header.frame_id),
    }


def image_fields(array: np.ndarray, encoding: str, header: Any) -> Fields:
    """An array (H, W) or (H, W, C) to ``sensor_msgs/Image`` fields, little-endian, rows packed."""
    if encoding not in IMAGE_ENCODINGS:
        raise InputError("encoding", f"one of {', '.join(IMAGE_ENCODINGS)}", encoding)
    kind, channels = IMAGE_ENCODINGS[encoding]
    array = np.ascontiguousarray(array, dtype=np.dtype(kind).newbyteorder("<"))
    if array.shape[2:] != ((channels,) if channels > 1 else ()):
        raise InputError("array", f"an image with {channels} channel(s) for {encoding}", array)
    height, width = array.shape[:2]
    return {
        "header": header_fields(header),
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": 0,
        "step": width * channels * array.dtype.itemsize,
        "data": array.reshape(-1).view(np.uint8).copy(),
    }


def label_image_fields(masks: np.ndarray, ids: list[int], header: Any) -> Fields:
    """Masks (N, H, W) bool with their object ids to a label image: ``mono8`` while every id fits in a byte,
    else ``mono16``; 0 is background, later masks win where they overlap."""
    height, width = masks.shape[1:] if masks.ndim == 3 else (0, 0)
    big = any(i > 255 for i in ids)
    if any(i < 1 or i > 65535 for i in ids):
        raise InputError("ids", "object ids from 1 to 65535 (0 is background)", ids)
    labels = np.zeros((height, width), dtype=np.uint16 if big else np.uint8)
    for mask, obj_id in zip(masks, ids):
        labels[mask] = obj_id
    return image_fields(labels, "mono16" if big else "mono8", header)


def detections_fields(
    ids: list[int], boxes: np.ndarray, scores: np.ndarray, header: Any, labels: dict[int, str] | None = None
) -> Fields:
    """Track ids, boxes (N, 4) ``x1, y1, x2, y2`` pixels and scores to ``vision_msgs/Detection2DArray``
    fields: centre ``((x1 + x2) / 2, (y1 + y2) / 2)`` and size ``(x2 - x1, y2 - y1)``, so
    ``detections_to_boxes`` gives the same corners back; ``id`` is the track id, ``class_id`` the object's
    label (a text prompt's phrase) where ``labels`` has one, else the track id too."""
    detections = []
    for obj_id, (x1, y1, x2, y2), score in zip(ids, np.asarray(boxes, dtype=np.float64), scores):
        width, height = x2 - x1, y2 - y1
        detections.append(
            {
                "header": header_fields(header),
                "results": [
                    {
                        "hypothesis": {
                            "class_id": (labels or {}).get(obj_id, str(obj_id)),
                            "score": float(score),
                        },
                        "pose": _identity_pose_with_covariance(),
                    }
                ],
                "bbox": {
                    "center": {"position": {"x": (x1 + x2) / 2, "y": (y1 + y2) / 2}, "theta": 0.0},
                    "size_x": float(width),
                    "size_y": float(height),
                },
                "id": str(obj_id),
            }
        )
    return {"header": header_fields(header), "detections": detections}


def pose_fields(position: np.ndarray, quaternion_xyzw: np.ndarray) -> Fields:
    x, y, z = (float(v) for v in position)
    qx, qy, qz, qw = (float(v) for v in quaternion_xyzw)
    return {"position": {"x": x, "y": y, "z": z}, "orientation": {"x": qx, "y": qy, "z": qz, "w": qw}}


def pose_array_fields(poses: list[tuple[np.ndarray, np.ndarray]], header: Any) -> Fields:
    """(position (3,), quaternion x, y, z, w) pairs to ``geometry_msgs/PoseArray`` fields."""
    return {"header": header_fields(header), "poses": [pose_fields(p, q) for p, q in poses]}


def pointcloud2_fields(points: np.ndarray, colors: np.ndarray | None, header: Any) -> Fields:
    """Points (N, 3) metres (+ colours (N, 3) uint8) to an unorganised ``sensor_msgs/PointCloud2``:
    float32 ``x, y, z`` and, with colours, ``rgb`` packed as PCL does (0x00RRGGBB in a float32's bytes)."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    layout = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        layout.append(("rgb", "<u4"))
    records = np.zeros(len(points), dtype=np.dtype(layout))
    records["x"], records["y"], records["z"] = points[:, 0], points[:, 1], points[:, 2]
    if colors is not None:
        c = np.asarray(colors, dtype=np.uint32).reshape(-1, 3)
        records["rgb"] = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    fields = [
        {"name": name, "offset": records.dtype.fields[name][1], "datatype": POINT_FIELD_FLOAT32, "count": 1}
        for name, _ in layout
    ]
    return {
        "header": header_fields(header),
        "height": 1,
        "width": len(points),
        "fields": fields,
        "is_bigendian": False,
        "point_step": records.dtype.itemsize,
        "row_step": records.dtype.itemsize * len(points),
        "data": records.view(np.uint8).reshape(-1).copy(),
        "is_dense": True,
    }


def pointcloud2_to_points(msg: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """A ``sensor_msgs/PointCloud2`` with float32 x, y, z (and optional packed rgb) to (points (N, 3),
    colours (N, 3) uint8 or None)."""
    offsets = {f.name: int(f.offset) for f in msg.fields}
    if not {"x", "y", "z"} <= set(offsets):
        raise InputError("cloud", "x, y, z fields", sorted(offsets))
    order = ">" if msg.is_bigendian else "<"
    data = np.frombuffer(
        bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data, dtype=np.uint8
    )
    count = int(msg.width) * int(msg.height)
    rows = data.reshape(count, int(msg.point_step))
    points = np.stack(
        [rows[:, offsets[a] : offsets[a] + 4].copy().view(f"{order}f4")[:, 0] for a in "xyz"], 1
    )
    colors = None
    if "rgb" in offsets:
        packed = rows[:, offsets["rgb"] : offsets["rgb"] + 4].copy().view(f"{order}u4")[:, 0]
        colors = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], 1).astype(np.uint8)
    return points.astype(np.float32), colors


def _identity_pose_with_covariance() -> Fields:
    return {
        "pose": pose_fields(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0])),
        "covariance": np.zeros(36, dtype=np.float64),
    }
