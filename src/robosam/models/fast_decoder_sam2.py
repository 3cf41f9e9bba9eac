"""The fast, exact prompt encoder + mask decoder of ``fast_decoder`` for SAM 2 / 2.1 (transformers' Sam2Model),
and for SAM 3 tracker and EdgeTAM, whose image models reuse SAM 2's prompt path unchanged.

SAM 2's decoder is SAM 1's with three additions, each kept exact here:

- an object-score token ahead of the IoU token (it attends and is attended to like any token, but its
  score is not part of ``pred_masks`` / ``iou_scores``, so it skips the final attention);
- high-resolution backbone features added after each transposed convolution: they are per image, so
  ``prepare`` lays them out token-major once, folded with the convolution biases, and the GEMMs add them;
- with ``multimask=False`` (in eval mode) the single-mask output falls back to the best of the three
  multimask outputs when its stability score is low: only mask 0 and the best-scored multimask mask are
  upscaled (2 of 4), then the same choice is made per object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robosam.models.fast_decoder import FastImageState, FastSamDecoder, _layer_norm

__all__ = ["FastSam2Decoder", "FastSam2ImageState"]


@dataclass(frozen=True)
class FastSam2ImageState(FastImageState):
    """FastImageState plus SAM 2's high-resolution features (immutable; share it across threads).

    Each is the feature map plus the bias of the transposed convolution it is added to, in the GEMM's
    token-major layout: rows (y, x) and columns (dy, dx, C/4) for the first; rows (y, x, dy, dx) and
    columns (ey, ex, C/8) for the second.
    """

    upscale_bias1: Tensor  # (N, 4 C/4)
    upscale_bias2: Tensor  # (4 N, 4 C/8)


class FastSam2Decoder(FastSamDecoder):
    """SAM 2 / 2.1 prompt encoder + mask decoder, re-arranged for speed; exact to float noise.

    ``decoder = FastSam2Decoder(model)``; ``state = decoder.prepare(model.get_image_embeddings(px))``
    (for one image: the three levels ``[(1, C/8, 4h, 4w), (1, C/4, 2h, 2w), (1, C, h, w)]``);
    ``logits, scores = decoder(state, points, labels, boxes, multimask)`` with points (O, P, 2), labels
    (O, P) int64 (1, 0, 2 / 3 as box corners, -1 not-a-point, -10 ignored), boxes (O, 4) in the model's
    input frame (at least one of points / boxes); returns logits (O, K, 4h, 4w) and scores (O, K),
    K = 3 if multimask else 1: ``pred_masks[0]`` / ``iou_scores[0]`` of ``Sam2Model(image_embeddings=...,
    input_points=points[None], input_labels=labels[None], input_boxes=boxes[None],
    multimask_output=multimask)``, including its stability-based choice of the single mask.

    Works with and without autograd (never forces inference mode) and is thread-safe.
    """

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """True for transformers' image models with SAM 2's prompt encoder and mask decoder: ``Sam2Model``
        (SAM 2 / 2.1), ``Sam3TrackerModel`` and ``EdgeTamModel`` (their prompt encoder, two-way transformer,
        mask decoder and image positional encoding are SAM 2's code, renamed); False for video models."""
        from transformers import EdgeTamModel, Sam2Model, Sam3TrackerModel

        return isinstance(model, (Sam2Model, Sam3TrackerModel, EdgeTamModel))

    def __init__(self, model: nn.Module) -> None:
        if not self.supports(model):
            raise TypeError(
                f"FastSam2Decoder needs a Sam2Model, Sam3TrackerModel or EdgeTamModel, got {type(model).__name__}"
            )
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder
        self.shared_image_embedding = model.shared_image_embedding

    # ---------------------------------------------------------------- per image

    def prepare(self, image_embeddings: Sequence[Tensor]) -> FastSam2ImageState:  # type: ignore[override]
        """Prompt-independent work for one image: ``image_embeddings`` the three levels that
        ``Sam2Model.get_image_embeddings`` returns, each with batch size 1."""
        if isinstance(image_embeddings, Tensor) or len(image_embeddings) != 3:
            raise ValueError("image_embeddings must be the 3 levels of Sam2Model.get_image_embeddings")
        high0, high1, embedding = image_embeddings
        if embedding.dim() != 4 or embedding.shape[0] != 1:
            raise ValueError(f"image_embeddings[-1] must be (1, C, h, w), got {tuple(embedding.shape)}")
        _, _, height, width = embedding.shape
        decoder = self.mask_decoder
        conv1, conv2 = decoder.upscale_conv1, decoder.upscale_conv2
        mid, low = conv1.out_channels, conv2.out_channels
        if tuple(high1.shape) != (1, mid, 2 * height, 2 * width) or tuple(high0.shape) != (
            1,
            low,
            4 * height,
            4 * width,
        ):
            raise ValueError(
                f"high-resolution levels must be (1, {low}, {4 * height}, {4 * width}) and "
                f"(1, {mid}, {2 * height}, {2 * width}), got {tuple(high0.shape)} and {tuple(high1.shape)}"
            )
        base = super().prepare(embedding)
        dtype = base.keys.dtype
        # (C, 2y+dy, 2x+dx) -> rows (y, x), columns (dy, dx, C)
        bias1 = high1[0].to(dtype).view(mid, height, 2, width, 2).permute(1, 3, 2, 4, 0)
        bias1 = bias1.reshape(height * width, 4 * mid) + conv1.bias.repeat(4)
        # (C, 4y+2dy+ey, 4x+2dx+ex) -> rows (y, x, dy, dx), columns (ey, ex, C)
        bias2 = high0[0].to(dtype).view(low, height, 2, 2, width, 2, 2).permute(1, 4, 2, 5, 3, 6, 0)
        bias2 = bias2.reshape(4 * height * width, 4 * low) + conv2.bias.repeat(4)
        return FastSam2ImageState(
            **{f.name: getattr(base, f.name) for f in fields(base)},
            upscale_bias1=bias1.contiguous(),
            upscale_bias2=bias2.contiguous(),
        )

    def _upscale_biases(self, state: FastImageState) -> tuple[Tensor, Tensor]:
        return state.upscale_bias1, state.upscale_bias2

    # ---------------------------------------------------------------- prompts

    def _tokens(self, points: Tensor | None, labels: Tensor | None, boxes: Tensor | None) -> Tensor:
        """Output tokens (object score, IoU, masks) + sparse prompt embeddings, (O, T, C), as
        Sam2PromptEncoder and Sam2MaskDecoder build them."""
        encoder, decoder = self.prompt_encoder, self.mask_decoder
        not_a_point = encoder.not_a_point_embed.weight
        parts = []
        if points is not None:
            if labels is None:
                raise ValueError("labels are required with points")
            embedding = self._encode_coords(points)
            label = labels[..., None]
            embedding = torch.where(label == -1, not_a_point, embedding)
            embedding = torch.where(label == -10, torch.zeros_like(embedding), embedding)
            embedding = embedding + F.embedding(labels.clamp(min=0), encoder.point_embed.weight) * (
                label >= 0
            )
            parts.append(embedding)
            if boxes is None:  # Sam2PromptEncoder pads point-only prompts with one not-a-point
                parts.append(not_a_point.expand(points.shape[0], 1, -1))
        if boxes is not None:
            corners = self._encode_coords(boxes.reshape(-1, 2, 2)) + encoder.point_embed.weight[2:4]
            parts += [corners, not_a_point.expand(boxes.shape[0], 1, -1)]  # boxes are padded too
        if not parts:
            raise ValueError("give points or boxes")
        if points is not None and boxes is not None and points.shape[0] != boxes.shape[0]:
            raise ValueError(
                f"points and boxes must cover the same objects, got {points.shape[0]} and {boxes.shape[0]}"
            )
        sparse = torch.cat([p.to(not_a_point.dtype) for p in parts], dim=1)
        output_tokens = torch.cat(
            [decoder.obj_score_token.weight, decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0
        )
        output_tokens = output_tokens.expand(sparse.shape[0], -1, -1)
        return torch.cat([output_tokens, sparse.to(output_tokens.dtype)], dim=1)

    # ---------------------------------------------------------------- forward

    def _dynamic(self, multimask: bool) -> bool:
        """Whether the single mask is chosen by stability (needs every mask token, upscaled)."""
        decoder = self.mask_decoder
        return not multimask and decoder.dynamic_multimask_via_stability and not decoder.training

    def decode_above(self, state, points, labels, boxes, multimask, min_score):  # type: ignore[override]
        """See ``FastSamDecoder.decode_above``; with the stability-chosen single mask the score is known only
        after upscaling, so every prompt is kept."""
        if not self._dynamic(multimask):
            return super().decode_above(state, points, labels, boxes, multimask, min_score)
        logits, scores = self(state, points, labels, boxes, multimask)
        return logits, scores, torch.arange(scores.shape[0], device=scores.device)

    def _heads(self, state, points, labels, boxes, multimask):  # type: ignore[override]
        """``FastSamDecoder._heads``; scores (O, 4) of every mask token when the single mask is chosen by
        stability (then K = 4 hypernetwork outputs), else (O, K) of the returned ones."""
        decoder = self.mask_decoder
        tokens = self._tokens(points, labels, boxes)  # rows: object score, IoU, mask tokens, prompts
        dynamic = self._dynamic(multimask)
        if multimask:
            mask_ids = list(range(1, decoder.num_mask_tokens))
        else:
            mask_ids = list(range(decoder.num_mask_tokens)) if dynamic else [0]
        rows = [1] + [2 + i for i in mask_ids]  # the object score token's output is not returned
        q, keys, final = self._two_way_transformer(state, tokens, rows)
        q = _layer_norm(q[:, rows] + final, decoder.transformer.layer_norm_final_attn)
        scores = decoder.iou_prediction_head(q[:, 0])  # (O, num_mask_tokens)
        mlps = decoder.output_hypernetworks_mlps
        hyper = torch.stack([mlps[i](q[:, 1 + j]) for j, i in enumerate(mask_ids)], dim=1)  # (O, K, C / 8)
        return keys, hyper, scores if dynamic else scores[:, mask_ids]

    def __call__(
        self,
        state: FastImageState,
        points: Tensor | None,
        labels: Tensor | None,
        boxes: Tensor | None,
        multimask: bool,
    ) -> tuple[Tensor, Tensor]:
        """Mask logits (O, K, 4h, 4w) and IoU scores (O, K) for O prompts; see the class docstring."""
        keys, hyper, scores = self._heads(state, points, labels, boxes, multimask)
        if not self._dynamic(multimask):
            return self._upscale_masks(keys, hyper, state), scores

        # Sam2MaskDecoder._dynamic_multimask_via_stability, upscaling only the two candidates
        decoder = self.mask_decoder
        best = scores[:, 1:].argmax(dim=-1) + 1  # (O,) the best multimask token
        objects = torch.arange(hyper.shape[0], device=hyper.device)
        candidates = self._upscale_masks(keys, torch.stack([hyper[:, 0], hyper[objects, best]], dim=1), state)
        single, fallback = candidates[:, :1], candidates[:, 1:]
        delta = decoder.dynamic_multimask_stability_delta
        flat = single.flatten(-2)
        area_i = torch.sum(flat > delta, dim=-1).float()
        area_u = torch.sum(flat > -delta, dim=-1).float()
        stability = torch.where(area_u > 0, area_i / area_u, 1.0)  # (O, 1)
        stable = stability >= decoder.dynamic_multimask_stability_thresh
        masks = torch.where(stable[..., None, None], single, fallback)
        return masks, torch.where(stable, scores[:, :1], scores.gather(1, best[:, None]))
