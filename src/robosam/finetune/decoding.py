"""Prompt encoder + mask decoder for many objects at once, each with its own mask input.

``Segmenter.decode_logits`` takes one ``mask_input`` for a single object; training feeds every object its
own previous logits. Here the objects ride the model's batch dimension instead: one image's features
(batch 1) are expanded (a view, no copy) to O rows, or several images' features are gathered one row per
object, and each row gets one object's prompts and mask input.
The model and its weights are transformers' own, so autograd reaches the prompt encoder and mask decoder.
"""

from __future__ import annotations

from typing import Any

import torch

from robosam.models.families import DecoderOutput, FamilyAdapter


def expand_features(features: Any, rows: int) -> Any:
    """The family's features (tensors nested in lists/tuples) with ``rows`` rows: batch 1 is expanded (a view),
    batch ``rows`` is kept as it is."""
    if isinstance(features, torch.Tensor):
        return features if features.shape[0] == rows else features.expand(rows, *features.shape[1:])
    if isinstance(features, (list, tuple)):
        return type(features)(expand_features(f, rows) for f in features)
    return features


def decode_objects(
    adapter: FamilyAdapter,
    features: Any,
    points: torch.Tensor | None,
    labels: torch.Tensor | None,
    boxes: torch.Tensor | None,
    mask_input: torch.Tensor | None,
    multimask: bool,
) -> DecoderOutput:
    """Decode O objects in one call, prompts in the encoder's input frame.

    features: the family's features on the model's device, of one image (batch 1, shared by every object) or
        one row per object (batch O, e.g. objects of several images).
    points: (O, P, 2) float, labels: (O, P) int (1 positive, 0 negative), boxes: (O, 4) float (x1, y1, x2, y2),
    mask_input: (O, 1, L, L) logits; any of them may be None. Returns logits (O, K, L, L) and predicted IoU
    (O, K), K = 3 with ``multimask`` else 1, in the caller's autograd mode.
    """
    rows = next(t.shape[0] for t in (points, boxes, mask_input) if t is not None)
    device, dtype = adapter.device, adapter.dtype
    kwargs: dict[str, torch.Tensor] = {}
    if points is not None:
        kwargs["input_points"] = points[:, None].to(device, dtype)
        kwargs["input_labels"] = labels[:, None].to(device, torch.int64)
    if boxes is not None:
        kwargs["input_boxes"] = boxes[:, None].to(device, dtype)
    if mask_input is not None:
        kwargs["input_masks"] = mask_input.to(device, dtype)
    feature_kwargs = adapter.feature_kwargs(expand_features(features, rows))
    output = adapter.model(multimask_output=multimask, **feature_kwargs, **kwargs)
    return DecoderOutput(logits=output.pred_masks[:, 0], scores=output.iou_scores[:, 0])
