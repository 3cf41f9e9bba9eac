"""``robosam bench``: per-stage latency of a model (image encoder, prompt decode, mask post-processing),
tracking frames per second and peak memory, for the torch or the ONNX Runtime backend.

Medians over repeated runs, the first run of each stage left out as warm-up (and compilation with
``compile``). Run it for several models on the same machine to compare them (SAM vs lighter models).
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.export.accelerate import check_compile, check_dtype, compile_model

BACKENDS = ("torch", "onnx")
COLUMNS = ("encoder_ms", "decode_ms", "postprocess_ms", "tracking_fps", "peak_memory_mib")


def bench_model(
    model: str,
    *,
    device: str = "auto",
    backend: str = "torch",
    dtype: str | None = None,
    compile: bool = False,
    image: np.ndarray | None = None,
    images: int = 3,
    prompts: int = 20,
    frames: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time one model; returns a JSON-safe dict (milliseconds, frames per second, MiB).

    model: preset, hub id, folder, checkpoint, or (onnx backend) an exported folder; with the onnx backend any
        other model is exported to a temporary folder first. image: RGB uint8 (H, W, 3); default a synthetic
        480 x 640 scene. images: encoder runs timed (each on a slightly different image, so no cache hit).
    prompts: single-click prompts timed. frames: live-tracking frames timed (video families; with the onnx
        backend, SAM 2 video models, through the exported video step; 0 skips tracking).
    Keys: model, backend, device, ran_on (torch device or ONNX Runtime providers), dtype, compile, family, encoder_ms, decode_ms, postprocess_ms (medians),
    tracking_fps (or None, with ``tracking_note``), peak_memory_mib and memory (what was measured).
    """
    if backend not in BACKENDS:
        raise InputError("--backend", f"one of {', '.join(BACKENDS)}", backend)
    for name, value, least in (("--images", images, 1), ("--prompts", prompts, 1), ("--frames", frames, 0)):
        if value < least:
            raise InputError(name, f"an integer >= {least}", value)
    dtype = check_dtype(dtype, device, backend)
    if compile:
        check_compile(backend)
    say = progress or (lambda text: None)
    rgb = synthetic_image() if image is None else image
    _reset_peak_memory(device)
    with tempfile.TemporaryDirectory(prefix="robosam-bench-") as scratch:
        say(f"loading {model} ({backend})")
        segmenter, target = _load_segmenter(model, device, backend, dtype, compile, scratch)
        say("timing the encoder")
        encoder_s = []
        for index in range(images + 1):
            variant = np.clip(rgb.astype(np.int16) + index, 0, 255).astype(np.uint8)
            encoder_s.append(segmenter.embed(variant).encode_s)
        embedding = segmenter.embed(rgb)
        say("timing prompts")
        rng = np.random.default_rng(0)
        height, width = rgb.shape[:2]
        decode_s, post_s = [], []
        for _ in range(prompts + 1):
            point = [(float(rng.uniform(0, width - 1)), float(rng.uniform(0, height - 1)))]
            low = segmenter.decode(embedding, points=point, labels=[1], multimask=True, upscale=False)
            full = segmenter.upscale(embedding, low[low.scores.argmax() : low.scores.argmax() + 1])
            decode_s.append(low.timings["decoder_s"])
            post_s.append(full.timings["postprocess_s"])
        family = getattr(segmenter.adapter, "family", segmenter.adapter.name)
        providers = getattr(segmenter.model, "providers", None)  # ONNX Runtime execution providers
        ran_on = ", ".join(providers) if providers else str(segmenter.adapter.device)
        del segmenter
        tracking = None
        if frames:
            say("timing live tracking")
            tracking = _tracking_fps(target, device, backend, dtype, rgb, frames)
    result: dict[str, Any] = {
        "model": model,
        "backend": backend,
        "device": device,
        "ran_on": ran_on,
        "dtype": dtype,
        "compile": compile,
        "family": family,
        "image_hw": [int(height), int(width)],
        "encoder_ms": _median_ms(encoder_s),
        "decode_ms": _median_ms(decode_s),
        "postprocess_ms": _median_ms(post_s),
        "tracking_fps": None,
    }
    if tracking is not None:
        result["tracking_fps"], note = tracking
        if note:
            result["tracking_note"] = note
    result["peak_memory_mib"], result["memory"] = _peak_memory(device)
    return result


def synthetic_image(height: int = 480, width: int = 640, seed: int = 0) -> np.ndarray:
    """A deterministic RGB test scene (gradient background, a few flat rectangles), uint8 (H, W, 3)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.linspace(30, 200, width, dtype=np.uint8)[None, :]
    image[..., 2] = np.linspace(200, 30, height, dtype=np.uint8)[:, None]
    for _ in range(5):
        y, x = rng.integers(0, height - 60), rng.integers(0, width - 80)
        image[y : y + rng.integers(30, 120), x : x + rng.integers(40, 160)] = rng.integers(0, 255, 3)
    return image


def _load_segmenter(model: str, device: str, backend: str, dtype: str, compile: bool, scratch: str):
    from robosam.segmenter import Segmenter

    """(segmenter, what tracking loads: ``model``, or the exported folder for the onnx backend)."""
    if backend == "torch":
        segmenter = Segmenter(model, device=device, dtype=dtype)
        if compile:
            compile_model(segmenter.model)
        return segmenter, model
    from robosam.onnx_runtime import is_export_folder

    folder = model
    if not is_export_folder(model):
        from robosam.export.onnx_export import export_onnx

        folder = os.path.join(scratch, "onnx")
        dtypes = ("float32", "float16") if dtype == "float16" else ("float32",)
        export_onnx(model, folder, dtypes=dtypes, check=False)  # with the video step for a SAM 2 video model
    return Segmenter(folder, device=device, dtype=dtype), folder


def _tracking_fps(model: str, device: str, backend: str, dtype: str, rgb: np.ndarray, frames: int):
    """(frames per second of ``LiveTracker.step`` on ``frames`` shifted copies of ``rgb``, note or None).

    model: what ``VideoTracker`` loads; for the onnx backend an exported folder with the video step."""
    from robosam.video import VideoTracker

    try:
        tracker = VideoTracker(model, device=device, dtype=dtype)
    except InputError as error:
        return None, f"no video model: {error}"
    live = tracker.stream()
    height, width = rgb.shape[:2]
    live.add(obj_id=1, points=[(width / 2, height / 2)], labels=[1])
    times = []
    for index in range(frames + 1):
        frame = np.roll(rgb, shift=2 * index, axis=1)
        start = time.perf_counter()
        live.step(frame)
        times.append(time.perf_counter() - start)
    return 1.0 / statistics.median(times[1:]), None


def _median_ms(seconds: list[float]) -> float:
    return 1e3 * statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def _reset_peak_memory(device: str) -> None:
    if str(device).startswith("cuda") or device == "auto":
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
        except ImportError:
            pass


def _peak_memory(device: str) -> tuple[float, str]:
    """(MiB, what): CUDA peak allocated by torch on a GPU run, else this process's peak resident memory."""
    if str(device).startswith("cuda") or device == "auto":
        try:
            import torch

            if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
                return torch.cuda.max_memory_allocated() / 2**20, "cuda peak allocated by torch"
        except ImportError:
            pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return peak * scale / 2**20, "process peak resident memory"
