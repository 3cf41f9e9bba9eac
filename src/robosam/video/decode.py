"""The model calls of one tracking step, batched over objects where their shapes agree.

Transformers' video models run one object at a time (``_run_single_frame_inference`` with batch 1). Here the
objects a frame tracks without prompts share one call each of the memory attention, the mask decoder and the
memory encoder, with the model's own modules and its own helpers choosing each object's memories and pointers.
The arithmetic is that of ``Sam2VideoModel._prepare_memory_conditioned_features`` and ``_single_frame_forward``;
only the batch axis is new (those methods index as if the batch were 1).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from robosam.video.features import FrameFeatures
from robosam.video.memory import ModelView, ObjectMemory
from robosam.video.preprocess import PointInputs

NO_OBJ_SCORE = -1024.0  # transformers' and Meta's placeholder logit where the object is absent


@dataclass
class DecodeOutput:
    """Mask decoder results for B objects on one frame.

    logits: (B, 1, L, L) low-resolution logits (NO_OBJ_SCORE where the object is absent).
    high_res: (B, 1, S, S) logits at the encoder's input size, for the memory encoder.
    pointers: (B, 1, C) object pointers. scores: (B,) predicted IoU of the chosen masks.
    object_scores: (B, 1, 1) object-presence logits.
    """

    logits: torch.Tensor
    high_res: torch.Tensor
    pointers: torch.Tensor
    scores: torch.Tensor
    object_scores: torch.Tensor


def top_level_map(model: Any, flat: torch.Tensor) -> torch.Tensor:
    """(h * w, B, C) to (B, C, h, w)."""
    height, width = model.backbone_feature_sizes[-1]
    return flat.permute(1, 2, 0).reshape(flat.size(1), model.hidden_dim, height, width)


def without_memory(model: Any, features: FrameFeatures) -> torch.Tensor:
    """Features of a conditioning frame: the top level plus the learnt no-memory embedding, (1, C, h, w)."""
    return top_level_map(model, features.top + model.no_memory_embedding)


@dataclass
class MemoryInputs:
    """One object's memory for the memory attention: tokens (M, 1, 64), their position encodings, and how many
    of them are object pointers (the rest spatial memories, ``spatial_entries`` frames of them)."""

    tokens: torch.Tensor
    positions: torch.Tensor
    pointer_tokens: int
    spatial_entries: int

    @property
    def signature(self) -> tuple[int, int, int]:
        """Objects with equal signatures attend in one batch."""
        return (int(self.tokens.shape[0]), self.pointer_tokens, self.spatial_entries)


def gather_memory(
    model: Any,
    memory: ObjectMemory,
    frame: int,
    horizon: int | None,
    reverse: bool,
    device: torch.device,
) -> MemoryInputs:
    """The memories and object pointers the model chooses for ``memory``'s object on ``frame``.

    horizon: the number of frames of the video when known (caps how far back pointers reach, as Meta does),
    None for a stream.
    """
    view = ModelView(memory)
    chosen = model._gather_memory_frame_outputs(view, 0, frame, reverse)
    tokens, positions = model._build_memory_attention_inputs(chosen, device)
    spatial = len(tokens)
    offsets, pointers, max_pointers = model._get_object_pointers(
        view, 0, frame, horizon, device, reverse, horizon is None
    )
    pointer_count = 0
    if pointers:
        pointer_tokens, pointer_positions = model._process_object_pointers(
            offsets, pointers, max_pointers, 1, model.hidden_dim, device
        )
        tokens.append(pointer_tokens)
        positions.append(pointer_positions)
        pointer_count = int(pointer_tokens.shape[0])
    return MemoryInputs(torch.cat(tokens, dim=0), torch.cat(positions, dim=0), pointer_count, spatial)


def attend_to_memory(model: Any, features: FrameFeatures, inputs: list[MemoryInputs]) -> torch.Tensor:
    """Condition the frame's top-level features on each object's memory in one batch (equal signatures).

    Returns (B, C, h, w) for the B objects in ``inputs``, in order.
    """
    batch = len(inputs)
    dtype = features.top.dtype
    kwargs: dict[str, Any] = {"num_object_pointer_tokens": inputs[0].pointer_tokens}
    if _accepts(model.memory_attention.forward, "num_spatial_memory_tokens"):  # EdgeTAM
        kwargs["num_spatial_memory_tokens"] = inputs[0].spatial_entries
    output = model.memory_attention(
        current_vision_features=features.top.expand(-1, batch, -1),
        current_vision_position_embeddings=features.top_position.expand(-1, batch, -1),
        memory=torch.cat([i.tokens for i in inputs], dim=1).to(dtype),
        memory_posision_embeddings=torch.cat([i.positions for i in inputs], dim=1).to(dtype),
        **kwargs,
    )  # (1, B, h * w, C)
    height, width = model.backbone_feature_sizes[-1]
    return output[0].transpose(1, 2).reshape(batch, model.hidden_dim, height, width)


def decode_tracked(
    model: Any, features: FrameFeatures, conditioned: torch.Tensor, multimask: bool
) -> DecodeOutput:
    """Masks for B objects without prompts on one frame; ``conditioned`` (B, C, h, w) from the memory."""
    batch = conditioned.shape[0]
    device, dtype = conditioned.device, conditioned.dtype
    sparse, dense = model.prompt_encoder(
        input_points=torch.zeros(batch, 1, 1, 2, device=device, dtype=dtype),
        input_labels=-torch.ones(batch, 1, 1, dtype=torch.int32, device=device),
        input_boxes=None,
        input_masks=None,
    )
    logits, ious, tokens, object_scores = model.mask_decoder(
        image_embeddings=conditioned,
        image_positional_embeddings=model.get_image_wide_positional_embeddings().repeat(batch, 1, 1, 1),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask,
        high_resolution_features=[level.expand(batch, -1, -1, -1) for level in features.high_res],
    )  # logits (B, 1, K, L, L), ious (B, 1, K), tokens (B, 1, K, C), object_scores (B, 1, 1)
    appearing = object_scores > 0
    logits = torch.where(appearing[:, :, :, None, None], logits, NO_OBJ_SCORE)
    token = tokens[:, :, 0]
    if multimask:
        best = torch.argmax(ious, dim=-1, keepdim=True)  # (B, 1, 1)
        chosen = torch.gather(logits, 2, best[..., None, None].expand(-1, -1, 1, *logits.shape[-2:]))[:, :, 0]
        scores = torch.gather(ious, 2, best)[:, 0, 0]
        if tokens.size(2) > 1:
            token = torch.gather(tokens, 2, best[..., None].expand(-1, -1, 1, tokens.size(-1)))[:, :, 0]
    else:
        chosen, scores = logits[:, :, 0], ious[:, 0, 0]
    pointers = model.object_pointer_proj(token)
    weight = appearing.to(pointers.dtype)
    pointers = weight * pointers + (1 - weight) * model.no_object_pointer
    return DecodeOutput(
        logits=chosen,
        high_res=_to_input_size(model, chosen),
        pointers=pointers,
        scores=scores,
        object_scores=object_scores,
    )


def decode_points(
    model: Any,
    features: FrameFeatures,
    conditioned: torch.Tensor,
    points: PointInputs,
    previous_logits: torch.Tensor | None,
    conditioning: bool,
) -> DecodeOutput:
    """Masks for one object from clicks (and a box); ``previous_logits`` (1, 1, L, L) refine an earlier mask."""
    multimask = model._use_multimask(conditioning, points)
    out = model._single_frame_forward(
        pixel_values=None,
        input_points=points.point_coords,
        input_labels=points.point_labels,
        input_masks=previous_logits,
        image_embeddings=[*features.high_res, conditioned],
        multimask_output=multimask,
    )
    scores = (
        out.iou_scores.reshape(1, -1).max(dim=1).values if multimask else out.iou_scores.reshape(1, -1)[:, 0]
    )
    return DecodeOutput(
        logits=out.pred_masks,
        high_res=out.high_res_masks,
        pointers=out.object_pointer,
        scores=scores,
        object_scores=out.object_score_logits,
    )


def decode_mask(model: Any, features: FrameFeatures, mask: torch.Tensor) -> DecodeOutput:
    """A mask prompt (1, 1, S, S) used as the output itself (SAM 2's ``use_mask_input_as_output``)."""
    out = model._use_mask_as_output(top_level_map(model, features.top), features.high_res, mask)
    return DecodeOutput(
        logits=out.pred_masks,
        high_res=out.high_res_masks,
        pointers=out.object_pointer,
        scores=out.iou_scores.reshape(1, -1)[:, 0].to(torch.float32),
        object_scores=out.object_score_logits.reshape(1, 1, 1),
    )


def encode_memory(
    model: Any,
    features: FrameFeatures,
    high_res: torch.Tensor,
    object_scores: torch.Tensor,
    from_prompts: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode B masks (B, 1, S, S) of one frame into memories in one call; prompted masks are binarised first.

    Returns (features, position encodings) with the batch on the family's memory batch axis.
    """
    batch = high_res.shape[0]
    return model._encode_new_memory(
        current_vision_feats=features.top.expand(-1, batch, -1),
        pred_masks_high_res=high_res,
        object_score_logits=object_scores,
        is_mask_from_pts=from_prompts,
    )


def _to_input_size(model: Any, logits: torch.Tensor) -> torch.Tensor:
    """(B, 1, L, L) to (B, 1, S, S) bilinear, as ``_single_frame_forward`` makes its high-resolution masks."""
    size = model.image_size
    high = F.interpolate(logits.float(), size=(size, size), mode="bilinear", align_corners=False)
    return high.to(logits.dtype)


def _accepts(function: Any, name: str) -> bool:
    return name in inspect.signature(function).parameters
