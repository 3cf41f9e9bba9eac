"""Model registry and loading for the SAM family."""

from robosam.models.loading import LoadedModel, load_model, resolve_device
from robosam.models.registry import DEFAULT_PRESET, PRESETS, Preset, get_preset

__all__ = ["DEFAULT_PRESET", "PRESETS", "LoadedModel", "Preset", "get_preset", "load_model", "resolve_device"]
