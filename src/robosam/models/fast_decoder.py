"""A fast, exact SAM 1 prompt encoder + mask decoder for CPUs (DESIGN.md, "One measured exception").

``FastSamDecoder`` computes what transformers' ``SamModel`` computes from cached image embeddings and
point / box prompts, with the same parameter tensors (it holds references to the model's modules, so
fine-tuned weights are seen and gradients flow to them), equal to float noise. What it changes is the
order of the work:

- prompt-independent work is done once per image (``prepare``): the image positional encoding, image
  embedding + no-mask dense embedding in token-major layout, and in the first two-way layer the key and
  value projections of token-to-image attention and the query projection of image-to-token attention
  (the image side of that layer does not depend on the prompt when no mask is given);
- cross-attention projections are re-associated through the few prompt tokens: with T tokens and H
  heads an attention map has rank H * T (~56), far below the N = 4096 image tokens. Per head,
  token-to-image logits ``(q Wq_h^T)(X Wk_h^T)^T`` become ``(q Wq_h^T Wk_h) X^T`` and its output
  ``A (X Wv_h^T)`` becomes ``(A X) Wv_h^T``; image-to-token logits ``(X Wq_h^T)(t Wk_h^T)^T`` become
  ``X (Wq_h^T Wk_h t^T)`` and its output ``A_h (t Wv_h^T) Wo_h^T`` becomes ``A_h (t Wv_h^T Wo_h^T)``, summed
  over heads in one GEMM. The (N, C) x (C, C/2) image-side projections are never computed per prompt,
  and the positional part of every projection of ``X + pe`` is computed once per image;
- image-to-token attention maps are kept as (H, T, N) so the softmax over the ~7 tokens runs over
  contiguous N-vectors (``torch.softmax`` over a last dim of 7 is ~10x slower);
- only the output tokens that are returned (mask token 0, or the multimask tokens 1..3, plus the IoU
  token) go through the final attention and the hypernetwork MLPs;
- the two transposed convolutions (kernel 2, stride 2) run as GEMMs in token-major layout, and the
  masks are rearranged to image layout only at the end (K x 256 x 256 instead of 32 x 256 x 256).

Not covered (use transformers' module): mask inputs (``input_masks``), ``attention_similarity`` and
``target_embedding`` (PerSAM), and batches of several images. SAM 2 / 2.1: ``fast_decoder_sam2``.

Measured with ``benchmarks/decoder_speed.py --no-compile`` (SAM ViT-B decoder, 2 CPU cores): 15.4 ms per
prompt against transformers' 44.3 ms (2.9x). ``torch.compile(decoder.__call__)`` makes one prompt ~15%
faster still (``benchmarks/prompt_latency.py``: 21.1 against 25.1 ms per ``predict``) after a 30-80 s first
call per prompt shape; on chunks of clicks in automatic generation it gains nothing over the tiled eager path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robosam.runtime import tune_allocator

__all__ = ["FastImageState", "FastSamDecoder", "tune_allocator"]

# Numbers per tile of the per-prompt image work. The per-prompt image tensors (4096 x 256 floats for SAM, 16x
# that after the upscaling) otherwise go through memory on every step, and on CPUs memory traffic, not
# arithmetic, bounds the decoder. Measured on 2 cores (AMD EPYC, 512 KiB L2 per core), SAM ViT-B, one torch
# thread, chunks of 4 prompts: two-way layers 18.5 ms per prompt with 256 Ki floats (tiles of 256 tokens),
# 19.6 with 1 Mi, 24.8 untiled; upscaling per prompt, 64 Ki floats (256 KiB) best.
TILE_FLOATS = 256 * 1024
UPSCALE_TILE_FLOATS = 64 * 1024


def _linear(x: Tensor, m: nn.Linear) -> Tensor:
    return F.linear(x, m.weight, m.bias)


def _layer_norm(x: Tensor, m: nn.LayerNorm) -> Tensor:
    return F.layer_norm(x, m.normalized_shape, m.weight, m.bias, m.eps)


def _split_heads(x: Tensor, heads: int) -> Tensor:
    """(O, T, H * d) -> (O, H, T, d)."""
    o, t, _ = x.shape
    return x.view(o, t, heads, -1).transpose(1, 2)


def _heads_first(x: Tensor, heads: int) -> Tensor:
    """(O, T, H * d) -> (H, O * T, d): per-head matrices over all objects' tokens, so that a product
    with a per-image (H, d, N) tensor is one GEMM per head (matmul would copy it O times)."""
    o, t, _ = x.shape
    return x.view(o * t, heads, -1).transpose(0, 1)


def _objects_first(x: Tensor, objects: int) -> Tensor:
    """(H, O * T, b) -> (O, H * T, b); a copy unless O == 1."""
    heads, rows, b = x.shape
    return x.view(heads, objects, rows // objects, b).transpose(0, 1).reshape(objects, -1, b)


def _softmax_over_tokens(x: Tensor) -> Tensor:
    """Softmax of x (O, H, T, N) over T: reductions over contiguous N-vectors."""
    shifted = x - x.amax(dim=2, keepdim=True)
    if torch.is_grad_enabled() and shifted.requires_grad:
        e = shifted.exp()
        return e / e.sum(dim=2, keepdim=True)
    e = shifted.exp_()
    return e.div_(e.sum(dim=2, keepdim=True))


@dataclass(frozen=True)
class FastImageState:
    """Prompt-independent decoder inputs of one image (immutable; share it across threads).

    N = h * w image tokens, C decoder width; H heads and d head width of each attention. Computed
    from the parameters at ``prepare`` time: prepare again after the weights change, and under
    autograd once per backward pass (the state holds its graph).
    """

    keys: Tensor  # (N, C) image embedding + no-mask dense embedding, token-major
    t2i_keys: Tensor  # (H, d, N) first layer: token-to-image keys of (keys + pe), transposed
    t2i_values: Tensor  # (H, N, d) first layer: token-to-image values of keys
    i2t_queries: Tensor  # (H, d, N) first layer: image-to-token queries of (keys + pe), transposed
    # later layers and the final attention see keys + pe with keys changed by the prompt; the
    # positional part of their projections is fixed: pe @ W^T + b, each (H, d, N)
    pe_t2i_keys: tuple[Tensor, ...]  # one per layer after the first, then the final attention
    pe_i2t_queries: tuple[Tensor, ...]  # one per layer after the first
    mask_order: Tensor  # (16 N,) int64: token-major upscaled pixels -> row-major (4h, 4w)
    height: int
    width: int

    @property
    def nbytes(self) -> int:
        """Bytes held by the state's tensors (for caches bounded in bytes)."""
        total = 0
        for field in fields(self):
            value = getattr(self, field.name)
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, Tensor):
                    total += item.numel() * item.element_size()
        return total


def _affine(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """x (O, R, a) @ weight (a, b) + bias, bias (b,) or per row (R, b) shared by the O objects."""
    if bias.dim() == 1:
        return torch.addmm(bias, x.reshape(-1, x.shape[-1]), weight).view(*x.shape[:-1], -1)
    return torch.baddbmm(bias, x, weight.expand(x.shape[0], -1, -1))


def _out_proj(attn: nn.Module) -> nn.Linear:
    """SamAttention.out_proj / Sam2Attention.o_proj."""
    return attn.o_proj if hasattr(attn, "o_proj") else attn.out_proj


def _project_heads(x: Tensor, proj: nn.Linear, heads: int) -> Tensor:
    """(N, C) -> projection (H, d, N), transposed per head."""
    return _linear(x, proj).view(x.shape[0], heads, -1).permute(1, 2, 0).contiguous()


class FastSamDecoder:
    """SAM 1 prompt encoder + mask decoder, re-arranged for speed; exact to float noise.

    ``decoder = FastSamDecoder(model)``; ``state = decoder.prepare(model.get_image_embeddings(px))``;
    ``logits, scores = decoder(state, points, labels, boxes, multimask)`` with

    - points (O, P, 2) float in the model's input frame (pixels of the ``image_size`` square encoder
      input) or None; labels (O, P) int64 (1 positive, 0 negative, -1 not-a-point / padding, -10
      ignored), required with points;
    - boxes (O, 4) float ``(x1, y1, x2, y2)`` in the same frame, or None (at least one of the two);
    - logits (O, K, 4h, 4w) low-resolution mask logits (256 x 256 for SAM) and scores (O, K) predicted
      IoU, K = 3 if multimask else 1: ``pred_masks[0]`` / ``iou_scores[0]`` of ``SamModel(
      image_embeddings=..., input_points=points[None], input_labels=labels[None],
      input_boxes=boxes[None], multimask_output=multimask)``.

    Works with and without autograd (never forces inference mode) and is thread-safe: it keeps no
    state between calls.
    """

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """True for transformers' ``SamModel`` and models built on it with SAM 1's decoder (SAM 1, SlimSAM,
        MobileSAM); False for SAM-HQ (its HQ token), SAM 2 and others."""
        from transformers import SamModel

        return isinstance(model, SamModel) and getattr(model.config, "model_type", None) in (
            "sam",
            "mobilesam",
        )

    def __init__(self, model: nn.Module) -> None:
        if not self.supports(model):
            raise TypeError(f"FastSamDecoder needs a transformers SamModel, got {type(model).__name__}")
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder
        self.shared_image_embedding = model.shared_image_embedding

    # ---------------------------------------------------------------- per image

    def _image_positional_encoding(self, height: int, width: int) -> Tensor:
        """SamModel.get_image_wide_positional_embeddings, token-major: (h * w, C)."""
        gaussian = self.shared_image_embedding.positional_embedding
        kw = dict(device=gaussian.device, dtype=gaussian.dtype)
        y = (torch.arange(height, **kw) + 0.5) / height
        x = (torch.arange(width, **kw) + 0.5) / width
        grid = torch.stack([x[None, :].expand(height, width), y[:, None].expand(height, width)], dim=-1)
        coords = 2 * math.pi * ((2 * grid - 1) @ gaussian)
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1).reshape(height * width, -1)

    def prepare(self, image_embeddings: Tensor) -> FastImageState:
        """Prompt-independent work for one image; image_embeddings (1, C, h, w) from
        ``model.get_image_embeddings``."""
        if image_embeddings.dim() != 4 or image_embeddings.shape[0] != 1:
            raise ValueError(f"image_embeddings must be (1, C, h, w), got {tuple(image_embeddings.shape)}")
        transformer = self.mask_decoder.transformer
        _, channels, height, width = image_embeddings.shape
        n = height * width
        dtype = self.mask_decoder.iou_token.weight.dtype
        embedding = image_embeddings[0].to(dtype).reshape(channels, n).transpose(0, 1)
        keys = (embedding + self.prompt_encoder.no_mask_embed.weight).contiguous()
        pe = self._image_positional_encoding(height, width).to(dtype)
        keys_pe = keys + pe
        first = transformer.layers[0]
        t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
        t2i_values = _linear(keys, t2i.v_proj).view(n, t2i.num_attention_heads, -1).transpose(0, 1)
        later = [*transformer.layers[1:]]
        attentions = [layer.cross_attn_token_to_image for layer in later] + [
            transformer.final_attn_token_to_image
        ]
        order = torch.arange(16 * n, device=keys.device).view(height, width, 2, 2, 2, 2)
        return FastImageState(
            keys=keys,
            t2i_keys=_project_heads(keys_pe, t2i.k_proj, t2i.num_attention_heads),
            t2i_values=t2i_values.contiguous(),
            i2t_queries=_project_heads(keys_pe, i2t.q_proj, i2t.num_attention_heads),
            pe_t2i_keys=tuple(_project_heads(pe, a.k_proj, a.num_attention_heads) for a in attentions),
            pe_i2t_queries=tuple(
                _project_heads(
                    pe,
                    layer.cross_attn_image_to_token.q_proj,
                    layer.cross_attn_image_to_token.num_attention_heads,
                )
                for layer in later
            ),
            mask_order=order.permute(0, 2, 4, 1, 3, 5).reshape(-1),
            height=height,
            width=width,
        )

    # ---------------------------------------------------------------- prompts

    def _encode_coords(self, coords: Tensor) -> Tensor:
        """SamPositionalEmbedding of pixel coordinates (..., 2) -> (..., C)."""
        encoder = self.prompt_encoder
        gaussian = encoder.shared_embedding.positional_embedding
        coords = (coords + 0.5) / encoder.input_image_size
        coords = 2 * math.pi * ((2 * coords - 1).to(gaussian.dtype) @ gaussian)
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def _tokens(self, points: Tensor | None, labels: Tensor | None, boxes: Tensor | None) -> Tensor:
        """Output tokens + sparse prompt embeddings, (O, T, C), as SamMaskDecoder concatenates them."""
        encoder, decoder = self.prompt_encoder, self.mask_decoder
        parts = []
        if points is not None:
            if labels is None:
                raise ValueError("labels are required with points")
            embedding = self._encode_coords(points)
            label = labels[..., None]
            embedding = torch.where(label == -1, encoder.not_a_point_embed.weight, embedding)
            embedding = torch.where(label == -10, torch.zeros_like(embedding), embedding)
            embedding = torch.where(label == 0, embedding + encoder.point_embed[0].weight, embedding)
            embedding = torch.where(label == 1, embedding + encoder.point_embed[1].weight, embedding)
            parts.append(embedding)
            if boxes is None:  # SamPromptEncoder pads point-only prompts with one not-a-point
                parts.append(encoder.not_a_point_embed.weight.expand(points.shape[0], 1, -1))
        if boxes is not None:
            corners = self._encode_coords(boxes.reshape(-1, 2, 2))
            corners = corners + torch.cat([encoder.point_embed[2].weight, encoder.point_embed[3].weight])
            parts.append(corners)
        if not parts:
            raise ValueError("give points or boxes")
        if points is not None and boxes is not None and points.shape[0] != boxes.shape[0]:
            raise ValueError(
                f"points and boxes must cover the same objects, got {points.shape[0]} and {boxes.shape[0]}"
            )
        sparse = torch.cat(parts, dim=1)
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
        output_tokens = output_tokens.expand(sparse.shape[0], -1, -1)
        return torch.cat([output_tokens, sparse.to(output_tokens.dtype)], dim=1)

    # ---------------------------------------------------------------- attention pieces

    @staticmethod
    def _token_self_attention(attn: nn.Module, query: Tensor, value: Tensor) -> Tensor:
        """SamAttention(query, query, value) over the few tokens; (O, T, C) -> (O, T, C)."""
        heads = attn.num_attention_heads
        q = _split_heads(_linear(query, attn.q_proj), heads)
        k = _split_heads(_linear(query, attn.k_proj), heads)
        v = _split_heads(_linear(value, attn.v_proj), heads)
        weights = torch.softmax((q * attn.scaling) @ k.transpose(2, 3), dim=-1)
        out = (weights @ v).transpose(1, 2).flatten(2)
        return _linear(out, _out_proj(attn))

    @staticmethod
    def _token_to_image_query(attn: nn.Module, query: Tensor, pe_keys: Tensor) -> tuple[Tensor, Tensor]:
        """Query side of SamAttention(query, keys + pe, keys), the tokens attending to the image.

        query (O, T, C), pe_keys (H, d, N) the projected positional part of the keys. Re-associated: the key
        projection is folded into the queries, so that the logits are ``pe_logits + folded @ keys^T``.
        Returns folded (O, H*T, C) and pe_logits (O, H*T, N).
        """
        heads = attn.num_attention_heads
        o, _, channels = query.shape
        q = _heads_first(_linear(query, attn.q_proj) * attn.scaling, heads)  # (H, O*T, d)
        folded = _objects_first(q @ attn.k_proj.weight.view(heads, q.shape[-1], channels), o)
        return folded, _objects_first(q @ pe_keys, o)

    @staticmethod
    def _token_to_image_output(attn: nn.Module, logits: Tensor, keys: list[Tensor], tokens: int) -> Tensor:
        """Output of the attention whose logits (O, H*T, N) ``_token_to_image_query`` set up, keys the image
        (O, N, C) as tiles -> (O, T, C). The value projection is applied after averaging the image tokens
        (attention rows sum to 1, so the value bias passes through unchanged)."""
        heads = attn.num_attention_heads
        o, _, channels = keys[0].shape
        head_dim = attn.v_proj.weight.shape[0] // heads
        weights = torch.softmax(logits, dim=-1)
        mixed, start = None, 0  # (O, H*T, C)
        for tile in keys:
            part = weights[:, :, start : start + tile.shape[1]]
            mixed = part @ tile if mixed is None else torch.baddbmm(mixed, part, tile)
            start += tile.shape[1]
        mixed = mixed.view(o, heads, tokens, channels).transpose(0, 1).reshape(heads, o * tokens, channels)
        value_weight = attn.v_proj.weight.view(heads, head_dim, channels).transpose(1, 2)
        out = torch.baddbmm(attn.v_proj.bias.view(heads, 1, head_dim), mixed, value_weight)  # (H, O*T, d)
        out = out.view(heads, o, tokens, head_dim).permute(1, 2, 0, 3).reshape(o, tokens, -1)
        return _linear(out, _out_proj(attn))

    @staticmethod
    def _image_to_token_side(attn: nn.Module, tokens: Tensor, tokens_pe: Tensor) -> tuple[Tensor, Tensor]:
        """Token side of image-to-token attention SamAttention(image, tokens_pe, tokens).

        Returns the scaled keys (H, O*T, d) and the values pushed through out_proj, (O, H*T, C), so
        that the attention output is ``weights (N, H*T) @ values``: each head's weights sum to 1 over
        its T tokens, so out_proj's bias is spread as bias / H over every value row.
        """
        heads = attn.num_attention_heads
        o, _, channels = tokens.shape
        k = _heads_first(_linear(tokens_pe, attn.k_proj) * attn.scaling, heads)
        v = _heads_first(_linear(tokens, attn.v_proj), heads)  # (H, O*T, d)
        out_proj = _out_proj(attn)
        out_weight = out_proj.weight.view(channels, heads, -1).permute(1, 2, 0)  # (H, d, C)
        return k, _objects_first(torch.baddbmm(out_proj.bias / heads, v, out_weight), o)

    # ---------------------------------------------------------------- forward

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
        return self._upscale_masks(keys, hyper, state), scores

    def decode_above(
        self,
        state: FastImageState,
        points: Tensor | None,
        labels: Tensor | None,
        boxes: Tensor | None,
        multimask: bool,
        min_score: float,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``__call__`` for callers that drop masks whose IoU score is at or below ``min_score`` (automatic
        generation): the scores come before the upscaling, so prompts none of whose K masks scores above
        it are not upscaled at all. Returns logits (O', K, 4h, 4w) of the O' kept prompts, scores (O, K) of
        all, and the kept prompts' indexes (O',) int64; kept rows equal ``__call__``'s."""
        keys, hyper, scores = self._heads(state, points, labels, boxes, multimask)
        kept = torch.nonzero((scores > min_score).any(dim=1)).flatten()
        if not len(kept):
            side = (4 * state.height, 4 * state.width)
            return hyper.new_zeros((0, hyper.shape[1], *side)), scores, kept
        return self._upscale_masks([tile[kept] for tile in keys], hyper[kept], state), scores, kept

    def _heads(
        self,
        state: FastImageState,
        points: Tensor | None,
        labels: Tensor | None,
        boxes: Tensor | None,
        multimask: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Everything before the upscaling: the image (O, N, C) as tiles of image tokens (O, s, C),
        hypernetwork outputs (O, K, C/8) and IoU scores (O, K) of the K returned masks."""
        decoder = self.mask_decoder
        tokens = self._tokens(points, labels, boxes)  # also the tokens' positional embedding
        # the final attention and the heads run for the returned output tokens only
        mask_ids = list(range(1, decoder.num_mask_tokens)) if multimask else [0]
        rows = [0] + [1 + i for i in mask_ids]
        q, keys, final = self._two_way_transformer(state, tokens, rows)
        q = _layer_norm(q[:, rows] + final, decoder.transformer.layer_norm_final_attn)
        scores = decoder.iou_prediction_head(q[:, 0])[:, mask_ids]
        mlps = decoder.output_hypernetworks_mlps
        hyper = torch.stack([mlps[i](q[:, 1 + j]) for j, i in enumerate(mask_ids)], dim=1)  # (O, K, C / 8)
        return keys, hyper, scores

    def _two_way_transformer(
        self, state: FastImageState, tokens: Tensor, final_rows: list[int]
    ) -> tuple[Tensor, list[Tensor], Tensor]:
        """The two-way layers and the final token-to-image attention.

        tokens (O, T, C) -> the tokens after the layers (O, T, C), the image after the layers (O, N, C) as
        consecutive tiles of image tokens (O, s, C), and the final attention's output (O, R, C) for the R
        ``final_rows`` (queried by those rows plus their positional embedding, as ``SamTwoWayTransformer``
        does for every row). The per-prompt image never exists whole: each tile goes through a layer's
        image update and the next attention's logits while it is in cache.
        """
        transformer = self.mask_decoder.transformer
        layers = transformer.layers
        o, t, _ = tokens.shape

        # first layer, token side: the image it attends to is in the state
        layer = layers[0]
        q = _layer_norm(self._token_self_attention(layer.self_attn, tokens, tokens), layer.layer_norm1)
        t2i = layer.cross_attn_token_to_image
        heads = t2i.num_attention_heads
        query = _heads_first(_linear(q + tokens, t2i.q_proj) * t2i.scaling, heads)  # (H, O*T, d)
        out = torch.softmax(query @ state.t2i_keys, dim=-1) @ state.t2i_values  # (H, O*T, d)
        out = _linear(out.view(heads, o, t, -1).permute(1, 2, 0, 3).reshape(o, t, -1), _out_proj(t2i))
        q = _layer_norm(q + out, layer.layer_norm2)
        q = _layer_norm(q + layer.mlp(q), layer.layer_norm3)

        keys = None  # the image before the layer, as tiles: the state's for the first
        for index, layer in enumerate(layers):
            k, values = self._image_to_token_side(layer.cross_attn_image_to_token, q, q + tokens)
            following = layers[index + 1] if index + 1 < len(layers) else None
            if following is not None:  # the next layer's token side up to its token-to-image attention
                query = q + tokens
                q = _layer_norm(
                    q + self._token_self_attention(following.self_attn, query, q), following.layer_norm1
                )
                attn, query, rows = following.cross_attn_token_to_image, q + tokens, t
                pe_keys = state.pe_t2i_keys[index]
            else:
                attn, rows = transformer.final_attn_token_to_image, len(final_rows)
                query, pe_keys = q[:, final_rows] + tokens[:, final_rows], state.pe_t2i_keys[-1]
            folded, pe_logits = self._token_to_image_query(attn, query, pe_keys)
            keys, logits = self._image_update(state, index, keys, k, values, folded, pe_logits)
            out = self._token_to_image_output(attn, logits, keys, rows)
            if following is None:
                return q, keys, out
            q = _layer_norm(q + out, following.layer_norm2)
            q = _layer_norm(q + following.mlp(q), following.layer_norm3)
        raise ValueError("the two-way transformer has no layers")

    @staticmethod
    def _tile_tokens(objects: int, columns: int, floats: int | None = None) -> int:
        """Image tokens per tile so that an (objects, tile, columns) tensor holds about ``floats`` numbers
        (default ``TILE_FLOATS``)."""
        return max(16, (TILE_FLOATS if floats is None else floats) // (objects * columns))

    def _image_update(
        self,
        state: FastImageState,
        index: int,
        keys: list[Tensor] | None,
        k: Tensor,
        values: Tensor,
        folded: Tensor,
        pe_logits: Tensor,
    ) -> tuple[list[Tensor], Tensor]:
        """Image-to-token attention of layer ``index`` and its layer norm, then the next attention's logits.

        keys: the image (O, N, C) before the layer as tiles (None for the first layer: the state's); k
        (H, O*T, d) and values (O, H*T, C) from ``_image_to_token_side``; folded (O, H'*T', C) and pe_logits
        (O, H'*T', N) from ``_token_to_image_query`` for the next attention. The image-to-token softmax and
        the layer norm are per image token, so the work runs tile by tile. Returns the image after the
        layer as tiles and the next attention's logits ``pe_logits + folded @ keys^T`` (O, H'*T', N).
        """
        layer = self.mask_decoder.transformer.layers[index]
        i2t = layer.cross_attn_image_to_token
        heads = i2t.num_attention_heads
        objects, channels = values.shape[0], values.shape[-1]
        tokens = k.shape[1] // objects
        n = state.keys.shape[0]
        if keys is None:
            pe_queries = state.i2t_queries
            size = self._tile_tokens(objects, channels)
            keys = [state.keys[start : start + size].expand(objects, -1, -1) for start in range(0, n, size)]
        else:  # queries (keys + pe) @ Wq^T + bq against the token keys: the keys part folded into the tokens
            pe_queries = state.pe_i2t_queries[index - 1]
            i2t_folded = _objects_first(k @ i2t.q_proj.weight.view(heads, k.shape[-1], channels), objects)
        # the previous tiles are overwritten unless they are the state's or autograd needs them
        in_place = index > 0 and not torch.is_grad_enabled()
        updated, logits, start = [], [], 0
        for before in keys:
            tile = slice(start, start + before.shape[1])
            start = tile.stop
            i2t_logits = _objects_first(k @ pe_queries[:, :, tile], objects)  # (O, H*T, s)
            if index > 0:
                i2t_logits = torch.baddbmm(i2t_logits, i2t_folded, before.transpose(1, 2))
            weights = _softmax_over_tokens(i2t_logits.view(objects, heads, tokens, -1))
            weights = weights.view(objects, heads * tokens, -1).transpose(1, 2)
            if in_place:
                after = before.baddbmm_(weights, values)
            else:
                after = torch.baddbmm(before, weights, values)
            after = _layer_norm(after, layer.layer_norm4)
            updated.append(after)
            logits.append(torch.baddbmm(pe_logits[:, :, tile], folded, after.transpose(1, 2)))
        return updated, torch.cat(logits, dim=-1)

    def _upscale_biases(self, state: FastImageState) -> tuple[Tensor, Tensor]:
        """What the two transposed convolutions' GEMMs add: (4 C/4,) and (4 C/8,), one per (sub-pixel,
        channel); SAM 2 adds per-pixel features, (N, 4 C/4) and (4 N, 4 C/8)."""
        decoder = self.mask_decoder
        return decoder.upscale_conv1.bias.repeat(4), decoder.upscale_conv2.bias.repeat(4)

    def _upscale_masks(self, keys: list[Tensor], hyper: Tensor, state: FastImageState) -> Tensor:
        """keys the image (O, N, C) as tiles (O, s, C), hyper (O, K, C/8) -> mask logits (O, K, 4h, 4w).

        A ConvTranspose2d with kernel 2 and stride 2 is one GEMM over the input pixels: rows come out as
        (y, x, dy, dx), and the image layout is restored only on the K-channel masks. Runs per prompt in
        tiles of image tokens, so that the 16x larger activations stay in cache.
        """
        decoder = self.mask_decoder
        conv1, conv2, norm = decoder.upscale_conv1, decoder.upscale_conv2, decoder.upscale_layer_norm
        o, _, channels = keys[0].shape
        n = state.keys.shape[0]
        mid, low = conv1.out_channels, conv2.out_channels
        weight1 = conv1.weight.permute(0, 2, 3, 1).reshape(channels, 4 * mid)  # (C_in, dy*dx*C_out)
        weight2 = conv2.weight.permute(0, 2, 3, 1).reshape(mid, 4 * low)
        bias1, bias2 = self._upscale_biases(state)
        masks = hyper.new_empty(o, hyper.shape[1], 16 * n)  # columns (y, x, dy, dx, ey, ex)
        size = self._tile_tokens(1, 4 * mid, UPSCALE_TILE_FLOATS)
        offset = 0
        for tile_keys in keys:
            for first in range(0, tile_keys.shape[1], size):
                start, count = offset + first, min(size, tile_keys.shape[1] - first)
                tile, fine = slice(start, start + count), slice(4 * start, 4 * (start + count))
                tile_bias1 = bias1 if bias1.dim() == 1 else bias1[tile]
                tile_bias2 = bias2 if bias2.dim() == 1 else bias2[fine]
                for index in range(o):
                    x = torch.addmm(
                        tile_bias1, tile_keys[index, first : first + count], weight1
                    )  # cols (dy, dx, C/4)
                    x = F.layer_norm(x.view(-1, mid), (mid,), norm.weight, norm.bias, norm.eps)
                    x = decoder.activation(torch.addmm(tile_bias2, decoder.activation(x), weight2))
                    masks[index, :, 16 * start : 16 * (start + count)] = hyper[index] @ x.view(-1, low).t()
            offset += tile_keys.shape[1]
        masks = masks.view(o * hyper.shape[1], -1)[:, state.mask_order]
        return masks.view(o, hyper.shape[1], 4 * state.height, 4 * state.width)
