"""Decoding segment requests, one at a time or micro-batched.

``decode_jobs`` decodes several requests on one image with one decoder call per prompt shape: their objects
are stacked (``Segmenter.decode_objects`` groups objects of equal shape into one network call) and the
low-resolution result is split back per request, whose own worker thread then upscales and encodes it.
``DecodeBatcher`` runs it on a thread that takes whatever requests queued while the previous call ran, so a
lone request waits for nothing and a burst shares decoder calls.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.prompts import parse_prompts
from robosam.results import MaskResult
from robosam.segmenter import ImageEmbedding, Segmenter
from robosam.serve.schemas import SegmentRequest


@dataclass
class DecodeJob:
    image_id: str
    embedding: ImageEmbedding
    request: SegmentRequest
    future: Future = field(default_factory=Future)

    @property
    def batchable(self) -> bool:
        return self.request.mask_input is None


def result_body(image_id: str, image_hw: tuple[int, int], result: MaskResult, logits: bool = False) -> dict:
    """The JSON body of a ``MaskResult``: COCO RLE masks, scores, xyxy boxes, timings (``SegmentResponse``)."""
    if len(result):
        body = result.to_dict()
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (record["bbox"] for record in body["masks"])]
    else:  # MaskResult.to_dict needs at least one mask
        body, boxes = {"masks": [], "timings": dict(result.timings)}, []
    if logits:
        for record, lowres in zip(body["masks"], result.logits):
            record["logits"] = lowres.tolist()
    body.update(
        image_id=image_id,
        width=int(image_hw[1]),
        height=int(image_hw[0]),
        scores=[float(s) for s in result.scores],
        boxes=boxes,
    )
    return body


def response_dict(job: DecodeJob, result: MaskResult) -> dict[str, Any]:
    return result_body(job.image_id, job.embedding.original_hw, result, job.request.return_logits)


def decode_one(segmenter: Segmenter, job: DecodeJob, upscale: bool = True) -> Any:
    """One request on its own (any prompt, mask input included): its JSON body, or with ``upscale=False``
    its low-resolution ``MaskResult`` for ``finish``."""
    request = job.request
    result = segmenter.decode(
        job.embedding,
        points=request.points,
        labels=request.labels,
        box=request.boxes,
        mask_input=None if request.mask_input is None else np.asarray(request.mask_input, dtype=np.float32),
        multimask=request.multimask,
        upscale=upscale,
    )
    return response_dict(job, result) if upscale else result


def finish(segmenter: Segmenter, job: DecodeJob, lowres: MaskResult) -> dict[str, Any]:
    """Masks at full size and the JSON body for a low-resolution result (the per-request, parallel part)."""
    return response_dict(job, segmenter.upscale(job.embedding, lowres))


def decode_jobs(segmenter: Segmenter, jobs: list[DecodeJob]) -> None:
    """Decode ``jobs`` (same embedding and multimask, no mask input) with shared decoder calls; each job's
    future gets its low-resolution ``MaskResult`` (for ``finish``), or its own ``InputError`` for bad
    prompts without failing the others."""
    if len(jobs) == 1:
        _settle(jobs[0], decode_one, segmenter, jobs[0], False)
        return
    valid: list[tuple[DecodeJob, list]] = []
    for job in jobs:
        request = job.request
        try:
            objects = parse_prompts(
                job.embedding.original_hw, points=request.points, labels=request.labels, box=request.boxes
            )
            if not objects:
                raise InputError("points/box/mask_input", "at least one point, box or mask_input", None)
        except InputError as error:
            job.future.set_exception(error)
            continue
        valid.append((job, objects))
    if not valid:
        return
    stacked = [obj for _, objects in valid for obj in objects]
    embedding, multimask = valid[0][0].embedding, valid[0][0].request.multimask
    try:
        result = segmenter.decode_objects(embedding, stacked, None, multimask, upscale=False)
    except BaseException as error:  # noqa: BLE001 - handed to every waiting request
        for job, _ in valid:
            job.future.set_exception(error)
        return
    result.timings["batch_requests"] = float(len(valid))
    offset = 0
    for job, objects in valid:
        rows = np.flatnonzero((result.object_ids >= offset) & (result.object_ids < offset + len(objects)))
        part = result[rows]
        part.object_ids = part.object_ids - offset
        offset += len(objects)
        job.future.set_result(part)


def _settle(job: DecodeJob, fn: Any, *args: Any) -> None:
    try:
        job.future.set_result(fn(*args))
    except BaseException as error:  # noqa: BLE001 - the request's caller re-raises it
        job.future.set_exception(error)


class DecodeBatcher:
    """A thread that decodes queued jobs, gathering those on one image (up to ``max_objects`` prompted
    objects) into shared decoder calls. ``submit`` returns the job's future of a low-resolution
    ``MaskResult``; upscaling and encoding (``finish``) stay with the request, on the worker threads, so
    only the network call is serialized. ``close`` stops the thread."""

    def __init__(self, segmenter: Segmenter, max_objects: int = 64):
        self.segmenter = segmenter
        self.max_objects = max_objects
        self._queue: queue.Queue[DecodeJob | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="robosam-decode-batcher", daemon=True)
        self._thread.start()

    def submit(self, job: DecodeJob) -> Future:
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            taken, stop = [first], False
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                taken.append(job)
            for group in self._groups(taken):
                decode_jobs(self.segmenter, group)
            if stop:
                return

    def _groups(self, jobs: list[DecodeJob]) -> list[list[DecodeJob]]:
        groups: dict[tuple, list[list[DecodeJob]]] = {}
        out: list[list[DecodeJob]] = []
        for job in jobs:
            if not job.batchable:
                out.append([job])
                continue
            key = (job.embedding.key, job.request.multimask)
            chunks = groups.setdefault(key, [[]])
            size = sum(_object_count(j.request) for j in chunks[-1])
            if chunks[-1] and size + _object_count(job.request) > self.max_objects:
                chunks.append([])
            chunks[-1].append(job)
        out.extend(chunk for chunks in groups.values() for chunk in chunks)
        return out


def _object_count(request: SegmentRequest) -> int:
    return max(1, len(request.boxes or []))
