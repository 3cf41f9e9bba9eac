"""`robosam label`: auto-label a folder of images, resumable, locally or on a Ray cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robosam.cli.options import DEFAULT_MODEL, DeviceOption, ModelOption, console, err_console
from robosam.errors import InputError


def label(
    source: Annotated[
        str, typer.Argument(metavar="INPUT", help="Folder, glob, .txt list of paths or COCO images .json.")
    ],
    task: Annotated[
        str, typer.Option("--task", help="auto (every object), ground (--text) or boxes (--boxes).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (rerun with the same to resume).")],
    engine: Annotated[str, typer.Option("--engine", help="local or ray.")] = "local",
    text: Annotated[
        str | None, typer.Option("--text", help="Phrases for --task ground: 'cup. bowl'.")
    ] = None,
    detector: Annotated[
        str | None, typer.Option("--detector", help="Detector preset for --task ground.")
    ] = None,
    boxes: Annotated[
        Path | None,
        typer.Option("--boxes", help="JSON {file_name: [[x1,y1,x2,y2],...]} or COCO, for --task boxes."),
    ] = None,
    points_per_side: Annotated[
        int, typer.Option("--points-per-side", help="--task auto: grid points per side.")
    ] = 32,
    pred_iou_thresh: Annotated[
        float, typer.Option("--pred-iou-thresh", help="--task auto: IoU filter.")
    ] = 0.88,
    stability_score_thresh: Annotated[
        float, typer.Option("--stability-score-thresh", help="--task auto: stability filter.")
    ] = 0.95,
    min_mask_region_area: Annotated[
        int,
        typer.Option("--min-mask-region-area", help="--task auto: remove smaller holes and islands (px)."),
    ] = 0,
    shard_size: Annotated[
        int, typer.Option("--shard-size", help="Images per shard (the unit of resume).")
    ] = 8,
    prefetch: Annotated[
        int, typer.Option("--prefetch", help="Images decoded ahead on a thread (0: off).")
    ] = 8,
    workers: Annotated[int, typer.Option("--workers", help="Ray: model replicas (actors).")] = 2,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="Ray: join this cluster.")] = None,
    model: ModelOption = DEFAULT_MODEL,
    device: DeviceOption = "auto",
) -> None:
    """Label every image of INPUT: COCO results per shard, a merged COCO file and a manifest.

    Writes OUT/shards/*.json, OUT/labels.json (images, annotations with RLE masks, categories) and
    OUT/manifest.json (every input, done or failed with the reason), the manifest last. Killed at any point,
    the same command resumes where it stopped; unreadable images are recorded and skipped.

    Example: robosam label photos/ --task auto --points-per-side 16 --out labels/ --engine ray --workers 2
    """
    from robosam.labeling import LabelTask, read_boxes_file
    from robosam.labeling import label as run_label
    from robosam.models import ModelSpec

    auto_options = ()
    if task == "auto":
        auto_options = (
            ("points_per_side", points_per_side), ("pred_iou_thresh", pred_iou_thresh),
            ("stability_score_thresh", stability_score_thresh), ("min_mask_region_area", min_mask_region_area),
        )  # fmt: skip
    job = LabelTask(
        task=task,
        model=ModelSpec(model, device=device),
        boxes=read_boxes_file(str(boxes)) if boxes is not None else (),
        text=text,
        detector=detector,
        auto_options=auto_options,
    )
    if prefetch < 0:
        raise InputError("--prefetch", "0 (off) or a positive number of images", prefetch)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
        console=err_console, disable=not err_console.is_terminal,
    ) as progress:  # fmt: skip
        bar = progress.add_task("labeling", total=None, rate="")

        def start(total: int, todo: int) -> None:
            progress.update(bar, total=total, completed=total - todo)

        def advance(count: int) -> None:
            progress.advance(bar, count)
            speed = progress.tasks[0].speed
            progress.update(bar, rate=f"{speed:.2f} images/s" if speed else "")

        summary = run_label(
            source, job, out, engine=engine, shard_size=shard_size, prefetch=prefetch, workers=workers,
            ray_address=ray_address, on_start=start, on_image=advance,
        )  # fmt: skip
    for entry in summary["images"]:
        if entry["status"] == "failed":
            console.print(f"failed: {entry['path']}: {entry['reason']}")
    console.print(
        f"{summary['done']} of {summary['inputs']} images labelled ({summary['failed']} failed), "
        f"{summary['annotations']} annotations; wrote labels.json and manifest.json to {out}"
    )
