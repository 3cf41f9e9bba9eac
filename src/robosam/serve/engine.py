"""``Engine``: the one model, its embedding cache, the image and session tables, and the threads that run
model work off the event loop, shared by every request of one server."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import HTTPException

from robosam.cache import image_key
from robosam.errors import InputError
from robosam.segmenter import ImageEmbedding, Segmenter
from robosam.serve.batching import DecodeBatcher, DecodeJob, decode_one, finish, result_body
from robosam.serve.config import ServeConfig
from robosam.serve.limits import Admission, decode_image
from robosam.serve.schemas import AutoRequest, GroundRequest, SegmentRequest
from robosam.serve.store import ExpiringStore


@dataclass(frozen=True)
class StoredImage:
    """An uploaded image: its RGB pixels (H, W, 3) uint8 and its embedding."""

    rgb: np.ndarray
    embedding: ImageEmbedding

    @property
    def nbytes(self) -> int:
        return int(self.rgb.nbytes) + int(self.embedding.nbytes)


class Engine:
    """What every request shares. ``segmenter``: an already built ``Segmenter`` (tests, benchmarks), else one
    is loaded from ``config.model``."""

    def __init__(self, config: ServeConfig, segmenter: Segmenter | None = None):
        self.config = config
        self.segmenter = segmenter or Segmenter(
            config.model, device=config.device, dtype=config.dtype, cache_bytes=config.cache_bytes
        )
        self.images: ExpiringStore[StoredImage] = ExpiringStore(
            config.max_images, config.idle_s, max_bytes=config.cache_bytes, size=lambda s: s.nbytes
        )
        self.executor = ThreadPoolExecutor(config.workers, thread_name_prefix="robosam-serve")
        self.admission = Admission(config.max_queue, config.retry_after_s)
        device = self.segmenter.adapter.device
        self.device = str(device)
        batching = config.micro_batch == "on" or (config.micro_batch == "auto" and device.type == "cuda")
        self.batcher = DecodeBatcher(self.segmenter, config.max_batch_objects) if batching else None
        self._text: Any = None
        self._text_lock = threading.Lock()
        from robosam.serve.sessions import VideoSessions

        self.sessions = VideoSessions(self, config.max_sessions, config.idle_s)

    @property
    def source(self) -> str:
        return str(self.segmenter.loaded.source)

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
        self.sessions.clear()
        self.executor.shutdown(wait=True, cancel_futures=True)

    async def run(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` on a worker thread, admitted through the bounded queue (503 when full)."""
        with self.admission:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # images -------------------------------------------------------------------------------------
    def add_image(self, data: bytes) -> dict[str, Any]:
        """Decode, embed once (or find in the cache) and store; the id is the content hash."""
        rgb = decode_image(data, self.config.max_pixels)
        key = image_key(rgb)
        stored = self.images.get(key)
        encode_s = 0.0
        if stored is None:
            start = time.perf_counter()
            embedding = self.segmenter.embed(rgb)
            encode_s = time.perf_counter() - start
            stored = StoredImage(rgb, embedding)
            if not self.images.put(key, stored):
                raise InputError(
                    "file", f"an image whose embedding fits the cache ({self.config.cache_bytes} bytes)", None
                )
        return {"id": key, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "encode_s": encode_s}

    def image(self, image_id: str) -> StoredImage:
        stored = self.images.get(image_id)
        if stored is None:
            raise HTTPException(
                404,
                f"image_id: expected the id of an uploaded image (POST /images), got {image_id[:80]!r} "
                "(unknown, or dropped after the idle time or by the cache limit)",
            )
        return stored

    async def segment(self, image_id: str, request: SegmentRequest) -> dict[str, Any]:
        stored = self.image(image_id)
        job = DecodeJob(image_id, stored.embedding, request)
        if self.batcher is None:
            return await self.run(decode_one, self.segmenter, job)
        with self.admission:
            lowres = await asyncio.wrap_future(self.batcher.submit(job))
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, finish, self.segmenter, job, lowres)

    async def auto(self, image_id: str, request: AutoRequest) -> dict[str, Any]:
        stored = self.image(image_id)
        try:
            from robosam.automatic import AutoMasker
        except ImportError:  # pragma: no cover - the automatic module ships with robosam
            raise HTTPException(501, "automatic masks are not available in this robosam") from None
        masker = AutoMasker(self.segmenter, **request.model_dump())

        def generate() -> dict[str, Any]:
            self.segmenter.cache.put(stored.embedding)  # the masker finds the embedding instead of encoding
            return result_body(image_id, stored.rgb.shape[:2], masker.generate(stored.rgb))

        return await self.run(generate)

    def text_segmenter(self) -> Any:
        """The shared ``TextSegmenter`` (``config.detector`` + this segmenter), loaded on first use."""
        with self._text_lock:
            if self._text is None:
                try:
                    from robosam.grounding import TextSegmenter
                except ImportError:  # pragma: no cover - grounding ships with robosam
                    raise HTTPException(501, "text grounding is not available in this robosam") from None
                try:
                    self._text = TextSegmenter(
                        self.segmenter, detector=self.config.detector, device=self.config.device
                    )
                except (InputError, OSError) as error:  # the server's detector, not the client's fault
                    raise HTTPException(
                        501, f"text grounding is not available: detector {self.config.detector!r}: {error}"
                    ) from None
            return self._text

    async def ground(self, image_id: str, request: GroundRequest) -> dict[str, Any]:
        stored = self.image(image_id)

        def find() -> dict[str, Any]:
            texts = self.text_segmenter()
            self.segmenter.cache.put(stored.embedding)  # SAM finds the embedding instead of encoding
            result = texts.segment(
                stored.rgb,
                request.text,
                box_threshold=request.box_threshold,
                text_threshold=request.text_threshold,
                max_detections=request.max_detections,
            )
            return result_body(image_id, stored.rgb.shape[:2], result)

        return await self.run(find)
