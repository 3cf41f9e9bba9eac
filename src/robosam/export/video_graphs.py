"""Export-friendly modules for one SAM 2 / 2.1 video tracking step, the memory bank as explicit tensors.

A tracking step on a frame (see ``robosam.video.engine``) is: the image encoder (``encoder.onnx``, shared with
the image graphs), then per object either the raw features (a conditioning frame) or the memory attention
over the object's memory bank, then the mask decoder, then the memory encoder that turns the chosen mask into
the object's memory for later frames. The caller owns the bank; the graphs hold only weights and constants.

- ``MemoryAttentionGraph``: ``image_embeddings`` (1, C, h, w) (the encoder's output, no-memory embedding
  included), ``memory_features`` (B, T, h*w, D) (T spatial memories per object), ``memory_offsets`` (B, T)
  int64 (0: a conditioning frame, k >= 1: the memory of the frame k steps back), ``object_pointers`` (B, P, C)
  and ``pointer_offsets`` (B, P) float32 (temporal distance / (max pointers used - 1)) -> ``conditioned``
  (B, C, h, w). T and P are dynamic (at least 1 each); the objects of one call share T and P.
- ``VideoDecoderGraph``: ``conditioned`` (B, C, h, w), the two high-resolution feature maps (batch 1), prompts
  ``point_coords`` (B, N, 2) / ``point_labels`` (B, N) (Meta's convention, padding label -1 last),
  ``mask_input`` (B, 1, L, L), ``has_mask_input`` (B,) -> the best mask's ``logits`` (B, 1, L, L) (-1024 where
  the object is absent), ``high_res_logits`` (B, 1, S, S), ``scores`` (B,), ``object_pointers`` (B, C),
  ``object_scores`` (B, 1).
- ``MaskPromptGraph``: a mask prompt (1, 1, S, S) -> the same outputs as the video decoder, for one object.
- ``MemoryEncoderGraph``: ``image_embeddings`` (1, C, h, w), ``mask_logits`` (B, 1, S, S), ``object_scores``
  (B, 1), ``binarize`` (B,) float32 (1: a prompted mask, thresholded at 0; 0: sigmoid) ->
  ``memory_features`` (B, h*w, D), rounded to bfloat16 values as the reference stores them.

The position encodings of the top-level features and of the memories depend only on the feature grid, so the
graphs hold them as constants. Arithmetic is that of ``Sam2VideoModel``'s ``_prepare_memory_conditioned_features``,
``_single_frame_forward`` and ``_encode_new_memory`` with the model's own modules; only the batch axis is new.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from robosam.export.graphs import PromptDecoderGraph

NO_OBJ_SCORE = -1024.0
ATTENTION_INPUTS = (
    "image_embeddings",
    "memory_features",
    "memory_offsets",
    "object_pointers",
    "pointer_offsets",
)
DECODER_INPUTS = (
    "conditioned",
    "high_res_feats_0",
    "high_res_feats_1",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
)
DECODER_OUTPUTS = ("logits", "high_res_logits", "scores", "object_pointers", "object_scores")
MASK_INPUTS = ("image_embeddings", "high_res_feats_0", "high_res_feats_1", "mask")
ENCODER_INPUTS = ("image_embeddings", "mask_logits", "object_scores", "binarize")


def top_level_position(model: PreTrainedModel, pixel_values: torch.Tensor) -> torch.Tensor:
    """The top-level position encoding (h*w, 1, C) (the same for every image)."""
    with torch.no_grad():
        return model.get_image_features(pixel_values[:1], return_dict=True).fpn_position_encoding[-1].clone()


class MemoryAttentionGraph(nn.Module):
    """Condition a frame's top-level features on B objects' memory banks (see the module docstring)."""

    def __init__(self, model: PreTrainedModel, top_position: torch.Tensor, memory_position: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("top_position", top_position.detach().clone())  # (h*w, 1, C)
        self.register_buffer("memory_position", memory_position.detach().clone())  # (h*w, D)

    def forward(self, image_embeddings, memory_features, memory_offsets, object_pointers, pointer_offsets):
        model = self.model
        batch, hidden = memory_features.shape[0], model.hidden_dim
        height, width = model.backbone_feature_sizes[-1]
        # (1, C, h, w) -> (h*w, 1, C), without the no-memory embedding the encoder graph added
        top = image_embeddings.flatten(2).permute(2, 0, 1) - model.no_memory_embedding
        temporal = model.memory_temporal_positional_encoding.reshape(
            model.num_maskmem, -1
        )  # (num_maskmem, D)
        index = torch.where(memory_offsets == 0, torch.full_like(memory_offsets, -1), memory_offsets - 1)
        index = torch.remainder(index, model.num_maskmem)
        spatial_position = self.memory_position[None, None] + temporal[index][:, :, None, :]  # (B, T, hw, D)
        mem_dim = memory_features.shape[-1]
        spatial = memory_features.reshape(batch, -1, mem_dim).transpose(0, 1)  # (T*hw, B, D)
        spatial_position = spatial_position.reshape(batch, -1, mem_dim).transpose(0, 1)
        if model.config.enable_temporal_pos_encoding_for_object_pointers:
            sine = _sine_encoding(pointer_offsets, hidden)
            pointer_position = model.temporal_positional_encoding_projection_layer(sine)  # (B, P, D)
        else:
            pointer_position = object_pointers.new_zeros(*object_pointers.shape[:2], mem_dim)
        splits = hidden // mem_dim
        pointers = object_pointers.reshape(batch, -1, mem_dim).transpose(0, 1)  # (P*splits, B, D)
        pointer_position = pointer_position.repeat_interleave(splits, dim=1).transpose(0, 1)
        output = model.memory_attention(
            current_vision_features=top.expand(-1, batch, -1),
            current_vision_position_embeddings=self.top_position.expand(-1, batch, -1),
            memory=torch.cat([spatial, pointers], dim=0),
            memory_posision_embeddings=torch.cat([spatial_position, pointer_position], dim=0),
            num_object_pointer_tokens=pointers.shape[0],
        )  # (1, B, h*w, C)
        return output[0].transpose(1, 2).reshape(batch, hidden, height, width)


def _sine_encoding(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """transformers' ``get_1d_sine_pe`` on (B, P) positions -> (B, P, dim)."""
    half = dim // 2
    steps = torch.arange(half, dtype=torch.float32, device=positions.device)
    steps = temperature ** (2 * torch.div(steps, 2, rounding_mode="floor") / half)
    angles = positions.float()[..., None] / steps
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class VideoDecoderGraph(PromptDecoderGraph):
    """Prompt encoder + mask decoder of B objects on their own conditioned features, with the best mask, its
    object pointer and presence chosen as ``decode.decode_tracked`` chooses them (see the module docstring)."""

    def __init__(self, model: PreTrainedModel, multimask: bool):
        super().__init__(model, "sam2", multimask)

    def forward(self, conditioned, feats_0, feats_1, point_coords, point_labels, mask_input, has_mask_input):
        model, batch = self.model, conditioned.shape[0]
        sparse = self.sparse_embeddings(point_coords, point_labels).transpose(0, 1)  # (B, 1, N, C)
        prompt_encoder = model.prompt_encoder
        no_mask = prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = torch.where(
            has_mask_input.reshape(-1, 1, 1, 1) > 0.5, prompt_encoder.mask_embed(mask_input), no_mask
        )
        dense = dense.expand(batch, -1, self.image_pe.shape[-2], self.image_pe.shape[-1])
        logits, ious, tokens, object_scores = model.mask_decoder(
            image_embeddings=conditioned,
            image_positional_embeddings=self.image_pe.expand(batch, -1, -1, -1),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=self.multimask,
            high_resolution_features=[feats_0.expand(batch, -1, -1, -1), feats_1.expand(batch, -1, -1, -1)],
        )  # logits (B, 1, K, L, L), ious (B, 1, K), tokens (B, 1, K, C), object_scores (B, 1, 1)
        appearing = object_scores > 0
        logits = torch.where(appearing[:, :, :, None, None], logits, torch.full_like(logits, NO_OBJ_SCORE))
        token = tokens[:, :, 0]
        if self.multimask:
            best = torch.argmax(ious, dim=-1, keepdim=True)  # (B, 1, 1)
            chosen = torch.gather(logits, 2, best[..., None, None].expand(-1, -1, 1, *logits.shape[-2:]))[
                :, :, 0
            ]
            scores = torch.gather(ious, 2, best)[:, 0, 0]
            if tokens.size(2) > 1:
                token = torch.gather(tokens, 2, best[..., None].expand(-1, -1, 1, tokens.size(-1)))[:, :, 0]
        else:
            chosen, scores = logits[:, :, 0], ious[:, 0, 0]
        pointers = model.object_pointer_proj(token)
        weight = appearing.to(pointers.dtype)
        pointers = weight * pointers + (1 - weight) * model.no_object_pointer  # (B, 1, C)
        size = model.image_size
        high_res = F.interpolate(chosen, size=(size, size), mode="bilinear", align_corners=False)
        return chosen, high_res, scores, pointers[:, 0], object_scores[:, 0]


class MaskPromptGraph(nn.Module):
    """A mask prompt used as the object's mask (SAM 2's ``use_mask_input_as_output``, ``_use_mask_as_output``):
    ``image_embeddings`` (1, C, h, w), the two high-resolution maps, ``mask`` (1, 1, S, S) float 0 / 1 -> the
    video decoder's outputs for one object (logits -10 / +10 style, score 1, pointer from the mask decoder).

    The antialiased S -> L downsampling runs as two matrix products with torch's own resampling weights
    (taken at export by resizing the identity), since ONNX exporters have no antialiased resize.
    """

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model
        size, low = model.image_size, model.prompt_encoder.mask_input_size[0]
        with torch.no_grad():
            eye = torch.eye(size)[None, None]
            weights = F.interpolate(
                eye, size=(low, size), mode="bilinear", align_corners=False, antialias=True
            )
        self.register_buffer("resample", weights[0, 0].clone())  # (L, S)

    def forward(self, image_embeddings, feats_0, feats_1, mask):
        model = self.model
        top = image_embeddings - model.no_memory_embedding.reshape(1, -1, 1, 1)
        high_res = mask * 20.0 - 10.0
        logits = self.resample @ high_res @ self.resample.transpose(0, 1)
        pointer = model._single_frame_forward(
            input_masks=model.mask_downsample(mask), image_embeddings=[feats_0, feats_1, top]
        ).object_pointer  # (1, C)
        appearing = (mask.flatten(1) > 0).any(dim=1, keepdim=True).to(mask.dtype)  # (1, 1)
        pointer = appearing * pointer + (1 - appearing) * model.no_object_pointer
        scores = torch.ones_like(appearing[:, 0])
        return logits, high_res, scores, pointer, 20.0 * appearing - 10.0


class MemoryEncoderGraph(nn.Module):
    """Masks of B objects on one frame -> their spatial memories (see the module docstring)."""

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model

    def forward(self, image_embeddings, mask_logits, object_scores, binarize):
        model, batch = self.model, mask_logits.shape[0]
        top = image_embeddings - model.no_memory_embedding.reshape(1, -1, 1, 1)
        mask = torch.where(
            binarize.reshape(-1, 1, 1, 1) > 0.5,
            (mask_logits > 0).to(mask_logits.dtype),
            torch.sigmoid(mask_logits),
        )
        mask = mask * model.config.sigmoid_scale_for_mem_enc + model.config.sigmoid_bias_for_mem_enc
        features, _ = model.memory_encoder(top.expand(batch, -1, -1, -1), mask)
        occlusion = model.occlusion_spatial_embedding_parameter
        if occlusion is not None:
            absent = 1 - (object_scores > 0).to(features.dtype).reshape(-1, 1, 1, 1)
            features = features + absent * occlusion.reshape(1, -1, 1, 1)
        # the reference keeps memories in bfloat16
        return features.to(torch.bfloat16).to(torch.float32).flatten(2).transpose(1, 2)
