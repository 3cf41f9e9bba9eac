"""Process-wide runtime tuning for CPU inference."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import platform
import threading
from collections.abc import Iterator

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Above the size of the decoder's per-prompt buffers (a 64x64x256 float32 tensor is 4 MiB;
# the upscaled 256x256x32 activations are 8 MiB), below glibc's 32 MiB cap on the mmap threshold.
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
_TRIM_THRESHOLD_BYTES = 512 * 1024 * 1024

_lock = threading.Lock()
_tuned: bool | None = None


def tune_allocator() -> bool:
    """Keep freed tensor memory inside the process instead of returning it to the OS after every call.

    glibc serves large allocations (above a dynamic threshold) with fresh ``mmap`` pages and gives
    them back on ``free``, so a model that allocates the same multi-megabyte buffers on every call
    pays page faults each time (8-13% of SAM's mask decoder time on CPU). Raising the mmap and trim
    thresholds keeps those pages in the heap for reuse. Process-wide and idempotent; returns True
    when the thresholds are set, False on anything but glibc (a no-op there).
    """
    global _tuned
    with _lock:
        if _tuned is not None:
            return _tuned
        _tuned = False
        if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
            return False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return False
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt.restype = ctypes.c_int
        ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES) == 1
        ok = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES) == 1 and ok
        _tuned = ok
        return ok


def share_cores(workers: int, threads_per_worker: int | None = None) -> int:
    """Give each of ``workers`` threads that run models at once its share of the CPU cores.

    torch's intra-op pool defaults to every core for each calling thread, so two worker threads on two
    cores run four busy threads that spin and preempt each other (measured with ``benchmarks/serve_load.py``:
    a quarter of the throughput lost on 2 cores). Sets ``torch.set_num_threads`` process-wide to
    ``threads_per_worker`` (default: cores // workers, at least 1) and returns it; for processes that exist
    to serve (``robosam serve``), not for libraries.
    """
    import torch

    if threads_per_worker is None:
        threads_per_worker = max(1, (os.cpu_count() or 1) // max(1, workers))
    torch.set_num_threads(threads_per_worker)
    return threads_per_worker


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[int]:
    """torch's intra-op thread count set to ``count`` (at least 1) inside the block, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(count)))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
