"""ROS 2 without ROS: message conversions both ways, the node's logic on scripted sequences, and real bag
files (sqlite3 and mcap, written and read with rosbags) processed by `robosam bag`."""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from types import SimpleNamespace as Msg

import numpy as np
import pytest
from helpers import require_peer, run_cli
from PIL import Image

from robosam.errors import InputError
from robosam.geometry import CameraIntrinsics, grasp_from_mask
from robosam.ros import messages as msgs
from robosam.ros.pipeline import LatestFrame, NodeParameters, PerceptionPipeline, RateLimiter
from robosam.segmenter import Segmenter

TABLETOP = Path(__file__).resolve().parent.parent / "examples" / "tabletop"
rosbags = require_peer("rosbags")


def header(sec: int, nanosec: int = 0, frame_id: str = "camera_color_optical_frame") -> Msg:
    return Msg(stamp=Msg(sec=sec, nanosec=nanosec), frame_id=frame_id)


def as_msg(tree):
    """A field tree as attribute objects (what rclpy or rosbags hand the node)."""
    if isinstance(tree, dict):
        return Msg(**{k: as_msg(v) for k, v in tree.items()})
    if isinstance(tree, list):
        return [as_msg(v) for v in tree]
    return tree


# --- conversions ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "16UC1", "32FC1", "rgba8"])
def test_image_encodings_round_trip(encoding):
    rng = np.random.default_rng(0)
    kind, channels = msgs.IMAGE_ENCODINGS[encoding]
    shape = (5, 7) if channels == 1 else (5, 7, channels)
    array = (rng.random(shape) * 60000).astype(kind) if kind != "f4" else rng.random(shape).astype(np.float32)
    fields = msgs.image_fields(array, encoding, header(3))
    assert fields["step"] == 7 * channels * np.dtype(kind).itemsize and fields["is_bigendian"] == 0
    back = msgs.image_to_array(as_msg(fields))
    np.testing.assert_array_equal(back, array)
    if encoding in ("rgb8", "bgr8"):
        rgb = msgs.image_to_rgb(as_msg(fields))
        np.testing.assert_array_equal(rgb, array if encoding == "rgb8" else array[:, :, ::-1])


def test_padded_rows_and_big_endian_depth_are_read():
    depth = np.array([[1000, 2000, 3000], [4000, 5000, 65535]], dtype=np.uint16)
    row = depth.astype(">u2").tobytes()
    padded = b"".join(row[i * 6 : (i + 1) * 6] + b"\0\0" for i in range(2))  # step 8 for 6 bytes of pixels
    msg = Msg(header=header(1), height=2, width=3, encoding="16UC1", is_bigendian=1, step=8, data=padded)
    values, scale = msgs.depth_to_array(msg)
    np.testing.assert_array_equal(values, depth)
    assert scale == 0.001  # REP 118: 16UC1 is millimetres
    metres = Msg(**{**vars(msg), **msgs.image_fields(depth.astype(np.float32) / 1000, "32FC1", header(1))})
    assert msgs.depth_to_array(metres)[1] == 1.0
    with pytest.raises(InputError, match="^image: expected 2 rows of 8 bytes"):
        msgs.image_to_array(Msg(**{**vars(msg), "data": padded[:10]}))
    with pytest.raises(InputError, match="^depth: expected a depth image in 16UC1"):
        msgs.depth_to_array(Msg(**{**vars(msg), "encoding": "rgb8"}))


def test_camera_info_to_intrinsics():
    info = Msg(
        k=[500.0, 0.0, 320.5, 0.0, 501.0, 240.5, 0.0, 0.0, 1.0], d=[0.1, -0.05, 0.0, 0.0, 0.0],
        width=640, height=480, distortion_model="plumb_bob",
    )  # fmt: skip
    camera = msgs.camera_info_to_intrinsics(info)
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (500.0, 501.0, 320.5, 240.5)
    assert camera.shape == (480, 640) and camera.distortion[:2] == (0.1, -0.05)


def test_detections_both_ways():
    fields = msgs.detections_fields([3, 300], np.array([[10, 20, 50, 80], [0, 0, 5, 5.0]]), np.array([0.9, 0.2]),
                                    header(2))  # fmt: skip
    first = fields["detections"][0]
    assert first["bbox"]["center"]["position"] == {"x": 30.0, "y": 50.0} and first["bbox"]["size_x"] == 40.0
    assert first["id"] == "3" and first["results"][0]["hypothesis"] == {"class_id": "3", "score": 0.9}
    ids, boxes = msgs.detections_to_boxes(as_msg(fields))
    assert ids == ["3", "300"]
    np.testing.assert_array_equal(boxes, [[10, 20, 50, 80], [0, 0, 5, 5]])


def test_label_image_uses_mono8_then_mono16():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :2], masks[1, 1:3, 1:3] = True, True
    small = msgs.label_image_fields(masks, [4, 9], header(1))
    assert small["encoding"] == "mono8"
    labels = msgs.image_to_array(as_msg(small))
    assert labels[0, 0] == 4 and labels[1, 1] == 9 and labels[3, 3] == 0  # later masks win on overlap
    big = msgs.label_image_fields(masks, [4, 700], header(1))
    assert big["encoding"] == "mono16" and msgs.image_to_array(as_msg(big))[2, 2] == 700
    with pytest.raises(InputError, match="^ids:"):
        msgs.label_image_fields(masks, [0, 1], header(1))


def test_pointcloud2_layout_is_pcl_xyzrgb():
    points = np.array([[0.5, -0.25, 1.0], [1.5, 2.0, 3.25]], np.float32)
    colours = np.array([[255, 128, 1], [0, 2, 3]], np.uint8)
    fields = msgs.pointcloud2_fields(points, colours, header(1))
    assert [(f["name"], f["offset"], f["datatype"]) for f in fields["fields"]] == [
        ("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("rgb", 12, 7),
    ]  # fmt: skip
    assert fields["point_step"] == 16 and fields["row_step"] == 32 and fields["width"] == 2
    # independent packing: little-endian floats, then 0x00RRGGBB as PCL writes rgb
    expected = b"".join(struct.pack("<fffI", *p, (c[0] << 16) | (c[1] << 8) | c[2]) for p, c in zip(points.tolist(),
                        colours.astype(int).tolist()))  # fmt: skip
    assert fields["data"].tobytes() == expected
    back, back_colours = msgs.pointcloud2_to_points(as_msg(fields))
    np.testing.assert_array_equal(back, points)
    np.testing.assert_array_equal(back_colours, colours)


def test_node_parameters_from_yaml_file():
    import yaml

    params_file = Path(__file__).resolve().parent.parent / "src" / "robosam" / "ros" / "params.yaml"
    values = yaml.safe_load(params_file.read_text())["robosam"]["ros__parameters"]
    params = NodeParameters.from_dict(values)
    assert params.depth_topic == "/camera/aligned_depth_to_color/image_raw" and params.max_objects == 16
    with pytest.raises(InputError, match="^parameters:"):
        NodeParameters.from_dict({"modle": "x"})
    with pytest.raises(InputError, match="^max_objects:"):
        NodeParameters.from_dict({"max_objects": 0})


# --- node logic ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tabletop():
    rgb = np.asarray(Image.open(TABLETOP / "color.png").convert("RGB"))
    depth = np.asarray(Image.open(TABLETOP / "depth.png")).astype(np.uint16)
    camera = CameraIntrinsics.from_file(TABLETOP / "camera.json")
    return rgb, depth, camera


@pytest.fixture(scope="module")
def segmenter(tiny_sam_dir) -> Segmenter:
    return Segmenter(tiny_sam_dir, device="cpu")


def camera_info_fields(camera: CameraIntrinsics, hdr) -> dict:
    return {
        "header": msgs.header_fields(hdr), "height": camera.height, "width": camera.width,
        "distortion_model": "plumb_bob", "d": np.zeros(5), "k": camera.K.reshape(-1),
        "r": np.eye(3).reshape(-1), "p": np.hstack([camera.K, np.zeros((3, 1))]).reshape(-1),
        "binning_x": 0, "binning_y": 0,
        "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False},
    }  # fmt: skip


def test_prompts_apply_to_the_next_frame_and_outputs_are_stamped_like_it(segmenter, tabletop):
    rgb, depth, camera = tabletop
    pipeline = PerceptionPipeline(segmenter, NodeParameters(depth_topic="/depth"))
    pipeline.on_camera_info(as_msg(camera_info_fields(camera, header(0))))
    first = pipeline.on_image(as_msg(msgs.image_fields(rgb, "rgb8", header(10, 5))))
    assert first.object_ids == [] and first.detections["detections"] == []
    box = (250.0, 150.0, 420.0, 330.0)
    assert pipeline.add_objects(boxes=[box]) == [1]
    assert pipeline.on_click(Msg(point=Msg(x=100.0, y=400.0, z=0.0))) == 2
    out = pipeline.on_image(as_msg(msgs.image_fields(rgb, "rgb8", header(11, 7))), as_msg(
        msgs.image_fields(depth, "16UC1", header(11, 7))))  # fmt: skip
    assert out.object_ids == [1, 2]
    for tree in (out.label_image, out.overlay, out.detections, out.poses, out.cloud, out.grasps):
        assert tree["header"] == {
            "stamp": {"sec": 11, "nanosec": 7},
            "frame_id": "camera_color_optical_frame",
        }
    # the label image holds exactly what the library segments for the same prompts
    expected = segmenter.decode(segmenter.embed(rgb), box=box, multimask=False).best().masks[0]
    labels = msgs.image_to_array(as_msg(out.label_image))
    box_pixels = labels == 1
    assert (box_pixels == (expected & ~out.tracks[2].mask)).all()
    # 3D of object 1 equals the geometry library on the same mask and depth (mm, REP 118)
    assert out.skipped_3d == {} and len(out.poses["poses"]) == 2 and len(out.grasps["poses"]) <= 2
    direct = grasp_from_mask(out.tracks[1].mask, depth, camera, rgb=rgb)
    pose = out.poses["poses"][0]
    assert np.allclose([pose["position"][k] for k in "xyz"], direct.pose.center, atol=1e-6)
    pipeline.remove_object(2)
    assert pipeline.on_image(as_msg(msgs.image_fields(rgb, "rgb8", header(12)))).object_ids == [1]
    pipeline.reset()
    assert pipeline.on_image(as_msg(msgs.image_fields(rgb, "rgb8", header(13)))).object_ids == []
    with pytest.raises(InputError, match="^obj_id:"):
        pipeline.remove_object(7)


def test_detection_prompts_keep_numeric_ids_and_limit_objects(segmenter):
    pipeline = PerceptionPipeline(segmenter, NodeParameters(max_objects=2))
    detections = msgs.detections_fields(
        [5, 6], np.array([[0, 0, 10, 10], [5, 5, 20, 20.0]]), np.ones(2), header(1)
    )
    assert pipeline.on_detections(as_msg(detections)) == [5, 6]
    with pytest.raises(InputError, match="^objects: expected at most max_objects=2"):
        pipeline.add_objects(boxes=[(1, 1, 9, 9)])


def test_rate_limit_and_frame_dropping():
    rate = RateLimiter(max_rate_hz=5.0)
    stamps = np.arange(0, 1.0, 0.1)
    assert [rate.allow(s) for s in stamps] == [True, False] * 5
    assert RateLimiter(0.0).allow(1.0) and RateLimiter(0.0).allow(1.0)
    slot = LatestFrame()
    assert slot.put("a") is False and slot.put("b") is True and slot.put("c") is True
    assert slot.take(timeout=0) == "c" and slot.dropped == 2 and slot.take(timeout=0) is None


def test_node_module_without_ros_says_so_in_one_line():
    import subprocess

    result = subprocess.run([sys.executable, "-m", "robosam.ros.node"], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("robosam: error: robosam.ros.node needs ROS 2")
    assert len(result.stderr.strip().splitlines()) == 1


# --- real bags -----------------------------------------------------------------------------------------------
def write_bag(path: Path, storage: str, tabletop, frames: int = 4, depth: bool = True) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer

    from robosam.ros.typestore import build, ros2_typestore

    rgb, depth_mm, camera = tabletop
    store = ros2_typestore()
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        image = writer.add_connection("/camera/color/image_raw", "sensor_msgs/msg/Image", typestore=store)
        info = writer.add_connection(
            "/camera/color/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store
        )
        aligned = (
            writer.add_connection("/camera/depth", "sensor_msgs/msg/Image", typestore=store)
            if depth
            else None
        )
        for i in range(frames):
            hdr = header(100 + i, 250_000_000)
            t = (100 + i) * 10**9 + 250_000_000
            writer.write(
                info,
                t,
                store.serialize_cdr(
                    build(store, "sensor_msgs/msg/CameraInfo", camera_info_fields(camera, hdr)),
                    "sensor_msgs/msg/CameraInfo",
                ),
            )
            shifted = np.roll(rgb, 3 * i, axis=1)
            writer.write(
                image,
                t + 1000,
                store.serialize_cdr(
                    build(store, "sensor_msgs/msg/Image", msgs.image_fields(shifted, "rgb8", hdr)),
                    "sensor_msgs/msg/Image",
                ),
            )
            if aligned is not None:  # depth logged just after its colour frame, same stamp
                writer.write(
                    aligned,
                    t + 2000,
                    store.serialize_cdr(
                        build(store, "sensor_msgs/msg/Image", msgs.image_fields(depth_mm, "16UC1", hdr)),
                        "sensor_msgs/msg/Image",
                    ),
                )
    # fmt: skip


def read_bag(path: Path) -> dict[str, list]:
    from rosbags.highlevel import AnyReader

    from robosam.ros.typestore import ros2_typestore

    out: dict[str, list] = {}
    with AnyReader([path], default_typestore=ros2_typestore()) as reader:
        for connection, timestamp, raw in reader.messages():
            out.setdefault(connection.topic, []).append(
                (timestamp, reader.deserialize(raw, connection.msgtype))
            )
    return out


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("with_depth", [True, False], ids=["depth", "no-depth"])
def test_robosam_bag_round_trip(tmp_path, tiny_sam_dir, tabletop, segmenter, storage, with_depth):
    in_bag, out_bag = tmp_path / "in", tmp_path / "out"
    write_bag(in_bag, storage, tabletop, depth=with_depth)
    args = ["bag", str(in_bag), str(out_bag), "--image-topic", "/camera/color/image_raw",
            "--box", "250,150,420,330", "--model", str(tiny_sam_dir), "--device", "cpu"]  # fmt: skip
    if with_depth:
        args += ["--depth-topic", "/camera/depth", "--camera-info-topic", "/camera/color/camera_info"]
    assert run_cli(args) == 0
    assert any(out_bag.glob("*.mcap" if storage == "mcap" else "*.db3"))
    topics = read_bag(out_bag)
    inputs = read_bag(in_bag)
    for topic, messages in inputs.items():  # every input message copied
        assert [t for t, _ in topics[topic]] == [t for t, _ in messages]
    images = inputs["/camera/color/image_raw"]
    labels = topics["/robosam/labels"]
    assert len(labels) == len(images) == 4
    rgb = tabletop[0]
    for (t_in, image), (t_out, label) in zip(images, labels):
        assert t_out == t_in and label.header.stamp.sec == image.header.stamp.sec
        assert label.header.stamp.nanosec == image.header.stamp.nanosec
        assert label.header.frame_id == image.header.frame_id
    last = msgs.image_to_rgb(images[-1][1])
    np.testing.assert_array_equal(last, np.roll(rgb, 9, axis=1))
    expected = (
        segmenter.decode(segmenter.embed(last), box=(250, 150, 420, 330), multimask=False).best().masks[0]
    )
    assert ((msgs.image_to_array(labels[-1][1]) == 1) == expected).all()
    detections = topics["/robosam/detections"][-1][1]
    assert detections.detections[0].id == "1"
    assert ("/robosam/poses" in topics) == with_depth and ("/robosam/cloud" in topics) == with_depth
    assert expected.sum() > 1000  # the tiny random model still segments a region
    if with_depth:
        cloud, colours = msgs.pointcloud2_to_points(topics["/robosam/cloud"][-1][1])
        direct = grasp_from_mask(expected, tabletop[1], tabletop[2], rgb=last)
        assert len(cloud) == len(direct.cloud)
        np.testing.assert_allclose(cloud, direct.cloud.points, atol=1e-6)


def test_robosam_bag_errors(tmp_path, tiny_sam_dir, tabletop, capsys):
    in_bag = tmp_path / "in"
    write_bag(in_bag, "sqlite3", tabletop, frames=1, depth=False)
    base = ["bag", str(in_bag), str(tmp_path / "out"), "--model", str(tiny_sam_dir), "--device", "cpu"]
    assert run_cli([*base, "--image-topic", "/nope", "--box", "1,1,20,20"]) == 2
    assert "--image-topic: expected a topic of the bag" in capsys.readouterr().err
    assert run_cli([*base, "--image-topic", "/camera/color/image_raw"]) == 2
    assert "--point/--box/--text: expected at least one" in capsys.readouterr().err
    assert run_cli([*base, "--image-topic", "/camera/color/image_raw", "--text", " . "]) == 2
    assert "--text: expected" in capsys.readouterr().err
    assert (
        run_cli(["bag", str(tmp_path), str(tmp_path / "o"), "--image-topic", "/x", "--box", "1,1,2,2"]) == 2
    )
    assert "IN_BAG: expected a ROS 2 bag folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_robosam_bag_logs_a_rerun_recording(tmp_path, tiny_sam_dir, tabletop, monkeypatch):
    import subprocess

    require_peer("rerun")
    in_bag, out_bag, rrd = tmp_path / "in", tmp_path / "out", tmp_path / "run.rrd"
    write_bag(in_bag, "mcap", tabletop, frames=2)
    args = ["bag", str(in_bag), str(out_bag), "--image-topic", "/camera/color/image_raw", "--box",
            "250,150,420,330", "--depth-topic", "/camera/depth", "--camera-info-topic", "/camera/color/camera_info",
            "--model", str(tiny_sam_dir), "--device", "cpu", "--rerun", str(rrd)]  # fmt: skip
    assert run_cli(args) == 0
    monkeypatch.setenv("RERUN_ANALYTICS", "false")
    printed = subprocess.run([sys.executable, "-m", "rerun", "rrd", "print", str(rrd)], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    for entity in ("/camera/image ", "/camera/image/masks", "/camera/image/boxes", "/world/points/1",
                   "/world/objects/1", "/world/grasps/1"):  # fmt: skip
        assert entity in printed, entity
    assert run_cli([*args[:-1], str(tmp_path / "run.txt")]) == 2


def test_text_prompts_become_labelled_objects_on_the_next_frame(segmenter, tabletop):
    from test_grounding import ScriptedDetector

    rgb = tabletop[0]
    detector = ScriptedDetector(
        [("cup", (250.0, 150.0, 420.0, 330.0), 0.9), ("bowl", (20.0, 20.0, 90.0, 90.0), 0.2)]
    )
    pipeline = PerceptionPipeline(segmenter, NodeParameters(box_threshold=0.3), detector)
    assert pipeline.on_text(Msg(data="Cup. bowl")) == ["cup", "bowl"]
    out = pipeline.on_image(as_msg(msgs.image_fields(rgb, "rgb8", header(1))))
    assert detector.calls == [["cup", "bowl"]] and out.object_ids == [1]  # the bowl is under the threshold
    hypothesis = out.detections["detections"][0]["results"][0]["hypothesis"]
    assert hypothesis["class_id"] == "cup" and out.detections["detections"][0]["id"] == "1"
    expected = (
        segmenter.decode(segmenter.embed(rgb), box=(250, 150, 420, 330), multimask=False).best().masks[0]
    )
    assert (out.tracks[1].mask == expected).all()
    pipeline.on_image(as_msg(msgs.image_fields(rgb, "rgb8", header(2))))
    assert detector.calls == [["cup", "bowl"]]  # detected once, then tracked
    with pytest.raises(InputError, match="^text: expected a detector"):
        PerceptionPipeline(segmenter).on_text(Msg(data="cup"))


def test_video_models_track_with_the_live_tracker_and_match_it_frame_by_frame():
    from test_video_models import synthetic_frames, tiny_tracker

    frames = synthetic_frames(6)
    pipeline = PerceptionPipeline(tiny_tracker("sam2"), NodeParameters())
    assert pipeline.frames.tracking
    pipeline.add_objects(boxes=[(5, 8, 27, 26)])
    outputs = [
        pipeline.on_image(as_msg(msgs.image_fields(f, "rgb8", header(i)))) for i, f in enumerate(frames)
    ]
    live = tiny_tracker("sam2").stream()
    live.add(obj_id=1, box=np.array([5, 8, 27, 26], np.float32))
    for frame, out in zip(frames, outputs):
        expected = live.step(frame)[1]
        assert out.object_ids == [1]
        assert (out.tracks[1].mask == expected.mask).all() and out.tracks[1].score == pytest.approx(
            expected.score
        )
        assert ((msgs.image_to_array(as_msg(out.label_image)) == 1) == expected.mask).all()
