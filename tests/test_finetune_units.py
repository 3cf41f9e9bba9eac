"""Fine-tuning parts without a training run: batched decoding, losses, targets, prompts, the store, the split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import run_cli

from robosam.finetune import EmbeddingStore, model_key, split_validation
from robosam.finetune.decoding import decode_objects
from robosam.finetune.losses import sam_loss
from robosam.finetune.sampling import correction_click, lowres_targets, sample_box, sample_point
from robosam.masks import upscale_logits
from robosam.prompts import ObjectPrompt
from robosam.segmenter import Segmenter


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (two oversubscribe a shared machine badly)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def segmenters(tiny_model_dirs):
    return {
        f: Segmenter(tiny_model_dirs[f], device="cpu", fast_decoder=False) for f in ("sam", "sam2", "sam_hq")
    }


@pytest.mark.parametrize("family", ["sam", "sam2", "sam_hq"])
def test_batched_decoding_matches_segmenter(segmenters, rgb_image, family):
    """Objects as batch rows (each with its own mask input) give what ``Segmenter.decode_logits`` gives one
    object at a time (measured: 0 without mask input, <= 2e-9 with one)."""
    seg = segmenters[family]
    emb = seg.embed(rgb_image)
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 120, (3, 2, 2)).astype(np.float32)
    labels = np.array([[1, 0], [1, 1], [0, 1]])
    boxes = np.array([[10, 10, 90, 60], [40, 20, 150, 70], [0, 0, 199, 119]], dtype=np.float32)
    objects = [ObjectPrompt(points=points[i], labels=labels[i], box=boxes[i]) for i in range(3)]
    g = emb.geometry
    model_points = torch.from_numpy(g.to_model(points))
    model_boxes = torch.from_numpy(g.to_model(boxes.reshape(-1, 2, 2)).reshape(-1, 4))
    masks = torch.randn(3, 1, seg.adapter.lowres_size, seg.adapter.lowres_size)
    with torch.no_grad():
        ref = seg.decode_logits(emb, objects, None, True)
        out = decode_objects(
            seg.adapter, emb.features, model_points, torch.from_numpy(labels), model_boxes, None, True
        )
        assert torch.allclose(out.logits, ref.logits, atol=1e-6) and torch.allclose(
            out.scores, ref.scores, atol=1e-6
        )
        out = decode_objects(
            seg.adapter, emb.features, model_points, torch.from_numpy(labels), model_boxes, masks, False
        )
        for i, obj in enumerate(objects):
            ref = seg.decode_logits(emb, [obj], masks[i : i + 1], False)
            assert torch.allclose(out.logits[i], ref.logits[0], atol=1e-6)
            assert torch.allclose(out.scores[i], ref.scores[0], atol=1e-6)


def test_sam_loss_matches_formulas():
    """Focal (alpha 0.25, gamma 2), dice and IoU-MSE recomputed in numpy from their definitions; the mask
    term is taken from the best of three candidates, the IoU term from all three."""
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (2, 3, 8, 8))
    target = (rng.random((2, 8, 8)) > 0.6).astype(np.float64)
    valid = np.ones((2, 8, 8))
    valid[:, :, 6:] = 0  # padding columns take no part
    scores = rng.random((2, 3))
    terms = sam_loss(
        torch.from_numpy(logits), torch.from_numpy(scores), torch.from_numpy(target), torch.from_numpy(valid)
    )

    p = 1 / (1 + np.exp(-logits))
    t = target[:, None]
    v = valid[:, None]
    ce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    p_t = p * t + (1 - p) * (1 - t)
    focal_px = (0.25 * t + 0.75 * (1 - t)) * ce * (1 - p_t) ** 2
    focal = (focal_px * v).sum((-2, -1)) / v.sum((-2, -1))
    pv = p * v
    dice = 1 - (2 * (pv * t * v).sum((-2, -1)) + 1) / (pv.sum((-2, -1)) + (t * v).sum((-2, -1)) + 1)
    pred = (logits > 0) & (v > 0)
    iou = (pred & (t > 0)).sum((-2, -1)) / np.maximum((pred | (t > 0)).sum((-2, -1)), 1)
    mask_loss = 20 * focal + dice
    best = mask_loss.argmin(1)
    expected = mask_loss[np.arange(2), best] + ((scores - iou) ** 2).mean(1)
    np.testing.assert_allclose(terms.total.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(terms.dice.numpy(), dice[np.arange(2), best], rtol=1e-6)


@pytest.mark.parametrize("family", ["sam", "sam2"])
def test_lowres_targets_line_up_with_the_image(segmenters, family):
    """Targets in the decoder's frame, turned back into a full-size mask by Meta's post-processing
    (``upscale_logits``), cover the ground truth (non-square image, so SAM 1 pads). Measured IoU 0.96 / 0.97."""
    seg = segmenters[family]
    gt = np.zeros((90, 150), dtype=bool)
    gt[20:70, 30:110] = True
    geometry = seg.adapter.geometry(gt.shape)
    targets = lowres_targets(gt[None], geometry)
    logits = np.where(targets.masks, 10.0, -10.0).astype(np.float32)
    back = upscale_logits(logits, gt.shape, **geometry.upscale_frame())[0] > 0
    iou = (back & gt).sum() / (back | gt).sum()
    assert iou > 0.93
    if family == "sam":
        assert not targets.valid[-1].any()  # the padded bottom rows are not image


def test_prompts_from_targets():
    rng = np.random.default_rng(0)
    mask = np.zeros((32, 32), dtype=bool)
    mask[8:20, 10:26] = True
    for _ in range(20):
        x, y = sample_point(mask, 4.0, rng)
        assert mask[int(round((y + 0.5) / 4 - 0.5)), int(round((x + 0.5) / 4 - 0.5))]
        x1, y1, x2, y2 = sample_box(mask, 4.0, rng)
        assert abs(x1 - 40) <= 20 and abs(x2 - 103) <= 20 and abs(y1 - 32) <= 20 and abs(y2 - 79) <= 20
    missed = mask.copy()
    missed[8:20, 18:26] = False  # right half missing: a positive click there
    point, label = correction_click(missed, mask, np.ones_like(mask), 4.0)
    assert label == 1 and point[0] > 18 * 4
    point, label = correction_click(mask, mask, np.ones_like(mask), 4.0)
    assert label == -1  # nothing to correct: a padding point


def test_store_round_trip_and_model_key(tmp_path, segmenters, rgb_image, tiny_model_dirs):
    for seg in segmenters.values():
        emb = seg.embed(rgb_image)
        store = EmbeddingStore(tmp_path, model_key(seg.adapter))
        store.put(emb.key, emb.features, emb.original_hw)
        features, hw = store.get(emb.key)
        assert hw == emb.original_hw
        flat_a = _leaves(emb.features)
        flat_b = _leaves(features)
        assert type(features) is type(emb.features) and len(flat_a) == len(flat_b)
        assert all(torch.equal(a, b) for a, b in zip(flat_a, flat_b))
    other = Segmenter(tiny_model_dirs["sam"], device="cpu")
    key = model_key(other.adapter)
    assert key == model_key(segmenters["sam"].adapter)
    with torch.no_grad():
        other.model.mask_decoder.iou_token.weight.add_(1.0)  # trained parts do not change the key
        assert model_key(other.adapter) == key
        other.model.vision_encoder.neck.conv1.weight.add_(1e-3)  # the encoder does
        assert model_key(other.adapter) != key


def _leaves(value):
    if isinstance(value, torch.Tensor):
        return [value]
    return [leaf for item in value for leaf in _leaves(item)]


def test_split_keeps_sequences_together():
    names = [f"seq{s}/{f:05d}" for s in range(5) for f in range(3)]
    train, val = split_validation(names, 0.2, seed=0)
    assert sorted(train + val) == list(range(15)) and len(val) == 3
    assert len({names[i].split("/")[0] for i in val}) == 1
    assert not {names[i].split("/")[0] for i in val} & {names[i].split("/")[0] for i in train}


@pytest.mark.parametrize(
    "args",
    [["--prompts", "lasso"], ["--val-split", "1.5"], ["--epochs", "0"], ["--lora", "0"], ["--lr", "-1"]],
)
def test_cli_rejects_bad_settings_before_loading(tmp_path, args, capsys):
    code = run_cli(
        ["finetune", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--model", "nope/none", *args]
    )
    assert code == 2
    assert "robosam: error: --" in capsys.readouterr().err


def test_cli_help_has_an_example(capsys):
    assert run_cli(["finetune", "--help"]) == 0
    assert "Example: robosam finetune" in capsys.readouterr().out
