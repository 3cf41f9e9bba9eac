"""SAM 2.1 parity with Meta's ``sam2``: a small Hiera ``SAM2Base`` built and saved by Meta's code.

Layers checked separately, so a failure names its cause:
1. model: same input tensor -> same FPN features (with the no-memory embedding), low-res logits, IoU
   scores and object scores;
2. preprocessing: given uint8, transformers' ``Sam2ImageProcessor`` resizes and rounds back to whole grey
   levels before rescaling (mean 0.26 grey levels off); Meta's ``SAM2Transforms`` rescales to float
   first. robosam hands the processor float pixels in [0, 1], which makes the two exact: checked below;
3. predictor: ``SAM2ImagePredictor.predict`` vs ``Segmenter.predict`` end to end on truck.jpg, per prompt
   case, multimask on and off (off goes through SAM 2's dynamic multimask fallback): masks IoU >= 0.99,
   scores within ``SCORE_TOL``, low-res logits within ``LOGIT_TOL`` (float32 noise: both see the same pixels).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import require_peer
from parity_reference import (
    CASES,
    SAM2_IMAGE_SIZE,
    SAM2_SMALL_OVERRIDES,
    build_sam2,
    compare,
    feed_pixels,
    reference_pixels,
    sam2_reference_predictor,
    save_sam2,
)

require_peer("sam2")

LOGIT_TOL = 3e-5  # end-to-end low-res logits: float32 noise only (2.9e-6 measured), preprocessing is exact
SCORE_TOL = 2e-6  # 1.2e-7 measured
IOU_MIN = 0.99


@pytest.fixture(scope="module")
def meta_model() -> torch.nn.Module:
    return build_sam2()


@pytest.fixture(scope="module")
def model(meta_model, tmp_path_factory):
    from robosam.models.checkpoints import load_official_checkpoint

    path = save_sam2(meta_model, tmp_path_factory.mktemp("parity_sam2") / "sam2.1_small.pt")
    return load_official_checkpoint(path, overrides=SAM2_SMALL_OVERRIDES)


@pytest.fixture(scope="module")
def image(sample_image_path) -> np.ndarray:
    from robosam.io import load_image

    return load_image(sample_image_path)


@pytest.fixture(scope="module")
def reference(meta_model, image):
    predictor = sam2_reference_predictor(meta_model)
    predictor.set_image(image)
    return predictor


@pytest.fixture(scope="module")
def segmenter(model, image):
    from robosam.segmenter import Segmenter

    seg = Segmenter(model, device="cpu")
    seg.set_image(image)
    return seg


def _meta_features(meta_model, pixels: torch.Tensor) -> list[torch.Tensor]:
    """Image features the way ``SAM2ImagePredictor.set_image`` prepares them (high-res levels first)."""
    backbone = meta_model.forward_image(pixels)
    _, features, _, sizes = meta_model._prepare_backbone_features(backbone)
    features[-1] = features[-1] + meta_model.no_mem_embed
    return [f.permute(1, 2, 0).view(1, -1, *s) for f, s in zip(features, sizes)]


def test_model_outputs_match_on_the_same_tensors(meta_model, model):
    size = SAM2_IMAGE_SIZE
    pixels = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    points = torch.tensor([[[50.0, 60.0], [120.0, 200.0], [10.0, 240.0]]])
    labels = torch.tensor([[1, 0, 1]])
    box = torch.tensor([[30.0, 40.0, 200.0, 180.0]])
    mask = torch.randn(1, 1, size // 4, size // 4, generator=torch.Generator().manual_seed(2))
    prompts = [
        {"points": 1},
        {"points": 3},
        {"box": True},
        {"points": 3, "box": True},
        {"points": 1, "mask": True},
    ]
    with torch.no_grad():
        theirs = _meta_features(meta_model, pixels)
        ours = model.get_image_embeddings(pixels)
        for level_ours, level_theirs in zip(ours, theirs, strict=True):
            assert (level_ours - level_theirs).abs().max() < 1e-6  # 0.0 measured
        for prompt in prompts:
            n = prompt.get("points", 0)
            # Meta's predictor sends a box as two corner points labelled 2 and 3, ahead of the clicks
            meta_points = (points[:, :n], labels[:, :n]) if n else None
            if prompt.get("box"):
                corners, corner_labels = box.reshape(1, 2, 2), torch.tensor([[2, 3]])
                meta_points = (
                    (torch.cat([corners, meta_points[0]], 1), torch.cat([corner_labels, meta_points[1]], 1))
                    if meta_points
                    else (corners, corner_labels)
                )
            meta_mask = mask if prompt.get("mask") else None
            for multimask in (True, False):
                sparse, dense = meta_model.sam_prompt_encoder(points=meta_points, boxes=None, masks=meta_mask)
                logits, scores, _, object_scores = meta_model.sam_mask_decoder(
                    image_embeddings=theirs[-1],
                    image_pe=meta_model.sam_prompt_encoder.get_dense_pe(),
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                    multimask_output=multimask,
                    repeat_image=False,
                    high_res_features=theirs[:-1],
                )
                out = model(
                    image_embeddings=ours,
                    input_points=points[None, :, :n] if n else None,
                    input_labels=labels[None, :, :n] if n else None,
                    input_boxes=box[None] if prompt.get("box") else None,
                    input_masks=meta_mask,
                    multimask_output=multimask,
                )
                assert (out.pred_masks[0] - logits).abs().max() < 2e-5, (prompt, multimask)  # 1.3e-6 measured
                assert (out.iou_scores[0] - scores).abs().max() < 1e-6, (prompt, multimask)  # 6e-8 measured
                assert (out.object_score_logits[0] - object_scores).abs().max() < 2e-6, (
                    prompt,
                    multimask,
                )  # 1.2e-7


def test_preprocessing_matches_meta_to_the_grey_level(reference, segmenter, image):
    ours = segmenter.adapter.preprocess([image])
    theirs = reference_pixels(reference, image)
    assert ours.shape == theirs.shape == (1, 3, SAM2_IMAGE_SIZE, SAM2_IMAGE_SIZE)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    grey_levels = (ours - theirs).abs() * std
    assert grey_levels.max() < 1e-5  # 0.0 measured


@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize("case", list(CASES))
def test_predictor_agrees_with_sam2_image_predictor(reference, segmenter, case, multimask):
    agreement = compare(reference, segmenter, case, multimask)
    assert agreement.num_masks == (3 if multimask else 1)
    assert agreement.min_iou >= IOU_MIN, agreement
    assert agreement.max_score_diff <= SCORE_TOL, agreement
    assert agreement.max_logit_diff <= LOGIT_TOL, agreement


def test_with_meta_pixels_the_predictors_agree_to_float_noise(reference, model, image):
    from robosam.segmenter import Segmenter

    seg = Segmenter(model, device="cpu")
    pixels = reference_pixels(reference, image)
    feed_pixels(seg, pixels)
    seg.set_image(image)
    for case in CASES:
        for multimask in (True, False):
            agreement = compare(reference, seg, case, multimask)
            assert agreement.max_logit_diff < 3e-5, (case, agreement)  # 2.9e-6 measured
            assert agreement.max_score_diff < 2e-6, (case, agreement)  # 1.2e-7 measured
            assert agreement.min_iou >= 0.999, (case, agreement)
