"""An LRU cache of image embeddings bounded in bytes, keyed by image content, safe under threads.

Several threads asking for the same new image run the encoder once: the first claims the key, the others
wait for its result (``claim`` / ``publish`` / ``fail``).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any, Protocol

import numpy as np


def image_key(image: np.ndarray) -> str:
    """Content hash of an RGB uint8 image (H, W, 3): equal pixels give equal keys."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


class Sized(Protocol):
    key: str
    nbytes: int


class EmbeddingCache:
    """Least-recently-used store of entries (with ``key`` and ``nbytes``) whose total stays under ``max_bytes``.

    An entry larger than the whole budget is not stored (the caller still gets to use it).
    ``max_bytes=0`` disables storing, though concurrent requests for one key still share one computation.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[str, Any] = OrderedDict()
        self._pending: dict[str, Future] = {}
        self._lock = threading.Lock()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> Any | None:
        with self._lock:
            return self._get_locked(key)

    def _get_locked(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, entry: Sized) -> None:
        with self._lock:
            self._put_locked(entry)

    def _put_locked(self, entry: Sized) -> None:
        if entry.key in self._entries:
            self.nbytes -= self._entries.pop(entry.key).nbytes
        if entry.nbytes > self.max_bytes:
            return
        self._entries[entry.key] = entry
        self.nbytes += entry.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def claim(self, keys: list[str]) -> tuple[dict[str, Any], dict[str, Future], list[str]]:
        """Split distinct ``keys`` into (cached entries, futures of keys another thread is computing,
        keys this caller must compute and then ``publish`` or ``fail``)."""
        found: dict[str, Any] = {}
        waiting: dict[str, Future] = {}
        mine: list[str] = []
        with self._lock:
            for key in dict.fromkeys(keys):
                entry = self._get_locked(key)
                if entry is not None:
                    found[key] = entry
                elif key in self._pending:
                    waiting[key] = self._pending[key]
                else:
                    self._pending[key] = Future()
                    mine.append(key)
        return found, waiting, mine

    def publish(self, entry: Sized) -> None:
        """Store a computed entry and wake every thread waiting for its key."""
        with self._lock:
            self._put_locked(entry)
            future = self._pending.pop(entry.key, None)
        if future is not None:
            future.set_result(entry)

    def fail(self, key: str, error: BaseException) -> None:
        """Give up on a claimed key: waiting threads get ``error``."""
        with self._lock:
            future = self._pending.pop(key, None)
        if future is not None:
            future.set_exception(error)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.nbytes = 0
