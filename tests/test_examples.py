"""The bundled examples are what their READMEs say, and the commands shown for them work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers import run_cli
from PIL import Image

from robosam.geometry.synthetic import demo_scene

TABLETOP = Path(__file__).resolve().parents[1] / "examples" / "tabletop"


def test_tabletop_files_are_the_generators_scene():
    scene = demo_scene(depth_noise=0.001, hole_fraction=0.02)
    assert (np.asarray(Image.open(TABLETOP / "color.png")) == scene.rgb).all()
    assert (np.asarray(Image.open(TABLETOP / "depth.png")) == scene.depth_mm()).all()
    assert ((np.asarray(Image.open(TABLETOP / "box_mask.png")) > 0) == scene.masks[0]).all()


def test_grasp_on_the_tabletop_example_recovers_the_box(tmp_path):
    scene = demo_scene(depth_noise=0.001, hole_fraction=0.02)
    code = run_cli(
        ["grasp", str(TABLETOP / "color.png"), str(TABLETOP / "depth.png"),
         "--intrinsics", str(TABLETOP / "camera.json"), "--mask", str(TABLETOP / "box_mask.png"),
         "--out", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    pose = json.loads((tmp_path / "grasps.json").read_text())["pose"]
    truth = scene.poses[0]
    assert np.linalg.norm(np.asarray(pose["center"]) - truth.center) < 0.005  # 1 mm noise, 2 % holes
    assert np.allclose(sorted(pose["extents"]), sorted(truth.extents), atol=0.004)


def test_grasp_logs_a_rerun_recording_of_the_tabletop(tmp_path, monkeypatch):
    import subprocess
    import sys

    from helpers import require_peer

    require_peer("rerun")
    rrd = tmp_path / "grasp.rrd"
    code = run_cli(
        ["grasp", str(TABLETOP / "color.png"), str(TABLETOP / "depth.png"),
         "--intrinsics", str(TABLETOP / "camera.json"), "--mask", str(TABLETOP / "box_mask.png"),
         "--out", str(tmp_path / "out"), "--rerun", str(rrd)]
    )  # fmt: skip
    assert code == 0
    monkeypatch.setenv("RERUN_ANALYTICS", "false")
    printed = subprocess.run([sys.executable, "-m", "rerun", "rrd", "print", str(rrd)], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    for entity in ("/camera/image/masks", "/world/points/1", "/world/objects/1", "/world/grasps/1"):
        assert entity in printed, entity
    assert "Arrows3D" in printed.split("/world/grasps/1", 1)[1].splitlines()[0]  # the grasps themselves
