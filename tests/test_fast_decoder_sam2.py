"""FastSam2Decoder against transformers' own Sam2Model forward on the same weights.

Two decoder sizes: the tiny test config (hidden 32, 2 heads, 8 x 8 embedding) and SAM 2.1's real decoder
widths (hidden 256, 8 heads, MLP 2048, 64 x 64 embedding with 128 and 256 high-resolution levels) fed
random image embeddings (no Hiera encoder is run). Decoder weights get PyTorch's default init so attention
maps are peaked as in a trained model. SAM 3 tracker and EdgeTAM (SAM 2's prompt path, renamed) against their
own model classes, and ``Segmenter`` with the fast decoder against ``Segmenter(fast_decoder=False)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import tiny_models
import torch
import transformers as tf
from torch import nn

from robosam.models.fast_decoder import FastSamDecoder
from robosam.models.fast_decoder_sam2 import FastSam2Decoder, FastSam2ImageState

# Measured over all cases: SAM 2.1 widths max |logit diff| 1.3e-6 (|logits| up to 2.7), max |score diff|
# 6e-8; tiny config 3.6e-7 and 6e-8. The callers' contract is 1e-4 / 1e-5.
LOGIT_TOL = 1e-5
SCORE_TOL = 1e-6
IOU_MIN = 0.999
GRAD_RTOL = 1e-5


def _realistic_init(model: tf.Sam2Model, seed: int) -> tf.Sam2Model:
    torch.manual_seed(seed)
    for module in [*model.prompt_encoder.modules(), *model.mask_decoder.modules()]:
        if isinstance(module, (nn.Linear, nn.ConvTranspose2d, nn.Conv2d, nn.LayerNorm, nn.Embedding)):
            module.reset_parameters()
    return model.eval()


def _sam2_full_width_model() -> tf.Sam2Model:
    """SAM 2.1's prompt encoder and mask decoder (transformers' defaults); a small stub Hiera."""
    hiera = tf.Sam2HieraDetConfig(
        hidden_size=16,
        num_attention_heads=1,
        blocks_per_stage=[1, 1, 1, 1],
        embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        global_attention_blocks=[3],
    )
    vision = tf.Sam2VisionConfig(backbone_config=hiera, backbone_channel_list=[128, 64, 32, 16])
    config = tf.Sam2Config(vision_config=vision)
    assert config.mask_decoder_config.hidden_size == 256 and config.mask_decoder_config.mlp_dim == 2048
    return _realistic_init(tf.Sam2Model(config), seed=1)


def _embeddings(model: tf.Sam2Model, seed: int) -> list[torch.Tensor]:
    """Random stand-ins for ``get_image_embeddings``: [(1, C/8, 4h, 4w), (1, C/4, 2h, 2w), (1, C, h, w)]."""
    config = model.config.prompt_encoder_config
    channels, side = config.hidden_size, config.image_size // config.patch_size
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(1, channels // 8, 4 * side, 4 * side, generator=g),
        torch.randn(1, channels // 4, 2 * side, 2 * side, generator=g),
        torch.randn(1, channels, side, side, generator=g),
    ]


@pytest.fixture(scope="module")
def setups() -> dict[str, tuple[tf.Sam2Model, FastSam2Decoder, list[torch.Tensor]]]:
    result = {}
    for name, model in [
        ("tiny", _realistic_init(tiny_models.build_sam2(), seed=2)),
        ("sam2_1", _sam2_full_width_model()),
        ("sam3_tracker", _realistic_init(tiny_models.build_sam3_tracker(), seed=7)),
        ("edgetam", _realistic_init(tiny_models.build_edgetam(), seed=8)),
    ]:
        result[name] = (model, FastSam2Decoder(model), _embeddings(model, seed=3))
    return result


def _prompt(case: str, size: int) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """(points (O, P, 2), labels (O, P), boxes (O, 4)) in the model's input frame of side ``size``."""
    g = torch.Generator().manual_seed(sum(map(ord, case)))

    def points(objects: int, count: int) -> torch.Tensor:
        return torch.rand(objects, count, 2, generator=g) * size

    def boxes(objects: int) -> torch.Tensor:
        corners = torch.rand(objects, 2, 2, generator=g) * size
        return torch.cat([corners.amin(1), corners.amax(1)], dim=1)

    if case == "point":
        return points(1, 1), torch.tensor([[1]]), None
    if case == "points_negative":
        return points(1, 3), torch.tensor([[1, 0, 1]]), None
    if case == "box":
        return None, None, boxes(1)
    if case == "points_box":
        return points(1, 2), torch.tensor([[1, 0]]), boxes(1)
    if case == "objects":
        return points(5, 2), torch.tensor([[1, 0], [1, 1], [0, 1], [1, -1], [1, -10]]), None
    if case == "padding":
        return torch.cat([points(1, 1), torch.zeros(1, 1, 2)], dim=1), torch.tensor([[1, -1]]), None
    raise ValueError(case)


def _reference(model, embeddings, points, labels, boxes, multimask):
    out = model(
        image_embeddings=embeddings,
        input_points=None if points is None else points[None],
        input_labels=None if labels is None else labels[None],
        input_boxes=None if boxes is None else boxes[None],
        multimask_output=multimask,
    )
    return out.pred_masks[0], out.iou_scores[0]


def _assert_close(fast, reference) -> None:
    logits, scores = fast
    ref_logits, ref_scores = reference
    assert logits.shape == ref_logits.shape and scores.shape == ref_scores.shape
    assert (logits - ref_logits).abs().max().item() <= LOGIT_TOL
    assert (scores - ref_scores).abs().max().item() <= SCORE_TOL
    masks, ref_masks = logits > 0, ref_logits > 0
    inter = (masks & ref_masks).flatten(2).sum(-1)
    union = (masks | ref_masks).flatten(2).sum(-1)
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter, dtype=torch.float))
    assert iou.min().item() >= IOU_MIN


CASES = ["point", "points_negative", "box", "points_box", "objects", "padding"]
PARITY = [("tiny", case, multimask) for case in CASES for multimask in (True, False)] + [
    (config, case, (index + shift) % 2 == 0)
    for shift, config in enumerate(["sam2_1", "sam3_tracker", "edgetam"])
    for index, case in enumerate(CASES)
]


@pytest.mark.parametrize(
    "config, case, multimask", PARITY, ids=[f"{c}-{k}-{'multi' if m else 'single'}" for c, k, m in PARITY]
)
def test_matches_transformers(setups, config, case, multimask):
    model, decoder, embeddings = setups[config]
    points, labels, boxes = _prompt(case, model.config.prompt_encoder_config.image_size)
    with torch.inference_mode():
        state = decoder.prepare(embeddings)
        fast = decoder(state, points, labels, boxes, multimask)
        reference = _reference(model, embeddings, points, labels, boxes, multimask)
    objects = (points if points is not None else boxes).shape[0]
    assert fast[0].shape[:2] == (objects, 3 if multimask else 1)
    _assert_close(fast, reference)


@pytest.mark.parametrize("threshold", [0.0, 2.0, None], ids=["always-stable", "never-stable", "default"])
def test_single_mask_stability_choice(setups, threshold):
    """multimask=False keeps mask 0 when it is stable and otherwise the best multimask mask, per object."""
    model, decoder, embeddings = setups["tiny"]
    points, labels, boxes = _prompt("objects", 128)
    default = model.mask_decoder.dynamic_multimask_stability_thresh
    try:
        if threshold is not None:
            model.mask_decoder.dynamic_multimask_stability_thresh = threshold
        with torch.inference_mode():
            fast = decoder(decoder.prepare(embeddings), points, labels, boxes, False)
            reference = _reference(model, embeddings, points, labels, boxes, False)
            multi = _reference(model, embeddings, points, labels, boxes, True)
    finally:
        model.mask_decoder.dynamic_multimask_stability_thresh = default
    _assert_close(fast, reference)  # threshold 0: every object keeps mask 0; 2: every one falls back
    if threshold == 2.0:
        torch.testing.assert_close(fast[1][:, 0], multi[1].amax(dim=-1), rtol=0, atol=SCORE_TOL)


@pytest.mark.parametrize("multimask", [True, False], ids=["multi", "single"])
def test_decode_above_skips_only_prompts_without_a_passing_score(setups, multimask):
    """decode_above: kept rows equal __call__'s; a prompt is dropped only when none of its scores is above
    the threshold (never for SAM 2's stability-chosen single mask, whose score needs the upscaled mask)."""
    model, decoder, embeddings = setups["tiny"]
    points, labels, boxes = _prompt("objects", 128)
    with torch.inference_mode():
        state = decoder.prepare(embeddings)
        logits, scores = decoder(state, points, labels, boxes, multimask)
        threshold = scores.max(dim=1).values.median().item()  # about half the prompts pass
        kept_logits, all_scores, kept = decoder.decode_above(
            state, points, labels, boxes, multimask, threshold
        )
    torch.testing.assert_close(all_scores, scores, rtol=0, atol=0)
    expected = torch.nonzero((scores > threshold).any(dim=1)).flatten() if multimask else torch.arange(5)
    assert kept.tolist() == expected.tolist() and 0 < len(expected)
    assert multimask == (len(expected) < 5)
    torch.testing.assert_close(kept_logits, logits[kept], rtol=0, atol=1e-6)
    if multimask:  # nothing passes: nothing upscaled
        with torch.inference_mode():
            none, _, kept = decoder.decode_above(state, points, labels, boxes, True, scores.max().item())
        assert none.shape == (0, 3, *logits.shape[-2:]) and not len(kept)


def test_training_mode_returns_mask_zero(setups):
    model, decoder, embeddings = setups["tiny"]
    points, labels, _ = _prompt("objects", 128)
    model.mask_decoder.train()
    try:
        with torch.no_grad():
            fast = decoder(decoder.prepare(embeddings), points, labels, None, False)
            reference = _reference(model, embeddings, points, labels, None, False)
    finally:
        model.mask_decoder.eval()
    _assert_close(fast, reference)


def test_gradients_match_transformers():
    model = _realistic_init(tiny_models.build_sam2(), seed=4)
    decoder = FastSam2Decoder(model)
    embeddings = _embeddings(model, seed=5)
    g = torch.Generator().manual_seed(6)
    points, labels = torch.rand(2, 2, 2, generator=g) * 128, torch.tensor([[1, 0], [1, -1]])
    boxes = torch.tensor([[10.0, 20.0, 90.0, 100.0], [40.0, 5.0, 120.0, 60.0]])
    weight = torch.randn(2, 3, 32, 32, generator=g)

    def gradients(fast: bool) -> dict[str, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        levels = [e.clone().requires_grad_(True) for e in embeddings]
        if fast:
            logits, scores = decoder(decoder.prepare(levels), points, labels, boxes, True)
        else:
            logits, scores = _reference(model, levels, points, labels, boxes, True)
        ((logits * weight).mean() + scores.sum()).backward()
        grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
        return {**grads, **{f"level{i}": e.grad for i, e in enumerate(levels)}}

    fast, reference = gradients(True), gradients(False)
    assert set(fast) <= set(reference)
    assert any("mask_decoder.upscale_conv1" in name for name in fast) and "level0" in fast
    scale = max(g.abs().max().item() for g in reference.values())
    for name, ref in reference.items():
        got = fast.get(name)  # None: the parameter does not reach the returned outputs
        got = torch.zeros_like(ref) if got is None else got
        if name.endswith("k_proj.bias") or "output_hypernetworks_mlps.0." in name:
            # key biases shift a whole softmax row; mask token 0 is not returned with multimask
            assert got.abs().max().item() <= 1e-6 * scale and ref.abs().max().item() <= 1e-6 * scale, name
        else:
            assert (got - ref).abs().max().item() <= GRAD_RTOL * ref.abs().max().item(), name


def test_supports_the_sam2_prompt_path_only():
    for build in (tiny_models.build_sam2, tiny_models.build_sam3_tracker, tiny_models.build_edgetam):
        assert FastSam2Decoder.supports(build())
    assert not FastSam2Decoder.supports(tiny_models.build_sam())
    assert not FastSam2Decoder.supports(tiny_models.build_sam_hq())
    assert not FastSamDecoder.supports(tiny_models.build_sam2())
    with pytest.raises(TypeError):
        FastSam2Decoder(tiny_models.build_sam())


def test_rejects_bad_input(setups):
    _, decoder, embeddings = setups["tiny"]
    with pytest.raises(ValueError, match="3 levels"):
        decoder.prepare(embeddings[-1])
    with pytest.raises(ValueError, match="high-resolution"):
        decoder.prepare([embeddings[1], embeddings[0], embeddings[2]])
    state = decoder.prepare(embeddings)
    assert isinstance(state, FastSam2ImageState)
    assert state.nbytes > sum(t.numel() * 4 for t in (state.keys, *state.pe_t2i_keys, state.upscale_bias2))
    with pytest.raises(ValueError, match="points or boxes"):
        decoder(state, None, None, None, True)


# --- Segmenter: the fast decoder is the default for the SAM 2 prompt path, equal to transformers' -----------

SEGMENTER_FAMILIES = ["sam2", "sam3_tracker", "edgetam"]
# Measured (tiny models, every prompt below): max |logit diff| 1e-6, max |score diff| 1e-7.
SEGMENTER_LOGIT_TOL = 1e-5


@pytest.fixture(scope="module")
def segmenter_pairs(tiny_model_dirs):
    from robosam.segmenter import Segmenter

    pairs = {}
    for family in SEGMENTER_FAMILIES:
        fast = Segmenter(tiny_model_dirs[family], device="cpu")
        pairs[family] = (fast, Segmenter(fast.loaded, fast_decoder=False))
    return pairs


SEGMENTER_PROMPTS = {
    "point": dict(points=[(100, 60)], labels=[1]),
    "box": dict(box=(30, 15, 160, 90)),
    "points_box": dict(points=[(100, 60), (20, 100)], labels=[1, 0], box=(30, 15, 160, 90)),
    "objects": dict(points=[[(100, 60)], [(20, 30)], [(170, 100)]], labels=[[1], [1], [1]]),
}


@pytest.mark.parametrize("multimask", [True, False], ids=["multi", "single"])
@pytest.mark.parametrize("prompt", list(SEGMENTER_PROMPTS))
@pytest.mark.parametrize("family", SEGMENTER_FAMILIES)
def test_segmenter_uses_it_and_matches_the_transformers_path(
    segmenter_pairs, family, prompt, multimask, rgb_image
):
    fast, reference = segmenter_pairs[family]
    assert isinstance(fast.fast, FastSam2Decoder) and reference.fast is None
    embedding = fast.embed(rgb_image)
    calls = []
    decoder = fast.fast
    fast.fast = lambda *args: calls.append(1) or decoder(*args)
    try:
        ours = fast.decode(embedding, **SEGMENTER_PROMPTS[prompt], multimask=multimask)
    finally:
        fast.fast = decoder
    theirs = reference.decode(reference.embed(rgb_image), **SEGMENTER_PROMPTS[prompt], multimask=multimask)
    assert calls, "the fast decoder was not used"
    assert ours.logits.shape == theirs.logits.shape
    assert abs(ours.logits - theirs.logits).max() <= SEGMENTER_LOGIT_TOL
    assert abs(ours.scores - theirs.scores).max() <= SCORE_TOL
    decided = abs(theirs.logits) > 1e-3  # pixels not within float noise of the threshold
    np.testing.assert_array_equal(ours.logits[decided] > 0, theirs.logits[decided] > 0)
    inter = (ours.masks & theirs.masks).sum(axis=(1, 2))
    union = (ours.masks | theirs.masks).sum(axis=(1, 2))
    assert (np.where(union > 0, inter / np.maximum(union, 1), 1.0) >= IOU_MIN).all()


def test_segmenter_falls_back_to_transformers_for_mask_input(segmenter_pairs, rgb_image):
    fast, reference = segmenter_pairs["sam2"]
    embedding = fast.embed(rgb_image)
    first = fast.decode(embedding, points=[(100, 60)], labels=[1])
    decoder = fast.fast
    fast.fast = lambda *args: pytest.fail("the fast decoder does not take mask inputs")
    try:
        ours = fast.decode(embedding, points=[(100, 60)], labels=[1], mask_input=first.best().logits)
    finally:
        fast.fast = decoder
    theirs = reference.decode(
        reference.embed(rgb_image), points=[(100, 60)], labels=[1], mask_input=first.best().logits
    )
    np.testing.assert_allclose(ours.logits, theirs.logits, atol=SEGMENTER_LOGIT_TOL)
