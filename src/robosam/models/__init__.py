"""Models: the preset registry, loading, one adapter module per family, official checkpoint conversion."""

from robosam.models.families import ADAPTERS, FamilyAdapter, ImageGeometry, adapter_for, family_of
from robosam.models.loading import LoadedModel, ModelSpec, load_model, resolve_device, resolve_dtype
from robosam.models.registry import (
    DEFAULT_PRESET,
    KINDS,
    PRESETS,
    Preset,
    get_preset,
    presets_of_kind,
)

__all__ = [
    "ADAPTERS",
    "DEFAULT_PRESET",
    "KINDS",
    "PRESETS",
    "FamilyAdapter",
    "ImageGeometry",
    "LoadedModel",
    "ModelSpec",
    "Preset",
    "adapter_for",
    "family_of",
    "get_preset",
    "load_model",
    "presets_of_kind",
    "resolve_device",
    "resolve_dtype",
]
