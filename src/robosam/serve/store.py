"""``ExpiringStore``: the server's id -> object tables (image embeddings, video sessions), least recently used
first out, bounded in count and in bytes, entries dropped after an idle time. Thread-safe."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ExpiringStore(Generic[T]):
    """id -> value, bounded by ``max_items`` and ``max_bytes`` (of ``size(value)``), LRU eviction, and
    entries unused for ``idle_s`` seconds expire. ``on_drop(value)`` runs for every entry that leaves.

    ``evict=False`` refuses new entries when full (``put`` returns False) instead of dropping old ones,
    which suits sessions a client still holds.
    """

    def __init__(
        self,
        max_items: int,
        idle_s: float,
        max_bytes: int | None = None,
        size: Callable[[T], int] = lambda value: 0,
        evict: bool = True,
        on_drop: Callable[[T], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.idle_s = idle_s
        self.size = size
        self.evict = evict
        self.on_drop = on_drop
        self.clock = clock
        self.nbytes = 0
        self._entries: OrderedDict[str, tuple[T, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> T | None:
        """The value (marked as just used), or None when unknown or expired."""
        self.expire()
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries[key] = (found[0], self.clock())
            self._entries.move_to_end(key)
            return found[0]

    def put(self, key: str, value: T) -> bool:
        """Store ``value`` under ``key``; False when it cannot be kept (larger than the byte budget, or the
        store is full and does not evict)."""
        self.expire()
        nbytes = self.size(value)
        dropped: list[T] = []
        with self._lock:
            if key in self._entries:
                old = self._entries.pop(key)[0]
                self.nbytes -= self.size(old)
                if old is not value:
                    dropped.append(old)
            too_big = self.max_bytes is not None and nbytes > self.max_bytes
            full = len(self._entries) >= self.max_items
            if too_big or (full and not self.evict):
                kept = False
            else:
                self._entries[key] = (value, self.clock())
                self.nbytes += nbytes
                while len(self._entries) > self.max_items or (
                    self.max_bytes is not None and self.nbytes > self.max_bytes
                ):
                    _, (old, _) = self._entries.popitem(last=False)
                    self.nbytes -= self.size(old)
                    dropped.append(old)
                kept = True
        self._dropped(dropped)
        return kept

    def pop(self, key: str) -> T | None:
        with self._lock:
            found = self._entries.pop(key, None)
            if found is not None:
                self.nbytes -= self.size(found[0])
        if found is not None:
            self._dropped([found[0]])
        return None if found is None else found[0]

    def expire(self) -> int:
        """Drop entries idle for longer than ``idle_s``; returns how many."""
        limit = self.clock() - self.idle_s
        dropped: list[T] = []
        with self._lock:
            while self._entries:
                key, (value, used) = next(iter(self._entries.items()))
                if used > limit:
                    break
                del self._entries[key]
                self.nbytes -= self.size(value)
                dropped.append(value)
        self._dropped(dropped)
        return len(dropped)

    def clear(self) -> None:
        with self._lock:
            values = [value for value, _ in self._entries.values()]
            self._entries.clear()
            self.nbytes = 0
        self._dropped(values)

    def _dropped(self, values: list[T]) -> None:
        if self.on_drop is not None:
            for value in values:
                self.on_drop(value)
