"""SAM 1 and SlimSAM: a ViT encoder; the longest side resized to S with PIL, padded to S x S bottom-right."""

from __future__ import annotations

from typing import Any

import torch

from robosam.models.families.base import FamilyAdapter


class SamAdapter(FamilyAdapter):
    """SAM 1 / SlimSAM (transformers ``SamModel``). Features: image embeddings (1, C, S/16, S/16)."""

    name = "sam"
    model_types = ("sam",)
    image_model_class = "SamModel"
    padded = True

    @classmethod
    def default_image_processor(cls, input_size: int, lowres_size: int | None = None) -> Any:
        # the PIL variant resizes exactly as Meta's ResizeLongestSide (torchvision differs by a grey level)
        from transformers import SamImageProcessorPil

        lowres_size = lowres_size or input_size // 4
        return SamImageProcessorPil(
            size={"longest_edge": input_size},
            pad_size={"height": input_size, "width": input_size},
            mask_size={"longest_edge": lowres_size},
            mask_pad_size={"height": lowres_size, "width": lowres_size},
            image_mean=list(cls.image_mean),
            image_std=list(cls.image_std),
        )

    @property
    def input_size(self) -> int:
        return int(self.image_processor.size["longest_edge"])

    @property
    def lowres_size(self) -> int:
        return 4 * int(self.model.config.prompt_encoder_config.image_embedding_size)

    def encode(self, pixel_values: torch.Tensor) -> list[Any]:
        embeddings = self.model.get_image_embeddings(pixel_values)
        return [embeddings[i : i + 1] for i in range(embeddings.shape[0])]
