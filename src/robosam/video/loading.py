"""Loading a video model (SAM 2 / 2.1, SAM 3 tracker, EdgeTAM) and the facts the tracker needs about it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from robosam.errors import InputError
from robosam.models.checkpoints import materialize_buffers

VIDEO_MODEL_CLASSES = {
    "Sam2VideoModel": "sam2",
    "Sam3TrackerVideoModel": "sam3_tracker",
    "EdgeTamVideoModel": "edgetam",
}
# mean / std the released models were trained with (SAM 3 normalises to [-1, 1])
FAMILY_NORMALIZATION = {
    "sam2": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "edgetam": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "sam3_tracker": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


@dataclass(frozen=True)
class VideoModelFacts:
    """What the tracker needs to know about a transformers video model.

    family: ``sam2``, ``sam3_tracker`` or ``edgetam``. image_size: side S of the encoder's square input.
    mean / std: per-channel normalisation of [0, 1] pixels. memory_batch_dim: the batch axis of the encoded
    memory (1 for SAM 2 / SAM 3's (HW, B, C) maps, 0 for EdgeTAM's (B, T, C) perceiver latents).
    num_maskmem: spatial memories the attention reads (the conditioning frame plus ``num_maskmem - 1``
    recent frames). max_object_pointers: how many frames back object pointers reach.
    batched_memory_encoder: whether the memory encoder takes several objects at once (EdgeTAM's perceiver
    resampler does not: transformers views an expanded tensor there, which fails for a batch above 1).
    """

    family: str
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    memory_batch_dim: int
    num_maskmem: int
    max_object_pointers: int
    batched_memory_encoder: bool = True

    @classmethod
    def of(cls, model: Any) -> VideoModelFacts:
        family = VIDEO_MODEL_CLASSES.get(type(model).__name__)
        if family is None:
            raise InputError(
                "model",
                f"a transformers video model ({', '.join(VIDEO_MODEL_CLASSES)})",
                type(model).__name__,
            )
        size = model.config.image_size
        mean, std = FAMILY_NORMALIZATION[family]
        return cls(
            family=family,
            image_size=int(size[0] if isinstance(size, (list, tuple)) else size),
            mean=mean,
            std=std,
            memory_batch_dim=0 if family == "edgetam" else 1,
            num_maskmem=int(model.config.num_maskmem),
            max_object_pointers=int(model.config.max_object_pointers_in_encoder),
            batched_memory_encoder=family != "edgetam",
        )


def _load_video_model(
    source: Any, device: str | torch.device = "auto", dtype: str | torch.dtype | None = None
) -> Any:
    """A transformers video model from a preset, hub id, folder, official SAM 2 / 2.1 checkpoint or instance.

    Goes through ``robosam.models.load_model(..., kind="tracker")``; where that is unavailable, falls back to
    the official checkpoint loader (``.pt`` / ``.pth``) or ``from_pretrained`` by the folder's ``model_type``.
    Returns the model in eval mode on ``device``.
    """
    if (
        isinstance(source, (str, os.PathLike))
        and str(source).endswith((".pt", ".pth"))
        and os.path.isfile(source)
    ):
        from robosam.models.checkpoints import load_official_checkpoint

        source = load_official_checkpoint(source, video=True)
    if isinstance(source, torch.nn.Module):
        source = materialize_buffers(source)
    try:
        from robosam.models import load_model

        loaded = load_model(source, device=device, dtype=dtype, kind="tracker")
        model = loaded.model
    except TypeError:  # an older load_model without kind=
        model = _fallback_load(source, device, dtype)
    if type(model).__name__ not in VIDEO_MODEL_CLASSES:
        raise InputError(
            "model",
            "a video model (SAM 2 / 2.1, SAM 3 tracker or EdgeTAM; image-only models cannot track)",
            type(model).__name__,
        )
    return model.eval()


def _fallback_load(source: Any, device: Any, dtype: Any) -> Any:
    import json
    from pathlib import Path

    import transformers

    from robosam.models import resolve_device, resolve_dtype
    from robosam.models.checkpoints import load_official_checkpoint

    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if path.is_file():
            model = load_official_checkpoint(path, video=True)
        else:
            model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
            names = {
                "sam2": "Sam2VideoModel",
                "sam3": "Sam3TrackerVideoModel",
                "edgetam": "EdgeTamVideoModel",
            }
            name = next((v for k, v in names.items() if model_type.startswith(k)), None)
            if name is None:
                raise InputError("model", "a SAM 2, SAM 3 tracker or EdgeTAM folder", model_type)
            model = getattr(transformers, name).from_pretrained(str(path))
    else:
        model = source
    return materialize_buffers(model).to(device=resolve_device(device), dtype=resolve_dtype(dtype))
