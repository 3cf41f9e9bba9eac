"""AutoMasker: Meta's generator layout and filters reproduced, parity with ``SamAutomaticMaskGenerator`` on the
same random weights (loaded through the official-checkpoint path), every family, every output format.

Random weights and parity: an untrained SAM decoder gives masks that are high-frequency textures spanning the
whole image (so box NMS collapses them to one) with logits too small for any stability score. The reference
model here therefore changes three things after ``parity_reference.build_sam1``'s random draw (both sides get
the same weights through the official checkpoint file): the mask decoder's transposed convolutions are made
constant over their kernel (upscaling without the 4x4 checkerboard), the hypernetwork outputs are scaled by
1000 (logits of tens to hundreds, so stability scores spread over 0.7-1.0), and the image is 40 coloured squares
on a dark ground, so each click's random mask functional picks a few squares. With points_per_side=16,
pred_iou_thresh=0.01 (about 45 % of candidates pass), stability_score_thresh=0.6 and box_nms_thresh=0.8 about
25 distinct masks survive (measured), and every filter removes some.
"""

from __future__ import annotations

import json
import threading
import warnings

import numpy as np
import pytest
import torch
from helpers import require_peer
from parity_reference import build_sam1, save_sam1

from robosam.automatic import (
    AutoMasker,
    box_near_crop_edge,
    build_layer_point_grids,
    generate_crop_boxes,
    mask_to_uncompressed_rle,
    remove_small_regions,
    stability_score,
    to_coco_results,
    uncompressed_rle_to_mask,
)
from robosam.automatic.candidates import full_resolution_stats
from robosam.errors import InputError
from robosam.masks import mask_to_box, upscale_logits
from robosam.models import ImageGeometry
from robosam.runtime import torch_threads

amg = require_peer("segment_anything.utils.amg")

PARITY_KNOBS = {
    "points_per_side": 16,
    "pred_iou_thresh": 0.01,
    "stability_score_thresh": 0.6,
    "box_nms_thresh": 0.8,
}
MATCH_IOU = 0.9
MATCH_SHARE = 0.95


def squares_image() -> np.ndarray:
    """(300, 450, 3) uint8: 40 squares of random colours (38 px) on a dark ground."""
    rng = np.random.default_rng(0)
    image = np.full((300, 450, 3), 20, np.uint8)
    for row in range(5):
        for col in range(8):
            y, x = 10 + row * 58, 10 + col * 55
            image[y : y + 38, x : x + 38] = rng.integers(0, 256, 3)
    return image


def amg_reference_model() -> torch.nn.Module:
    """``build_sam1`` with the decoder changes described in the module docstring."""
    model = build_sam1(seed=0)
    with torch.no_grad():
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(1000.0)
            mlp.layers[-1].bias.mul_(1000.0)
        for layer in model.mask_decoder.output_upscaling:
            if isinstance(layer, torch.nn.ConvTranspose2d):
                layer.weight.copy_(layer.weight.mean(dim=(2, 3), keepdim=True).expand_as(layer.weight))
    return model


@pytest.fixture(scope="module")
def meta_model() -> torch.nn.Module:
    return amg_reference_model()


@pytest.fixture(scope="module")
def segmenter(meta_model, tmp_path_factory):
    from robosam.segmenter import Segmenter

    checkpoint = save_sam1(meta_model, tmp_path_factory.mktemp("amg") / "sam_small.pth")
    return Segmenter(str(checkpoint), device="cpu")


def mask_ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of two stacks of bool masks."""
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None] - inter
    return inter / np.maximum(union, 1)


def assert_agreement(reference: list[dict], ours) -> np.ndarray:
    ref_masks = np.stack([r["segmentation"] for r in reference])
    ious = mask_ious(ref_masks, ours.masks)
    assert (ious.max(axis=1) >= MATCH_IOU).mean() >= MATCH_SHARE
    assert (ious.max(axis=0) >= MATCH_IOU).mean() >= MATCH_SHARE
    return ious


# --- layout and filters against Meta's helpers ----------------------------------------------------------


@pytest.mark.parametrize("n_per_side, layers, scale", [(16, 0, 1), (32, 2, 2), (7, 1, 3)])
def test_point_grids_match_meta(n_per_side, layers, scale):
    ours = build_layer_point_grids(n_per_side, layers, scale)
    theirs = amg.build_all_layer_point_grids(n_per_side, layers, scale)
    assert len(ours) == len(theirs) == layers + 1
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("hw", [(1200, 1800), (480, 640), (333, 517), (1000, 1000)])
@pytest.mark.parametrize("layers, overlap", [(0, 512 / 1500), (1, 512 / 1500), (2, 0.25), (3, 0.0)])
def test_crop_box_layout_matches_meta(hw, layers, overlap):
    assert generate_crop_boxes(hw, layers, overlap) == amg.generate_crop_boxes(hw, layers, overlap)


def test_stability_score_matches_meta():
    logits = torch.randn(6, 40, 50, generator=torch.Generator().manual_seed(0)) * 3
    logits[5] = -5  # empty at both thresholds: NaN on both sides
    for threshold, offset in [(0.0, 1.0), (0.5, 0.25)]:
        expected = amg.calculate_stability_score(logits, threshold, offset).numpy()
        ours = stability_score(logits.numpy(), threshold, offset)
        np.testing.assert_allclose(ours[:5], expected[:5], rtol=1e-6)
        assert np.isnan(ours[5]) and np.isnan(expected[5])
        assert 0 < ours[:5].min() and ours[:5].max() < 1


def random_masks(count: int, hw=(37, 53), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    masks = rng.random((count, *hw)) > 0.6
    masks[0] = False
    masks[1] = True
    masks[2, 0, 0] = True  # first pixel set: counts start with a zero-length run
    return masks


def test_uncompressed_rle_round_trips_and_matches_meta_and_pycocotools():
    from pycocotools import mask as coco_mask

    masks = random_masks(6)
    meta_rles = amg.mask_to_rle_pytorch(torch.from_numpy(masks))
    for mask, meta_rle in zip(masks, meta_rles):
        rle = mask_to_uncompressed_rle(mask)
        assert rle == meta_rle
        json.dumps(rle)
        np.testing.assert_array_equal(uncompressed_rle_to_mask(rle), mask)
        compressed = coco_mask.frPyObjects(rle, *rle["size"])
        np.testing.assert_array_equal(coco_mask.decode(compressed).astype(bool), mask)
    with pytest.raises(InputError, match="counts"):
        uncompressed_rle_to_mask({"size": [2, 2], "counts": [1, 1]})


def test_coco_rle_records_match_meta_encoding():
    from robosam.masks import decode_rle, encode_rle

    for mask, meta_rle in zip(
        random_masks(4, seed=1), amg.mask_to_rle_pytorch(torch.from_numpy(random_masks(4, seed=1)))
    ):
        assert encode_rle(mask) == amg.coco_encode_rle(meta_rle)
        np.testing.assert_array_equal(decode_rle(encode_rle(mask)), mask)


def test_small_region_removal_matches_meta():
    rng = np.random.default_rng(3)
    for _ in range(12):
        mask = np.zeros((60, 80), bool)
        for _ in range(8):
            y, x = rng.integers(0, 55), rng.integers(0, 75)
            h, w = rng.integers(1, 15, 2)
            mask[y : y + h, x : x + w] = True
        mask[rng.integers(0, 60, 5), rng.integers(0, 80, 5)] ^= True  # specks and pinholes
        for mode in ("holes", "islands"):
            for area in (3, 30, 10_000):
                ours, changed = remove_small_regions(mask, area, mode)
                theirs, their_changed = amg.remove_small_regions(mask, area, mode)
                np.testing.assert_array_equal(ours, theirs)
                assert changed == their_changed
    island = np.zeros((20, 20), bool)
    island[2:12, 2:12] = True
    island[15, 15] = True
    island[5, 5] = False
    cleaned, changed = remove_small_regions(island, 4, "islands")
    assert changed and not cleaned[15, 15] and cleaned[2:12, 2:12].sum() == 99
    filled, changed = remove_small_regions(cleaned, 4, "holes")
    assert changed and filled[5, 5]


def test_box_near_crop_edge_matches_meta():
    rng = np.random.default_rng(4)
    crop, image = [300, 200, 900, 700], [0, 0, 900, 1200]
    boxes = rng.integers(0, 600, (200, 4)).astype(np.float32)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
    expected = amg.is_box_near_crop_edge(torch.from_numpy(boxes), crop, image).numpy()
    ours = box_near_crop_edge(boxes, crop, image)
    np.testing.assert_array_equal(ours, expected)
    assert 0 < ours.sum() < len(ours)


# --- generator parity --------------------------------------------------------------------------------


def test_matches_meta_generator(meta_model, segmenter):
    """Full image: each side's masks have a partner with IoU >= 0.9 on the other (>= 95 %, 100 % measured);
    the per-mask data agree to float noise."""
    from segment_anything import SamAutomaticMaskGenerator

    image = squares_image()
    reference = SamAutomaticMaskGenerator(meta_model, **PARITY_KNOBS).generate(image)
    masker = AutoMasker(segmenter, **PARITY_KNOBS)
    ours = masker.generate(image)
    assert len(reference) >= 20, len(reference)
    assert abs(len(ours) - len(reference)) <= 1
    ious = assert_agreement(reference, ours)
    records = masker.to_records(ours)
    for ref, j in zip(reference, ious.argmax(axis=1)):
        mine = records[j]
        assert mine["point_coords"] == ref["point_coords"]
        assert mine["crop_box"] == ref["crop_box"]
        assert mine["bbox"] == pytest.approx(ref["bbox"], abs=1)
        assert mine["area"] == pytest.approx(ref["area"], rel=0.01)
        assert mine["predicted_iou"] == pytest.approx(ref["predicted_iou"], abs=1e-4)
        assert mine["stability_score"] == pytest.approx(ref["stability_score"], abs=2e-3)
    # every filter removed something: candidates 256 * 3, survivors far fewer
    assert len(ours) < 100


def test_matches_meta_generator_with_crops_and_small_regions(meta_model, segmenter):
    from segment_anything import SamAutomaticMaskGenerator

    knobs = {**PARITY_KNOBS, "points_per_side": 8, "crop_n_layers": 1, "min_mask_region_area": 200}
    image = squares_image()
    reference = SamAutomaticMaskGenerator(meta_model, **knobs).generate(image)
    ours = AutoMasker(segmenter, **knobs).generate(image)
    assert len(reference) >= 10, len(reference)
    assert_agreement(reference, ours)
    crops = {tuple(r["crop_box"]) for r in reference}
    assert len(crops) > 1  # masks from the crops survived the cross-crop NMS
    assert len({tuple(b) for b in ours.data["crop_box"].tolist()}) > 1


# --- families, formats, errors -----------------------------------------------------------------------


@pytest.mark.parametrize("family", ["sam", "sam_hq", "sam2", "sam3_tracker", "edgetam"])
def test_every_family(family, tiny_model_dirs, rgb_image):
    from robosam.segmenter import Segmenter

    segmenter = Segmenter(tiny_model_dirs[family], device="cpu")
    masker = AutoMasker(
        segmenter, points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0, box_nms_thresh=1.0
    )
    calls = []
    result = masker.generate(rgb_image, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (16, 16)
    assert len(result) == 48  # 16 clicks x 3 masks, no filter active
    assert result.masks.shape == (48, *rgb_image.shape[:2])
    assert result.data["point_coords"].shape == (48, 2)
    np.testing.assert_array_equal(result.data["crop_box"], [[0, 0, 200, 120]] * 48)
    assert result.timings["decoder_s"] > 0


def test_output_modes_and_exports(segmenter):
    from pycocotools import mask as coco_mask

    image = squares_image()
    masker = AutoMasker(segmenter, **{**PARITY_KNOBS, "points_per_side": 8})
    result = masker.generate(image)
    assert len(result) > 3
    binary = masker.to_records(result)
    for mode in ("uncompressed_rle", "coco_rle"):
        records = AutoMasker(segmenter, output_mode=mode).to_records(result)
        for record, plain in zip(records, binary):
            rle = record["segmentation"]
            decoded = coco_mask.decode(
                coco_mask.frPyObjects(rle, *rle["size"])
                if mode == "uncompressed_rle"
                else {**rle, "counts": rle["counts"].encode()}
            )
            np.testing.assert_array_equal(decoded.astype(bool), plain["segmentation"])
            assert record["area"] == plain["area"] == int(plain["segmentation"].sum())
        json.dumps(records)
    coco = to_coco_results(result, image_id=7)
    assert [c["score"] for c in coco] == pytest.approx(result.scores.tolist())
    assert all(c["image_id"] == 7 and c["category_id"] == 1 for c in coco)
    detections = result.to_supervision()
    assert len(detections) == len(result)
    np.testing.assert_allclose(detections.data["stability_score"], result.data["stability_score"])


def test_bad_knobs_raise_input_error(segmenter):
    with pytest.raises(InputError, match="points_per_side"):
        AutoMasker(segmenter, points_per_side=None)
    with pytest.raises(InputError, match="point_grids"):
        AutoMasker(segmenter, points_per_side=None, point_grids=[np.zeros((4, 2))], crop_n_layers=1)
    with pytest.raises(InputError, match="output_mode"):
        AutoMasker(segmenter, output_mode="polygons")
    with pytest.raises(InputError, match="points_per_batch"):
        AutoMasker(segmenter, points_per_batch=0)


@pytest.mark.parametrize(
    "geometry",
    [
        ImageGeometry((300, 450), 256, (171, 256), 64, True),  # SAM 1: pad to square, two resizes
        ImageGeometry((1200, 1800), 1024, (683, 1024), 256, True),
        ImageGeometry((233, 517), 1024, (1024, 1024), 256, False),  # SAM 2: one stretch
    ],
)
def test_full_resolution_stats_equal_stats_of_upscaled_masks(geometry):
    """The windowed, never-stored computation equals stability and boxes of the fully upscaled logits."""
    side = geometry.lowres_size
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:side, :side]
    logits = []
    for _ in range(10):
        cy, cx, radius = rng.uniform(0, side, 2).tolist() + [rng.uniform(2, side / 3)]
        logits.append(3.0 * (radius - np.hypot(yy - cy, xx - cx)) + rng.normal(0, 0.5, (side, side)))
    logits.append(np.full((side, side), -5.0))  # empty at every threshold
    logits.append(np.where(xx == side - 1, 4.0, -4.0))  # a one-cell stripe at the far edge
    logits = np.stack(logits).astype(np.float32)
    full = upscale_logits(logits, geometry.original_hw, **geometry.upscale_frame())
    for threshold, offset, workers in [(0.0, 1.0, 1), (0.5, 2.0, 1), (0.0, 1.0, 2)]:
        stability, boxes = full_resolution_stats(
            logits, geometry, threshold, offset, chunk=3, workers=workers
        )
        expected = stability_score(full, threshold, offset)
        np.testing.assert_array_equal(np.isnan(stability), np.isnan(expected))
        np.testing.assert_allclose(stability, expected, rtol=1e-6)
        np.testing.assert_array_equal(boxes, mask_to_box(full > threshold))


def test_decoder_threads_change_nothing(segmenter, monkeypatch):
    """On a CPU the fast decoder's chunks of clicks run on as many Python threads as torch has intra-op threads
    (one torch thread each). With 1 or 2 torch threads the results are identical, the second run really
    decodes on worker threads, and torch's thread count is restored afterwards."""
    knobs = {**PARITY_KNOBS, "points_per_side": 8}
    image = squares_image()
    decode_above = segmenter.fast.decode_above
    threads: list[str] = []

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return decode_above(*args, **kwargs)

    monkeypatch.setattr(segmenter.fast, "decode_above", recording)
    with torch_threads(1):
        serial = AutoMasker(segmenter, **knobs).generate(image)
    serial_threads, threads[:] = set(threads), []
    with torch_threads(2):
        threaded = AutoMasker(segmenter, **knobs).generate(image)
        assert torch.get_num_threads() == 2
    assert serial_threads == {threading.main_thread().name}
    assert any(name.startswith("robosam-decode") for name in threads)
    assert len(serial) > 5
    np.testing.assert_array_equal(threaded.masks, serial.masks)
    np.testing.assert_array_equal(threaded.scores, serial.scores)


@pytest.mark.slow
def test_compiled_decoder_gives_the_same_masks(segmenter):
    """compile=True (torch.compile of the decoder, cached per segmenter) changes nothing but speed."""
    knobs = {**PARITY_KNOBS, "points_per_side": 8, "points_per_batch": 24}
    image = squares_image()
    eager = AutoMasker(segmenter, **knobs).generate(image)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback to eager would hide a failure
        compiled = AutoMasker(segmenter, **knobs, compile=True).generate(image)
        again = AutoMasker(segmenter, **knobs, compile=True).generate(image)
    assert len(compiled) == len(eager) == len(again) > 0
    assert mask_ious(eager.masks, compiled.masks).diagonal().min() >= 0.99
    np.testing.assert_allclose(compiled.scores, eager.scores, atol=1e-4)
