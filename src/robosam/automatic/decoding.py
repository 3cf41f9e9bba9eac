"""The decoder call of automatic generation: one grid batch of single-point prompts to low-res logits.

Eager mode goes through ``Segmenter.decode`` (robosam's fast decoder when the family has one, with the
prompt-independent work done once per image in the embedding's ``decoder_state``). ``compile=True`` wraps the
same call in ``torch.compile`` once per segmenter and mode (cached across calls), with every batch padded to
``points_per_batch`` so one graph serves them all; where compiling fails it warns once and stays eager.
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
) -> tuple[np.ndarray, np.ndarray]:
    """Single positive clicks on an embedded image to candidate masks.

    points: (B, 2) pixels (x, y) of the embedded image. Returns logits (B * K, L, L) float32 and predicted IoU
    (B * K,) float32, K = 3 with ``multimask`` else 1, the K masks of each point consecutive.
    """
    if compile:
        compiled = _compiled_decoder(segmenter, multimask)
        if compiled is not None:
            try:
                return _decode_compiled(compiled, segmenter, embedding, points, pad_to)
            except Exception as error:  # noqa: BLE001 - any backend failure means: run eagerly
                warnings.warn(
                    f"torch.compile failed, decoding eagerly: {error}", RuntimeWarning, stacklevel=2
                )
                _COMPILED.setdefault(segmenter, {})[multimask] = None
    result = segmenter.decode(
        embedding,
        points=points[:, None, :],
        labels=np.ones((len(points), 1), dtype=np.int64),
        multimask=multimask,
        upscale=False,
    )
    return result.logits, result.scores


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
