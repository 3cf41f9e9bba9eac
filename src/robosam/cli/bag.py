"""`robosam bag`: segment or track prompted objects through a recorded ROS 2 bag, offline."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated

import numpy as np
import typer

from robosam.cli.options import (
    DEFAULT_MODEL,
    DeviceOption,
    ModelOption,
    console,
    parse_numbers,
    progress_bar,
    spinner,
)
from robosam.errors import InputError


def bag(
    in_bag: Annotated[Path, typer.Argument(help="ROS 2 bag folder (sqlite3 or mcap).")],
    out_bag: Annotated[
        Path, typer.Argument(help="New bag folder: every input topic plus robosam's outputs.")
    ],
    image_topic: Annotated[str, typer.Option("--image-topic", help="sensor_msgs/Image colour topic.")],
    point: Annotated[
        list[str] | None,
        typer.Option("--point", "-p", help="x,y (or x,y,label) on the first frame; one object each."),
    ] = None,
    box: Annotated[
        list[str] | None, typer.Option("--box", "-b", help="x1,y1,x2,y2 on the first frame.")
    ] = None,
    text: Annotated[
        str | None,
        typer.Option("--text", help="Phrases ('cup. bowl'): every match on the first frame is an object."),
    ] = None,
    detector: Annotated[
        str,
        typer.Option("--detector", help="Open-vocabulary detector for --text (preset, hub id or folder)."),
    ] = "grounding-dino-tiny",
    depth_topic: Annotated[
        str | None,
        typer.Option("--depth-topic", help="Aligned depth (16UC1 mm / 32FC1 m): 3D poses and grasps."),
    ] = None,
    camera_info_topic: Annotated[
        str | None, typer.Option("--camera-info-topic", help="sensor_msgs/CameraInfo of the colour camera.")
    ] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", help="Output storage: sqlite3 or mcap [default: the input's].")
    ] = None,
    max_rate_hz: Annotated[
        float, typer.Option("--max-rate", help="Process at most this many frames/s (0: all).")
    ] = 0.0,
    rerun: Annotated[
        Path | None,
        typer.Option("--rerun", help="Also log images, masks, points, poses and grasps to FILE.rrd."),
    ] = None,
    model: ModelOption = DEFAULT_MODEL,
    device: DeviceOption = "auto",
) -> None:
    """Track the prompted objects from the first frame through a ROS 2 bag and write a new bag.

    Adds /robosam/labels (object-id image), /robosam/overlay, /robosam/detections (vision_msgs, track ids)
    and, with --depth-topic and --camera-info-topic, /robosam/poses, /robosam/cloud and /robosam/grasps,
    stamped like each frame. A video-family model (SAM 2, SAM 3 tracker, EdgeTAM) tracks with flat memory;
    an image-only model segments every frame with the same prompts. Needs `pip install robosam[ros]`.

    Example: robosam bag recording/ out/tracked --image-topic /camera/color/image_raw --box 100,80,300,260

    Example: robosam bag recording/ out/cups --image-topic /camera/color/image_raw --text "red cup"
    """
    from robosam.recording import RerunRecording

    if rerun is not None:
        RerunRecording.check_path(rerun)
    try:
        from robosam.ros.bag import open_storage, process_bag
        from robosam.ros.pipeline import NodeParameters, PerceptionPipeline, load_frame_model
    except ImportError:
        raise InputError("robosam bag", "the rosbags package (pip install robosam[ros])", None) from None

    boxes = [parse_numbers(value, (4,), "--box") for value in box or []]
    points = []
    for value in point or []:
        values = parse_numbers(value, (2, 3), "--point")
        points.append((values[:2], int(values[2]) if len(values) == 3 else 1))
    if not boxes and not points and text is None:
        raise InputError(
            "--point/--box/--text", "at least one --point x,y, --box x1,y1,x2,y2 or --text", None
        )
    if text is not None:
        from robosam.grounding.base import parse_phrases

        parse_phrases(text, argument="--text")
    if (depth_topic is None) != (camera_info_topic is None):
        raise InputError("--depth-topic/--camera-info-topic", "both (for 3D outputs) or neither", None)
    open_storage(in_bag)
    if out_bag.exists():
        raise InputError("OUT_BAG", "a path that does not exist yet", str(out_bag))
    params = NodeParameters.from_dict(
        {"model": model, "device": device, "image_topic": image_topic, "depth_topic": depth_topic or "",
         "camera_info_topic": camera_info_topic or "", "max_rate_hz": max_rate_hz}
    )  # fmt: skip
    with spinner(f"loading {model}"):
        found = None
        if text is not None:
            from robosam.grounding import load_detector

            found = load_detector(detector, device=device)
        pipeline = PerceptionPipeline(load_frame_model(model, device), params, found)
    if text is not None:
        pipeline.on_text(SimpleNamespace(data=text))
    if boxes:
        pipeline.add_objects(boxes=boxes)
    for xy, label in points:
        pipeline.add_objects(points=[[xy]], labels=[[label]])
    total = _message_count(in_bag)
    with progress_bar() as progress, contextlib.ExitStack() as stack:
        recording = stack.enter_context(RerunRecording(rerun)) if rerun is not None else None
        task = progress.add_task("messages", total=total)
        report = process_bag(
            in_bag, out_bag, pipeline, image_topic, depth_topic, camera_info_topic, storage,
            on_message=lambda n: progress.update(task, completed=n),
            on_frame=None if recording is None else lambda out: _log_frame(recording, out),
        )  # fmt: skip
    for line in report.skipped:
        console.print(f"skipped {line}")
    written = ", ".join(f"{topic} {n}" for topic, n in sorted(report.written.items()))
    console.print(
        f"{report.frames} frames processed, {report.copied} messages copied; wrote {written} to {out_bag}"
    )


def _log_frame(recording, out) -> None:
    from robosam.ros.messages import stamp_seconds

    frame = getattr(recording, "frames_logged", 0)
    recording.frames_logged = frame + 1
    recording.set_frame(frame, stamp_seconds(out.header))
    ids = out.object_ids
    masks = np.stack([out.tracks[i].mask for i in ids]) if ids else None
    boxes = np.stack([out.tracks[i].box for i in ids]) if ids else None
    recording.log_image(out.rgb, masks, ids, boxes)
    for obj_id, found in out.objects_3d.items():
        recording.log_points(found.cloud.points, found.cloud.colors, name=f"world/points/{obj_id}")
        recording.log_object(obj_id, found.pose)
        recording.log_grasps(found.grasps[:3], name=f"world/grasps/{obj_id}")


def _message_count(path: Path) -> int | None:
    from rosbags.highlevel import AnyReader

    with AnyReader([path]) as reader:
        return int(reader.message_count)
