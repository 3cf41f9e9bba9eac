"""Export-friendly modules around transformers' SAM networks: the image encoder with flat outputs, and the
prompt encoder + mask decoder with prompts as plain tensors (Meta's ONNX decoder convention).

Prompts reach the decoder graph the way Meta's ``SamOnnxModel`` takes them, so one graph serves points,
boxes and both, for any number of objects O and points N:

- ``point_coords`` (O, N, 2) float32 in the encoder's input frame (pixels of the S x S input);
- ``point_labels`` (O, N) int64: 1 positive, 0 negative, 2 box top-left, 3 box bottom-right, -1 padding;
- ``mask_input`` (1, 1, L, L) float32 logits and ``has_mask_input`` (1,) float32 (1.0 uses the mask).

The graph reproduces transformers' prompt encoder term by term (the same modules and weights, ``torch.where``
where it selects), so its outputs equal ``model(image_embeddings=..., input_points=...)`` to float noise.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel

# encoder output names per family, in the order transformers returns the features
FEATURE_NAMES = {
    "sam": ("image_embeddings",),
    "mobilesam": ("image_embeddings",),
    "sam2": ("high_res_feats_0", "high_res_feats_1", "image_embeddings"),
}
DECODER_INPUTS = ("point_coords", "point_labels", "mask_input", "has_mask_input")
DECODER_OUTPUTS = ("logits", "scores")


def feature_names(family: str, model: PreTrainedModel) -> tuple[str, ...]:
    """Names of the encoder's outputs (= the decoder's feature inputs) for ``family``."""
    if family == "sam_hq":
        count = len(model.config.vision_config.global_attn_indexes)
        return ("image_embeddings", *(f"intermediate_{i}" for i in range(count)))
    if family not in FEATURE_NAMES:
        from robosam.errors import InputError

        raise InputError("model", "a SAM 1 / SlimSAM, SAM-HQ or SAM 2 / 2.1 image model", family)
    return FEATURE_NAMES[family]


class EncoderGraph(nn.Module):
    """pixel_values (B, 3, S, S) -> the family's features as a flat tuple (see ``feature_names``)."""

    def __init__(self, model: PreTrainedModel, family: str):
        super().__init__()
        self.model = model
        self.family = family

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.model.get_image_embeddings(pixel_values)
        if self.family == "sam_hq":
            embeddings, intermediate = features
            return (embeddings, *intermediate)
        if isinstance(features, (list, tuple)):
            return tuple(features)
        return (features,)


class PromptDecoderGraph(nn.Module):
    """Prompt encoder + mask decoder of one image with Meta-style prompt tensors.

    forward(*features, point_coords (O, N, 2), point_labels (O, N), mask_input (1, 1, L, L),
    has_mask_input (1,)) -> (logits (O, K, L, L), scores (O, K)); K = 3 when ``multimask`` else 1.
    Features have batch dimension 1, in the order of ``feature_names``.
    """

    def __init__(self, model: PreTrainedModel, family: str, multimask: bool):
        super().__init__()
        self.model = model
        self.family = family
        self.multimask = multimask
        self.num_features = len(feature_names(family, model))
        prompt_encoder = model.prompt_encoder
        self.input_size = float(prompt_encoder.input_image_size)
        with torch.no_grad():
            self.register_buffer("image_pe", model.get_image_wide_positional_embeddings().detach().clone())

    def _label_table(self) -> torch.Tensor:
        """(4, C): the embeddings added for labels 0, 1, 2, 3."""
        point_embed = self.model.prompt_encoder.point_embed
        if isinstance(point_embed, nn.ModuleList):
            return torch.cat([embedding.weight for embedding in point_embed], dim=0)[:4]
        return point_embed.weight[:4]

    def sparse_embeddings(self, point_coords: torch.Tensor, point_labels: torch.Tensor) -> torch.Tensor:
        """point_coords (O, N, 2), point_labels (O, N) -> the prompt encoder's point embeddings (1, O, N, C)."""
        prompt_encoder = self.model.prompt_encoder
        coords = (point_coords[None] + 0.5) / self.input_size  # (1, O, N, 2) in [0, 1]
        sparse = prompt_encoder.shared_embedding(coords)  # (1, O, N, C)
        labels = point_labels[None, :, :, None]
        sparse = torch.where(labels == -1, prompt_encoder.not_a_point_embed.weight, sparse)
        table = self._label_table()
        for label in range(4):
            sparse = torch.where(labels == label, sparse + table[label], sparse)
        return sparse

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = inputs[: self.num_features]
        point_coords, point_labels, mask_input, has_mask_input = inputs[self.num_features :]
        prompt_encoder = self.model.prompt_encoder
        sparse = self.sparse_embeddings(point_coords, point_labels)
        no_mask = prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = torch.where(
            has_mask_input.reshape(1, 1, 1, 1) > 0.5, prompt_encoder.mask_embed(mask_input), no_mask
        )
        dense = dense.expand(1, -1, self.image_pe.shape[-2], self.image_pe.shape[-1])
        common = dict(
            image_positional_embeddings=self.image_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=self.multimask,
        )
        decoder = self.model.mask_decoder
        if self.family == "sam2":
            output = decoder(
                image_embeddings=features[-1], high_resolution_features=list(features[:-1]), **common
            )
        elif self.family == "sam_hq":
            output = decoder(
                image_embeddings=features[0],
                intermediate_embeddings=list(features[1:]),
                hq_token_only=False,
                **common,
            )
        else:
            output = decoder(image_embeddings=features[0], **common)
        return output[0][0], output[1][0]
