"""SAM-HQ: SAM 1's geometry, plus the encoder's early features that the HQ token reads.

transformers 5.24's ``SamHQMaskDecoder.forward`` unpacks the two-way transformer as
``point_embedding, iou_token_out = self.transformer(...)`` and then upscales the image embedding it had
*before* the transformer (spatially transposed, too), where Meta's ``MaskDecoderHQ`` upscales the transformer's
image output: IoU scores are right, every mask is wrong (docs/upstream/transformers-sam-hq-decoder.md).
``CorrectedSamHQMaskDecoder`` is that forward with the transformer's image output kept, same weights. The
adapter swaps it in only while ``transformers_hq_decoder_is_wrong()`` (a behavioural probe on a tiny decoder);
once transformers is fixed, its module is used unchanged. Parity with ``segment_anything_hq`` and the probe's
verdict are tested in tests/test_sam_hq_checkpoints.py.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import torch
from transformers.models.sam_hq.modeling_sam_hq import SamHQMaskDecoder, SamHQMaskDecoderConfig

from robosam.models.families.sam import SamAdapter


class CorrectedSamHQMaskDecoder(SamHQMaskDecoder):
    """transformers' ``SamHQMaskDecoder`` (same parameters, same call) with Meta's data flow: the mask
    features are upscaled from the two-way transformer's image output.

    forward(image_embeddings (B, C, h, w), image_positional_embeddings (B, C, h, w), sparse_prompt_embeddings
    (B, P, T, C) or None, dense_prompt_embeddings (B, C, h, w), multimask_output, hq_token_only,
    intermediate_embeddings [(B, h, w, vit_dim)]) -> (masks (B, P, K, 4h, 4w), iou_pred (B, P, K)).
    """

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_positional_embeddings: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor | None,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        hq_token_only: bool,
        intermediate_embeddings: list[torch.Tensor] | None = None,
        attention_similarity: torch.Tensor | None = None,
        target_embedding: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch_size, num_channels, height, width = image_embeddings.shape
        point_batch_size = sparse_prompt_embeddings.shape[1] if sparse_prompt_embeddings is not None else 1

        # HQ features: the image embedding (before the transformer, as Meta) fused with early ViT features
        hq_features = self.encoder_conv2(
            self.activation(self.encoder_norm(self.encoder_conv1(image_embeddings)))
        )
        if intermediate_embeddings:
            vit_features = intermediate_embeddings[0].permute(0, 3, 1, 2).contiguous()
            compressed = self.activation(self.compress_vit_norm(self.compress_vit_conv1(vit_features)))
            hq_features = hq_features + self.compress_vit_conv2(compressed)

        output_tokens = torch.cat(
            [self.iou_token.weight, self.mask_tokens.weight, self.hq_token.weight], dim=0
        )
        tokens = output_tokens.repeat(batch_size, point_batch_size, 1, 1)
        if sparse_prompt_embeddings is not None:
            tokens = torch.cat([tokens, sparse_prompt_embeddings], dim=2)
        point_embeddings = tokens.to(self.iou_token.weight.dtype)
        image_embeddings = (image_embeddings + dense_prompt_embeddings).repeat_interleave(point_batch_size, 0)
        image_positional_embeddings = image_positional_embeddings.repeat_interleave(point_batch_size, 0)

        # the fix: keep the transformer's image output (B*P, 1, h*w, C)
        point_embedding, image_embeddings = self.transformer(
            point_embeddings=point_embeddings,
            image_embeddings=image_embeddings,
            image_positional_embeddings=image_positional_embeddings,
            attention_similarity=attention_similarity,
            target_embedding=target_embedding,
        )
        iou_token_out = point_embedding[:, :, 0, :]
        mask_tokens_out = point_embedding[:, :, 1 : (1 + self.num_mask_tokens), :]
        image_embeddings = image_embeddings.transpose(2, 3).reshape(
            batch_size * point_batch_size, num_channels, height, width
        )

        upscaled = self.activation(self.upscale_layer_norm(self.upscale_conv1(image_embeddings)))
        upscaled = self.activation(self.upscale_conv2(upscaled))
        upscaled_hq = self.mask_conv2(self.activation(self.mask_norm(self.mask_conv1(upscaled))))
        if hq_features.shape[0] == 1:
            hq_features = hq_features.repeat(batch_size * point_batch_size, 1, 1, 1)
        elif hq_features.shape[0] == batch_size and point_batch_size != 1:
            hq_features = hq_features.repeat_interleave(point_batch_size, 0)
        upscaled_hq = upscaled_hq + hq_features

        # hypernetworks: one MLP per SAM mask token, then the HQ token's
        mlps = [*self.output_hypernetworks_mlps, self.hq_mask_mlp]
        hyper_in = torch.stack([mlp(mask_tokens_out[:, :, i, :]) for i, mlp in enumerate(mlps)], dim=2)
        _, channels, up_height, up_width = upscaled.shape
        upscaled = upscaled.reshape(batch_size, point_batch_size, channels, up_height * up_width)
        upscaled_hq = upscaled_hq.reshape(batch_size, point_batch_size, channels, up_height * up_width)
        shape = (batch_size, point_batch_size, -1, up_height, up_width)
        masks_sam = (hyper_in[:, :, : self.num_mask_tokens - 1] @ upscaled).reshape(shape)
        masks_hq = (hyper_in[:, :, self.num_mask_tokens - 1 :] @ upscaled_hq).reshape(shape)

        iou_pred = self.iou_prediction_head(iou_token_out)
        if multimask_output:  # transformers' convention: the three multimask outputs, best score first
            iou_pred, order = torch.sort(iou_pred[:, :, 1 : self.num_mask_tokens - 1], dim=2, descending=True)
            masks_sam = torch.gather(
                masks_sam[:, :, 1:],
                2,
                order[..., None, None].expand(-1, -1, -1, up_height, up_width),
            )
        else:
            iou_pred = iou_pred[:, :, :1]
            masks_sam = masks_sam[:, :, :1]
        masks = masks_hq if hq_token_only else masks_sam + masks_hq
        return masks, iou_pred


def _probe_inputs(decoder: SamHQMaskDecoder, generator: torch.Generator) -> dict[str, Any]:
    channels, grid, vit_dim = decoder.hidden_size, 4, decoder.compress_vit_conv1.in_channels

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    return {
        "image_embeddings": draw(1, channels, grid, grid),
        "image_positional_embeddings": draw(1, channels, grid, grid),
        "sparse_prompt_embeddings": draw(1, 1, 2, channels),
        "dense_prompt_embeddings": draw(1, channels, grid, grid),
        "multimask_output": False,
        "hq_token_only": False,
        "intermediate_embeddings": [draw(1, grid, grid, vit_dim)],
    }


@functools.cache
def transformers_hq_decoder_is_wrong() -> bool:
    """Whether the installed transformers' ``SamHQMaskDecoder`` disagrees with ``CorrectedSamHQMaskDecoder``
    (which matches Meta's) on a tiny random decoder: True for transformers 5.24 (mask logits differ by
    O(1)), False once upstream keeps the transformer's image output. If the probe cannot run (the module's
    call changed), transformers' module is used unchanged, with a warning."""
    config = SamHQMaskDecoderConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        mlp_dim=32,
        iou_head_hidden_dim=16,
        vit_dim=8,
    )
    config._attn_implementation = "eager"
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(0)
            decoder = SamHQMaskDecoder(config).eval()
            inputs = _probe_inputs(decoder, torch.Generator().manual_seed(0))
            theirs = decoder(**inputs)
            ours = CorrectedSamHQMaskDecoder.forward(decoder, **inputs)
            return not all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(theirs, ours))
    except Exception as error:  # noqa: BLE001 - any drift in transformers' module means: leave it alone
        warnings.warn(
            f"robosam could not probe transformers' SamHQMaskDecoder ({error!r}); using it unchanged",
            stacklevel=2,
        )
        return False


def correct_hq_decoder(model: Any) -> Any:
    """``model`` (a ``SamHQModel``) with its mask decoder's class set to ``CorrectedSamHQMaskDecoder`` (same
    module, same weights, same state dict keys) while transformers' decoder is wrong; else unchanged."""
    decoder = getattr(model, "mask_decoder", None)
    if type(decoder) is SamHQMaskDecoder and transformers_hq_decoder_is_wrong():
        decoder.__class__ = CorrectedSamHQMaskDecoder
    return model


class SamHqAdapter(SamAdapter):
    """SAM-HQ (transformers ``SamHQModel``). Features: (image embeddings (1, C, h, w), [early ViT features]).
    Binding a model corrects its mask decoder in place (``correct_hq_decoder``)."""

    name = "sam_hq"
    model_types = ("sam_hq",)
    image_model_class = "SamHQModel"

    def __init__(self, model: Any, image_processor: Any = None):
        super().__init__(correct_hq_decoder(model), image_processor)

    def encode(self, pixel_values: torch.Tensor) -> list[Any]:
        embeddings, intermediate = self.model.get_image_embeddings(pixel_values)
        return [
            (embeddings[i : i + 1], [t[i : i + 1] for t in intermediate]) for i in range(embeddings.shape[0])
        ]

    def feature_kwargs(self, features: Any) -> dict[str, Any]:
        embeddings, intermediate = features
        return {"image_embeddings": embeddings, "intermediate_embeddings": intermediate}
