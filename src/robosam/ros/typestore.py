"""A rosbags type store for ROS 2 Humble with ``vision_msgs`` added, and field trees to messages.

``vision_msgs`` (Detection2DArray and what it holds) is not among rosbags' built-in types: its definitions
(vision_msgs 4.x, as shipped with ROS 2 Humble and later) are registered here so bags carry real, typed
detection messages that ``ros2 bag play`` and rviz read.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

VISION_MSGS = {
    "vision_msgs/msg/Point2D": "float64 x\nfloat64 y\n",
    "vision_msgs/msg/Pose2D": "vision_msgs/Point2D position\nfloat64 theta\n",
    "vision_msgs/msg/BoundingBox2D": "vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n",
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/ObjectHypothesisWithPose": (
        "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n"
    ),
    "vision_msgs/msg/Detection2D": (
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\n"
        "vision_msgs/BoundingBox2D bbox\nstring id\n"
    ),
    "vision_msgs/msg/Detection2DArray": "std_msgs/Header header\nvision_msgs/Detection2D[] detections\n",
}


@cache
def ros2_typestore() -> Any:
    """rosbags' ROS 2 Humble type store plus ``vision_msgs`` (built once)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    types: dict[str, Any] = {}
    for name, text in VISION_MSGS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def build(store: Any, msgtype: str, fields: dict[str, Any]) -> Any:
    """A field tree (``robosam.ros.messages``) to a rosbags message of ``msgtype``, nested types included."""
    _, definitions = store.fielddefs[msgtype]
    values = {}
    for name, (node_type, spec) in definitions:
        value = fields[name]
        values[name] = _build_value(store, node_type.name, spec, value)
    return store.types[msgtype](**values)


def _build_value(store: Any, node: str, spec: Any, value: Any) -> Any:
    if node == "NAME":
        return build(store, spec, value)
    if node in ("SEQUENCE", "ARRAY"):
        (inner_node, inner_spec), _ = spec
        if inner_node.name == "NAME":
            return [build(store, inner_spec, v) for v in value]
        return np.asarray(value, dtype=_numpy_type(inner_spec[0]))
    return value


def _numpy_type(ros_type: str) -> str:
    return {"bool": "bool", "byte": "uint8", "char": "uint8", "float32": "float32", "float64": "float64"}.get(
        ros_type, ros_type
    )
