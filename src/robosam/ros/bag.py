"""Offline: a recorded ROS 2 bag (sqlite3 or mcap) in, the same bag plus robosam's outputs out.

Runs the node's own pipeline (``PerceptionPipeline``) over the bag's messages in time order, with the
``rosbags`` library (``robosam[ros]``): no ROS installation needed. Every input message is copied; each
processed colour frame adds ``/robosam/labels``, ``/robosam/overlay``, ``/robosam/detections`` and, with
depth and camera info, ``/robosam/poses``, ``/robosam/cloud`` and ``/robosam/grasps``, stamped like the frame
and logged at its time.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robosam.errors import InputError
from robosam.ros import messages as msgs
from robosam.ros.pipeline import NodeOutputs, PerceptionPipeline
from robosam.ros.typestore import build, ros2_typestore

OUTPUT_TOPICS = {
    "label_image": ("/robosam/labels", "sensor_msgs/msg/Image"),
    "overlay": ("/robosam/overlay", "sensor_msgs/msg/Image"),
    "detections": ("/robosam/detections", "vision_msgs/msg/Detection2DArray"),
    "poses": ("/robosam/poses", "geometry_msgs/msg/PoseArray"),
    "cloud": ("/robosam/cloud", "sensor_msgs/msg/PointCloud2"),
    "grasps": ("/robosam/grasps", "geometry_msgs/msg/PoseArray"),
}


@dataclass
class BagReport:
    """What a run did: frames processed, messages copied and written per output topic, frames skipped."""

    frames: int = 0
    copied: int = 0
    written: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def open_storage(path: Path) -> str:
    """``mcap`` or ``sqlite3``: the storage of an existing ROS 2 bag folder."""
    if not path.is_dir() or not (path / "metadata.yaml").is_file():
        raise InputError("IN_BAG", "a ROS 2 bag folder (with metadata.yaml)", str(path))
    return "mcap" if any(path.glob("*.mcap")) else "sqlite3"


def process_bag(
    in_bag: str | os.PathLike,
    out_bag: str | os.PathLike,
    pipeline: PerceptionPipeline,
    image_topic: str,
    depth_topic: str | None = None,
    camera_info_topic: str | None = None,
    storage: str | None = None,
    on_message: Callable[[int], None] | None = None,
    on_frame: Callable[[NodeOutputs], None] | None = None,
) -> BagReport:
    """Run ``pipeline`` over ``in_bag`` and write ``out_bag`` (a new folder, written beside and renamed into
    place when complete). storage: ``sqlite3`` or ``mcap`` (default: the input's). ``on_message`` gets the
    count of messages read so far (for a progress bar); ``on_frame`` every processed frame's outputs."""
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import StoragePlugin, Writer

    in_path, out_path = Path(in_bag), Path(out_bag)
    storage = storage or open_storage(in_path)
    if storage not in ("sqlite3", "mcap"):
        raise InputError("storage", "sqlite3 or mcap", storage)
    if out_path.exists():
        raise InputError("OUT_BAG", "a path that does not exist yet", str(out_path))
    store = ros2_typestore()
    staging = out_path.with_name(f".{out_path.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    report = BagReport()
    with AnyReader([in_path], default_typestore=store) as reader:
        topics = {c.topic for c in reader.connections}
        for name, topic in (("--image-topic", image_topic), ("--depth-topic", depth_topic),
                            ("--camera-info-topic", camera_info_topic)):  # fmt: skip
            if topic and topic not in topics:
                raise InputError(name, f"a topic of the bag ({', '.join(sorted(topics))})", topic)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        try:
            with Writer(staging, version=9, storage_plugin=plugin) as writer:
                copies = {
                    c.id: writer.add_connection(
                        c.topic, c.msgtype, typestore=store, serialization_format="cdr"
                    )
                    for c in reader.connections
                }
                run = _Run(pipeline, writer, store, report, depth_topic, on_frame)
                for count, (connection, timestamp, raw) in enumerate(reader.messages(), 1):
                    writer.write(copies[connection.id], timestamp, raw)
                    report.copied += 1
                    if connection.topic == camera_info_topic:
                        pipeline.on_camera_info(reader.deserialize(raw, connection.msgtype))
                    elif connection.topic == depth_topic:
                        pipeline.on_depth(reader.deserialize(raw, connection.msgtype))
                    elif connection.topic == image_topic:
                        run.pending.append((timestamp, reader.deserialize(raw, connection.msgtype)))
                    run.flush(now_ns=timestamp)
                    if on_message is not None:
                        on_message(count)
                run.flush(now_ns=None)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    staging.rename(out_path)
    return report


class _Run:
    """Colour frames waiting for their depth, and the output connections of one bag run."""

    def __init__(self, pipeline, writer, store, report: BagReport, depth_topic, on_frame) -> None:
        self.pipeline, self.writer, self.store, self.report = pipeline, writer, store, report
        self.depth_topic, self.on_frame = depth_topic, on_frame
        self.pending: list[tuple[int, Any]] = []
        self.outputs: dict[str, Any] = {}  # output connections, added when first written

    def flush(self, now_ns: int | None) -> None:
        """Process the waiting frames whose depth has arrived, or can no longer arrive (logged more than the
        sync window ago, or ``now_ns`` None at the end of the bag)."""
        slop_ns = int(self.pipeline.params.sync_slop_s * 1e9)
        waiting = []
        for timestamp, image in self.pending:
            depth = self.pipeline.depth.match(msgs.stamp_seconds(image.header)) if self.depth_topic else None
            if self.depth_topic and depth is None and now_ns is not None and now_ns - timestamp <= slop_ns:
                waiting.append((timestamp, image))
                continue
            try:
                out = self.pipeline.on_image(image, depth)
            except InputError as error:  # a bad frame is reported and skipped; the run goes on
                self.report.skipped.append(f"frame at {timestamp} ns: {error}")
                continue
            if out is not None:
                self.report.frames += 1
                self.write(out, timestamp)
                if self.on_frame is not None:
                    self.on_frame(out)
        self.pending = waiting

    def write(self, out: NodeOutputs, timestamp: int) -> None:
        for key, (topic, msgtype) in OUTPUT_TOPICS.items():
            tree = getattr(out, key)
            if tree is None:
                continue
            if key not in self.outputs:
                self.outputs[key] = self.writer.add_connection(topic, msgtype, typestore=self.store)
            message = build(self.store, msgtype, tree)
            self.writer.write(self.outputs[key], timestamp, self.store.serialize_cdr(message, msgtype))
            self.report.written[topic] = self.report.written.get(topic, 0) + 1
