"""Keep the agent's peak memory flat in tenant size and run length (glibc's allocator, SQLite).

Three settings of glibc's malloc and a cap on SQLite's memory, made once per process
(``tune_allocator``), and one call made now and then during a job (``release_free_memory``):

- *mmap threshold fixed.* glibc serves an allocation above its mmap threshold (128 KiB) with a
  mapping of its own that goes back to the system when freed, but freeing such a chunk raises
  the threshold to that chunk's size (up to 32 MiB). One large object — a tenant-wide group's
  member list is several MB at 100,000 users — thereby moved every later response buffer of
  that size into the heap, where freed memory stays with the process. Setting the threshold
  explicitly turns that adjustment off (mallopt(3)). bench/backup_bench.py at 50,000 users:
  peak RSS 240 MB → 199 MB.
- *Two arenas.* glibc gives threads that allocate at the same moment arenas of their own (up to
  8 per core). A backup runs ~40 threads (collectors, page prefetchers, relationship tails);
  memory freed in one arena is not reused by the others, so the free memory held grew with the
  length of the run, i.e. with the tenant: 47 MB held free beside 22 MB in use at 50,000 users,
  67 MB at 100,000. The GIL serialises most allocation anyway; with two arenas the heap at
  50,000 users was 44 MB instead of 74 MB (docs/benchmarks.md).
- *Free pages returned.* Free memory inside an arena (not at its top) stays with the process
  until ``malloc_trim`` gives its pages back; the job calls it at each heartbeat and after
  committing, so what one phase of a run freed does not add to the next one's peak.
- *SQLite's memory capped.* Each SQLite connection caches up to 2 MB of pages, and a sort or a
  temporary b-tree takes as much again: the catalog's pooled connections (up to 15), the blob
  index and the collectors' scratch files filled those as the catalog grew with the tenant
  (16 MB at 20,000 users, 25 MB at 100,000, most of it at once while an incremental run's
  snapshot was committed). SQLite's soft heap limit is one for the whole process: past it,
  page caches reuse their least recently used pages instead of taking more and sorts spill to
  their temporary files. Reads that miss the cache come from the OS's file cache.
"""

from __future__ import annotations

import ctypes
import sqlite3
import sys
from typing import Any

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept fixed
ARENA_MAX = 2
SQLITE_HEAP_BYTES = 8 << 20  # SQLite's soft heap limit for the process


def _libc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return None
    return libc


_LIBC = _libc()


def pin_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold for this process; False where there is no glibc."""
    return _LIBC is not None and bool(_LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def cap_sqlite_memory(limit: int = SQLITE_HEAP_BYTES) -> None:
    """SQLite's soft heap limit for this process (every connection, any thread)."""
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute(f"PRAGMA soft_heap_limit={int(limit)}")
    finally:
        connection.close()


def tune_allocator() -> bool:
    """The process-wide settings above; call before the job's threads start (an arena limit
    applies to arenas not made yet). False where there is no glibc (SQLite is capped all
    the same)."""
    cap_sqlite_memory()
    if _LIBC is None:
        return False
    return pin_mmap_threshold() and bool(_LIBC.mallopt(M_ARENA_MAX, ARENA_MAX))


def release_free_memory() -> None:
    """Give the pages of free heap memory back to the system (a few ms; no-op without glibc)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
