"""The ROS node's logic as plain classes over message-like data: tested without ROS, used by the rclpy node
(``robosam.ros.node``) and the offline bag processor (``robosam.ros.bag``) alike.

Prompts (boxes from ``vision_msgs/Detection2DArray``, clicks from ``geometry_msgs/PointStamped``, service
calls) wait in a ``PromptBook`` and apply to the next frame; a ``FrameSegmenter`` turns each frame into
``{obj_id: Track}`` (the live tracker with flat memory for video families, the same prompts on every frame for
image-only models); ``PerceptionPipeline`` assembles the outputs, stamped with the input's header.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.masks import mask_to_box
from robosam.results import Track
from robosam.ros import messages as msgs
from robosam.visualize import draw_masks


@dataclass
class NodeParameters:
    """The node's ROS parameters, with the defaults of ``robosam/ros/params.yaml``.

    depth_topic: empty for no depth (no 3D outputs). detector: an open-vocabulary detector preset (e.g.
    ``grounding-dino-tiny``) for text prompts; empty for none. max_rate_hz: 0 processes every frame it can, dropping
    frames that arrive while busy; above 0 also skips frames closer than 1 / max_rate_hz in stamp time.
    sync_slop_s: largest stamp difference for pairing a depth image with a colour image.
    """

    model: str = "sam2.1-hiera-tiny"
    device: str = "auto"
    image_topic: str = "/camera/color/image_raw"
    camera_info_topic: str = "/camera/color/camera_info"
    depth_topic: str = ""
    max_objects: int = 16
    max_rate_hz: float = 0.0
    publish_3d: bool = True
    gripper_width: float = 0.08
    sync_slop_s: float = 0.05
    detector: str = ""
    box_threshold: float = 0.3
    text_threshold: float = 0.25

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NodeParameters:
        """From a dict (a parameters YAML's ``ros__parameters``); unknown names are an ``InputError``."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InputError("parameters", f"known names ({', '.join(known)})", unknown)
        params = cls(**{k: type(getattr(cls(), k))(v) for k, v in values.items()})
        if params.max_objects < 1:
            raise InputError("max_objects", "a positive number of objects", params.max_objects)
        if params.max_rate_hz < 0 or params.sync_slop_s < 0:
            raise InputError(
                "max_rate_hz/sync_slop_s", "non-negative numbers", (params.max_rate_hz, params.sync_slop_s)
            )
        return params


@dataclass
class ObjectPrompt:
    """A prompt for one object: points (P, 2) with labels (P,), a box (4,) ``x1, y1, x2, y2``, or a mask."""

    obj_id: int
    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask: np.ndarray | None = None


class PromptBook:
    """Objects to track: new prompts wait here and apply to the next frame; ids are positive integers."""

    def __init__(self, max_objects: int):
        self.max_objects = max_objects
        self.pending: list[ObjectPrompt] = []
        self.active: dict[int, ObjectPrompt] = {}
        self.removed: list[int] = []
        self.reset_requested = False
        self._lock = threading.Lock()

    def add(self, prompt: ObjectPrompt) -> int:
        """Queue a prompt; returns its object id. Raises ``InputError`` beyond ``max_objects``."""
        if prompt.obj_id < 1:
            raise InputError("obj_id", "a positive object id (0 is background)", prompt.obj_id)
        with self._lock:
            known = set(self.active) | {p.obj_id for p in self.pending}
            if prompt.obj_id not in known and len(known) >= self.max_objects:
                raise InputError("objects", f"at most max_objects={self.max_objects} objects", len(known) + 1)
            self.pending.append(prompt)
        return prompt.obj_id

    def next_id(self) -> int:
        with self._lock:
            return max([0, *self.active, *(p.obj_id for p in self.pending)]) + 1

    def remove(self, obj_id: int) -> None:
        with self._lock:
            if obj_id not in self.active and all(p.obj_id != obj_id for p in self.pending):
                raise InputError("obj_id", f"a tracked object ({sorted(self.active)})", obj_id)
            self.pending = [p for p in self.pending if p.obj_id != obj_id]
            if self.active.pop(obj_id, None) is not None:
                self.removed.append(obj_id)

    def reset(self) -> None:
        with self._lock:
            self.pending, self.active, self.removed = [], {}, []
            self.reset_requested = True

    def take(self) -> tuple[list[ObjectPrompt], list[int], bool]:
        """(prompts to apply now, ids removed since, whether a reset was asked for); marks prompts active."""
        with self._lock:
            pending, removed, reset = self.pending, self.removed, self.reset_requested
            self.pending, self.removed, self.reset_requested = [], [], False
            for prompt in pending:
                self.active[prompt.obj_id] = prompt
            return pending, removed, reset


def load_frame_model(model: str, device: str = "auto") -> Any:
    """The live video tracker for a model with a video form (a tracker preset, or a folder holding a video
    model), else an image ``Segmenter`` that segments every frame with the same prompts."""
    import json
    from pathlib import Path

    from robosam.models import PRESETS

    folder_config = Path(model) / "config.json"
    if model in PRESETS:
        video = "tracker" in PRESETS[model].kinds
    elif folder_config.is_file():
        video = str(json.loads(folder_config.read_text()).get("model_type", "")).endswith("_video")
    else:
        video = False
    if video:
        from robosam.video import VideoTracker

        return VideoTracker(model, device=device)
    from robosam.segmenter import Segmenter

    return Segmenter(model, device=device)


class FrameSegmenter:
    """Frames in, ``{obj_id: Track}`` out, from the prompts of a ``PromptBook``.

    With a video tracker (``robosam.video.VideoTracker``) objects are tracked by its live mode (flat
    memory); with an image ``Segmenter`` every active object is segmented on every frame with its prompt.
    """

    def __init__(self, model: Any):
        self.model = model
        self._live = None

    @property
    def tracking(self) -> bool:
        return hasattr(self.model, "stream")

    def step(self, rgb: np.ndarray, book: PromptBook) -> dict[int, Track]:
        prompts, removed, reset = book.take()
        if self.tracking:
            return self._track(rgb, prompts, removed, reset, book)
        return self._segment(rgb, book)

    def _track(self, rgb, prompts, removed, reset, book) -> dict[int, Track]:
        if self._live is None or reset:
            self._live = self.model.stream()
        for obj_id in removed:
            self._live.remove(obj_id)
        for p in prompts:
            self._live.add(obj_id=p.obj_id, points=p.points, labels=p.labels, box=p.box, mask=p.mask)
        if not book.active:
            return {}
        return dict(self._live.step(rgb))

    def _segment(self, rgb: np.ndarray, book: PromptBook) -> dict[int, Track]:
        active = dict(book.active)
        if not active:
            return {}
        embedding = self.model.embed(rgb)
        tracks = {}
        for obj_id, p in active.items():
            result = self.model.decode(
                embedding, points=p.points, labels=p.labels, box=p.box, multimask=p.box is None
            ).best()
            mask = result.masks[0]
            tracks[obj_id] = Track(
                obj_id=obj_id,
                mask=mask,
                score=float(result.scores[0]),
                presence=1.0 if mask.any() else 0.0,
                visible=bool(mask.any()),
                box=mask_to_box(mask),
            )
        return tracks


@dataclass
class NodeOutputs:
    """Field trees for every output topic of one frame, all stamped with the input image's header.

    label_image: mono8 / mono16 object ids; overlay: rgb8; detections: Detection2DArray (track ids, scores);
    with depth and camera info: poses (PoseArray, one per object in ``object_ids`` order), cloud (one
    PointCloud2 of every object's points, camera frame) and grasps (PoseArray, best grasp first per object).
    """

    header: Any
    tracks: dict[int, Track]
    label_image: msgs.Fields
    overlay: msgs.Fields
    detections: msgs.Fields
    poses: msgs.Fields | None = None
    cloud: msgs.Fields | None = None
    grasps: msgs.Fields | None = None
    object_ids: list[int] = field(default_factory=list)
    skipped_3d: dict[int, str] = field(default_factory=dict)
    rgb: np.ndarray | None = field(default=None, repr=False)
    objects_3d: dict[int, Any] = field(default_factory=dict)  # obj_id -> geometry ObjectGrasps


class RateLimiter:
    """Lets a frame through when at least ``1 / max_rate_hz`` seconds of stamp time passed since the last."""

    def __init__(self, max_rate_hz: float):
        self.period = 1.0 / max_rate_hz if max_rate_hz > 0 else 0.0
        self.last: float | None = None

    def allow(self, stamp_s: float) -> bool:
        if self.last is not None and stamp_s < self.last:  # the clock went back (bag loop): start over
            self.last = None
        if self.last is not None and stamp_s - self.last < self.period - 1e-9:
            return False
        self.last = stamp_s
        return True


class LatestFrame:
    """A one-slot mailbox between the image callback and the worker: a new frame replaces one not yet taken
    (dropped, counted), so the node never queues up behind a slow model."""

    def __init__(self) -> None:
        self._item: Any = None
        self._ready = threading.Condition()
        self.dropped = 0

    def put(self, item: Any) -> bool:
        """Store ``item``; True when it replaced an untaken frame."""
        with self._ready:
            replaced = self._item is not None
            self.dropped += int(replaced)
            self._item = item
            self._ready.notify()
            return replaced

    def take(self, timeout: float | None = None) -> Any:
        """The newest frame (None after ``timeout`` seconds without one)."""
        with self._ready:
            if self._item is None:
                self._ready.wait(timeout)
            item, self._item = self._item, None
            return item


class DepthSync:
    """Approximate time sync: keeps the last few depth images and pairs a colour stamp with the nearest one
    within ``slop_s``."""

    def __init__(self, slop_s: float, keep: int = 8):
        self.slop_s = slop_s
        self.keep = keep
        self._frames: list[tuple[float, Any]] = []

    def add(self, msg: Any) -> None:
        self._frames = [*self._frames, (msgs.stamp_seconds(msg.header), msg)][-self.keep :]

    def match(self, stamp_s: float) -> Any | None:
        if not self._frames:
            return None
        gap, msg = min(((abs(s - stamp_s), m) for s, m in self._frames), key=lambda pair: pair[0])
        return msg if gap <= self.slop_s else None


class PerceptionPipeline:
    """Everything the node does, without ROS: prompts in, stamped outputs out."""

    def __init__(self, model: Any, params: NodeParameters | None = None, detector: Any = None):
        self.params = params or NodeParameters()
        self.detector = detector
        self.pending_text: list[str] = []
        self.labels: dict[int, str] = {}
        self.book = PromptBook(self.params.max_objects)
        self.frames = FrameSegmenter(model)
        self.rate = RateLimiter(self.params.max_rate_hz)
        self.depth = DepthSync(self.params.sync_slop_s)
        self.intrinsics = None
        self.processed = 0
        self.skipped_by_rate = 0

    # prompts --------------------------------------------------------------------------------------
    def add_objects(
        self,
        ids: list[int] | None = None,
        boxes: Any = None,
        points: Any = None,
        labels: Any = None,
    ) -> list[int]:
        """Add objects (the AddObjects service): one per box (N, 4), or one per point group (N, P, 2) with
        labels (N, P). ``ids`` default to the next free ids. Returns the ids."""
        if (boxes is None) == (points is None):
            raise InputError("boxes/points", "either boxes or points (with labels) for each object", None)
        groups = np.asarray(boxes if boxes is not None else points, dtype=np.float32)
        if boxes is not None:
            groups = groups.reshape(-1, 4)
        elif groups.ndim == 2:
            groups = groups[:, None, :]
        count = len(groups)
        ids = list(ids) if ids is not None else []
        if ids and len(ids) != count:
            raise InputError("ids", f"one id per object ({count})", ids)
        added = []
        for index in range(count):
            obj_id = int(ids[index]) if ids else self.book.next_id()
            if boxes is not None:
                prompt = ObjectPrompt(obj_id, box=groups[index])
            else:
                label = np.ones(groups.shape[1], np.int64) if labels is None else np.asarray(labels)[index]
                prompt = ObjectPrompt(
                    obj_id, points=groups[index], labels=np.asarray(label, np.int64).reshape(-1)
                )
            added.append(self.book.add(prompt))
        return added

    def remove_object(self, obj_id: int) -> None:
        """The RemoveObject service."""
        self.book.remove(int(obj_id))

    def reset(self) -> None:
        """Forget every object (the Reset service)."""
        self.book.reset()
        self.labels = {}

    def on_detections(self, msg: Any) -> list[int]:
        """Boxes of a ``vision_msgs/Detection2DArray`` become objects (numeric ids kept, others new)."""
        ids, boxes = msgs.detections_to_boxes(msg)
        numeric = [int(i) if i.isdigit() and int(i) > 0 else None for i in ids]
        return [
            self.add_objects(ids=[obj_id] if obj_id else None, boxes=box[None])[0]
            for obj_id, box in zip(numeric, boxes)
        ]

    def on_text(self, msg: Any) -> list[str]:
        """A ``std_msgs/String`` such as ``"red cup. bowl"``: on the next frame the detector finds every match
        and each becomes an object, labelled with its phrase. Returns the phrases."""
        from robosam.grounding.base import parse_phrases

        if self.detector is None:
            raise InputError("text", "a detector for text prompts (parameter detector)", msg.data)
        self.pending_text = parse_phrases(str(msg.data))
        return self.pending_text

    def _detect_text(self, rgb: np.ndarray) -> None:
        phrases, self.pending_text = self.pending_text, []
        found = self.detector.detect(rgb, phrases, self.params.box_threshold, self.params.text_threshold)
        for box, label in zip(found.boxes, found.labels):
            (obj_id,) = self.add_objects(boxes=[box])
            self.labels[obj_id] = str(label)

    def on_click(self, msg: Any) -> int:
        """A ``geometry_msgs/PointStamped`` click (x, y pixels) becomes a new object."""
        return self.add_objects(points=[[[float(msg.point.x), float(msg.point.y)]]], labels=[[1]])[0]

    # sensors --------------------------------------------------------------------------------------
    def on_camera_info(self, msg: Any) -> None:
        self.intrinsics = msgs.camera_info_to_intrinsics(msg)

    def on_depth(self, msg: Any) -> None:
        self.depth.add(msg)

    def on_image(self, msg: Any, depth_msg: Any = None) -> NodeOutputs | None:
        """Process one colour frame; None when the rate limit skips it."""
        if not self.rate.allow(msgs.stamp_seconds(msg.header)):
            self.skipped_by_rate += 1
            return None
        rgb = msgs.image_to_rgb(msg)
        if self.pending_text:
            self._detect_text(rgb)
        tracks = self.frames.step(rgb, self.book)
        self.processed += 1
        if depth_msg is None and self.params.depth_topic:
            depth_msg = self.depth.match(msgs.stamp_seconds(msg.header))
        return self._outputs(msg.header, rgb, tracks, depth_msg)

    def _outputs(self, header: Any, rgb: np.ndarray, tracks: dict[int, Track], depth_msg: Any) -> NodeOutputs:
        ids = sorted(tracks)
        height, width = rgb.shape[:2]
        masks = np.stack([tracks[i].mask for i in ids]) if ids else np.zeros((0, height, width), bool)
        boxes = np.stack([tracks[i].box for i in ids]) if ids else np.zeros((0, 4), np.float32)
        scores = np.array([tracks[i].score for i in ids], np.float32)
        outputs = NodeOutputs(
            header=header,
            tracks=tracks,
            label_image=msgs.label_image_fields(masks, ids, header)
            if ids
            else msgs.image_fields(np.zeros((height, width), np.uint8), "mono8", header),
            overlay=msgs.image_fields(draw_masks(rgb, masks, boxes=None), "rgb8", header),
            detections=msgs.detections_fields(ids, boxes, scores, header, self.labels),
            object_ids=ids,
            rgb=rgb,
        )
        if self.params.publish_3d and depth_msg is not None and self.intrinsics is not None:
            self._add_3d(outputs, masks, ids, rgb, depth_msg)
        return outputs

    def _add_3d(
        self, outputs: NodeOutputs, masks: np.ndarray, ids: list[int], rgb: np.ndarray, depth_msg
    ) -> None:
        from robosam.geometry import grasp_from_mask

        depth, scale = msgs.depth_to_array(depth_msg)
        if depth.shape != rgb.shape[:2]:
            raise InputError("depth", f"an aligned depth image of {rgb.shape[1]}x{rgb.shape[0]}", depth)
        poses, grasps, points, colours = [], [], [], []
        for mask, obj_id in zip(masks, ids):
            if not outputs.tracks[obj_id].visible or not mask.any():
                outputs.skipped_3d[obj_id] = "not visible"
                continue
            try:
                found = grasp_from_mask(
                    mask, depth, self.intrinsics, scale, rgb=rgb, gripper_width=self.params.gripper_width
                )
            except InputError as error:
                outputs.skipped_3d[obj_id] = str(error)
                continue
            outputs.objects_3d[obj_id] = found
            poses.append((found.pose.center, found.pose.quaternion))
            grasps.extend((g.position, g.quaternion) for g in found.grasps[:1])
            points.append(found.cloud.points)
            colours.append(found.cloud.colors)
        header = outputs.header
        outputs.poses = msgs.pose_array_fields(poses, header)
        outputs.grasps = msgs.pose_array_fields(grasps, header)
        cloud = np.concatenate(points) if points else np.zeros((0, 3), np.float32)
        colour = np.concatenate(colours) if colours else np.zeros((0, 3), np.uint8)
        outputs.cloud = msgs.pointcloud2_fields(cloud, colour, header)
