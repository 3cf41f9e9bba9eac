"""An LRU cache of image embeddings bounded in bytes, keyed by image content."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np


def image_key(image: np.ndarray) -> str:
    """Content hash of an RGB uint8 image (H, W, 3): equal pixels give equal keys."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


@dataclass
class CachedImage:
    """Encoder output for one image: family-specific ``features`` and the original size (H, W)."""

    key: str
    features: Any
    original_hw: tuple[int, int]
    nbytes: int


class EmbeddingCache:
    """Least-recently-used store of ``CachedImage`` whose total ``nbytes`` stays under ``max_bytes``.

    An entry larger than the whole budget is not stored (the caller still gets to use it).
    ``max_bytes=0`` disables caching.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[str, CachedImage] = OrderedDict()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> CachedImage | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, entry: CachedImage) -> None:
        if entry.key in self._entries:
            self.nbytes -= self._entries.pop(entry.key).nbytes
        if entry.nbytes > self.max_bytes:
            return
        self._entries[entry.key] = entry
        self.nbytes += entry.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0
