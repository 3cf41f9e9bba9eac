"""``ServeConfig``: what the HTTP service loads and the limits it keeps, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robosam.errors import InputError
from robosam.models import DEFAULT_PRESET


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one server process.

    model: preset, hub id, model folder or checkpoint (see ``robosam models``); the segmenter loads at start,
        the tracker (the same source's video model) on the first ``/videos`` request.
    detector: open-vocabulary detector for ``/ground`` (preset, hub id or folder), loaded on first use.
    device / dtype: as in ``Segmenter``. api_key: when set, every route but ``/health`` and the web page
        needs it (header ``X-API-Key: KEY`` or ``Authorization: Bearer KEY``).
    max_upload_bytes: largest request body. max_pixels: largest image (width * height), checked from the
        image header before any pixel is decoded.
    cache_bytes: byte budget of the uploaded images (pixels and embedding, LRU), and of the segmenter's own
        embedding cache (which finds an image uploaded again); max_images: how many images are kept.
    max_sessions: open video sessions; idle_s: seconds after which an unused image or session is dropped.
    max_queue: model jobs admitted at once (running and waiting); beyond it requests get 503 + Retry-After.
    workers: threads running model work off the event loop.
    micro_batch: gather decoder calls that arrive together on one image into one call; ``auto`` = on
        where it pays (CUDA), off on CPUs.
    max_batch_objects: most prompted objects in one gathered decoder call.
    """

    model: str = DEFAULT_PRESET
    detector: str = "grounding-dino-tiny"
    device: str = "auto"
    dtype: str | None = None
    api_key: str | None = None
    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = 40_000_000
    cache_bytes: int = 1024 * 2**20
    max_images: int = 256
    max_sessions: int = 8
    idle_s: float = 1800.0
    max_queue: int = 64
    workers: int = 2
    micro_batch: Literal["auto", "on", "off"] = "auto"
    max_batch_objects: int = 64
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        positive = {
            "max_upload_bytes": self.max_upload_bytes,
            "max_pixels": self.max_pixels,
            "max_images": self.max_images,
            "max_sessions": self.max_sessions,
            "max_queue": self.max_queue,
            "workers": self.workers,
            "max_batch_objects": self.max_batch_objects,
            "retry_after_s": self.retry_after_s,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise InputError(name, "a positive integer", value)
        if not isinstance(self.cache_bytes, int) or self.cache_bytes < 0:
            raise InputError("cache_bytes", "a non-negative integer", self.cache_bytes)
        if not self.idle_s > 0:
            raise InputError("idle_s", "a positive number of seconds", self.idle_s)
        if self.micro_batch not in ("auto", "on", "off"):
            raise InputError("micro_batch", "'auto', 'on' or 'off'", self.micro_batch)
        if self.api_key is not None and not self.api_key:
            raise InputError("api_key", "a non-empty key (or none)", self.api_key)
