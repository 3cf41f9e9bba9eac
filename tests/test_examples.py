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
