"""The decoder call of automatic generation: one grid batch of single-point prompts to low-res logits.

Eager mode goes through ``Segmenter.decode`` (robosam's fast decoder when the family has one, with the
prompt-independent work done once per image in the embedding's ``decoder_state``). ``compile=True`` wraps the
same call in ``torch.compile`` once per segmenter and mode (cached across calls), with every batch padded to
``points_per_batch`` so one graph serves them all; where compiling fails it warns once and stays eager.
Eager with a fast decoder, the predicted-IoU filter runs before the upscaling (``decode_above``): a click none
of whose masks passes is never upscaled. ``refine_with_masks`` is SAM 2's ``use_m2m`` step.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any

import numpy as np
import torch

_COMPILED: weakref.WeakKeyDictionary[Any, dict[bool, Any]] = weakref.WeakKeyDictionary()


def decode_points(
    segmenter: Any,
    embedding: Any,
    points: np.ndarray,
    multimask: bool,
    compile: bool = False,
    pad_to: int = 0,
    min_score: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Single positive clicks on an embedded image to candidate masks.

    points: (B, 2) pixels (x, y) of the embedded image. The candidates are the K masks of each point
    (K = 3 with ``multimask`` else 1), point by point. With ``min_score`` only those whose predicted IoU is
    above it are returned, and (eager, fast decoder) points none of whose K masks pass are never upscaled.
    Returns logits (M, L, L) float32, predicted IoU (M,) float32 and the index into ``points`` of each
    candidate's click (M,) int64.
    """
    result = None
    if compile:
        compiled = _compiled_decoder(segmenter, multimask)
        if compiled is not None:
            try:
                result = _decode_compiled(compiled, segmenter, embedding, points, pad_to)
            except Exception as error:  # noqa: BLE001 - any backend failure means: run eagerly
                warnings.warn(
                    f"torch.compile failed, decoding eagerly: {error}", RuntimeWarning, stacklevel=2
                )
                _COMPILED.setdefault(segmenter, {})[multimask] = None
    fast = getattr(segmenter, "fast", None)
    if result is None and fast is not None and embedding.decoder_state is not None:
        return _decode_fast(fast, segmenter.adapter, embedding, points, multimask, min_score)
    if result is None:
        decoded = segmenter.decode(
            embedding,
            points=points[:, None, :],
            labels=np.ones((len(points), 1), dtype=np.int64),
            multimask=multimask,
            upscale=False,
        )
        result = decoded.logits, decoded.scores
    logits, scores = result
    index = np.arange(len(scores)) if min_score is None else np.flatnonzero(scores > min_score)
    return logits[index], scores[index], index // (len(scores) // len(points))


# Clicks per fast-decoder call: the per-click image tensors (4096 x 256 floats for SAM) of a few clicks stay in
# cache, where 64 at once go through memory (measured on 2 CPU cores, SAM ViT-B: ~45-60 ms per click in
# chunks of 4 against ~80-85 ms in one call of 64, CPU time, one thread).
FAST_CHUNK = 4


def _decode_fast(fast, adapter, embedding, points: np.ndarray, multimask: bool, min_score: float | None):
    """``decode_points`` through the segmenter's fast decoder, ``FAST_CHUNK`` clicks per call."""
    model_points = torch.from_numpy(embedding.geometry.to_model(points)[:, None, :])
    model_points = model_points.to(adapter.device, adapter.dtype)
    labels = torch.ones((len(points), 1), dtype=torch.int64, device=adapter.device)
    all_logits, all_scores, all_clicks = [], [], []
    with torch.no_grad():
        for start in range(0, len(points), FAST_CHUNK):
            chunk = slice(start, start + FAST_CHUNK)
            if min_score is None:
                logits, scores = fast(
                    embedding.decoder_state, model_points[chunk], labels[chunk], None, multimask
                )
                kept = torch.arange(scores.shape[0])
            else:
                logits, scores, kept = fast.decode_above(
                    embedding.decoder_state, model_points[chunk], labels[chunk], None, multimask, min_score
                )
            kept = kept.cpu().numpy()
            scores = scores.float().cpu().numpy()[kept]  # (O', K)
            passed = np.ones(scores.shape, bool) if min_score is None else scores > min_score
            all_logits.append(logits.float().cpu().numpy()[passed])  # logits (O', K, L, L)
            all_scores.append(scores[passed])
            all_clicks.append(np.repeat(kept[:, None] + start, scores.shape[1], axis=1)[passed])
    return np.concatenate(all_logits), np.concatenate(all_scores), np.concatenate(all_clicks)


def _compiled_decoder(segmenter: Any, multimask: bool) -> Any:
    per_mode = _COMPILED.setdefault(segmenter, {})
    if multimask not in per_mode:
        fast = getattr(segmenter, "fast", None)
        if fast is not None:

            def run(state, points, labels):
                return fast(state, points, labels, None, multimask)

        else:
            module = segmenter.adapter.prompt_decoder_module(multimask)

            def run(features, points, labels):
                return module(features, points, labels)

        per_mode[multimask] = torch.compile(run, dynamic=False)
    return per_mode[multimask]


def _decode_compiled(compiled, segmenter, embedding, points: np.ndarray, pad_to: int):
    count = len(points)
    if pad_to > count:
        points = np.concatenate([points, np.repeat(points[-1:], pad_to - count, axis=0)])
    adapter = segmenter.adapter
    model_points = torch.from_numpy(embedding.geometry.to_model(points)[:, None, :])
    labels = torch.ones((len(points), 1), dtype=torch.int64, device=adapter.device)
    model_points = model_points.to(adapter.device, adapter.dtype)
    use_state = getattr(segmenter, "fast", None) is not None and embedding.decoder_state is not None
    with torch.no_grad():
        first = embedding.decoder_state if use_state else embedding.features
        logits, scores = compiled(first, model_points, labels)
    logits = logits[:count].float().cpu().numpy()
    scores = scores[:count].float().cpu().numpy()
    return logits.reshape(-1, *logits.shape[-2:]), scores.reshape(-1)


def refine_with_masks(
    segmenter: Any, embedding: Any, points: np.ndarray, logits: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """SAM 2 generator's ``use_m2m`` step: each candidate decoded again from its click and its own low-res
    logits as mask input, one mask per candidate (``multimask=False``, SAM 2's stability fallback included).

    points: (N, 2) pixels (x, y); logits: (N, L, L) from ``decode_points``. Returns refined logits
    (N, L, L) float32 and predicted IoU (N,) float32. transformers' module runs with one image per candidate
    (its dense mask embedding is per image), ``batch_size`` candidates per call.
    """
    adapter = segmenter.adapter
    out_logits, out_scores = [], []
    for start in range(0, len(points), batch_size):
        chunk = slice(start, start + batch_size)
        count = len(points[chunk])
        model_points = torch.from_numpy(embedding.geometry.to_model(points[chunk]))
        features = _repeat_batch(embedding.features, count)
        with torch.no_grad():
            output = adapter.model(
                multimask_output=False,
                input_points=model_points[:, None, None, :].to(adapter.device, adapter.dtype),
                input_labels=torch.ones((count, 1, 1), dtype=torch.int64, device=adapter.device),
                input_masks=torch.from_numpy(logits[chunk][:, None]).to(adapter.device, adapter.dtype),
                **adapter.feature_kwargs(features),
            )
        out_logits.append(output.pred_masks[:, 0, 0].float().cpu().numpy())
        out_scores.append(output.iou_scores[:, 0, 0].float().cpu().numpy())
    if not out_logits:
        return logits, np.zeros(0, dtype=np.float32)
    return np.concatenate(out_logits), np.concatenate(out_scores)


def _repeat_batch(features: Any, count: int) -> Any:
    """Cached features (batch 1: a tensor or nested lists / tuples of them) expanded to batch ``count``."""
    if isinstance(features, torch.Tensor):
        return features.expand(count, *features.shape[1:])
    if isinstance(features, (list, tuple)):
        return type(features)(_repeat_batch(item, count) for item in features)
    return features
