"""The local engine: one model, images decoded ahead on a thread while the model works."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from robosam.labeling.shards import Shard, decode, label_shard
from robosam.labeling.tasks import LabelTask


class _Failed:
    """An exception the decoding thread met, carried to the consumer (never left waiting on the queue)."""

    def __init__(self, error: BaseException):
        self.error = error


def prefetched(shards: list[Shard], depth: int) -> Iterator[tuple[Shard, list[np.ndarray | str]]]:
    """Each shard with its decoded images; with ``depth`` > 0 a thread decodes up to ``depth`` images ahead
    (bounded memory), with 0 decoding happens inline."""
    if depth <= 0:
        for shard in shards:
            yield shard, [decode(item) for item in shard.items]
        return
    decoded: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                decoded.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for shard in shards:
                for item in shard.items:
                    if not put(decode(item)):
                        return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(_Failed(error))

    def take() -> np.ndarray | str:
        value = decoded.get()
        if isinstance(value, _Failed):
            raise value.error
        return value

    thread = threading.Thread(target=work, daemon=True, name="robosam-prefetch")
    thread.start()
    try:
        for shard in shards:
            yield shard, [take() for _ in shard.items]
    finally:
        stop.set()
        thread.join(timeout=5)


def run_local(
    task: LabelTask, shards: list[Shard], out: Path, prefetch: int = 8,
    on_image: Callable[[int], None] | None = None,
) -> None:  # fmt: skip
    """Label ``shards`` with one model replica; ``on_image`` gets the number of images finished per shard.

    With prefetch on a CPU model, the model runs on one core fewer than torch would take, leaving that core
    to the decoding thread: both stages then run at once instead of preempting each other.
    """
    import torch

    from robosam.models.loading import resolve_device
    from robosam.runtime import torch_threads

    labeler = task.build()
    threads = torch.get_num_threads()
    if prefetch > 0 and resolve_device(task.model.device).type == "cpu" and threads > 1:
        threads -= 1
    with torch_threads(threads):
        for shard, images in prefetched(shards, prefetch):
            label_shard(labeler, shard, images, out)
            if on_image is not None:
                on_image(len(shard.items))
