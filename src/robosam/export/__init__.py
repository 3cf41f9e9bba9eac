"""Export and deployment: SAM-family models to ONNX folders (``robosam.json`` manifest) and an ONNX Runtime
backend that runs them (``Segmenter(folder)``). ``export_onnx`` needs torch; ``OnnxModel`` needs only
onnxruntime and numpy (``pip install robosam[onnx]``)."""

from robosam.export.manifest import MANIFEST_NAME, is_export_folder, read_manifest
from robosam.export.runtime import OnnxModel, choose_providers, pack_prompts

__all__ = [
    "MANIFEST_NAME",
    "OnnxModel",
    "choose_providers",
    "export_onnx",
    "is_export_folder",
    "pack_prompts",
    "read_manifest",
]


def __getattr__(name: str):
    if name == "export_onnx":  # imports torch: only when asked for
        from robosam.export.onnx_export import export_onnx

        return export_onnx
    raise AttributeError(name)
