"""Segmenter on tiny random-weight models of every family: shapes, coordinates, caching, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import robosam
from robosam.models import load_model
from robosam.segmenter import Segmenter

FAMILIES = ["sam", "sam_hq", "sam2", "sam3_tracker", "edgetam"]


@pytest.fixture(scope="module")
def segmenters(tiny_model_dirs) -> dict[str, Segmenter]:
    return {family: Segmenter(tiny_model_dirs[family], device="cpu") for family in FAMILIES}


def count_encoder_images(segmenter: Segmenter) -> list[int]:
    """Hook the vision encoder; the returned list collects the batch size of every call."""
    calls: list[int] = []
    segmenter.model.vision_encoder.register_forward_hook(
        lambda module, args, output: calls.append(args[0].shape[0])
    )
    return calls


@pytest.mark.parametrize("family", FAMILIES)
def test_masks_at_original_resolution_for_non_square_image(segmenters, family, rgb_image):
    seg = segmenters[family]
    seg.set_image(rgb_image)
    result = seg.predict(points=[(100, 60)], labels=[1])
    lowres = seg.adapter.lowres_size
    assert result.masks.shape == (3, 120, 200) and result.masks.dtype == bool
    assert result.scores.shape == (3,) and result.scores.dtype == np.float32
    assert result.logits.shape == (3, lowres, lowres) and result.logits.dtype == np.float32
    single = seg.predict(points=[(100, 60)], labels=[1], multimask=False)
    assert single.masks.shape == (1, 120, 200)
    best = result.best()
    assert len(best) == 1 and best.scores[0] == result.scores.max()


@pytest.mark.parametrize("family", FAMILIES)
def test_masks_are_the_logits_resized_as_meta_does(segmenters, family, rgb_image):
    """SAM 1 family: bilinear to the padded input, crop, bilinear to the original size; SAM 2 family:
    one bilinear resize. Checked against torch's interpolate, the call Meta's predictors make."""
    seg = segmenters[family]
    seg.set_image(rgb_image)
    result = seg.predict(box=(40, 20, 160, 100), multimask=False)
    logits = torch.from_numpy(result.logits[None])
    if family in ("sam", "sam_hq"):
        size = seg.adapter.input_size
        logits = torch.nn.functional.interpolate(logits, (size, size), mode="bilinear", align_corners=False)
        resized_h, resized_w = seg.adapter.resized_size((120, 200))
        logits = logits[..., :resized_h, :resized_w]
    reference = torch.nn.functional.interpolate(logits, (120, 200), mode="bilinear", align_corners=False)[
        0, 0
    ]
    decided = reference.abs() > 1e-4 * reference.abs().max()
    assert ((reference > 0) == torch.from_numpy(result.masks[0]))[decided].all()


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        # SAM 1: longest side (200) -> 128, so scale 0.64 on both axes (120 -> 77 rows, rounded)
        ("sam", (100 * 128 / 200, 60 * 77 / 120)),
        # SAM 2: resized to 128 x 128, x scale 128/200, y scale 128/120
        ("sam2", (100 * 128 / 200, 60 * 128 / 120)),
    ],
)
def test_prompt_coordinates_passed_to_the_model(segmenters, family, expected, rgb_image):
    seg = segmenters[family]
    seg.set_image(rgb_image)
    seen = {}

    def capture(module, args, kwargs):
        seen["points"] = kwargs["input_points"].clone()

    # transformers' prompt encoder (the fast decoder, where it serves, is fed the same tensor: checked below)
    transformers_path = Segmenter(seg.loaded, fast_decoder=False)
    transformers_path.set_image(rgb_image)
    handle = seg.model.prompt_encoder.register_forward_pre_hook(capture, with_kwargs=True)
    try:
        transformers_path.predict(points=[(100, 60)], labels=[1])
    finally:
        handle.remove()
    np.testing.assert_allclose(seen["points"][0, 0, 0].numpy(), expected, rtol=1e-6)
    if seg.fast is not None:
        fast, fed = seg.fast, {}

        def recording(state, points, labels, boxes, multimask):
            fed["points"] = points.clone()
            return fast(state, points, labels, boxes, multimask)

        seg.fast = recording
        try:
            seg.predict(points=[(100, 60)], labels=[1])
        finally:
            seg.fast = fast
        np.testing.assert_allclose(fed["points"][0, 0].numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("family", ["sam", "sam2"])
def test_encoder_runs_once_for_many_prompts_and_cache_hits_cost_nothing(tiny_model_dirs, family, rgb_image):
    seg = Segmenter(tiny_model_dirs[family], device="cpu")
    calls = count_encoder_images(seg)
    seg.set_image(rgb_image)
    for x in (20, 60, 100, 140):
        seg.predict(points=[(x, 60)])
    seg.predict(box=(10, 10, 100, 100))
    assert calls == [1]
    other = rgb_image[::-1].copy()
    seg.set_image(other)
    seg.set_image(rgb_image.copy())  # same pixels, new array: a cache hit
    assert seg.last_timings["encoder_s"] == 0.0
    assert calls == [1, 1]
    assert seg.cache.hits == 1 and len(seg.cache) == 2


def test_cache_is_bounded_in_bytes(tiny_model_dirs, rgb_image):
    seg = Segmenter(tiny_model_dirs["sam"], device="cpu")
    seg.set_image(rgb_image)
    entry_bytes = seg.cache.nbytes
    assert entry_bytes > 0
    seg = Segmenter(tiny_model_dirs["sam"], device="cpu", cache_bytes=2 * entry_bytes)
    calls = count_encoder_images(seg)
    images = [np.roll(rgb_image, shift, axis=1) for shift in (0, 7, 13)]
    for image in images:
        seg.set_image(image)
    assert len(seg.cache) == 2 and seg.cache.nbytes <= 2 * entry_bytes
    seg.set_image(images[0])  # evicted (least recently used): encoded again
    seg.set_image(images[2])  # still cached
    assert len(calls) == 4


@pytest.mark.parametrize("family", FAMILIES)
def test_predict_batch_equals_a_loop_of_predict(segmenters, family, rgb_image):
    seg = segmenters[family]
    images = [rgb_image, np.ascontiguousarray(rgb_image[:, ::-1]), rgb_image]
    input_points = [
        [[[100, 60]], [[30, 30], [150, 90]]],  # two objects, ragged point counts
        [[[50, 50], [60, 60], [0, 0]]],  # padded with label -1
        [[[10, 100]]],
    ]
    input_labels = [[[1], [1, 0]], [[1, 1, -1]], [[1]]]
    batch = seg.predict_batch(images, input_points=input_points, input_labels=input_labels)
    assert len(batch) == 3
    expected_objects = [
        [dict(points=[[100, 60]], labels=[1]), dict(points=[[30, 30], [150, 90]], labels=[1, 0])],
        [dict(points=[[50, 50], [60, 60]], labels=[1, 1])],
        [dict(points=[[10, 100]], labels=[1])],
    ]
    for image, result, objects in zip(images, batch, expected_objects):
        seg.set_image(image)
        for obj_index, prompt in enumerate(objects):
            single = seg.predict(**prompt)
            mine = result.object_ids == obj_index
            np.testing.assert_allclose(result.scores[mine], single.scores, atol=1e-5)
            np.testing.assert_allclose(result.logits[mine], single.logits, atol=1e-4)
            assert (result.masks[mine] == single.masks).mean() > 0.999


def test_predict_batch_encodes_each_distinct_image_once(tiny_model_dirs, rgb_image):
    seg = Segmenter(tiny_model_dirs["sam2"], device="cpu")
    calls = count_encoder_images(seg)
    other = np.ascontiguousarray(rgb_image[::-1])
    seg.predict_batch([rgb_image, other, rgb_image.copy()], input_boxes=[[[10, 10, 90, 90]]] * 3)
    assert sum(calls) == 2


@pytest.mark.parametrize("family", ["sam", "sam2"])
def test_several_boxes_in_one_decoder_call(segmenters, family, rgb_image):
    seg = segmenters[family]
    seg.set_image(rgb_image)
    calls = []
    handle = seg.model.mask_decoder.register_forward_hook(lambda *a: calls.append(1))
    fast = seg.fast
    if fast is not None:  # the fast decoder replaces transformers' module: count its calls instead
        seg.fast = lambda *args: calls.append(1) or fast(*args)
    try:
        result = seg.predict(box=[(10, 10, 90, 90), (100, 20, 190, 110), (0, 0, 200, 120)], multimask=False)
    finally:
        handle.remove()
        seg.fast = fast
    assert len(calls) == 1
    assert result.masks.shape == (3, 120, 200)
    assert result.object_ids.tolist() == [0, 1, 2]
    one = seg.predict(box=(100, 20, 190, 110), multimask=False)
    np.testing.assert_allclose(result.scores[1], one.scores[0], atol=1e-5)


@pytest.mark.parametrize("family", ["sam", "sam2"])
def test_mask_input_refines_and_changes_the_prediction(segmenters, family, rgb_image):
    seg = segmenters[family]
    seg.set_image(rgb_image)
    first = seg.predict(points=[(100, 60)])
    refined = seg.predict(points=[(100, 60), (60, 40)], labels=[1, 1], mask_input=first.best().logits)
    plain = seg.predict(points=[(100, 60), (60, 40)], labels=[1, 1])
    assert refined.masks.shape == plain.masks.shape
    assert not np.allclose(refined.logits, plain.logits)


def test_image_formats_give_the_same_embedding(tiny_model_dirs, rgb_image, tmp_path):
    from PIL import Image

    seg = Segmenter(tiny_model_dirs["sam"], device="cpu")
    calls = count_encoder_images(seg)
    path = tmp_path / "image.png"
    Image.fromarray(rgb_image).save(path)
    seg.set_image(rgb_image)
    seg.set_image(path)
    seg.set_image(Image.fromarray(rgb_image))
    seg.set_image(np.ascontiguousarray(rgb_image[:, :, ::-1]), image_format="BGR")
    seg.set_image(np.dstack([rgb_image, np.full(rgb_image.shape[:2], 255, np.uint8)]))  # RGBA
    assert calls == [1]
    gray = rgb_image[:, :, 1]
    seg.set_image(gray)
    assert calls == [1, 1]
    assert seg.image_size == (120, 200)


def test_load_model_dtype_and_family(tiny_model_dirs):
    loaded = load_model(tiny_model_dirs["sam2"], device="cpu")
    assert loaded.family == "sam2"
    assert next(loaded.model.parameters()).dtype == torch.float32
    assert not loaded.model.training


def test_public_api_exports():
    assert robosam.Segmenter is Segmenter
    assert issubclass(robosam.InputError, ValueError)
