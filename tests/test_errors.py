"""Every bad input gets an InputError naming the argument; the CLI exits 2 with one line."""

from __future__ import annotations

import numpy as np
import pytest

from robosam import InputError
from robosam.io import load_image
from robosam.models import load_model
from robosam.segmenter import Segmenter


@pytest.fixture(scope="module")
def seg(tiny_model_dirs) -> Segmenter:
    segmenter = Segmenter(tiny_model_dirs["sam"], device="cpu")
    segmenter.set_image(np.zeros((120, 200, 3), dtype=np.uint8))
    return segmenter


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        (dict(points=[(250, 10)]), "points"),
        (dict(points=[(-1, 10)]), "points"),
        (dict(points=[(10, 120)]), "points"),
        (dict(points=[(10, 10)], labels=[2]), "labels"),
        (dict(points=[(10, 10)], labels=[-1]), "labels"),
        (dict(points=[(10, 10)], labels=[0.5]), "labels"),
        (dict(points=[(10, 10), (20, 20)], labels=[1]), "labels"),
        (dict(points=[(10, 10, 3)]), "points"),
        (dict(points=[("a", 1)]), "points"),
        (dict(points=[(float("nan"), 1)]), "points"),
        (dict(box=(50, 10, 40, 60)), "box"),
        (dict(box=(10, 60, 40, 60)), "box"),
        (dict(box=(10, 10, 40)), "box"),
        (dict(box=(300, 10, 400, 60)), "box"),
        (dict(points=[(10, 10)], box=[(0, 0, 50, 50), (60, 0, 90, 50)]), "box"),
        (dict(labels=[1]), "labels"),
        (dict(), "points/box/mask_input"),
        (dict(points=[(10, 10)], mask_input=np.zeros((10, 10), np.float32)), "mask_input"),
        (dict(points=[(10, 10)], mask_input=np.zeros((32, 32), np.int64)), "mask_input"),
        (
            dict(box=[(0, 0, 50, 50), (60, 0, 90, 50)], mask_input=np.zeros((32, 32), np.float32)),
            "mask_input",
        ),
    ],
)
def test_predict_rejects_bad_prompts(seg, kwargs, argument):
    with pytest.raises(InputError) as info:
        seg.predict(**kwargs)
    assert info.value.argument == argument
    assert str(info.value).startswith(argument + ": expected")


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        (dict(input_points=[[[[10, 10]]]]), "input_points"),  # 1 entry for 2 images
        (dict(input_points=[[[[10, 10]]], [[[10, 10]]]], input_labels=[[[3]], [[1]]]), "input_labels[0][0]"),
        (dict(input_points=[[[[10, 10]]], [[[500, 10]]]]), "input_points[1][0]"),
        (dict(input_points=[[[[10, 10]]], [[[10, 10]]]], input_labels=[[[-1]], [[1]]]), "input_points[0][0]"),
        (dict(input_boxes=[[[10, 10, 5, 50]], [[0, 0, 9, 9]]]), "input_boxes[0][0]"),
        (dict(), "input_points/input_boxes"),
    ],
)
def test_predict_batch_rejects_bad_prompts(seg, kwargs, argument):
    images = [np.zeros((120, 200, 3), np.uint8), np.ones((60, 80, 3), np.uint8)]
    with pytest.raises(InputError) as info:
        seg.predict_batch(images, **kwargs)
    assert info.value.argument == argument


def test_predict_before_set_image(tiny_model_dirs):
    fresh = Segmenter(tiny_model_dirs["sam"], device="cpu")
    with pytest.raises(InputError, match="set_image"):
        fresh.predict(points=[(1, 1)])


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((10, 10, 2), np.uint8),
        np.zeros((10,), np.uint8),
        np.zeros((0, 10, 3), np.uint8),
        np.zeros((10, 10, 3), np.int32),
        np.full((10, 10, 3), 2.0),
        "not/a/file.jpg",
        12,
    ],
)
def test_bad_images(image):
    with pytest.raises(InputError) as info:
        load_image(image)
    assert info.value.argument == "image"


def test_unreadable_and_truncated_image_files(tmp_path, sample_image_path):
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not a jpeg")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(sample_image_path.read_bytes()[:20000])
    for path in (garbage, truncated):
        with pytest.raises(InputError, match="readable, complete image"):
            load_image(path)


def test_a_plugin_missing_its_decoder_is_an_unreadable_file(tmp_path, monkeypatch):
    """Packages register Pillow openers (ultralytics: HEIF through pi_heif, imported on demand); one that
    fails to import on a file no built-in format claims still means "unreadable file", not a crash."""
    from PIL import Image

    def needs_missing_decoder(fp, prefix=None):
        raise ModuleNotFoundError("No module named 'pi_heif'")

    monkeypatch.setattr(Image, "OPEN", {**Image.OPEN, "HEIF": (needs_missing_decoder, lambda prefix: True)})
    monkeypatch.setattr(Image, "ID", [*Image.ID, "HEIF"])
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not a jpeg")
    with pytest.raises(InputError, match="readable, complete image.*pi_heif"):
        load_image(garbage)


def test_an_upload_a_pillow_wrapper_fails_on_is_a_bad_request(monkeypatch):
    """ultralytics wraps ``Image.open`` and retries unknown files with an optional HEIF decoder, raising
    ImportError where it is not installed: the server must still answer that upload with a 4xx."""
    from PIL import Image

    from robosam.serve.limits import decode_image

    real_open = Image.open

    def wrapped_open(fp, *args, **kwargs):
        try:
            return real_open(fp, *args, **kwargs)
        except Image.UnidentifiedImageError:
            raise ModuleNotFoundError("No module named 'pi_heif'") from None

    monkeypatch.setattr(Image, "open", wrapped_open)
    with pytest.raises(InputError, match="^file: expected a readable, complete image file.*pi_heif"):
        decode_image(b"this is not an image", max_pixels=10**6)


def test_model_errors(tmp_path):
    with pytest.raises(InputError, match="preset name"):
        load_model("no-such-model")
    with pytest.raises(InputError, match="existing path"):
        load_model(tmp_path / "missing.pth")
    with pytest.raises(InputError, match="config.json"):
        load_model(tmp_path)
    text_file = tmp_path / "weights.bin"
    text_file.write_text("x")
    with pytest.raises(InputError, match="checkpoint file"):
        load_model(text_file)
    with pytest.raises(InputError, match="device"):
        load_model("sam-vit-base", device="gpu-please")


@pytest.mark.parametrize("name", ["sam-vit-base", "sam2.1-hiera-tiny", "facebook/sam-vit-huge"])
def test_offline_with_nothing_cached_is_a_clear_error(monkeypatch, tmp_path, name):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(InputError, match="HF_HUB_OFFLINE"):
        load_model(name, device="cpu")
