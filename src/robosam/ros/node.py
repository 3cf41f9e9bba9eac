"""The robosam ROS 2 node: ``python -m robosam.ros.node --ros-args --params-file params.yaml``.

A thin rclpy layer over ``robosam.ros.pipeline.PerceptionPipeline``: subscriptions feed it, a worker
thread processes the newest frame (frames arriving while it works replace each other: dropped, never
queued), and publishers send what it returns. Topics (relative to the node's namespace):

- in: ``image_topic`` (sensor_msgs/Image), ``camera_info_topic``, ``depth_topic`` (16UC1 mm / 32FC1 m),
  ``~/prompts/boxes`` (vision_msgs/Detection2DArray), ``~/prompts/points`` (geometry_msgs/PointStamped),
  ``~/prompts/text`` (std_msgs/String, with the ``detector`` parameter: every match becomes an object);
- out: ``~/labels`` (mono8/mono16 object ids), ``~/overlay`` (rgb8), ``~/detections``
  (vision_msgs/Detection2DArray with track ids and scores), and with depth ``~/poses``, ``~/cloud``,
  ``~/grasps``, each stamped with the colour image's header;
- services: ``~/add_objects``, ``~/remove_object`` (robosam_interfaces, modelled on Isaac ROS's AddObjects /
  RemoveObject; build ``robosam/ros/interfaces/robosam_interfaces`` in your workspace) and ``~/reset``
  (std_srvs/Trigger).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import fields
from typing import Any

from robosam.ros.pipeline import LatestFrame, NodeParameters, PerceptionPipeline, load_frame_model

ROS_MISSING = (
    "robosam.ros.node needs ROS 2 (rclpy, sensor_msgs, vision_msgs, geometry_msgs, std_srvs): source your ROS 2 "
    "setup (e.g. /opt/ros/humble/setup.bash) first; offline bags work without ROS: robosam bag --help"
)


def import_ros() -> dict[str, Any]:
    """The ROS modules the node uses; ``SystemExit`` with one line where ROS 2 is not installed."""
    try:
        import rclpy
        from geometry_msgs.msg import PointStamped, PoseArray
        from rclpy.node import Node
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2
        from std_msgs.msg import String
        from std_srvs.srv import Trigger
        from vision_msgs.msg import Detection2DArray
    except ImportError:
        raise SystemExit(f"robosam: error: {ROS_MISSING}") from None
    try:
        from robosam_interfaces.srv import AddObjects, RemoveObject
    except ImportError:
        AddObjects = RemoveObject = None  # noqa: N806 - message class names
    return dict(
        rclpy=rclpy, Node=Node, Image=Image, CameraInfo=CameraInfo, PointCloud2=PointCloud2,
        PoseArray=PoseArray, PointStamped=PointStamped, Detection2DArray=Detection2DArray, Trigger=Trigger, String=String,
        AddObjects=AddObjects, RemoveObject=RemoveObject,
    )  # fmt: skip


def to_ros(message_class: Any, tree: dict[str, Any]) -> Any:
    """A field tree (robosam.ros.messages) to an rclpy message, nested messages and sequences included."""
    message = message_class()
    for name, value in tree.items():
        current = getattr(message, name)
        if isinstance(value, dict):
            value = to_ros(type(current), value)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            item_class = _sequence_item_class(message_class, name)
            value = [to_ros(item_class, item) for item in value]
        elif hasattr(value, "tobytes") and name == "data":
            value = value.tobytes()
        elif hasattr(value, "tolist"):
            value = value.tolist()
        setattr(message, name, value)
    return message


def _sequence_item_class(message_class: Any, name: str) -> Any:
    import importlib

    type_name = message_class.get_fields_and_field_types()[name]  # e.g. "sequence<vision_msgs/Detection2D>"
    package, _, item = type_name[type_name.index("<") + 1 : type_name.rindex(">")].partition("/")
    return getattr(importlib.import_module(f"{package}.msg"), item)


def main(argv: list[str] | None = None) -> None:
    ros = import_ros()
    rclpy = ros["rclpy"]
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = ros["Node"]("robosam")
    defaults = NodeParameters()
    for f in fields(NodeParameters):
        node.declare_parameter(f.name, getattr(defaults, f.name))
    params = NodeParameters.from_dict(
        {f.name: node.get_parameter(f.name).value for f in fields(NodeParameters)}
    )
    model = load_frame_model(params.model, params.device)
    detector = None
    if params.detector:
        from robosam.grounding import load_detector

        detector = load_detector(params.detector, device=params.device)
    pipeline = PerceptionPipeline(model, params, detector)
    frames = LatestFrame()
    pubs = {
        name: node.create_publisher(ros[kind], f"~/{name}", 1)
        for name, kind in (
            ("labels", "Image"), ("overlay", "Image"), ("detections", "Detection2DArray"),
            ("poses", "PoseArray"), ("cloud", "PointCloud2"), ("grasps", "PoseArray"),
        )
    }  # fmt: skip
    node.create_subscription(ros["Image"], params.image_topic, frames.put, 1)
    node.create_subscription(ros["CameraInfo"], params.camera_info_topic, pipeline.on_camera_info, 1)
    if params.depth_topic:
        node.create_subscription(ros["Image"], params.depth_topic, pipeline.on_depth, 5)
    node.create_subscription(ros["Detection2DArray"], "~/prompts/boxes", pipeline.on_detections, 10)
    node.create_subscription(ros["PointStamped"], "~/prompts/points", pipeline.on_click, 10)
    if detector is not None:
        node.create_subscription(ros["String"], "~/prompts/text", pipeline.on_text, 10)
    _add_services(node, ros, pipeline)

    def work() -> None:
        while rclpy.ok():
            msg = frames.take(timeout=0.5)
            if msg is None:
                continue
            try:
                out = pipeline.on_image(msg)
            except ValueError as error:  # a bad frame is reported and skipped; the node goes on
                node.get_logger().warning(f"frame skipped: {error}")
                continue
            if out is None:
                continue
            pubs["labels"].publish(to_ros(ros["Image"], out.label_image))
            pubs["overlay"].publish(to_ros(ros["Image"], out.overlay))
            pubs["detections"].publish(to_ros(ros["Detection2DArray"], out.detections))
            for name, kind in (("poses", "PoseArray"), ("cloud", "PointCloud2"), ("grasps", "PoseArray")):
                tree = getattr(out, name)
                if tree is not None:
                    pubs[name].publish(to_ros(ros[kind], tree))

    threading.Thread(target=work, daemon=True).start()
    node.get_logger().info(f"robosam node up: model {params.model}, images from {params.image_topic}")
    try:
        rclpy.spin(node)
    finally:
        node.get_logger().info(f"processed {pipeline.processed} frames, dropped {frames.dropped}")
        node.destroy_node()
        rclpy.shutdown()


def _add_services(node: Any, ros: dict[str, Any], pipeline: PerceptionPipeline) -> None:
    def reset(request, response):
        pipeline.reset()
        response.success, response.message = True, "all objects removed"
        return response

    node.create_service(ros["Trigger"], "~/reset", reset)
    if ros["AddObjects"] is None:
        node.get_logger().warning(
            "robosam_interfaces not built: add/remove objects through ~/prompts/* topics"
        )
        return

    def add_objects(request, response):
        try:
            ids = [int(i) for i in request.object_ids] or None
            if request.bbox_objects:
                boxes = [
                    (b.center.position.x - b.size_x / 2, b.center.position.y - b.size_y / 2,
                     b.center.position.x + b.size_x / 2, b.center.position.y + b.size_y / 2)
                    for b in request.bbox_objects
                ]  # fmt: skip
                added = pipeline.add_objects(ids=ids, boxes=boxes)
            else:
                points, labels, start = [], [], 0
                for count in request.point_counts:
                    points.append([(p.x, p.y) for p in request.point_coords[start : start + count]])
                    labels.append(list(request.point_labels[start : start + count]))
                    start += count
                added = [pipeline.add_objects(ids=[i] if ids else None, points=[p], labels=[lab])[0]
                         for i, p, lab in zip(ids or [None] * len(points), points, labels)]  # fmt: skip
            response.success, response.object_ids = True, [str(i) for i in added]
        except ValueError as error:
            response.success, response.message = False, str(error)
        return response

    def remove_object(request, response):
        try:
            pipeline.remove_object(int(request.object_id))
            response.success = True
        except ValueError as error:
            response.success, response.message = False, str(error)
        return response

    node.create_service(ros["AddObjects"], "~/add_objects", add_objects)
    node.create_service(ros["RemoveObject"], "~/remove_object", remove_object)


if __name__ == "__main__":
    main()
