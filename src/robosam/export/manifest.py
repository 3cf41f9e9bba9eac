"""``robosam.json``: what an exported folder holds and how to feed it, for Python and non-Python callers.

Keys: ``format`` (``robosam-onnx``), ``format_version``, ``family`` (the source model's robosam family),
``source``, ``opset``, ``dtypes`` (the precisions exported), ``geometry`` (input side S, low-res mask side L,
padded or stretched, embedding grid), ``preprocessing`` (resize, mean/std, padding, layout), ``prompts``
(coordinate frame, label codes, where the padding point goes), ``postprocessing`` (low-res logits to
masks), ``graphs`` (per graph: files per dtype,
inputs and outputs with symbolic shapes) and ``parity`` (ONNX Runtime vs PyTorch on the export's own check).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robosam.errors import InputError

MANIFEST_NAME = "robosam.json"
FORMAT = "robosam-onnx"
FORMAT_VERSION = 1
LABEL_CODES = {
    "1": "positive point",
    "0": "negative point",
    "2": "box top-left corner",
    "3": "box bottom-right corner",
    "-1": "padding point (coordinates ignored)",
}


def is_export_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by ``robosam export onnx`` (holds ``robosam.json``)."""
    return (Path(path).expanduser() / MANIFEST_NAME).is_file()


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The validated ``robosam.json`` of an exported folder; ``InputError`` when it is missing or foreign."""
    path = Path(folder).expanduser() / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(
            "model", f"an exported folder with a readable {MANIFEST_NAME}", str(folder), detail=str(error)
        ) from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError("model", f"a {MANIFEST_NAME} of format '{FORMAT}'", str(path))
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise InputError(
            "model",
            f"{MANIFEST_NAME} format_version <= {FORMAT_VERSION} (upgrade robosam)",
            manifest.get("format_version"),
        )
    for graph in manifest.get("graphs", {}).values():
        for file in graph["files"].values():
            if not (path.parent / file).is_file():
                raise InputError(
                    "model",
                    f"the files listed in {MANIFEST_NAME}",
                    str(path.parent / file),
                    detail="missing: export again",
                )
    return manifest


def tensor_spec(name: str, shape: list[int | str], dtype: str) -> dict[str, Any]:
    """One graph input or output: name, shape (ints, or names of dynamic axes) and element type."""
    return {"name": name, "shape": list(shape), "dtype": dtype}
