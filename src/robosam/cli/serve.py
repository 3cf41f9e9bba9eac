"""`robosam serve`: the HTTP API and the click-to-segment web page."""

from __future__ import annotations

from typing import Annotated

import typer

from robosam.cli.options import DeviceOption, ModelOption, console
from robosam.errors import InputError

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def serve(
    model: ModelOption = "sam2.1-hiera-tiny",
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0 picks a free one).")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="ROBOSAM_API_KEY", help="Require this key (X-API-Key header)."),
    ] = None,
    detector: Annotated[
        str,
        typer.Option(
            "--detector", help="Detector for /ground (preset, hub id or folder), loaded on first use."
        ),
    ] = "grounding-dino-tiny",
    device: DeviceOption = "auto",
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest request body.")] = 20.0,
    max_pixels: Annotated[
        int, typer.Option("--max-pixels", help="Largest image, width x height.")
    ] = 40_000_000,
    cache_mb: Annotated[int, typer.Option("--cache-mb", help="Embedding cache budget.")] = 1024,
    max_images: Annotated[int, typer.Option("--max-images", help="Uploaded images kept.")] = 256,
    max_sessions: Annotated[int, typer.Option("--max-sessions", help="Open video sessions.")] = 8,
    idle_s: Annotated[
        float, typer.Option("--idle-s", help="Drop images/sessions unused this long.")
    ] = 1800.0,
    max_queue: Annotated[int, typer.Option("--max-queue", help="Model jobs admitted before 503.")] = 64,
    workers: Annotated[int, typer.Option("--workers", help="Threads running the model.")] = 2,
    torch_threads: Annotated[
        int,
        typer.Option("--torch-threads", help="torch threads per worker on CPU (0: cores / workers)."),
    ] = 0,
    micro_batch: Annotated[
        str, typer.Option("--micro-batch", help="Gather decoder calls: auto (on for CUDA), on, off.")
    ] = "auto",
) -> None:
    """Serve segmentation over HTTP (OpenAPI at /docs) with the click-to-segment page at /.

    One model and one embedding cache serve every client. Needs `pip install robosam[serve]`.

    Example: robosam serve --model sam2.1-hiera-tiny --port 8000 --api-key SECRET
    """
    if not 0 <= port <= 65535:
        raise InputError("--port", "a TCP port in 0..65535", port)
    if torch_threads < 0:
        raise InputError("--torch-threads", "0 (cores / workers) or a positive count", torch_threads)
    if max_upload_mb <= 0:
        raise InputError("--max-upload-mb", "a positive size", max_upload_mb)
    try:
        import uvicorn

        from robosam.serve import ServeConfig, create_app
    except ImportError as error:
        raise InputError(
            "robosam serve", "the serve extra (pip install robosam[serve])", str(error)
        ) from None
    from robosam.cli.options import spinner
    from robosam.runtime import share_cores

    config = ServeConfig(
        model=model,
        detector=detector,
        device=device,
        api_key=api_key,
        max_upload_bytes=int(max_upload_mb * 2**20),
        max_pixels=max_pixels,
        cache_bytes=cache_mb * 2**20,
        max_images=max_images,
        max_sessions=max_sessions,
        idle_s=idle_s,
        max_queue=max_queue,
        workers=workers,
        micro_batch=micro_batch,
    )
    threads = share_cores(workers, torch_threads or None)
    with spinner(f"loading {model}"):
        app = create_app(config)
    engine = app.state.engine
    console.print(
        f"serving {engine.source} ({engine.segmenter.adapter.name}) on {engine.device}: "
        f"http://{host}:{port}/ (API docs at /docs), micro-batching {'on' if engine.batcher else 'off'}, "
        f"{workers} workers x {threads} torch threads"
    )
    if host not in LOOPBACK and api_key is None:
        console.print(f"warning: listening on {host} without --api-key: anyone who can reach it may use it")
    uvicorn.run(app, host=host, port=port, log_level="warning")
