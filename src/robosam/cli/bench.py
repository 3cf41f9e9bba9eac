"""`robosam bench`: per-stage latency, tracking FPS and peak memory of one or more models, as a table + JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robosam.cli.options import DeviceOption, console, spinner
from robosam.errors import InputError


def bench(
    model: Annotated[
        list[str],
        typer.Option(
            "--model", "-m", help="Preset, hub id, folder, checkpoint or exported ONNX folder; repeatable."
        ),
    ],
    device: DeviceOption = "auto",
    backend: Annotated[str, typer.Option("--backend", help="torch or onnx (ONNX Runtime).")] = "torch",
    dtype: Annotated[str, typer.Option("--dtype", help="float32, bfloat16 or float16.")] = "float32",
    compile: Annotated[
        bool, typer.Option("--compile", help="torch.compile the encoder and decoder.")
    ] = False,
    image: Annotated[
        Path | None, typer.Option("--image", help="Image to time on (default: a synthetic 640x480 scene).")
    ] = None,
    images: Annotated[int, typer.Option("--images", help="Encoder runs timed (after one warm-up).")] = 3,
    prompts: Annotated[int, typer.Option("--prompts", help="Single-click prompts timed.")] = 20,
    frames: Annotated[
        int, typer.Option("--frames", help="Live-tracking frames timed (video models; 0: skip).")
    ] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for bench.json.")] = None,
) -> None:
    """Time models stage by stage: image encoder, prompt decode, mask post-processing (medians, ms), live
    tracking frames per second, and peak memory. Several --model run one after another, each in a fresh
    process so peak memory is its own; the table compares them (for example SAM vs lighter models).

    Example: robosam bench --model sam-vit-base --model slimsam-77 --device cpu --out bench/
    """
    from robosam.bench import BACKENDS, bench_model
    from robosam.export.accelerate import check_compile, check_dtype
    from robosam.io import load_image, write_json_atomic

    if backend not in BACKENDS:
        raise InputError("--backend", f"one of {', '.join(BACKENDS)}", backend)
    check_dtype(dtype, device, backend)
    if compile:
        check_compile(backend)
    rgb = load_image(image, argument="--image") if image is not None else None
    options = dict(device=device, backend=backend, dtype=dtype, compile=compile, image=rgb, images=images,
                   prompts=prompts, frames=frames)  # fmt: skip
    results = []
    for name in model:
        with spinner(f"benchmarking {name}"):
            results.append(_run_isolated(name, options) if len(model) > 1 else bench_model(name, **options))
    _print_table(results)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic({"results": results}, out / "bench.json")
        console.print(f"wrote bench.json to {out}")


def _run_isolated(name: str, options: dict) -> dict:
    """``bench_model`` in a fresh process (spawned), so each model's peak memory is its own."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from robosam.bench import bench_model

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(bench_model, name, **options).result()


def _print_table(results: list[dict]) -> None:
    from rich.table import Table

    table = Table(title="robosam bench (medians)")
    for column in (
        "model",
        "backend",
        "dtype",
        "encoder ms",
        "decode ms",
        "post ms",
        "track FPS",
        "peak MiB",
    ):
        text = column in ("model", "backend", "dtype")
        table.add_column(column, justify="left" if text else "right", overflow="fold" if text else "ellipsis")
    for r in results:
        fps = "-" if r["tracking_fps"] is None else f"{r['tracking_fps']:.1f}"
        table.add_row(
            r["model"],
            r["backend"] + (" +compile" if r["compile"] else ""),
            r["dtype"],
            f"{r['encoder_ms']:.1f}",
            f"{r['decode_ms']:.2f}",
            f"{r['postprocess_ms']:.2f}",
            fps,
            f"{r['peak_memory_mib']:.0f}",
        )
    console.print(table)
    for r in results:
        if r.get("tracking_note"):
            console.print(f"{r['model']}: {r['tracking_note']}")
