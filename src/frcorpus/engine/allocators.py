"""Memory a task frees goes back to the system, in every process that runs a task of a run.

Arrow's default pool (mimalloc) keeps the pages of the tables a task has freed, and glibc's malloc raises
its mmap and trim thresholds as big blocks come and go. One task of `bench_one_file.py`'s read/write job
(a quarter of 100,000 conversations), USS of its process: 75 MiB before the task; at its peak 178-181 MiB
with the defaults, 153-154 with Arrow's system pool and fixed thresholds; after it 156-157 against 115-120.
A user's own choice of Arrow pool (`ARROW_DEFAULT_MEMORY_POOL`) or trim threshold (`MALLOC_TRIM_THRESHOLD_`)
is left as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import pyarrow as pa

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 1 << 20
# glibc's initial threshold, which its dynamic rule has raised by the time a task starts (up to 32 MiB, as
# the imports free big blocks): below it a freed block stays in the heap, above it goes back at once
MMAP_THRESHOLD = 128 << 10

_done = False


def release_freed_memory() -> None:
    """Set this process's allocators to give freed memory back promptly; once per process."""
    global _done
    if _done:
        return
    _done = True
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        _set_malloc_thresholds(TRIM_THRESHOLD, MMAP_THRESHOLD)


def _set_malloc_thresholds(trim: int, mmap: int) -> bool:
    """glibc only (mallopt also stops the thresholds from growing again); elsewhere nothing."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # musl, macOS: no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_TRIM_THRESHOLD, trim) == 1 and mallopt(M_MMAP_THRESHOLD, mmap) == 1
