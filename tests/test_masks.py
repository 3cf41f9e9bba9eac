"""Mask helpers against pycocotools and hand-made masks."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as coco_mask

from robosam.cache import CachedImage, EmbeddingCache
from robosam.masks import decode_rle, encode_rle, mask_to_box, upscale_logits
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
    assert boxes[0].tolist() == [3, 2, 9, 5]
    assert boxes[1].tolist() == [0, 0, 0, 0]


def test_upscale_logits_single_resize_matches_two_step_torch_path():
    import cv2
    import torch

    # smooth logits, as a trained decoder gives (white noise would exaggerate two-step vs one-step)
    rng = np.random.default_rng(0)
    logits = np.stack([cv2.GaussianBlur(rng.normal(size=(64, 64)), (0, 0), 3) for _ in range(2)])
    logits = (10 * logits / np.abs(logits).max()).astype(np.float32)
    height, width, size = 150, 250, 256
    resized_h, resized_w = int(height * size / width + 0.5), size
    ours = upscale_logits(logits, (resized_h * 64 / size, resized_w * 64 / size), (height, width))
    t = torch.nn.functional.interpolate(torch.from_numpy(logits[None]), (size, size), mode="bilinear")
    t = torch.nn.functional.interpolate(t[..., :resized_h, :resized_w], (height, width), mode="bilinear")[
        0
    ].numpy()
    assert ours.shape == (2, height, width)
    assert np.abs(ours - t).max() < 0.02 * np.abs(t).max()
    assert ((ours > 0) == (t > 0)).mean() > 0.99


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
    assert coco[0]["bbox"] == [0.0, 0.0, 3.0, 2.0] and coco[0]["area"] == 6
    assert coco[1]["bbox"] == [4.0, 4.0, 1.0, 1.0]


def test_embedding_cache_lru_eviction_by_bytes():
    cache = EmbeddingCache(max_bytes=250)
    for key in "abc":
        cache.put(CachedImage(key=key, features=None, original_hw=(1, 1), nbytes=100))
    assert "a" not in cache and "b" in cache and "c" in cache and cache.nbytes == 200
    cache.get("b")
    cache.put(CachedImage(key="d", features=None, original_hw=(1, 1), nbytes=100))
    assert "c" not in cache and "b" in cache
    cache.put(CachedImage(key="huge", features=None, original_hw=(1, 1), nbytes=1000))
    assert "huge" not in cache and cache.nbytes == 200
