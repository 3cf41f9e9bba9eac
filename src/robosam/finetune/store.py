"""Image embeddings on disk, keyed by image content and by the frozen encoder that made them.

Fine-tuning freezes the image encoder, so an image's features never change while the prompt encoder and mask
decoder learn: they are computed once, written here, and every later epoch (and every later run with the same
model) reads them back instead of running the encoder. One safetensors file per image,
``ROOT/<model key>/<image key>.safetensors``, read through ``safe_open`` (the file is memory-mapped, so a
dataset larger than RAM costs page cache, not process memory). Features of every family are stored whole: a
tensor (SAM 1), (embeddings, [early features]) (SAM-HQ) or every pyramid level (SAM 2 family).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from robosam.errors import InputError
from robosam.io import atomic_write
from robosam.models.families import FamilyAdapter

TRAINED_PREFIXES = ("prompt_encoder.", "mask_decoder.")
"""Parameters fine-tuning may change; everything else (the image encoder side) is frozen and keys the store."""


def model_key(adapter: FamilyAdapter) -> str:
    """Identity of what turns pixels into features: family, preprocessing, dtype and every frozen weight.

    A hash of the weights themselves (not of a name), so a re-downloaded or converted copy of the same
    checkpoint shares the cache and a different one never does. Returns 32 hex digits.
    """
    digest = hashlib.blake2b(digest_size=16)
    processor = adapter.image_processor
    processor_config = processor.to_json_string() if hasattr(processor, "to_json_string") else repr(processor)
    digest.update(f"{adapter.name}|{adapter.input_size}|{adapter.dtype}|{processor_config}".encode())
    for name, tensor in sorted(adapter.model.state_dict().items()):
        if name.startswith(TRAINED_PREFIXES):
            continue
        data = tensor.detach().contiguous().cpu()
        digest.update(f"{name}|{tuple(data.shape)}|{data.dtype}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def _flatten(features: Any, tensors: list[torch.Tensor]) -> Any:
    """The nesting of ``features`` as JSON-ready data, with each tensor replaced by its index in ``tensors``."""
    if isinstance(features, torch.Tensor):
        tensors.append(features)
        return len(tensors) - 1
    if isinstance(features, (list, tuple)):
        return {"list" if isinstance(features, list) else "tuple": [_flatten(f, tensors) for f in features]}
    raise InputError("features", "tensors nested in lists or tuples", type(features).__name__)


def _unflatten(structure: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(structure, int):
        return tensors[f"t{structure}"]
    (kind, items), *_ = structure.items()
    values = [_unflatten(item, tensors) for item in items]
    return values if kind == "list" else tuple(values)


class EmbeddingStore:
    """Image features of one model on disk.

    root: the cache folder (shared by models; each gets a sub-folder named by its ``model_key``).
    key: the model's ``model_key(adapter)``. ``writes`` / ``reads`` count files written and read (per instance).
    """

    def __init__(self, root: str | os.PathLike, key: str):
        self.folder = Path(root) / key
        self.folder.mkdir(parents=True, exist_ok=True)
        self.writes = 0
        self.reads = 0

    def path(self, image_key: str) -> Path:
        return self.folder / f"{image_key}.safetensors"

    def __contains__(self, image_key: str) -> bool:
        return self.path(image_key).is_file()

    def put(self, image_key: str, features: Any, original_hw: tuple[int, int]) -> Path:
        """Write one image's features (atomically: a reader never sees half a file)."""
        tensors: list[torch.Tensor] = []
        structure = _flatten(features, tensors)
        named = {f"t{i}": t.detach().contiguous().cpu() for i, t in enumerate(tensors)}
        metadata = {"structure": json.dumps(structure), "original_hw": json.dumps(list(original_hw))}
        path = self.path(image_key)
        with atomic_write(path) as tmp:
            save_file(named, str(tmp), metadata=metadata)
        self.writes += 1
        return path

    def get(self, image_key: str, device: str | torch.device = "cpu") -> tuple[Any, tuple[int, int]]:
        """(features as the family's adapter gives them, original (H, W)) of a stored image, on ``device``."""
        path = self.path(image_key)
        if not path.is_file():
            raise KeyError(image_key)
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            metadata = handle.metadata()
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        self.reads += 1
        height, width = json.loads(metadata["original_hw"])
        return _unflatten(json.loads(metadata["structure"]), tensors), (int(height), int(width))
