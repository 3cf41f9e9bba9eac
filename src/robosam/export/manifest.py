"""``robosam.json``: what an exported folder holds and how to feed it, for Python and non-Python callers.

Keys: ``format`` (``robosam-onnx``), ``format_version``, ``family`` (the source model's robosam family),
``source``, ``opset``, ``dtypes`` (the precisions exported), ``geometry`` (input side S, low-res mask side L,
padded or stretched, embedding grid), ``preprocessing`` (resize, mean/std, padding, layout), ``prompts``
(coordinate frame, label codes, where the padding point goes), ``postprocessing`` (low-res logits to
masks), ``graphs`` (per graph: files per dtype,
inputs and outputs with symbolic shapes), ``parity`` (ONNX Runtime vs PyTorch on the export's own check) and, for
a SAM 2 video model, ``video`` (the tracking step's facts: see ``robosam.export.video_export``). Reading and
checking the file is core (``robosam.onnx_runtime``); writing it is here.
"""

from __future__ import annotations

from typing import Any

from robosam.onnx_runtime import FORMAT, FORMAT_VERSION, MANIFEST_NAME, is_export_folder, read_manifest

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LABEL_CODES",
    "MANIFEST_NAME",
    "is_export_folder",
    "read_manifest",
    "tensor_spec",
]

LABEL_CODES = {
    "1": "positive point",
    "0": "negative point",
    "2": "box top-left corner",
    "3": "box bottom-right corner",
    "-1": "padding point (coordinates ignored)",
}


def tensor_spec(name: str, shape: list[int | str], dtype: str) -> dict[str, Any]:
    """One graph input or output: name, shape (ints, or names of dynamic axes) and element type."""
    return {"name": name, "shape": list(shape), "dtype": dtype}
