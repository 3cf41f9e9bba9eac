"""What every family adapter shares: the interface tasks use, and the plain modules export and training use.

A family adapter knows how its model sees an image (resize geometry, prompt coordinates, low-resolution mask
frame), how to run the image encoder and how to run the prompt encoder + mask decoder on cached features.
Tasks talk only to this interface. Adapters never force ``torch.inference_mode()``: the caller chooses, so
gradients can reach the prompt encoder and mask decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel


@dataclass
class DecoderOutput:
    """Mask decoder output for O objects of one image.

    logits: (O, K, L, L) low-resolution mask logits (K = 3 with multimask, else 1).
    scores: (O, K) predicted IoU.
    """

    logits: torch.Tensor
    scores: torch.Tensor


@dataclass(frozen=True)
class ImageGeometry:
    """How a family's encoder sees one image.

    original_hw: (H, W) of the image in pixels. input_size: side S of the encoder's square input.
    resized_hw: (h, w) of the image inside that square (SAM 1: longest side S, padded bottom-right;
    SAM 2 family: resized to S x S). lowres_size: side L of the low-resolution mask logits.
    padded: True when the image is padded into the square (SAM 1 family) rather than stretched.
    """

    original_hw: tuple[int, int]
    input_size: int
    resized_hw: tuple[int, int]
    lowres_size: int
    padded: bool

    def to_model(self, points_xy: np.ndarray) -> np.ndarray:
        """Pixel coordinates (..., 2) of the original image to the encoder's input frame (..., 2) float32."""
        height, width = self.original_hw
        resized_h, resized_w = self.resized_hw
        scale = np.array([resized_w / width, resized_h / height], dtype=np.float64)
        return (np.asarray(points_xy, dtype=np.float64) * scale).astype(np.float32)

    def upscale_frame(self) -> dict[str, tuple[int, int]]:
        """Keyword arguments for ``robosam.masks.upscale_logits`` that reproduce Meta's post-processing."""
        if not self.padded:
            return {}
        return {"padded_hw": (self.input_size, self.input_size), "crop_hw": self.resized_hw}


def tensor_nbytes(value: Any) -> int:
    """Bytes held by a tensor or a nest of lists/tuples of tensors."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(tensor_nbytes(v) for v in value)
    return 0


class FamilyAdapter:
    """A model of one family bound to its image processor. Subclasses state the family's facts.

    Class facts: ``name`` (robosam family key), ``model_types`` (config ``model_type`` values of its image
    and video models), ``image_model_class`` / ``video_model_class`` (transformers class names),
    ``padded`` (SAM 1-style pad-to-square vs SAM 2-style stretch), ``image_mean`` / ``image_std``.
    """

    name: ClassVar[str] = ""
    model_types: ClassVar[tuple[str, ...]] = ()
    image_model_class: ClassVar[str] = ""
    video_model_class: ClassVar[str | None] = None
    padded: ClassVar[bool] = False
    image_mean: ClassVar[tuple[float, float, float]] = (0.485, 0.456, 0.406)
    image_std: ClassVar[tuple[float, float, float]] = (0.229, 0.224, 0.225)

    def __init__(self, model: PreTrainedModel, image_processor: Any = None):
        self.model = model
        self.image_processor = image_processor or self.default_image_processor(self.model_input_size(model))

    # facts about the classes --------------------------------------------------------------------
    @classmethod
    def model_class(cls, video: bool = False) -> type[PreTrainedModel]:
        """The transformers class of this family's image model (or video model)."""
        import transformers

        name = cls.video_model_class if video else cls.image_model_class
        if name is None:
            from robosam.errors import InputError

            raise InputError(
                "model", "a family with a video model (SAM 2 / 2.1, SAM 3 tracker, EdgeTAM)", cls.name
            )
        return getattr(transformers, name)

    @classmethod
    def default_image_processor(cls, input_size: int, lowres_size: int | None = None) -> Any:
        """The family's preprocessing at ``input_size``, matching Meta's to the pixel."""
        raise NotImplementedError

    @staticmethod
    def model_input_size(model: PreTrainedModel) -> int:
        """Side of the square image the encoder of ``model`` expects (every prompt encoder config knows it)."""
        prompt_config = getattr(model.config, "prompt_encoder_config", None)
        size = getattr(prompt_config, "image_size", None)
        if size is None:
            from robosam.errors import InputError

            raise InputError(
                "model",
                "a SAM-family config with prompt_encoder_config.image_size",
                type(model.config).__name__,
            )
        return int(size[0] if isinstance(size, (list, tuple)) else size)

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
        if not self.padded:
            return self.input_size, self.input_size
        height, width = original_hw
        scale = self.input_size / max(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)

    def geometry(self, original_hw: tuple[int, int]) -> ImageGeometry:
        """The ``ImageGeometry`` of an image of size ``original_hw`` (H, W)."""
        return ImageGeometry(
            original_hw=(int(original_hw[0]), int(original_hw[1])),
            input_size=self.input_size,
            resized_hw=self.resized_size(original_hw),
            lowres_size=self.lowres_size,
            padded=self.padded,
        )

    def model_coords(self, points_xy: np.ndarray, original_hw: tuple[int, int]) -> np.ndarray:
        """Pixel coordinates (..., 2) of the original image to the encoder's input frame (..., 2)."""
        return self.geometry(original_hw).to_model(points_xy)

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
        kwargs = self._prompt_kwargs(points, labels, boxes, mask_input)
        output = self.model(multimask_output=multimask, **self.feature_kwargs(features), **kwargs)
        return DecoderOutput(logits=output.pred_masks[0], scores=output.iou_scores[0])

    def feature_kwargs(self, features: Any) -> dict[str, Any]:
        """The model keyword arguments that carry cached ``features`` (image embeddings, SAM-HQ's early ones)."""
        return {"image_embeddings": features}

    @staticmethod
    def features_nbytes(features: Any) -> int:
        return tensor_nbytes(features)

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

    # plain modules for export and training ------------------------------------------------------
    def encoder_module(self) -> nn.Module:
        """The image encoder as a plain module: pixel_values (B, 3, S, S) -> features (a tensor or tuple)."""
        return ImageEncoderModule(self.model)

    def prompt_decoder_module(self, multimask: bool = True) -> nn.Module:
        """Prompt encoder + mask decoder as a plain module (see ``PromptDecoderModule``)."""
        return PromptDecoderModule(self, multimask)


class ImageEncoderModule(nn.Module):
    """``model.get_image_embeddings`` as a module: pixel_values (B, 3, S, S) -> the family's features."""

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> Any:
        features = self.model.get_image_embeddings(pixel_values)
        return tuple(features) if isinstance(features, list) else features


class PromptDecoderModule(nn.Module):
    """Prompt encoder + mask decoder of one image as a module, prompts already in the encoder's frame.

    forward(features, points (O, P, 2), labels (O, P), boxes (O, 4) or None, mask_input (1, 1, L, L) or
    None) -> (logits (O, K, L, L), scores (O, K)).
    """

    def __init__(self, adapter: FamilyAdapter, multimask: bool = True):
        super().__init__()
        self.adapter = adapter
        self.model = adapter.model  # registered so .parameters() and .to() reach the weights
        self.multimask = multimask

    def forward(
        self,
        features: Any,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        output = self.adapter.decode(features, points, labels, boxes, mask_input, self.multimask)
        return output.logits, output.scores
