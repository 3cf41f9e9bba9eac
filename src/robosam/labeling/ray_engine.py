"""The Ray engine: Ray Data over the missing shards, an actor pool of model replicas (``robosam[ray]``).

read (``ray.data.from_items`` of shard descriptors) -> ``map_batches`` (actors, each loading its own model from
the task's ``ModelSpec``: the spec travels, not the model; ``num_gpus`` per actor where GPUs are present)
-> write (each actor writes its shards atomically, the same files and resume rule as the local engine).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from robosam.errors import InputError
from robosam.labeling.inputs import LabelInput
from robosam.labeling.shards import Shard, decode, label_shard
from robosam.labeling.tasks import LabelTask


class ShardActor:
    """A model replica in a Ray actor: labels whole shards and writes them."""

    def __init__(self, task: LabelTask, out: str):
        self.labeler = task.build()
        self.out = Path(out)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        done = []
        for index, items in zip(batch["index"], batch["items"]):
            shard = Shard(int(index), tuple(LabelInput(**item) for item in items))
            label_shard(self.labeler, shard, [decode(item) for item in shard.items], self.out)
            done.append(len(shard.items))
        return {"index": list(batch["index"]), "images": done}


def run_ray(
    task: LabelTask, shards: list[Shard], out: Path, workers: int = 2, address: str | None = None,
    on_image: Callable[[int], None] | None = None,
) -> None:  # fmt: skip
    """Label ``shards`` on a Ray cluster (``address``) or a local Ray started here with ``workers`` CPUs."""
    try:
        import ray
    except ImportError:
        raise InputError("--engine", "ray installed (pip install robosam[ray])", "ray") from None
    if workers < 1:
        raise InputError("--workers", "a positive number of model replicas", workers)
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": workers}
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kwargs)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        rows = [{"index": s.index, "items": [vars(i) for i in s.items]} for s in shards]
        dataset = ray.data.from_items(rows).map_batches(
            ShardActor,
            fn_constructor_args=(task, str(out)),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(workers, max(len(rows), 1))),
            num_gpus=1 if gpus >= workers else 0,
            num_cpus=1,
        )
        for row in dataset.iter_rows():
            if on_image is not None:
                on_image(int(row["images"]))
    finally:
        if started_here:
            ray.shutdown()
