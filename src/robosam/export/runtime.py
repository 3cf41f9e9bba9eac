"""Run an exported folder with ONNX Runtime: the core helpers in ``robosam.onnx_runtime``, re-exported here for
callers of the export package (no torch here either)."""

from robosam.onnx_runtime import (
    GPU_PROVIDERS,
    PROVIDER_ORDER,
    OnnxModel,
    choose_providers,
    pack_prompts,
    require_onnxruntime,
)

__all__ = [
    "GPU_PROVIDERS",
    "PROVIDER_ORDER",
    "OnnxModel",
    "choose_providers",
    "pack_prompts",
    "require_onnxruntime",
]
