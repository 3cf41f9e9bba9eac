"""The resumable unit of labeling: a shard of consecutive inputs, written atomically when complete.

``OUT/plan.json`` fixes the inputs, shard size and task; ``OUT/shards/shard-NNNNN.json`` holds every image of
one shard with its status (done with annotations, or failed with the reason). A shard file exists only when
complete, so a run killed at any point (SIGKILL included) loses at most the shards in flight, and a rerun
labels exactly the shards that are missing: no image lost, none labelled twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.io import load_image, write_json_atomic
from robosam.labeling.inputs import LabelInput
from robosam.labeling.tasks import Labeler, LabelTask


@dataclass(frozen=True)
class Shard:
    index: int
    items: tuple[LabelInput, ...]


def plan_shards(inputs: list[LabelInput], shard_size: int) -> list[Shard]:
    if shard_size < 1:
        raise InputError("--shard-size", "a positive number of images per shard", shard_size)
    return [
        Shard(i // shard_size, tuple(inputs[i : i + shard_size])) for i in range(0, len(inputs), shard_size)
    ]


def shard_path(out: Path, index: int) -> Path:
    return out / "shards" / f"shard-{index:05d}.json"


def prepare_out(out: Path, inputs: list[LabelInput], shard_size: int, task: LabelTask) -> None:
    """Create ``out`` with its plan, or check that an existing plan is this job's (then it resumes)."""
    digest = hashlib.sha256(json.dumps([[i.image_id, i.path] for i in inputs]).encode()).hexdigest()
    plan = {"inputs": len(inputs), "inputs_sha256": digest, "shard_size": shard_size, "task": task.identity()}
    plan_file = out / "plan.json"
    if plan_file.is_file():
        existing = json.loads(plan_file.read_text(encoding="utf-8"))
        if existing != json.loads(json.dumps(plan)):
            raise InputError("--out", "a new folder, or the folder of this same job to resume", str(out),
                             detail="it holds a job with other inputs, shard size or task")  # fmt: skip
        return
    (out / "shards").mkdir(parents=True, exist_ok=True)
    write_json_atomic(plan, plan_file)


def done_shards(out: Path) -> set[int]:
    """Indexes of the shards already written."""
    return {int(p.stem.split("-")[1]) for p in (out / "shards").glob("shard-*.json")}


def decode(item: LabelInput) -> np.ndarray | str:
    """The image as RGB uint8, or the reason it cannot be read."""
    try:
        return load_image(item.path, argument=item.file_name)
    except ValueError as error:
        return str(error)


def label_shard(labeler: Labeler, shard: Shard, images: list[np.ndarray | str], out: Path) -> dict[str, Any]:
    """Label the decoded ``images`` of ``shard`` and write its file atomically; per-image failures are
    recorded, never raised. Returns the shard record."""
    records = []
    for item, image in zip(shard.items, images):
        record: dict[str, Any] = {"image_id": item.image_id, "path": item.path, "file_name": item.file_name}
        if isinstance(image, str):
            record.update(status="failed", reason=image)
        else:
            try:
                record.update(status="done", height=int(image.shape[0]), width=int(image.shape[1]),
                              annotations=labeler.label(image, item))  # fmt: skip
            except ValueError as error:  # a bad input for this image (InputError): recorded, the job goes on
                record.update(status="failed", reason=str(error))
        records.append(record)
    data = {"shard": shard.index, "categories": labeler.categories, "images": records}
    write_json_atomic(data, shard_path(out, shard.index))
    return data
