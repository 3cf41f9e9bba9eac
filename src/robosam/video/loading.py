"""Loading a video model (SAM 2 / 2.1, SAM 3 tracker, EdgeTAM) and the facts the tracker needs about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from robosam.errors import InputError

if TYPE_CHECKING:
    import torch

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
    """A transformers video model from a preset, hub id, folder, official SAM 2 / 2.1 checkpoint or instance,
    through ``robosam.models.load_model(..., kind="tracker")``. Returns the model in eval mode on ``device``;
    ``InputError`` when the checkpoint lacks video weights (an image-only folder: random memory modules)."""
    import torch

    from robosam.models import load_model
    from robosam.models.checkpoints import materialize_buffers

    if isinstance(source, torch.nn.Module):
        source = materialize_buffers(source)
    loaded = load_model(source, device=device, dtype=dtype, kind="tracker")
    if loaded.missing_weights:
        raise InputError(
            "model",
            "a video checkpoint holding the memory weights (a preset, an official .pt, or a folder saved "
            "from the video model or by robosam finetune from one)",
            loaded.source,
            detail=f"{len(loaded.missing_weights)} weights missing, e.g. {loaded.missing_weights[0]}",
        )
    model = loaded.model
    if type(model).__name__ not in VIDEO_MODEL_CLASSES:
        raise InputError(
            "model",
            "a video model (SAM 2 / 2.1, SAM 3 tracker or EdgeTAM; image-only models cannot track)",
            type(model).__name__,
        )
    return model.eval()
