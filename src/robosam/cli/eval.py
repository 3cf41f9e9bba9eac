"""`robosam eval`: score predictions (DAVIS J&F) or run a model under a prompt protocol."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from robosam.cli.options import DeviceOption, console, progress_bar
from robosam.data import DavisDataset, load_dataset
from robosam.errors import InputError
from robosam.evaluation.davis import evaluate_folders, sequence_folders
from robosam.evaluation.protocols import VideoProtocol, make_protocol
from robosam.evaluation.report import prepare_out_dir, write_report
from robosam.evaluation.runner import evaluate_images, evaluate_videos


def eval_command(
    pred: Annotated[
        Path | None,
        typer.Option("--pred", help="Predicted DAVIS-layout folder (one folder of PNGs per sequence)."),
    ] = None,
    gt: Annotated[
        Path | None,
        typer.Option("--gt", help="Ground-truth DAVIS-layout folder (palette PNGs of object ids)."),
    ] = None,
    sequences: Annotated[
        str | None, typer.Option("--sequences", help="Comma-separated sequences (default all).")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="COCO .json, DAVIS root, or folder with images/ and masks/.")
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(
            "--protocol", help="center, random-point, point-noise, box, clicks, video-mask or video-click."
        ),
    ] = "center",
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Preset, hub id, model folder or .pt/.pth (with --data)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("eval-results"),
    device: DeviceOption = "auto",
    max_clicks: Annotated[int, typer.Option("--max-clicks", help="Click cap for the clicks protocol.")] = 20,
    noise: Annotated[float, typer.Option("--noise", help="Point noise std in pixels (point-noise).")] = 5.0,
    jitter: Annotated[float, typer.Option("--jitter", help="Box jitter in pixels (box).")] = 0.0,
    select: Annotated[
        str, typer.Option("--select", help="score (model's pick) or oracle (best true IoU).")
    ] = "score",
    limit: Annotated[
        int | None, typer.Option("--limit", help="Evaluate only the first N images/sequences.")
    ] = None,
    stride: Annotated[int, typer.Option("--stride", help="Every Nth annotated DAVIS frame as an image.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random protocols.")] = 0,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots.")] = True,
) -> None:
    """Evaluate: score existing predictions (DAVIS J&F, no model) or run a model under a prompt protocol.

    Writes OUT/metrics.json (every figure), OUT/report.md and PNG plots (mIoU vs clicks, per-sequence bars,
    latency per stage).

    Example: robosam eval --pred results/osvos --gt DAVIS/Annotations/480p --sequences blackswan,dog --out ev/

    Example: robosam eval --data ../shared/data/still_images_davis2016 --protocol clicks --model sam-vit-base --out ev/
    """
    names = _parse_sequences(sequences)
    progress = progress_bar()
    if pred is not None or gt is not None:
        if pred is None or gt is None or data is not None:
            raise InputError("--pred/--gt", "both --pred and --gt (and no --data)", f"pred={pred}, gt={gt}")
        with progress:
            metrics, written = _score_predictions(pred, gt, names, out, progress, plots=plots)
        g = metrics["global"]
        console.print(
            f"J&F-Mean {g['J&F-Mean']:.4f}  J-Mean {g['J-Mean']:.4f}  F-Mean {g['F-Mean']:.4f}  "
            f"over {len(metrics['per_object'])} object(s); wrote {written['metrics']}"
        )
        return
    if data is None or model is None:
        raise InputError("--data/--model", "--pred DIR --gt DIR, or --data PATH --model MODEL", None)
    with progress:
        metrics, written = _run_protocol(
            data, protocol, model, out, progress, device=device, sequences=names, max_clicks=max_clicks,
            noise_px=noise, jitter_px=jitter, select=select, limit=limit, stride=stride, seed=seed, plots=plots,
        )  # fmt: skip
    if "global" in metrics:
        g = metrics["global"]
        console.print(f"{protocol}: J&F-Mean {g['J&F-Mean']:.4f} over {len(metrics['per_object'])} object(s)")
    else:
        s = metrics["summary"]
        line = f"{protocol}: {s['objects']} object(s) in {s['images']} image(s)"
        for key in ("mIoU", "NoC@85", "NoC@90"):
            if key in s:
                line += f"  {key} {s[key]:.3f}"
        console.print(line)
    console.print(f"wrote {', '.join(p.name for p in written.values())} to {out}")


def _parse_sequences(text: str | None) -> list[str] | None:
    """``"a,b"`` to ``["a", "b"]``; None or blank to None (all sequences)."""
    if text is None or not text.strip():
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise InputError("--sequences", "comma-separated sequence names", text)
    return names


def _score_predictions(
    pred: Path, gt: Path, sequences: Sequence[str] | None, out: Path, progress: Progress, plots: bool = True
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Score DAVIS-layout predicted folders against ground truth; writes metrics.json, report.md, a plot."""
    sequence_folders(pred, "pred")
    names = list(sequences) if sequences else list(sequence_folders(gt, "gt"))
    prepare_out_dir(out)
    task = progress.add_task("scoring sequences", total=len(names))
    scores = evaluate_folders(pred, gt, names, on_sequence=lambda _: progress.advance(task))
    metrics = {
        "title": "robosam eval: DAVIS J&F of existing predictions",
        "settings": {"pred": str(pred), "gt": str(gt), "sequences": names, "protocol": "semi-supervised"},
        **scores.to_dict(),
    }
    return metrics, write_report(metrics, out, plots=plots)


def _run_protocol(
    data: Path,
    protocol_name: str,
    model: str,
    out: Path,
    progress: Progress,
    *,
    device: str = "auto",
    sequences: Sequence[str] | None = None,
    max_clicks: int = 20,
    noise_px: float = 5.0,
    jitter_px: float = 0.0,
    select: str = "score",
    limit: int | None = None,
    stride: int = 1,
    seed: int = 0,
    plots: bool = True,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Evaluate ``model`` on ``data`` under a protocol; writes metrics.json, report.md and plots into ``out``."""
    if select not in ("score", "oracle"):
        raise InputError("--select", "score or oracle", select)
    if limit is not None and limit < 1:
        raise InputError("--limit", "a positive number of images or sequences", limit)
    protocol = make_protocol(
        protocol_name, noise_px=noise_px, jitter_px=jitter_px, max_clicks=max_clicks, select=select
    )  # type: ignore[arg-type]
    dataset = load_dataset(data, sequences=sequences, stride=stride)
    prepare_out_dir(out)
    title = f"robosam eval: {protocol.name} on {data} with {model}"
    if isinstance(protocol, VideoProtocol):
        if not isinstance(dataset, DavisDataset):
            raise InputError(
                "--data", f"a DAVIS root (JPEGImages/, Annotations/) for {protocol.name}", str(data)
            )
        tracker = _video_tracker(model, device, protocol.name)
        videos = dataset.videos()[:limit]
        task = progress.add_task(f"{protocol.name}", total=len(videos))
        scores = evaluate_videos(tracker, videos, protocol, on_video=lambda _: progress.advance(task))
        metrics: dict[str, Any] = {
            "title": title,
            "settings": {"data": str(data), "model": model, "protocol": protocol.name},
            **scores.to_dict(),
        }
        return metrics, write_report(metrics, out, plots=plots)
    from robosam.segmenter import Segmenter

    count = len(dataset) if limit is None else min(limit, len(dataset))
    load_task = progress.add_task(f"loading {model}", total=None)
    predictor = Segmenter(model, device=device)
    progress.remove_task(load_task)
    task = progress.add_task(f"{protocol.name} on {count} image(s)", total=count)
    result = evaluate_images(
        predictor,
        (dataset[i] for i in range(count)),
        protocol,
        seed=seed,
        on_sample=lambda _: progress.advance(task),
    )
    metrics = {"title": title, **result.to_dict()}
    metrics["settings"] = {"data": str(data), "model": model, "device": device, **metrics["settings"]}
    return metrics, write_report(metrics, out, plots=plots)


def _video_tracker(model: str, device: str, protocol: str) -> Any:
    try:
        from robosam.video import VideoTracker  # type: ignore[import-not-found]
    except ImportError:
        raise InputError(
            "--protocol",
            "an image protocol (center, random-point, point-noise, box, clicks)",
            protocol,
            detail="the video tracker is not in this installation yet",
        ) from None
    return VideoTracker(model, device=device)
