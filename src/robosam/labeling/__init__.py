"""Auto-labeling at scale: ``label(...)`` over a folder, glob, path list or COCO images JSON, resumable, on
one machine or a Ray cluster. Outputs: ``OUT/shards/*.json``, ``OUT/labels.json`` (COCO with RLE masks) and
``OUT/manifest.json`` (every input with its status, written last)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from robosam.errors import InputError
from robosam.labeling.inputs import LabelInput, resolve_inputs
from robosam.labeling.merge import merge_shards
from robosam.labeling.shards import done_shards, plan_shards, prepare_out
from robosam.labeling.tasks import LabelTask, read_boxes_file

ENGINES = ("local", "ray")


def label(
    source: str,
    task: LabelTask,
    out: str | Path,
    engine: str = "local",
    shard_size: int = 8,
    prefetch: int = 8,
    workers: int = 2,
    ray_address: str | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_image: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Label every input of ``source`` with ``task`` into ``out``; a rerun with the same arguments labels only
    what is missing. ``on_start(total_images, images_to_do)`` and ``on_image(count)`` feed a progress bar.
    Returns the manifest summary (inputs, done, failed, annotations, per-image status)."""
    if engine not in ENGINES:
        raise InputError("--engine", f"one of {', '.join(ENGINES)}", engine)
    inputs = resolve_inputs(source)
    out = Path(out)
    shards = plan_shards(inputs, shard_size)
    prepare_out(out, inputs, shard_size, task)
    todo = [s for s in shards if s.index not in done_shards(out)]
    if on_start is not None:
        on_start(len(inputs), sum(len(s.items) for s in todo))
    if todo:
        if engine == "local":
            from robosam.labeling.local import run_local

            run_local(task, todo, out, prefetch=prefetch, on_image=on_image)
        else:
            from robosam.labeling.ray_engine import run_ray

            run_ray(task, todo, out, workers=workers, address=ray_address, on_image=on_image)
    return merge_shards(out, len(shards))


__all__ = ["ENGINES", "LabelInput", "LabelTask", "label", "read_boxes_file", "resolve_inputs"]
