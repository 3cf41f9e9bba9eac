"""FastSAM through the optional ultralytics package.

Without ultralytics: importing ``robosam.fastsam`` works, ``FastSam`` raises one line naming the install, and
nothing in robosam imports ultralytics. With it: a FastSAM-s network built from ultralytics' YOLOv8-seg YAML
(``yolov8s-seg.yaml``, the architecture of FastSAM-s) with random weights, saved as an ultralytics checkpoint
(no download), run through robosam on a small image; point and box selections are checked against
ultralytics' ``FastSAMPredictor.prompt`` run on the same "everything" result, an independent path. Text
selection goes through robosam's ``ClipRanker`` on a tiny random transformers CLIP saved to a folder (offline),
checked against CLIP similarities of masked crops computed in this file (PIL crops, CLIP's vision and text
towers and projections called directly). Without ultralytics the whole file still runs: a subprocess with the
import blocked checks that every ultralytics test skips and the one-line message test passes.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

ULTRALYTICS_MISSING = importlib.util.find_spec("ultralytics") is None  # looked up, not imported
SKIP_REASON = "ultralytics not installed (optional)"
CLIP_MEAN_RGB = (122, 116, 104)  # OpenAI CLIP's normalisation mean as uint8: the fill outside a mask


def test_robosam_never_imports_ultralytics_unasked():
    code = (
        "import sys, robosam, robosam.fastsam, robosam.models, robosam.segmenter; "
        "print('ultralytics' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ci_runs_the_fastsam_tests():
    """ultralytics is in the test extra: in CI (``CI=true``) its tests must run, never skip."""
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    assert not (in_ci and ULTRALYTICS_MISSING), "test peer 'ultralytics' is missing in CI"


def test_missing_ultralytics_is_one_clear_line(monkeypatch):
    from robosam.errors import InputError
    from robosam.fastsam import FastSam

    monkeypatch.setitem(sys.modules, "ultralytics", None)  # import fails as if not installed
    with pytest.raises(InputError) as error:
        FastSam("FastSAM-s.pt")
    message = str(error.value)
    assert "\n" not in message
    assert "pip install ultralytics" in message


def test_without_ultralytics_this_file_skips_cleanly():
    """This file in a fresh interpreter where ``import ultralytics`` fails (``sys.modules`` entry None, as
    when not installed): the ultralytics tests skip with the reason, the rest pass, nothing errors."""
    code = (
        "import sys; sys.modules['ultralytics'] = None; import pytest; "
        f"raise SystemExit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', {__file__!r}, "
        "'-k', 'not skips_cleanly and not unasked and not ci_runs']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    needing = [name for name, value in globals().items() if name.startswith("test_") and _needs(value)]
    assert len(needing) >= 4
    summary = out.stdout.strip().splitlines()[-1]
    assert f"{len(needing)} skipped" in summary and "error" not in summary and "failed" not in summary
    assert out.stdout.count(SKIP_REASON) == len(needing)


def _needs(test) -> bool:
    return any(
        mark.name == "skipif" and mark.kwargs.get("reason") == SKIP_REASON
        for mark in getattr(test, "pytestmark", [])
    )


needs_ultralytics = pytest.mark.skipif(bool(ULTRALYTICS_MISSING), reason=SKIP_REASON)


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


# text selection through robosam's CLIP ranking ------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """A tiny random transformers CLIP (model + processor) saved with ``save_pretrained``."""
    from test_grounding_tiny import build_clip

    folder = tmp_path_factory.mktemp("clip")
    model, processor = build_clip(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder, model, processor


def masked_square_crop(image: np.ndarray, mask: np.ndarray, padding: float = 0.1):
    """The mask's box grown by ``padding`` of its longer side, outside the mask CLIP's mean colour, centred
    on a square of that colour (PIL, written here independently of robosam.grounding.clip_rank)."""
    from PIL import Image

    ys, xs = np.nonzero(mask)
    x1, y1, x2, y2 = xs.min(), ys.min(), xs.max(), ys.max()
    margin = int(round(padding * max(x2 - x1 + 1, y2 - y1 + 1)))
    height, width = mask.shape
    left, top = max(x1 - margin, 0), max(y1 - margin, 0)
    right, bottom = min(x2 + margin, width - 1) + 1, min(y2 + margin, height - 1) + 1
    filled = image.copy()
    filled[~mask] = CLIP_MEAN_RGB
    crop = Image.fromarray(filled).crop((left, top, right, bottom))
    side = max(crop.size)
    square = Image.new("RGB", (side, side), CLIP_MEAN_RGB)
    square.paste(crop, ((side - crop.width) // 2, (side - crop.height) // 2))
    return square


def clip_similarity(model, processor, crops, phrases) -> np.ndarray:
    """(N, P) cosine similarity from CLIP's towers and projections, called one by one."""
    import torch

    pixels = processor(images=crops, return_tensors="pt")["pixel_values"]
    tokens = processor(text=[f"a photo of a {p}" for p in phrases], return_tensors="pt", padding=True)
    with torch.no_grad():
        image = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
        text = model.text_projection(
            model.text_model(
                input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
            ).pooler_output
        )
    image = image / image.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    return (image @ text.T).numpy()


@needs_ultralytics
def test_text_selects_the_mask_of_highest_clip_similarity_per_phrase(fastsam, image, clip_folder):
    from robosam.fastsam import FastSam

    folder, model, processor = clip_folder
    texts = FastSam(fastsam.model, imgsz=320, conf=0.05, iou=0.5, clip=str(folder))  # CLIP from a folder
    phrases = ["red cup", "bowl", "dog"]
    result = texts.segment(image, text="Red cup. bowl. dog")
    assert list(result.labels) == phrases
    assert np.array_equal(result.object_ids, np.arange(3))
    assert "clip_s" in result.timings

    everything = fastsam.everything(image)
    assert len(everything) >= 2  # a real choice
    expected = clip_similarity(
        model, processor, [masked_square_crop(image, m) for m in everything.masks], phrases
    )
    masks = everything.masks.reshape(len(everything), -1)
    for column, best in enumerate(expected.argmax(axis=0)):
        assert np.array_equal(result.masks[column], everything.masks[best]), phrases[column]
        assert result.data["clip_score"][column] == pytest.approx(expected[best, column], abs=2e-6)
        # random weights give repeated masks (equal crops tie exactly): the runner-up is a different mask
        others = np.flatnonzero((masks != masks[best]).any(axis=1))
        assert expected[best, column] - expected[others, column].max() > 1e-4, "a near-tie decides nothing"


@needs_ultralytics
def test_text_prompt_errors_before_any_work(fastsam, image):
    from robosam.errors import InputError

    with pytest.raises(InputError, match="text"):
        fastsam.segment(image, text=" . ")
    with pytest.raises(InputError, match="text"):
        fastsam.segment(image, text=["cup", 3])
