"""An exported ONNX folder as a family adapter: preprocess, encode and decode run onnxruntime sessions.

The geometry facts (input side, low-res side, padded or stretched) come from the folder's ``robosam.json``,
recorded from the original family at export; the preprocessing is the original family's image processor,
saved in the folder. Features are dicts of numpy arrays. The networks run in onnxruntime only; torch appears
solely as glue, wrapping the decoder's numpy outputs (``torch.from_numpy``, no copy) in the
``DecoderOutput`` tensors the tasks expect.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robosam.errors import InputError
from robosam.models.families.base import DecoderOutput, FamilyAdapter
from robosam.onnx_runtime import OnnxModel, pack_prompts


class OnnxAdapter(FamilyAdapter):
    """An ``OnnxModel`` (see ``robosam.onnx_runtime``) behind the family adapter interface.

    ``family`` is the exported model's own family (``sam``, ``sam_hq``, ``sam2``); ``name`` is ``onnx``.
    """

    name = "onnx"
    model_types = ()

    def __init__(self, model: OnnxModel, image_processor: Any = None):
        self.model = model
        self.family = model.family
        geometry = model.manifest["geometry"]
        self.padded = bool(geometry["padded"])
        self._input_size = int(geometry["input_size"])
        self._lowres_size = int(geometry["lowres_size"])
        self.image_processor = image_processor or _saved_processor(
            model.folder, self.family, self._input_size
        )

    @property
    def input_size(self) -> int:
        return self._input_size

    @property
    def lowres_size(self) -> int:
        return self._lowres_size

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")  # where inputs and outputs live; the session may run on a GPU provider

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32  # graph inputs and outputs are float32, float16 graphs included

    def preprocess(self, images: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 images (H, W, 3) to encoder input (B, 3, S, S) float32, as the original family does."""
        if self.padded:
            return self.image_processor(images=images, return_tensors="np")["pixel_values"].astype(np.float32)
        # SAM 2 family: resized as floats in [0, 1], like Sam2Adapter.preprocess
        floats = [image.astype(np.float32) / 255.0 for image in images]
        pixel_values = self.image_processor(images=floats, do_rescale=False, return_tensors="np")[
            "pixel_values"
        ]
        return np.asarray(pixel_values, dtype=np.float32)

    def encode(self, pixel_values: Any) -> list[dict[str, np.ndarray]]:
        """Encoder input (B, 3, S, S) to B feature dicts {output name: array with batch dimension 1}."""
        outputs = self.model.encode(np.asarray(pixel_values, dtype=np.float32))
        count = next(iter(outputs.values())).shape[0]
        return [{name: value[i : i + 1] for name, value in outputs.items()} for i in range(count)]

    @staticmethod
    def features_nbytes(features: Any) -> int:
        return int(sum(value.nbytes for value in features.values()))

    def decode(self, features, points, labels, boxes, mask_input, multimask: bool) -> DecoderOutput:
        """See ``FamilyAdapter.decode``; prompts may be torch tensors or arrays (CPU)."""
        coords, codes = pack_prompts(
            self.family,
            None if points is None else np.asarray(points, dtype=np.float32),
            None if labels is None else np.asarray(labels, dtype=np.int64),
            None if boxes is None else np.asarray(boxes, dtype=np.float32),
        )
        size = self.lowres_size
        if mask_input is None:
            mask, has_mask = np.zeros((1, 1, size, size), np.float32), np.zeros(1, np.float32)
        else:
            mask, has_mask = (
                np.asarray(mask_input, np.float32).reshape(1, 1, size, size),
                np.ones(1, np.float32),
            )
        logits, scores = self.model.run_decoder(features, coords, codes, mask, has_mask, multimask)
        return DecoderOutput(logits=torch.from_numpy(logits), scores=torch.from_numpy(scores))

    def encoder_module(self):
        raise InputError("model", "a PyTorch model (an exported ONNX folder has no torch modules)", "onnx")

    def prompt_decoder_module(self, multimask: bool = True):
        raise InputError("model", "a PyTorch model (an exported ONNX folder has no torch modules)", "onnx")


def _saved_processor(folder: Path, family: str, input_size: int) -> Any:
    """The image processor saved at export, else the family default at ``input_size``."""
    from transformers import AutoImageProcessor, SamImageProcessorPil

    from robosam.models.families import get_adapter

    family_adapter = get_adapter(family)
    # the SAM 1 style (padded) families resize with PIL, exactly as Meta's code does
    processor_class = SamImageProcessorPil if family_adapter.padded else AutoImageProcessor
    try:
        return processor_class.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError):
        return family_adapter.default_image_processor(input_size)


def load_onnx_folder(folder: str | os.PathLike, device: Any = "auto", dtype: Any = None) -> OnnxAdapter:
    """An ``OnnxAdapter`` over the exported ``folder`` on ``device`` (``auto``, ``cpu``, ``cuda``) in
    ``dtype`` (None / ``float32``, or ``float16`` where exported)."""
    name = "float32" if dtype is None else str(dtype).removeprefix("torch.")
    return OnnxAdapter(OnnxModel(folder, device=str(device), dtype=name))
