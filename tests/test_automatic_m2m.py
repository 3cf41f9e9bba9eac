"""AutoMasker's ``use_m2m`` (SAM 2 generator's mask-to-mask refinement): every candidate decoded again from its
click with its own low-res logits as mask input, single-mask, before the filters.

The expected values come from ``Segmenter.decode(..., mask_input=...)`` one candidate at a time (the
single-object mask-input path of transformers' module, checked against Meta's predictors in the parity
tests), not from the batched call under test; and from Meta's ``SAM2AutomaticMaskGenerator(use_m2m=True)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from robosam.automatic import AutoMasker

NO_FILTERS = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}
# Measured: batched vs one-at-a-time refinement differ by at most 4e-9 in logits and 2e-8 in scores; the
# refinement moves scores by ~8e-4 (tiny random models: scores of order 1e-3).
LOGIT_TOL = 1e-6
SCORE_TOL = 1e-6


@pytest.mark.parametrize("family", ["sam", "sam2"])
def test_refined_candidates_equal_one_at_a_time_refinement(family, tiny_model_dirs, rgb_image):
    from robosam.segmenter import Segmenter

    segmenter = Segmenter(tiny_model_dirs[family], device="cpu")
    masker = AutoMasker(segmenter, points_per_side=3, points_per_batch=4, use_m2m=True, **NO_FILTERS)
    result = masker.generate(rgb_image)
    plain = AutoMasker(segmenter, points_per_side=3, points_per_batch=4, **NO_FILTERS).generate(rgb_image)
    embedding = segmenter.embed(rgb_image)
    expected = {}  # click -> [(logits, score)] of its refined candidates
    for point in {tuple(p) for p in result.data["point_coords"].tolist()}:
        first = segmenter.decode(embedding, points=[point], labels=[1], upscale=False)
        expected[point] = []
        for logits in first.logits:
            again = segmenter.decode(
                embedding, points=[point], labels=[1], mask_input=logits, multimask=False, upscale=False
            )
            expected[point].append((again.logits[0], float(again.scores[0])))
    assert len(result) > 0 and len(expected) == 9
    logit_errors, score_errors = [], []
    for i, point in enumerate(map(tuple, result.data["point_coords"].tolist())):
        # the refined candidate of this click that mask i is (the filters may reorder them)
        logits, score = min(expected[point], key=lambda e: np.abs(result.logits[i] - e[0]).max())
        logit_errors.append(np.abs(result.logits[i] - logits).max())
        score_errors.append(abs(result.scores[i] - score))
    assert max(logit_errors) <= LOGIT_TOL and max(score_errors) <= SCORE_TOL
    # the refinement is not a no-op on these weights: scores move by far more than the tolerance
    change = np.abs(np.sort(result.scores) - np.sort(plain.scores)).max()
    assert change > 10 * SCORE_TOL, change
