"""The work behind ``robosam eval``: validate the options, run the scorer or a protocol, write the report.

Kept out of ``cli.py`` so the command line stays a thin parser; both functions return the metrics dict
and the written paths, and report progress through a ``rich.progress.Progress`` the caller owns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import Progress

from robosam.errors import InputError
from robosam.evaluation.datasets import DavisDataset, load_dataset
from robosam.evaluation.davis import evaluate_folders, sequence_folders
from robosam.evaluation.protocols import VideoProtocol, make_protocol
from robosam.evaluation.report import prepare_out_dir, write_report
from robosam.evaluation.runner import evaluate_images, evaluate_videos


def parse_sequences(text: str | None) -> list[str] | None:
    """``"a,b"`` to ``["a", "b"]``; None or blank to None (all sequences)."""
    if text is None or not text.strip():
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise InputError("--sequences", "comma-separated sequence names", text)
    return names


def score_predictions(
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


def run_protocol(
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
    from robosam.predictor import Segmenter

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
