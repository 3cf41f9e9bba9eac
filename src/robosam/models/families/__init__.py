"""One module per model family; each is the only place that knows its family's facts.

A new family joins with one module here, one line in ``ADAPTERS`` and one registry preset.
"""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedModel

from robosam.errors import InputError
from robosam.models.families.base import (
    DecoderOutput,
    FamilyAdapter,
    ImageGeometry,
    tensor_nbytes,
)
from robosam.models.families.edgetam import EdgeTamAdapter
from robosam.models.families.mobilesam import MobileSamAdapter
from robosam.models.families.sam import SamAdapter
from robosam.models.families.sam2 import Sam2Adapter
from robosam.models.families.sam3_tracker import Sam3TrackerAdapter
from robosam.models.families.sam_hq import SamHqAdapter

ADAPTERS: dict[str, type[FamilyAdapter]] = {
    adapter.name: adapter
    for adapter in (
        SamAdapter,
        SamHqAdapter,
        Sam2Adapter,
        Sam3TrackerAdapter,
        EdgeTamAdapter,
        MobileSamAdapter,
    )
}
# config.json "model_type" -> robosam family
MODEL_TYPE_TO_FAMILY: dict[str, str] = {
    model_type: adapter.name for adapter in ADAPTERS.values() for model_type in adapter.model_types
}


def get_adapter(family: str) -> type[FamilyAdapter]:
    """The adapter class of ``family``; ``InputError`` listing the known families otherwise."""
    try:
        return ADAPTERS[family]
    except KeyError:
        raise InputError("family", f"one of {', '.join(ADAPTERS)}", family) from None


def family_of_model_type(model_type: Any) -> str:
    """robosam family of a config ``model_type``."""
    if model_type not in MODEL_TYPE_TO_FAMILY:
        raise InputError(
            "model", f"a SAM-family model ({', '.join(sorted(MODEL_TYPE_TO_FAMILY))})", model_type
        )
    return MODEL_TYPE_TO_FAMILY[model_type]


def family_of(model: PreTrainedModel) -> str:
    """robosam family of a transformers model, from its config's ``model_type``."""
    return family_of_model_type(getattr(model.config, "model_type", None))


def adapter_for(model: PreTrainedModel, image_processor: Any = None) -> FamilyAdapter:
    """``model`` bound to its family's adapter (the family's default processor unless one is given)."""
    return get_adapter(family_of(model))(model, image_processor)


def default_image_processor(family: str, input_size: int, lowres_size: int | None = None) -> Any:
    """The family's standard preprocessing at ``input_size`` (see each adapter)."""
    return get_adapter(family).default_image_processor(input_size, lowres_size)


__all__ = [
    "ADAPTERS",
    "MODEL_TYPE_TO_FAMILY",
    "DecoderOutput",
    "FamilyAdapter",
    "ImageGeometry",
    "adapter_for",
    "default_image_processor",
    "family_of",
    "family_of_model_type",
    "get_adapter",
    "tensor_nbytes",
]
