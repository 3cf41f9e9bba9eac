"""Mask helpers against pycocotools and hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import require_peer
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as coco_mask

from robosam.cache import EmbeddingCache
from robosam.errors import InputError
from robosam.masks import decode_rle, encode_rle, encode_rles_with_stats, mask_to_box, upscale_logits
from robosam.results import MaskResult


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_rle_round_trip_matches_pycocotools(height, width, seed):
    mask = np.random.default_rng(seed).random((height, width)) > 0.6
    rle = encode_rle(mask)
    assert rle["size"] == [height, width] and isinstance(rle["counts"], str)
    assert (decode_rle(rle) == mask).all()
    assert coco_mask.area({"size": rle["size"], "counts": rle["counts"].encode()}) == mask.sum()


def test_uncompressed_rle_is_decoded():
    mask = np.zeros((4, 3), bool)
    mask[1:3, 1] = True
    # column-major runs: 5 zeros, 2 ones, 5 zeros
    assert (decode_rle({"size": [4, 3], "counts": [5, 2, 5]}) == mask).all()


def test_mask_to_box_and_empty_mask():
    masks = np.zeros((2, 10, 20), bool)
    masks[0, 2:5, 3:9] = True
    boxes = mask_to_box(masks)
    assert boxes[0].tolist() == [3, 2, 8, 4]  # last foreground column 8, row 4 (inclusive)
    assert boxes[1].tolist() == [0, 0, 0, 0]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 40), st.integers(1, 40), st.floats(0.0, 0.3), st.integers(0, 2**31))
def test_rles_with_stats_equal_pixel_counts_and_tight_boxes(count, height, width, density, seed):
    """Areas and boxes read from the run lengths equal numpy's pixel sums and first/last foreground rows and
    columns (empty masks included); each RLE equals pycocotools' encoding of that mask alone."""
    masks = np.random.default_rng(seed).random((count, height, width)) < density
    rles, areas, boxes = encode_rles_with_stats(masks)
    np.testing.assert_array_equal(areas, masks.sum(axis=(1, 2)))
    for mask, rle, box in zip(masks, rles, boxes):
        expected = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert rle == {"size": [height, width], "counts": expected["counts"].decode("ascii")}
        ys, xs = np.nonzero(mask)
        np.testing.assert_array_equal(
            box, [xs.min(), ys.min(), xs.max(), ys.max()] if ys.size else [0, 0, 0, 0]
        )


def test_rles_with_stats_refuses_a_single_mask():
    with pytest.raises(InputError, match="masks"):
        encode_rles_with_stats(np.zeros((4, 4), bool))


@pytest.mark.parametrize(("out_hw", "padded"), [((150, 250), True), ((1200, 1800), True), ((37, 61), False)])
def test_upscale_logits_matches_torch_interpolate(out_hw, padded):
    import torch

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 64, 64)).astype(np.float32)
    height, width = out_hw
    size = 256
    crop = (int(height * size / max(out_hw) + 0.5), int(width * size / max(out_hw) + 0.5))
    t = torch.from_numpy(logits[None])
    if padded:
        t = torch.nn.functional.interpolate(t, (size, size), mode="bilinear")[..., : crop[0], : crop[1]]
        ours = upscale_logits(logits, out_hw, padded_hw=(size, size), crop_hw=crop)
    else:
        ours = upscale_logits(logits, out_hw)
    t = torch.nn.functional.interpolate(t, out_hw, mode="bilinear")[0].numpy()
    assert ours.shape == (2, height, width)
    np.testing.assert_allclose(ours, t, atol=1e-4)


def test_mask_result_best_per_object_and_coco():
    masks = np.zeros((4, 5, 5), bool)
    masks[1, :2, :3] = True
    masks[2, 4, 4] = True
    result = MaskResult(
        masks=masks,
        scores=np.array([0.1, 0.9, 0.8, 0.2], np.float32),
        logits=np.zeros((4, 8, 8), np.float32),
        object_ids=np.array([0, 0, 1, 1]),
    )
    best = result.best()
    assert best.scores.tolist() == [np.float32(0.9), np.float32(0.8)]
    assert best.object_ids.tolist() == [0, 1]
    coco = best.to_coco()
    # COCO xywh from the inclusive xyxy box (0, 0, 2, 1), as Meta's automatic mask generator writes it
    assert coco[0]["bbox"] == [0.0, 0.0, 2.0, 1.0] and coco[0]["area"] == 6
    assert coco[1]["bbox"] == [4.0, 4.0, 0.0, 0.0]  # one pixel: x2 == x1


def test_embedding_cache_lru_eviction_by_bytes():
    from types import SimpleNamespace as Entry

    cache = EmbeddingCache(max_bytes=250)
    for key in "abc":
        cache.put(Entry(key=key, nbytes=100))
    assert "a" not in cache and "b" in cache and "c" in cache and cache.nbytes == 200
    cache.get("b")
    cache.put(Entry(key="d", nbytes=100))
    assert "c" not in cache and "b" in cache
    cache.put(Entry(key="huge", nbytes=1000))
    assert "huge" not in cache and cache.nbytes == 200


def test_mask_result_to_supervision_detections():
    sv = require_peer("supervision")
    masks = np.zeros((2, 6, 8), bool)
    masks[0, 1:3, 2:5] = True
    masks[1, 4:, :2] = True
    result = MaskResult(
        masks=masks, scores=np.array([0.7, 0.4], np.float32), logits=np.zeros((2, 4, 4), np.float32)
    )
    detections = result.to_supervision()
    assert isinstance(detections, sv.Detections) and len(detections) == 2
    # one box convention with supervision's own helper (x2, y2 = last foreground column / row)
    assert detections.xyxy.tolist() == sv.mask_to_xyxy(masks).tolist() == [[2, 1, 4, 2], [0, 4, 1, 5]]
    assert (detections.mask == masks).all()
    assert detections.confidence.tolist() == pytest.approx([0.7, 0.4])


def test_mask_result_dict_round_trip_keeps_every_field():
    import json

    rng = np.random.default_rng(5)
    masks = rng.random((3, 7, 9)) > 0.5
    result = MaskResult(
        masks=masks,
        scores=np.array([0.9, 0.5, 0.7], np.float32),
        logits=np.zeros((3, 4, 4), np.float32),
        object_ids=np.array([0, 1, 1]),
        labels=["cup", "bowl", "bowl"],
        track_ids=[4, 7, 9],
        data={
            "stability_score": np.array([0.95, 0.9, 0.97]),
            "point_coords": np.array([[1, 2], [3, 4], [5, 6]]),
        },
        timings={"decoder_s": 0.25},
    )
    data = json.loads(json.dumps(result.to_dict()))  # JSON-safe
    back = MaskResult.from_dict(data)
    assert (back.masks == masks).all()
    np.testing.assert_array_equal(back.scores, result.scores)
    assert back.object_ids.tolist() == [0, 1, 1] and back.labels.tolist() == ["cup", "bowl", "bowl"]
    assert back.track_ids.tolist() == [4, 7, 9] and back.timings == {"decoder_s": 0.25}
    np.testing.assert_array_equal(back.data["point_coords"], result.data["point_coords"])
    # the RLE is pycocotools' own
    assert (
        coco_mask.area({"size": [7, 9], "counts": data["masks"][1]["segmentation"]["counts"].encode()})
        == masks[1].sum()
    )
    sliced = result[np.array([2, 0])]
    assert sliced.labels.tolist() == ["bowl", "cup"] and sliced.data["stability_score"].tolist() == [
        0.97,
        0.95,
    ]
    low = result.replace(masks=None)
    assert MaskResult.from_dict(json.loads(json.dumps(low.to_dict()))).logits.shape == (3, 4, 4)
    with pytest.raises(InputError, match="^data:"):
        MaskResult.from_dict({"nope": 1})


def test_to_supervision_keeps_ids_labels_and_tracks():
    sv = require_peer("supervision")
    masks = np.zeros((2, 6, 8), bool)
    masks[0, 1:3, 2:5] = True
    masks[1, 4:, :2] = True
    result = MaskResult(
        masks=masks, scores=np.array([0.7, 0.4], np.float32), logits=np.zeros((2, 4, 4), np.float32),
        object_ids=np.array([3, 5]), labels=["cup", "spoon"], track_ids=[11, 12],
    )  # fmt: skip
    detections = result.to_supervision()
    assert isinstance(detections, sv.Detections)
    assert detections.class_id.tolist() == [3, 5] and detections.tracker_id.tolist() == [11, 12]
    assert detections.data["class_name"].tolist() == ["cup", "spoon"]
