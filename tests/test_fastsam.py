"""FastSAM through the optional ultralytics package.

Without ultralytics: importing ``robosam.fastsam`` works, ``FastSam`` raises one line naming the install, and
nothing in robosam imports ultralytics. With it: a FastSAM-s network built from ultralytics' YOLOv8-seg YAML
(``yolov8s-seg.yaml``, the architecture of FastSAM-s) with random weights, saved as an ultralytics checkpoint
(no download), run through robosam on a small image; the selections are checked against ultralytics'
``FastSAMPredictor.prompt`` run on the same "everything" result, an independent path.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

ULTRALYTICS_MISSING = importlib.util.find_spec("ultralytics") is None  # looked up, not imported


def test_robosam_never_imports_ultralytics_unasked():
    code = (
        "import sys, robosam, robosam.fastsam, robosam.models, robosam.segmenter; "
        "print('ultralytics' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_ultralytics_is_one_clear_line(monkeypatch):
    from robosam.errors import InputError
    from robosam.fastsam import FastSam

    monkeypatch.setitem(sys.modules, "ultralytics", None)  # import fails as if not installed
    with pytest.raises(InputError) as error:
        FastSam("FastSAM-s.pt")
    message = str(error.value)
    assert "\n" not in message
    assert "pip install ultralytics" in message


needs_ultralytics = pytest.mark.skipif(
    bool(ULTRALYTICS_MISSING), reason="ultralytics not installed (optional)"
)


@pytest.fixture(scope="module")
def fastsam(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("YOLO_OFFLINE", "1")
    monkeypatch_module.setenv("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("ultralytics_config")))
    import torch
    from ultralytics import YOLO

    from robosam.fastsam import FastSam

    torch.manual_seed(0)
    network = YOLO("yolov8s-seg.yaml")  # FastSAM-s's architecture, random weights
    with torch.no_grad():  # YOLOv8 starts class logits near -10 (a prior of ~1e-4); 0 gives detections
        for branch in network.model.model[-1].cv3:
            branch[-1].bias.zero_()
    path = tmp_path_factory.mktemp("fastsam") / "FastSAM-s-random.pt"
    network.save(str(path))
    return FastSam(path, imgsz=320, conf=0.05, iou=0.5)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    rgb[60:180, 80:240] = (200, 30, 30)
    return rgb


@needs_ultralytics
def test_everything_gives_masks_at_image_size(fastsam, image):
    result = fastsam.everything(image)
    assert len(result) > 0
    assert result.masks.shape == (len(result), 240, 320) and result.masks.dtype == bool
    assert result.scores.shape == (len(result),) and np.all(result.scores >= 0.05)
    assert result.data["class_id"].shape == (len(result),)
    assert result.boxes.shape == (len(result), 4)
    restored = type(result).from_dict(result.to_dict())
    assert np.array_equal(restored.masks, result.masks)


@needs_ultralytics
def test_box_and_point_selection_match_ultralytics_prompting(fastsam, image):
    everything = fastsam.model.predict(
        np.ascontiguousarray(image[..., ::-1]), retina_masks=True, verbose=False, **fastsam.options
    )
    predictor = fastsam.model.predictor
    box = [80, 60, 240, 180]
    expected_box = predictor.prompt(everything, bboxes=[box])[0]
    ours = fastsam.segment(image, box=box)
    assert len(ours) == 1
    assert np.array_equal(ours.masks[0], expected_box.masks.data[0].cpu().numpy() > 0.5)

    expected_point = predictor.prompt(everything, points=[[160, 120]], labels=[1])[0]
    ours = fastsam.segment(image, points=[(160, 120)], labels=[1])
    assert np.array_equal(ours.masks, expected_point.masks.data.cpu().numpy() > 0.5)


@needs_ultralytics
def test_bad_prompts_raise_input_error(fastsam, image):
    from robosam.errors import InputError

    with pytest.raises(InputError, match="exactly one of points, box or text"):
        fastsam.segment(image)
    with pytest.raises(InputError, match="exactly one of points, box or text"):
        fastsam.segment(image, box=[0, 0, 10, 10], text="cup")
    with pytest.raises(InputError, match="box"):
        fastsam.segment(image, box=[0, 0, 10])
