"""SAM-HQ: SAM 1's geometry, plus the encoder's early features that the HQ token reads."""

from __future__ import annotations

from typing import Any

import torch

from robosam.models.families.sam import SamAdapter


class SamHqAdapter(SamAdapter):
    """SAM-HQ (transformers ``SamHQModel``). Features: (image embeddings (1, C, h, w), [early ViT features])."""

    name = "sam_hq"
    model_types = ("sam_hq",)
    image_model_class = "SamHQModel"

    def encode(self, pixel_values: torch.Tensor) -> list[Any]:
        embeddings, intermediate = self.model.get_image_embeddings(pixel_values)
        return [
            (embeddings[i : i + 1], [t[i : i + 1] for t in intermediate]) for i in range(embeddings.shape[0])
        ]

    def feature_kwargs(self, features: Any) -> dict[str, Any]:
        embeddings, intermediate = features
        return {"image_embeddings": embeddings, "intermediate_embeddings": intermediate}
