"""Metrics on hand-made masks with known answers, and against brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from robosam.errors import InputError
from robosam.evaluation.metrics import (
    boundary_f1,
    boundary_map,
    dice,
    dilate,
    disk,
    iou,
    sequence_statistics,
    tolerance_pixels,
)


def square(shape: tuple[int, int], y0: int, x0: int, side: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[y0 : y0 + side, x0 : x0 + side] = True
    return mask


def test_iou_and_dice_of_overlapping_squares() -> None:
    gt = square((40, 40), 0, 0, 10)
    pred = square((40, 40), 0, 5, 10)  # overlap 10x5 = 50, union 150
    assert iou(pred, gt) == pytest.approx(1 / 3)
    assert dice(pred, gt) == pytest.approx(0.5)
    assert iou(gt, gt) == 1.0 and dice(gt, gt) == 1.0
    assert iou(pred, ~pred) == 0.0


def test_empty_pairs_score_one_and_batches_match_singles() -> None:
    empty = np.zeros((8, 9), dtype=bool)
    assert iou(empty, empty) == 1.0 and dice(empty, empty) == 1.0 and boundary_f1(empty, empty) == 1.0
    full = np.ones((8, 9), dtype=bool)
    assert iou(empty, full) == 0.0 and boundary_f1(empty, square((8, 9), 2, 2, 3)) == 0.0
    rng = np.random.default_rng(0)
    pred, gt = rng.random((5, 30, 40)) > 0.6, rng.random((5, 30, 40)) > 0.5
    for fn in (iou, dice, boundary_f1):
        batch = fn(pred, gt)
        assert batch.shape == (5,)
        np.testing.assert_allclose(batch, [fn(p, g) for p, g in zip(pred, gt)])


def test_shape_mismatch_is_input_error() -> None:
    with pytest.raises(InputError, match="pred"):
        iou(np.zeros((4, 5), bool), np.zeros((5, 4), bool))
    with pytest.raises(InputError, match="masks"):
        boundary_map(np.zeros((2, 3, 4, 5), bool))
    with pytest.raises(InputError, match="tolerance"):
        boundary_f1(np.zeros((4, 5), bool), np.zeros((4, 5), bool), tolerance=-1)


def test_boundary_map_of_a_square_is_a_ring_offset_towards_origin() -> None:
    mask = square((12, 12), 3, 4, 5)  # rows 3..7, cols 4..8
    edges = boundary_map(mask)
    expected = np.zeros_like(mask)
    expected[2:8, 3:9] = True  # 2x2 blocks straddling the edges: rows 2..7, cols 3..8
    expected[3:7, 4:8] = False
    np.testing.assert_array_equal(edges, expected)
    assert edges.sum() == 4 * 5
    # the image border itself is not a boundary: a full mask has none, a band touching it only its inner edge
    assert not boundary_map(np.ones((6, 7), bool)).any()
    band = np.zeros((10, 7), bool)
    band[:4] = True
    assert np.array_equal(np.flatnonzero(boundary_map(band).any(axis=1)), [3])


def test_boundary_f1_bands_known_answers() -> None:
    gt = np.zeros((20, 30), dtype=bool)
    gt[:10] = True  # boundary: row 9
    pred = np.zeros_like(gt)
    pred[:13] = True  # boundary: row 12, three rows away
    assert boundary_f1(pred, gt, tolerance=2) == 0.0
    assert boundary_f1(pred, gt, tolerance=3) == 1.0
    blob = gt.copy()
    blob[15:19, 10:14] = True  # adds a 16-pixel ring far from row 9: precision 30/46, recall 1
    precision = 30 / 46
    assert boundary_f1(blob, gt, tolerance=2) == pytest.approx(2 * precision / (precision + 1))


def test_davis_tolerance_is_eight_pixels_at_480p() -> None:
    assert tolerance_pixels(0.008, 480, 854) == 8
    assert tolerance_pixels(3, 480, 854) == 3
    assert tolerance_pixels(2.5, 10, 10) == 3


def _brute_force_f1(pred: np.ndarray, gt: np.ndarray, radius: int) -> float:
    """Definition-level reference: boundary = pixels whose 2x2 block (edge-extended) is not uniform;
    a boundary pixel matches when one of the other boundary lies within Euclidean distance ``radius``."""

    def edges(mask: np.ndarray) -> np.ndarray:
        height, width = mask.shape
        out = np.zeros_like(mask)
        for y in range(height):
            for x in range(width):
                block = {
                    mask[min(y + dy, height - 1), min(x + dx, width - 1)] for dy in (0, 1) for dx in (0, 1)
                }
                out[y, x] = len(block) > 1
        return out

    pe, ge = np.argwhere(edges(pred)), np.argwhere(edges(gt))
    if len(pe) == 0 and len(ge) == 0:
        return 1.0
    if len(pe) == 0 or len(ge) == 0:
        return 0.0
    dist = np.sqrt(((pe[:, None, :] - ge[None, :, :]) ** 2).sum(-1))
    precision = (dist.min(axis=1) <= radius).mean()
    recall = (dist.min(axis=0) <= radius).mean()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


masks_strategy = arrays(np.bool_, (2, 14, 17))


@settings(max_examples=40, deadline=None)
@given(masks=masks_strategy, radius=st.integers(1, 4))
def test_boundary_f1_matches_brute_force_definition(masks: np.ndarray, radius: int) -> None:
    pred, gt = masks
    assert boundary_f1(pred, gt, tolerance=radius) == pytest.approx(_brute_force_f1(pred, gt, radius))


@settings(max_examples=40, deadline=None)
@given(masks=masks_strategy)
def test_iou_dice_properties(masks: np.ndarray) -> None:
    a, b = masks
    assert iou(a, b) == pytest.approx(iou(b, a))
    assert 0.0 <= iou(a, b) <= dice(a, b) <= 1.0
    assert iou(a, a) == 1.0 and boundary_f1(a, a) == 1.0
    d = dice(a, b)
    assert iou(a, b) == pytest.approx(d / (2 - d))


def test_stacked_dilation_equals_scipy_disk_dilation_per_mask() -> None:
    rng = np.random.default_rng(1)
    masks = rng.random((4, 25, 31)) > 0.97
    for radius in (1, 3, 8):
        expected = np.stack([ndimage.binary_dilation(m, structure=disk(radius).astype(bool)) for m in masks])
        np.testing.assert_array_equal(dilate(masks, radius), expected)
    assert disk(2).sum() == 13


def test_sequence_statistics_known_values() -> None:
    values = np.array([0.9, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.2, 0.2, 0.2])
    stats = sequence_statistics(values)
    assert stats.mean == pytest.approx(0.53)
    assert stats.recall == pytest.approx(0.3)  # strictly above 0.5
    assert stats.decay == pytest.approx(0.7)  # bins of 10 frames: [0..2] and [7..9]
    # three frames: bin edges 1, 1.5, 2, 2.5, 3 round half up -> first bin frames 0-1, last bin frame 2
    assert sequence_statistics(np.array([1.0, 0.5, 0.0])).decay == pytest.approx(0.75)
    with_nan = sequence_statistics(np.array([1.0, np.nan, 0.0, 0.0]))
    assert with_nan.mean == pytest.approx(1 / 3)
    with pytest.raises(InputError):
        sequence_statistics(np.array([]))
