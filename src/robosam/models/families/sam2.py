"""SAM 2 / 2.1: a Hiera encoder with a feature pyramid; the image resized (stretched) to S x S as floats."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robosam.models.families.base import FamilyAdapter


class Sam2Adapter(FamilyAdapter):
    """SAM 2 / 2.1 (``Sam2Model``, video ``Sam2VideoModel``). Features: the pyramid levels, high-res first."""

    name = "sam2"
    model_types = ("sam2", "sam2_video")
    image_model_class = "Sam2Model"
    video_model_class = "Sam2VideoModel"

    @classmethod
    def default_image_processor(cls, input_size: int, lowres_size: int | None = None) -> Any:
        from transformers import Sam2ImageProcessor

        lowres_size = lowres_size or input_size // 4
        return Sam2ImageProcessor(
            size={"height": input_size, "width": input_size},
            mask_size={"height": lowres_size, "width": lowres_size},
            image_mean=list(cls.image_mean),
            image_std=list(cls.image_std),
        )

    @property
    def input_size(self) -> int:
        return int(self.image_processor.size["height"])

    @property
    def lowres_size(self) -> int:
        return int(self.model.prompt_encoder.mask_input_size[0])

    def preprocess(self, images: list[np.ndarray]) -> torch.Tensor:
        # resized as float in [0, 1] like Meta's SAM2Transforms (resizing uint8 rounds to whole grey levels)
        floats = [image.astype(np.float32) / 255.0 for image in images]
        pixel_values = self.image_processor(images=floats, do_rescale=False, return_tensors="pt")[
            "pixel_values"
        ]
        return pixel_values.to(device=self.device, dtype=self.dtype)

    def encode(self, pixel_values: torch.Tensor) -> list[Any]:
        levels = self.model.get_image_embeddings(pixel_values)
        return [[level[i : i + 1] for level in levels] for i in range(pixel_values.shape[0])]
