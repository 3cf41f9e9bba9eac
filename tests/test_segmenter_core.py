"""The stateless prompt path: embed / decode / upscale, timings on results, threads, gradients."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from robosam.errors import InputError
from robosam.models import ModelSpec
from robosam.segmenter import ImageEmbedding, Segmenter

FAMILIES = ["sam", "sam_hq", "sam2", "sam3_tracker", "edgetam"]


@pytest.fixture(scope="module")
def sam(tiny_model_dirs) -> Segmenter:
    return Segmenter(tiny_model_dirs["sam"], device="cpu")


def count_encoder_calls(segmenter: Segmenter) -> list[int]:
    calls: list[int] = []
    segmenter.model.vision_encoder.register_forward_hook(
        lambda module, args, output: calls.append(args[0].shape[0])
    )
    return calls


def test_embedding_is_a_typed_description_of_the_image(sam, rgb_image):
    emb = sam.embed(rgb_image)
    assert isinstance(emb, ImageEmbedding)
    assert emb.original_hw == (120, 200)
    # SAM 1 geometry: longest side 200 -> 128, so 120 -> round(76.8) = 77 rows, padded to 128 x 128
    assert emb.geometry.input_size == 128 and emb.geometry.resized_hw == (77, 128) and emb.geometry.padded
    assert emb.geometry.lowres_size == 32
    assert emb.nbytes >= emb.features.numel() * 4 and emb.encode_s > 0
    assert sam.embed(rgb_image.copy()) is emb  # the cache hands back the same object


def test_decode_keeps_nothing_on_the_instance_and_carries_its_timings(sam, rgb_image):
    emb = sam.embed(rgb_image)
    before = dict(vars(sam))
    result = sam.decode(emb, points=[(100, 60)], labels=[1])
    assert set(result.timings) == {"decoder_s", "postprocess_s"} and result.timings["decoder_s"] > 0
    assert (
        {k: v for k, v in vars(sam).items() if k != "cache"}.keys() == {k for k in before if k != "cache"}
        and sam._current is before["_current"]
        and sam.last_timings == before["last_timings"]
    )
    assert result.masks.shape == (3, 120, 200)


@pytest.mark.parametrize("family", FAMILIES)
def test_decode_without_upscale_then_upscale_chosen_rows_equals_full_decode(
    tiny_model_dirs, family, rgb_image
):
    seg = Segmenter(tiny_model_dirs[family], device="cpu")
    emb = seg.embed(rgb_image)
    full = seg.decode(emb, points=[[(100, 60)], [(30, 30)]], labels=[[1], [1]])
    low = seg.decode(emb, points=[[(100, 60)], [(30, 30)]], labels=[[1], [1]], upscale=False)
    assert low.masks is None and low.logits.shape == full.logits.shape
    np.testing.assert_array_equal(low.scores, full.scores)
    keep = np.flatnonzero(low.scores >= np.median(low.scores))
    chosen = seg.upscale(emb, low[keep])
    np.testing.assert_array_equal(chosen.masks, full.masks[keep])
    np.testing.assert_array_equal(chosen.object_ids, full.object_ids[keep])
    with pytest.raises(InputError, match="^result: expected a result with masks"):
        _ = low.boxes


def test_eight_threads_decoding_one_embedding_give_the_serial_results(sam, rgb_image):
    emb = sam.embed(rgb_image)
    prompts = [dict(points=[(20 + 20 * i, 30 + 8 * i)], labels=[1]) for i in range(8)]
    serial = [sam.decode(emb, **p) for p in prompts]
    parallel: list = [None] * 8
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        for _ in range(3):
            parallel[i] = sam.decode(emb, **prompts[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for one, other in zip(serial, parallel):
        np.testing.assert_array_equal(one.logits, other.logits)
        np.testing.assert_array_equal(one.scores, other.scores)
        np.testing.assert_array_equal(one.masks, other.masks)


def test_four_threads_embedding_one_new_image_run_the_encoder_once(tiny_model_dirs, rgb_image):
    seg = Segmenter(tiny_model_dirs["sam2"], device="cpu")
    calls: list[int] = []
    started = threading.Event()

    def slow_hook(module, args, output):
        calls.append(args[0].shape[0])
        started.set()
        threading.Event().wait(0.2)  # hold the encoder so the other threads arrive while it runs

    seg.model.vision_encoder.register_forward_hook(slow_hook)
    embeddings: list = [None] * 4
    barrier = threading.Barrier(4)

    def work(i: int) -> None:
        barrier.wait()
        embeddings[i] = seg.embed(rgb_image.copy())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1]
    assert all(e is embeddings[0] for e in embeddings)


def test_a_failed_encoding_reaches_the_waiting_threads_and_is_not_cached(tiny_model_dirs, rgb_image):
    seg = Segmenter(tiny_model_dirs["sam"], device="cpu")
    handle = seg.model.vision_encoder.register_forward_hook(
        lambda *a: (_ for _ in ()).throw(RuntimeError("boom"))
    )
    with pytest.raises(RuntimeError, match="boom"):
        seg.embed(rgb_image)
    handle.remove()
    assert len(seg.cache) == 0
    assert seg.embed(rgb_image).original_hw == (120, 200)  # the key is free again


@pytest.mark.parametrize("family", ["sam", "sam2"])
def test_a_loss_on_decoded_logits_reaches_the_mask_decoder(tiny_model_dirs, family, rgb_image):
    from robosam.prompts import parse_prompts

    seg = Segmenter(tiny_model_dirs[family], device="cpu")
    emb = seg.embed(rgb_image)
    objects = parse_prompts(emb.original_hw, box=(40, 20, 160, 100))
    seg.model.zero_grad()
    with torch.enable_grad():
        output = seg.decode_logits(emb, objects, multimask=False)
        loss = output.logits.sigmoid().mean() + output.scores.square().mean()
        loss.backward()
    # SAM 2's conv_s0 / conv_s1 project the high-resolution features at encoding time and its object-score
    # head only serves video: neither is on the image prompt path
    off_path = ("conv_s0.", "conv_s1.", "pred_obj_score_head.")
    named = dict(seg.model.mask_decoder.named_parameters())
    missing = [name for name, p in named.items() if p.grad is None]
    assert all(name.startswith(off_path) for name in missing), missing
    assert sum(float(p.grad.abs().sum()) for p in named.values() if p.grad is not None) > 0
    prompt_grads = [p.grad for p in seg.model.prompt_encoder.parameters() if p.grad is not None]
    assert prompt_grads and sum(float(g.abs().sum()) for g in prompt_grads) > 0
    assert all(
        p.grad is None or float(p.grad.abs().sum()) == 0 for p in seg.model.vision_encoder.parameters()
    )


def test_conveniences_are_the_stateless_path(sam, rgb_image):
    emb = sam.embed(rgb_image)
    sam.set_image(rgb_image)
    assert sam.last_timings["encoder_s"] == 0.0  # cached
    convenient = sam.predict(box=(40, 20, 160, 100), multimask=False)
    direct = sam.decode(emb, box=(40, 20, 160, 100), multimask=False)
    np.testing.assert_array_equal(convenient.logits, direct.logits)
    assert set(sam.last_timings) == {"encoder_s", "decoder_s", "postprocess_s"}


def test_model_spec_pickles_and_a_worker_process_loads_the_same_model(tiny_model_dirs, tmp_path):
    spec = ModelSpec(str(tiny_model_dirs["sam"]), device="cpu")
    assert pickle.loads(pickle.dumps(spec)) == spec
    (tmp_path / "spec.pkl").write_bytes(pickle.dumps(spec))
    script = (
        "import pickle, sys, torch\n"
        f"spec = pickle.loads(open({str(tmp_path / 'spec.pkl')!r}, 'rb').read())\n"
        "loaded = spec.load()\n"
        "print(loaded.family, float(sum(p.double().sum() for p in loaded.model.parameters())))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    here = spec.load()
    assert out[0] == "sam" == here.family
    assert float(out[1]) == pytest.approx(
        float(sum(p.double().sum() for p in here.model.parameters())), rel=1e-12
    )
    seg = Segmenter(spec)
    assert seg.loaded.source == spec.source


def test_tracker_kind_loads_the_families_video_model(tiny_model_dirs):
    from robosam.models import load_model
    from robosam.models.loading import MissingWeightsWarning

    # an image model's folder has the video model's class but not its memory weights: said, not hidden
    with pytest.warns(MissingWeightsWarning, match=r"lacks \d+ weights of Sam2VideoModel \(.*memory"):
        loaded = load_model(tiny_model_dirs["sam2"], device="cpu", kind="tracker")
    assert type(loaded.model).__name__ == "Sam2VideoModel" and loaded.kind == "tracker"
    assert any(name.startswith("memory_attention.") for name in loaded.missing_weights)
    with pytest.raises(InputError, match="^model: expected a family with a video model"):
        load_model(tiny_model_dirs["sam"], device="cpu", kind="tracker")
    with pytest.raises(InputError, match="^kind:"):
        load_model(tiny_model_dirs["sam"], device="cpu", kind="classifier")
    with pytest.raises(InputError, match="^model: expected a tracker preset"):
        load_model("sam-vit-base", device="cpu", kind="tracker")
