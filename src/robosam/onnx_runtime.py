"""Run a folder written by ``robosam export onnx`` with ONNX Runtime: its ``robosam.json`` read and checked,
sessions per graph, execution providers chosen in order (TensorRT, CUDA, CPU), prompts packed for the graphs.

Core level, with no torch import (numpy and onnxruntime only), so a deployment without torch can use it;
``robosam.models.families.onnx`` (the ``Segmenter`` backend) and ``robosam.video.onnx_backend`` (the tracker
backend) build on it, and ``robosam.export`` writes the folders it reads. Needs the ``onnx`` extra
(``pip install robosam[onnx]``).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from robosam.errors import InputError

MANIFEST_NAME = "robosam.json"
FORMAT = "robosam-onnx"
FORMAT_VERSION = 1

PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = PROVIDER_ORDER[:2]


def require_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or one ``InputError`` line naming the extra that installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise InputError("backend", "onnxruntime installed (pip install robosam[onnx])", "onnx") from None
    return onnxruntime


def choose_providers(device: str = "auto", available: list[str] | None = None) -> list[str]:
    """Execution providers for ``device`` in the order TensorRT, CUDA, CPU, among those ``available``
    (default: what the installed onnxruntime offers). ``cpu`` gives CPU only; ``cuda`` / ``cuda:N`` needs a
    GPU provider; ``auto`` takes every available one in order."""
    if available is None:
        available = list(require_onnxruntime().get_available_providers())
    ordered = [p for p in PROVIDER_ORDER if p in available]
    device = str(device)
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        gpu = [p for p in ordered if p in GPU_PROVIDERS]
        if not gpu:
            raise InputError(
                "device",
                "an onnxruntime with CUDA or TensorRT for device cuda (pip install onnxruntime-gpu)",
                device,
                detail=f"available: {', '.join(available)}",
            )
        return [*gpu, "CPUExecutionProvider"]
    if device != "auto":
        raise InputError("device", "'auto', 'cpu', 'cuda' or 'cuda:N' for the onnx backend", device)
    return ordered or ["CPUExecutionProvider"]


class OnnxModel:
    """The graphs of one exported folder, with sessions created on first use (thread-safe).

    folder: written by ``robosam export onnx``. device: ``auto``, ``cpu``, ``cuda`` / ``cuda:N``.
    dtype: ``float32`` or ``float16`` (when the folder holds float16 files). threads: intra-op threads of
    each session (0: onnxruntime's default).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        manifest: dict[str, Any] | None = None,
        device: str = "auto",
        dtype: str = "float32",
        threads: int = 0,
    ):
        self.folder = Path(folder).expanduser()
        self.manifest = manifest if manifest is not None else read_manifest(self.folder)
        if dtype not in self.manifest["dtypes"]:
            raise InputError("dtype", f"one of the exported {', '.join(self.manifest['dtypes'])}", dtype)
        self.dtype = dtype
        self.providers = choose_providers(device)
        self.threads = int(threads)
        self.family: str = self.manifest["family"]
        self.feature_names = [spec["name"] for spec in self.manifest["graphs"]["encoder"]["outputs"]]
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()

    def session(self, graph: str) -> Any:
        """The ``onnxruntime.InferenceSession`` of ``graph`` (``encoder``, ``decoder_multimask``, ...)."""
        with self._lock:
            if graph not in self._sessions:
                ort = require_onnxruntime()
                options = ort.SessionOptions()
                if self.threads:
                    options.intra_op_num_threads = self.threads
                path = self.folder / self.manifest["graphs"][graph]["files"][self.dtype]
                self._sessions[graph] = ort.InferenceSession(str(path), options, providers=self.providers)
            return self._sessions[graph]

    def encode(self, pixel_values: np.ndarray) -> dict[str, np.ndarray]:
        """pixel_values (B, 3, S, S) float32 -> {feature name: (B, ...) float32}."""
        outputs = self.session("encoder").run(
            None, {"pixel_values": np.ascontiguousarray(pixel_values, np.float32)}
        )
        return dict(zip(self.feature_names, outputs))

    def run_decoder(
        self,
        features: dict[str, np.ndarray],
        point_coords: np.ndarray,
        point_labels: np.ndarray,
        mask_input: np.ndarray,
        has_mask_input: np.ndarray,
        multimask: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features of one image (batch 1) and Meta-style prompts -> logits (O, K, L, L), scores (O, K)."""
        feeds = {name: features[name] for name in self.feature_names}
        feeds["point_coords"] = np.ascontiguousarray(point_coords, np.float32)
        feeds["point_labels"] = np.ascontiguousarray(point_labels, np.int64)
        feeds["mask_input"] = np.ascontiguousarray(mask_input, np.float32)
        feeds["has_mask_input"] = np.ascontiguousarray(has_mask_input, np.float32).reshape(1)
        graph = "decoder_multimask" if multimask else "decoder_single"
        logits, scores = self.session(graph).run(None, feeds)
        return logits, scores


def pack_prompts(
    family: str,
    points: np.ndarray | None,
    labels: np.ndarray | None,
    boxes: np.ndarray | None,
    objects: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """robosam prompts in the encoder's frame to the decoder graph's ``point_coords`` (O, N, 2) float32 and
    ``point_labels`` (O, N) int64: points, then box corners (labels 2, 3), then padding points where the
    family's prompt encoder adds them (SAM 2: always one, two for a mask-only prompt; SAM 1 / SAM-HQ: one with
    points and no box, none otherwise).

    points: (O, P, 2) or None; labels: (O, P) or None; boxes: (O, 4) or None.
    """
    if points is not None:
        objects = points.shape[0]
    elif boxes is not None:
        objects = boxes.shape[0]
    coords = [np.zeros((objects, 0, 2), np.float32)]
    codes = [np.zeros((objects, 0), np.int64)]
    if points is not None:
        coords.append(np.asarray(points, np.float32))
        codes.append(np.asarray(labels, np.int64))
    if boxes is not None:
        coords.append(np.asarray(boxes, np.float32).reshape(objects, 2, 2))
        codes.append(np.tile(np.array([[2, 3]], np.int64), (objects, 1)))
    pads = 0
    if family == "sam2":
        # SAM 2 pads after every prompt, and stands in one empty point (itself padded) for no prompt at all
        pads = 2 if points is None and boxes is None else 1
    elif points is not None and boxes is None:
        pads = 1
    coords.append(np.zeros((objects, pads, 2), np.float32))
    codes.append(np.full((objects, pads), -1, np.int64))
    return np.concatenate(coords, axis=1), np.concatenate(codes, axis=1)


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
