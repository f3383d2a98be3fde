"""Keep the agent's peak memory from following the largest object it handled (glibc).

glibc serves an allocation above its mmap threshold (128 KiB) with a mapping of its own that
goes back to the system when freed, but freeing such a chunk raises the threshold to that
chunk's size (up to 32 MiB). One large object of a backup — a tenant-wide group's member list is
several MB at 100,000 users — thereby moves every later response buffer of that size into the
heap, where freed memory stays with the process: peak RSS grows with the largest object, i.e.
with the tenant. Setting the threshold explicitly turns that adjustment off (mallopt(3)).
bench/backup_bench.py at 50,000 users: peak RSS 240 MB → 199 MB (docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept fixed


def pin_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold for this process; False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already uses
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
