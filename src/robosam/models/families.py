"""Family adapters: the few places where SAM 1-style and SAM 2-style models differ.

A family adapter knows how its model sees an image (resize geometry, prompt coordinates, low-resolution
mask frame), how to run its image encoder and how to run its prompt encoder + mask decoder on cached
features. Tasks talk only to this interface, so a new family (a model outside transformers included)
joins by adding one adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import PreTrainedModel


@dataclass
class DecoderOutput:
    """Mask decoder output for O objects of one image.

    logits: (O, K, L, L) low-resolution mask logits (K = 3 with multimask, else 1).
    scores: (O, K) predicted IoU.
    """

    logits: torch.Tensor
    scores: torch.Tensor


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 0


class FamilyAdapter:
    """Base adapter. Subclasses set ``families`` and implement the geometry and the two model calls."""

    families: ClassVar[tuple[str, ...]] = ()

    def __init__(self, model: PreTrainedModel, image_processor: Any, family: str):
        self.model = model
        self.image_processor = image_processor
        self.family = family

    # geometry -----------------------------------------------------------------------------------
    @property
    def input_size(self) -> int:
        """Side of the square the image encoder sees, in pixels."""
        raise NotImplementedError

    @property
    def lowres_size(self) -> int:
        """Side L of the square low-resolution mask logits (and of ``mask_input``)."""
        raise NotImplementedError

    def resized_size(self, original_hw: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of the image inside the encoder's input square, in input pixels."""
        raise NotImplementedError

    def model_coords(self, points_xy: np.ndarray, original_hw: tuple[int, int]) -> np.ndarray:
        """Pixel coordinates (..., 2) of the original image to the encoder's input frame (..., 2)."""
        height, width = original_hw
        resized_h, resized_w = self.resized_size(original_hw)
        scale = np.array([resized_w / width, resized_h / height], dtype=np.float64)
        return (np.asarray(points_xy, dtype=np.float64) * scale).astype(np.float32)

    def upscale_frame(self, original_hw: tuple[int, int]) -> dict[str, tuple[int, int]]:
        """Keyword arguments for ``robosam.masks.upscale_logits`` that reproduce Meta's post-processing."""
        return {}

    # model calls --------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def preprocess(self, images: list[np.ndarray]) -> torch.Tensor:
        """RGB uint8 images (H, W, 3) to encoder input (B, 3, S, S) on the model's device and dtype."""
        pixel_values = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
        return pixel_values.to(device=self.device, dtype=self.dtype)

    def encode(self, pixel_values: torch.Tensor) -> list[Any]:
        """Encoder input (B, 3, S, S) to B per-image feature objects (each with batch dimension 1)."""
        raise NotImplementedError

    def decode(
        self,
        features: Any,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        boxes: torch.Tensor | None,
        mask_input: torch.Tensor | None,
        multimask: bool,
    ) -> DecoderOutput:
        """Prompts for O objects of one image to masks.

        points: (O, P, 2) in the encoder's input frame; labels: (O, P) int (1 positive, 0 negative);
        boxes: (O, 4) in the encoder's input frame; mask_input: (1, 1, L, L) logits (single object only).
        """
        raise NotImplementedError

    @staticmethod
    def features_nbytes(features: Any) -> int:
        return _nbytes(features)

    def _prompt_kwargs(
        self,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        boxes: torch.Tensor | None,
        mask_input: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        kwargs: dict[str, torch.Tensor] = {}
        if points is not None:
            kwargs["input_points"] = points[None].to(self.device, self.dtype)
            kwargs["input_labels"] = labels[None].to(self.device, torch.int64)
        if boxes is not None:
            kwargs["input_boxes"] = boxes[None].to(self.device, self.dtype)
        if mask_input is not None:
            kwargs["input_masks"] = mask_input.to(self.device, self.dtype)
        return kwargs


class SamFamily(FamilyAdapter):
    """SAM 1, SlimSAM and SAM-HQ: longest side resized to S, padded to S x S at the bottom right."""

    families = ("sam", "sam_hq")

    @property
    def input_size(self) -> int:
        return int(self.image_processor.size["longest_edge"])

    @property
    def lowres_size(self) -> int:
        return 4 * int(self.model.config.prompt_encoder_config.image_embedding_size)

    def resized_size(self, original_hw: tuple[int, int]) -> tuple[int, int]:
        height, width = original_hw
        scale = self.input_size / max(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)

    def upscale_frame(self, original_hw: tuple[int, int]) -> dict[str, tuple[int, int]]:
        size = self.input_size
        return {"padded_hw": (size, size), "crop_hw": self.resized_size(original_hw)}

    def encode(self, pixel_values: torch.Tensor) -> list[Any]:
        with torch.inference_mode():
            if self.family == "sam_hq":
                embeddings, intermediate = self.model.get_image_embeddings(pixel_values)
                return [
                    (embeddings[i : i + 1], [t[i : i + 1] for t in intermediate])
                    for i in range(embeddings.shape[0])
                ]
            embeddings = self.model.get_image_embeddings(pixel_values)
        return [embeddings[i : i + 1] for i in range(embeddings.shape[0])]

    def decode(self, features, points, labels, boxes, mask_input, multimask) -> DecoderOutput:
        kwargs = self._prompt_kwargs(points, labels, boxes, mask_input)
        if self.family == "sam_hq":
            embeddings, intermediate = features
            kwargs["intermediate_embeddings"] = intermediate
        else:
            embeddings = features
        with torch.inference_mode():
            output = self.model(image_embeddings=embeddings, multimask_output=multimask, **kwargs)
        return DecoderOutput(logits=output.pred_masks[0], scores=output.iou_scores[0])


class Sam2Family(FamilyAdapter):
    """SAM 2 / 2.1, SAM 3 tracker and EdgeTAM: the image is resized (not padded) to S x S."""

    families = ("sam2", "sam3_tracker", "edgetam")

    @property
    def input_size(self) -> int:
        return int(self.image_processor.size["height"])

    @property
    def lowres_size(self) -> int:
        return int(self.model.prompt_encoder.mask_input_size[0])

    def resized_size(self, original_hw: tuple[int, int]) -> tuple[int, int]:
        return self.input_size, self.input_size

    def preprocess(self, images: list[np.ndarray]) -> torch.Tensor:
        # resized as float in [0, 1] like Meta's SAM2Transforms (resizing uint8 rounds to whole grey levels)
        floats = [image.astype(np.float32) / 255.0 for image in images]
        pixel_values = self.image_processor(images=floats, do_rescale=False, return_tensors="pt")[
            "pixel_values"
        ]
        return pixel_values.to(device=self.device, dtype=self.dtype)

    def encode(self, pixel_values: torch.Tensor) -> list[Any]:
        with torch.inference_mode():
            levels = self.model.get_image_embeddings(pixel_values)
        return [[level[i : i + 1] for level in levels] for i in range(pixel_values.shape[0])]

    def decode(self, features, points, labels, boxes, mask_input, multimask) -> DecoderOutput:
        kwargs = self._prompt_kwargs(points, labels, boxes, mask_input)
        with torch.inference_mode():
            output = self.model(image_embeddings=features, multimask_output=multimask, **kwargs)
        return DecoderOutput(logits=output.pred_masks[0], scores=output.iou_scores[0])


ADAPTERS: dict[str, type[FamilyAdapter]] = {
    family: adapter for adapter in (SamFamily, Sam2Family) for family in adapter.families
}
