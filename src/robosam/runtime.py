"""Process-wide runtime tuning for CPU inference."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import threading

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
