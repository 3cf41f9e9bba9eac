"""robosam: Segment Anything for robots.

Light names import at once; the ones that need torch and transformers (``Segmenter``, ``load_model``)
and the task subpackages load on first use, so ``import robosam`` stays fast.
"""

from importlib import import_module
from typing import Any

from robosam.errors import InputError
from robosam.io import load_image
from robosam.results import MaskResult, Track

_LAZY = {
    "Segmenter": ("robosam.segmenter", "Segmenter"),
    "AutoMasker": ("robosam.automatic", "AutoMasker"),
    "ImageEmbedding": ("robosam.segmenter", "ImageEmbedding"),
    "ModelSpec": ("robosam.models", "ModelSpec"),
    "load_model": ("robosam.models", "load_model"),
    "TextSegmenter": ("robosam.grounding", "TextSegmenter"),
    "VideoTracker": ("robosam.video", "VideoTracker"),
    "grounding": ("robosam.grounding", None),
    "data": ("robosam.data", None),
    "geometry": ("robosam.geometry", None),
    "evaluation": ("robosam.evaluation", None),
}

__all__ = ["InputError", "MaskResult", "Track", "load_image", *_LAZY]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'robosam' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = import_module(module_name)
    return module if attribute is None else getattr(module, attribute)
