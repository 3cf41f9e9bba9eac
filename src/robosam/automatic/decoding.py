"""The decoder call of automatic generation: one grid batch of single-point prompts to low-res logits.

With a fast decoder (``Segmenter.fast``, the prompt-independent work done once per image in the embedding's
``decoder_state``) the clicks go in chunks of ``FAST_CHUNK``, the predicted-IoU filter runs before the upscaling
(a click none of whose masks passes is never upscaled), and on CPUs the chunks are spread over threads.
``compile=True`` runs the same steps through ``torch.compile``: the two-way transformer and heads on a chunk
(padded to ``FAST_CHUNK``) and the upscaling of one click, so one graph of each serves every call (cached per
segmenter and mode). Without a fast decoder, eager mode goes through ``Segmenter.decode`` and compiled mode
compiles transformers' module with every batch padded to ``points_per_batch``. Where compiling fails it warns
once and stays eager. ``refine_with_masks`` is SAM 2's ``use_m2m`` step.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from robosam.runtime import torch_threads

# Clicks per fast-decoder call: the per-click image tensors (4096 x 256 floats for SAM) of a few clicks stay in
# cache, where 64 at once go through memory (measured on 2 CPU cores, SAM ViT-B: ~45-60 ms per click in
# chunks of 4 against ~80-85 ms in one call of 64, CPU time, one thread).
FAST_CHUNK = 4

# one chunk of clicks (points (O, 1, 2), labels (O, 1)) -> logits (O', K, L, L), scores (O, K), kept (O',)
ChunkDecoder = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]

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
    above it are returned, and (fast decoder) points none of whose K masks pass are never upscaled.
    pad_to: batch size the compiled transformers module is traced for (no fast decoder).
    Returns logits (M, L, L) float32, predicted IoU (M,) float32 and the index into ``points`` of each
    candidate's click (M,) int64.
    """
    fast = getattr(segmenter, "fast", None)
    if fast is not None and embedding.decoder_state is not None:
        state = embedding.decoder_state
        if compile:
            compiled = _compiled(segmenter, multimask)
            if compiled is not None:
                try:
                    chunk_decoder = _compiled_chunk_decoder(compiled, state, min_score)
                    return _decode_fast(chunk_decoder, segmenter.adapter, embedding, points, min_score)
                except Exception as error:  # noqa: BLE001 - any backend failure means: run eagerly
                    _compile_failed(segmenter, multimask, error)
        chunk_decoder = _eager_chunk_decoder(fast, state, multimask, min_score)
        return _decode_fast(chunk_decoder, segmenter.adapter, embedding, points, min_score)

    result = None
    if compile:
        compiled = _compiled(segmenter, multimask)
        if compiled is not None:
            try:
                result = _decode_compiled_module(compiled, segmenter, embedding, points, pad_to)
            except Exception as error:  # noqa: BLE001 - any backend failure means: run eagerly
                _compile_failed(segmenter, multimask, error)
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


def _eager_chunk_decoder(fast: Any, state: Any, multimask: bool, min_score: float | None) -> ChunkDecoder:
    def decode(points: torch.Tensor, labels: torch.Tensor):
        if min_score is None:
            logits, scores = fast(state, points, labels, None, multimask)
            return logits, scores, torch.arange(scores.shape[0], device=scores.device)
        return fast.decode_above(state, points, labels, None, multimask, min_score)

    return decode


def _compiled_chunk_decoder(compiled: tuple, state: Any, min_score: float | None) -> ChunkDecoder:
    """``FastSamDecoder.decode_above`` (or ``__call__``) with compiled pieces: chunks padded to ``FAST_CHUNK``
    and kept clicks upscaled one at a time, so that each piece is traced for one shape only."""
    heads, upscale, whole = compiled

    def decode(points: torch.Tensor, labels: torch.Tensor):
        count = points.shape[0]
        if count < FAST_CHUNK:  # pad with copies of the last click; their rows are dropped
            points = torch.cat([points, points[-1:].expand(FAST_CHUNK - count, -1, -1)])
            labels = torch.cat([labels, labels[-1:].expand(FAST_CHUNK - count, -1)])
        if whole is not None:  # SAM 2's stability-chosen single mask: known only after the upscaling
            logits, scores = whole(state, points, labels)
            return logits[:count], scores[:count], torch.arange(count, device=scores.device)
        keys, hyper, scores = heads(state, points, labels)
        scores = scores[:count]
        if min_score is None:
            kept = torch.arange(count, device=scores.device)
        else:
            kept = torch.nonzero((scores > min_score).any(dim=1)).flatten()
        if not len(kept):
            side = (4 * state.height, 4 * state.width)
            return hyper.new_zeros((0, hyper.shape[1], *side)), scores, kept
        rows = [upscale([tile[i : i + 1] for tile in keys], hyper[i : i + 1], state) for i in kept.tolist()]
        return torch.cat(rows), scores, kept

    return decode


def _decode_fast(
    decode: ChunkDecoder, adapter: Any, embedding: Any, points: np.ndarray, min_score: float | None
):
    """``decode_points`` through a fast decoder, ``FAST_CHUNK`` clicks per call.

    On a CPU with several torch threads, the chunks run on that many Python threads of one torch thread each
    (the decoder's ops are small, and splitting each across cores costs more than it gains: measured on
    2 cores, SAM ViT-B, ~1.3x faster than 2 torch threads per chunk). torch's thread count is process-wide,
    so it is 1 for the whole call. The first chunk runs on the calling thread (a compiled decoder compiles
    there, once).
    """
    model_points = torch.from_numpy(embedding.geometry.to_model(points)[:, None, :])
    model_points = model_points.to(adapter.device, adapter.dtype)
    labels = torch.ones((len(points), 1), dtype=torch.int64, device=adapter.device)

    def decode_chunk(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        chunk = slice(start, start + FAST_CHUNK)
        with torch.no_grad():  # per thread
            logits, scores, kept = decode(model_points[chunk], labels[chunk])
        kept = kept.cpu().numpy()
        scores = scores.float().cpu().numpy()[kept]  # (O', K)
        passed = np.ones(scores.shape, bool) if min_score is None else scores > min_score
        clicks = np.repeat(kept[:, None] + start, scores.shape[1], axis=1)[passed]
        return logits.float().cpu().numpy()[passed], scores[passed], clicks  # logits (O', K, L, L)

    starts = list(range(0, len(points), FAST_CHUNK))
    workers = min(torch.get_num_threads(), len(starts)) if torch.device(adapter.device).type == "cpu" else 1
    if workers <= 1:
        parts = [decode_chunk(start) for start in starts]
    else:
        with torch_threads(1):
            parts = [decode_chunk(starts[0])]
            with ThreadPoolExecutor(workers, thread_name_prefix="robosam-decode") as pool:
                parts += pool.map(decode_chunk, starts[1:])
    return tuple(np.concatenate(column) for column in zip(*parts))


def _compile_failed(segmenter: Any, multimask: bool, error: Exception) -> None:
    warnings.warn(f"torch.compile failed, decoding eagerly: {error}", RuntimeWarning, stacklevel=3)
    _COMPILED.setdefault(segmenter, {})[multimask] = None


def _compiled(segmenter: Any, multimask: bool) -> Any:
    """The compiled decoder of a segmenter and mode (None once compiling failed): for a fast decoder the
    triple (heads, upscale, whole) of compiled functions, ``whole`` only where the scores need the upscaling
    (SAM 2's single mask); else transformers' prompt decoder module, compiled."""
    per_mode = _COMPILED.setdefault(segmenter, {})
    if multimask not in per_mode:
        fast = getattr(segmenter, "fast", None)
        if fast is not None:
            dynamic = getattr(fast, "_dynamic", lambda multimask: False)(multimask)

            def heads(state, points, labels):
                return fast._heads(state, points, labels, None, multimask)

            def whole(state, points, labels):
                return fast(state, points, labels, None, multimask)

            per_mode[multimask] = (
                torch.compile(heads, dynamic=False),
                torch.compile(fast._upscale_masks, dynamic=False),
                torch.compile(whole, dynamic=False) if dynamic else None,
            )
        else:
            module = segmenter.adapter.prompt_decoder_module(multimask)

            def run(features, points, labels):
                return module(features, points, labels)

            per_mode[multimask] = torch.compile(run, dynamic=False)
    return per_mode[multimask]


def _decode_compiled_module(compiled, segmenter, embedding, points: np.ndarray, pad_to: int):
    count = len(points)
    if pad_to > count:
        points = np.concatenate([points, np.repeat(points[-1:], pad_to - count, axis=0)])
    adapter = segmenter.adapter
    model_points = torch.from_numpy(embedding.geometry.to_model(points)[:, None, :])
    labels = torch.ones((len(points), 1), dtype=torch.int64, device=adapter.device)
    model_points = model_points.to(adapter.device, adapter.dtype)
    with torch.no_grad():
        logits, scores = compiled(embedding.features, model_points, labels)
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
