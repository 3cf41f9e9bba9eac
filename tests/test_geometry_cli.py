"""`robosam grasp` end to end on a synthetic RGB-D scene written to image, depth and intrinsics files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from robosam.geometry import read_ply, write_depth_png
from robosam.geometry.synthetic import demo_scene
from robosam.masks import write_mask_png, write_png_atomic


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory) -> tuple[Path, object]:
    """rgb.png, depth.png (16-bit mm), depth.npy (float m), mask.png (the box), camera.json (RealSense)."""
    folder = tmp_path_factory.mktemp("rgbd")
    scene = demo_scene()
    write_png_atomic(scene.rgb, folder / "rgb.png")
    write_depth_png(scene.depth_mm(), folder / "depth.png")
    np.save(folder / "depth.npy", scene.depth)
    write_mask_png(scene.masks[0], folder / "mask.png")
    k = scene.intrinsics
    camera = {"width": k.width, "height": k.height, "ppx": k.cx, "ppy": k.cy, "fx": k.fx, "fy": k.fy,
              "model": "distortion.brown_conrady", "coeffs": [0, 0, 0, 0, 0]}  # fmt: skip
    (folder / "camera.json").write_text(json.dumps(camera))
    (folder / "base.json").write_text(json.dumps({"matrix": scene.camera_to_world.tolist()}))
    return folder, scene


def angle_deg(a, b) -> float:
    return math.degrees(math.acos(min(1.0, abs(float(np.dot(a, b))))))


@pytest.mark.parametrize("depth_name", ["depth.png", "depth.npy"])
def test_grasp_from_mask_file_writes_pose_grasps_cloud_and_image(scene_files, tmp_path, capsys, depth_name):
    folder, scene = scene_files
    out = tmp_path / "out"
    code = run_cli(
        ["grasp", str(folder / "rgb.png"), str(folder / depth_name), "--intrinsics", str(folder / "camera.json"),
         "--mask", str(folder / "mask.png"), "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "grasp 0: top" in printed and "support plane: found" in printed
    report = json.loads((out / "grasps.json").read_text())
    truth = scene.poses[0]
    assert report["depth_scale"] == (0.001 if depth_name.endswith(".png") else 1.0)
    assert np.linalg.norm(np.array(report["pose"]["center"]) - truth.center) < 0.003  # mm-quantised depth
    assert np.abs(np.array(report["pose"]["extents"]) - truth.extents).max() < 0.003
    best = report["grasps"][0]
    assert best["approach"] == "top" and best["frame"] == "camera"
    assert angle_deg(best["closing_vector"], truth.rotation[:, 1]) < 2.0
    assert len(best["quaternion_xyzw"]) == 4 and abs(np.linalg.norm(best["quaternion_xyzw"]) - 1) < 1e-9
    cloud = read_ply(out / "cloud.ply")
    assert len(cloud) == report["n_points"] and cloud.colors is not None
    assert np.linalg.norm(cloud.points.mean(axis=0) - report["pose"]["centroid"]) < 1e-4
    assert (np.asarray(Image.open(out / "mask.png")) > 0).sum() == report["mask_area"] == scene.masks[0].sum()
    drawn = np.asarray(Image.open(out / "grasp.png"))
    assert drawn.shape == scene.rgb.shape and (drawn != scene.rgb).any()


def test_grasp_in_base_frame(scene_files, tmp_path):
    folder, _ = scene_files
    out = tmp_path / "out"
    code = run_cli(
        ["grasp", str(folder / "rgb.png"), str(folder / "depth.png"), "--intrinsics", str(folder / "camera.json"),
         "--mask", str(folder / "mask.png"), "--camera-to-base", str(folder / "base.json"), "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    best = json.loads((out / "grasps.json").read_text())["grasps"][0]
    assert best["frame"] == "base" and np.allclose(best["approach_vector"], (0, 0, -1), atol=1e-3)


def test_grasp_with_a_click_runs_the_segmenter(scene_files, tmp_path, tiny_sam_dir):
    from robosam.segmenter import Segmenter

    folder, scene = scene_files
    out = tmp_path / "out"
    segmenter = Segmenter(str(tiny_sam_dir), device="cpu")
    segmenter.set_image(scene.rgb)
    expected = segmenter.predict(points=[(320, 215)], labels=[1], multimask=False).best().masks[0]
    code = run_cli(
        ["grasp", str(folder / "rgb.png"), str(folder / "depth.png"), "--intrinsics", str(folder / "camera.json"),
         "--point", "320,215", "--model", str(tiny_sam_dir), "--device", "cpu", "--out", str(out)]
    )  # fmt: skip
    # random weights: whatever mask the model gives, the CLI must use exactly that one
    if (expected & (scene.depth > 0)).sum() >= 3:
        assert code == 0
        assert ((np.asarray(Image.open(out / "mask.png")) > 0) == expected).all()
        assert json.loads((out / "grasps.json").read_text())["model"] == str(tiny_sam_dir)
    else:
        assert code == 2


def test_grasp_bad_input_is_one_line_and_exit_2(scene_files, tmp_path, capsys):
    folder, scene = scene_files
    rgb, depth, camera, mask = (str(folder / n) for n in ("rgb.png", "depth.png", "camera.json", "mask.png"))
    small_mask = tmp_path / "small.png"
    write_mask_png(np.ones((10, 10), bool), small_mask)
    no_depth = tmp_path / "nodepth.png"
    write_depth_png(np.where(scene.masks[0], 0, scene.depth_mm()).astype(np.uint16), no_depth)
    bad_camera = tmp_path / "bad.json"
    bad_camera.write_text(json.dumps({"fx": 0, "fy": 500, "cx": 320, "cy": 240, "width": 640, "height": 480}))
    small_camera = tmp_path / "small.json"
    small_camera.write_text(
        json.dumps({"fx": 500, "fy": 500, "cx": 160, "cy": 120, "width": 320, "height": 240})
    )
    rotated = tmp_path / "notrigid.json"
    rotated.write_text(json.dumps(np.ones((4, 4)).tolist()))
    cases = [
        (
            [rgb, depth, "--intrinsics", camera, "--mask", mask, "--camera-to-base", str(rotated)],
            "--camera-to-base: expected a rigid transform",
        ),
        (
            [rgb, depth, "--intrinsics", camera, "--point", "5000,10"],
            "points: expected points inside the 640x480 image",
        ),
        ([rgb, depth, "--intrinsics", camera], "--point/--box/--mask: expected exactly one"),
        ([rgb, depth, "--intrinsics", camera, "--mask", mask, "--point", "3,4"], "expected exactly one"),
        ([rgb, depth, "--intrinsics", camera, "--mask", str(small_mask)], "--mask: expected a 640x480 mask"),
        (
            [rgb, str(no_depth), "--intrinsics", camera, "--mask", mask],
            "mask: expected a mask with at least one",
        ),
        ([rgb, depth, "--intrinsics", str(bad_camera), "--mask", mask], "intrinsics.fx: expected a positive"),
        ([rgb, depth, "--intrinsics", str(small_camera), "--mask", mask], "DEPTH: expected a 320x240 depth"),
        ([rgb, depth, "--intrinsics", camera, "--point", "3"], "--point: expected 2 comma-separated numbers"),
        (
            [rgb, depth, "--intrinsics", camera, "--mask", mask, "--gripper-width", "0"],
            "--gripper-width: expected",
        ),
        (
            [rgb, str(tmp_path / "absent.png"), "--intrinsics", camera, "--mask", mask],
            "depth: expected an existing",
        ),
    ]
    for args, message in cases:
        code = run_cli(["grasp", *args, "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()  # nothing written for bad input


def test_grasp_help_has_an_example(capsys):
    assert run_cli(["grasp", "--help"]) == 0
    assert "Example: robosam grasp" in capsys.readouterr().out
