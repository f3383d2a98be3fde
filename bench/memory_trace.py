"""Where a benchmark run's memory goes: RSS over time, glibc's heap, Python's own share.

Used by bench/backup_bench.py (``--memory-trace FILE``). A sampler thread records, every
``interval_s``: RSS, glibc's heap (``mallinfo2``: bytes in use and bytes held free in
arenas / mmapped), SQLite's own share of it (``sqlite3_memory_used``), and the kinds whose
progress moved since the last sample, and the Graph pages alive (decoded, not yet dropped:
``PageWatch``). What RSS holds beyond glibc's heap is mostly Python's
small-object arenas (mapped by Python itself), code and thread stacks. With
``tracemalloc=True`` it also records Python's traced memory and, each time that reaches a new
peak (by at least ``snapshot_step_mb``), the top allocation sites — the snapshot nearest the
peak says what Python held there. tracemalloc slows the run and costs memory of its own: use it
to find *what*, and runs without it for the figures.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile
import threading
import time
import tracemalloc
import weakref
from typing import Any
from urllib.parse import urlsplit

import psutil


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # non-mmapped space allocated from the system (main + thread arenas)
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",  # space in mmapped regions
            "usmblks",
            "fsmblks",
            "uordblks",  # total allocated space
            "fordblks",  # total free space (held by malloc, not returned)
            "keepcost",
        )
    ]


def _sqlite_memory_used() -> Any:
    """SQLite's own allocations (page caches, statements) in the library _sqlite3 uses."""
    try:
        lib = ctypes.CDLL("libsqlite3.so.0")
        fn = lib.sqlite3_memory_used
    except (OSError, AttributeError):  # statically linked or another platform
        return None
    fn.restype = ctypes.c_int64
    return fn


def _mallinfo2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    return fn


def pymalloc_stats() -> dict[str, float]:
    """Python's small-object allocator (objects up to 512 bytes, in arenas it maps itself,
    outside glibc's heap), MB: arenas mapped now and at most, live objects, free blocks in
    used pools, unused pools — from sys._debugmallocstats (it writes to the C stderr)."""
    with tempfile.TemporaryFile() as caught:
        saved = os.dup(2)
        try:
            os.dup2(caught.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        caught.seek(0)
        text = caught.read().decode("ascii", "replace")
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if value.strip().replace(",", "").isdigit():
            values.setdefault(name.strip(), int(value.strip().replace(",", "")))
    arena = next((int(k.split()[3]) for k in values if k.endswith("bytes/arena")), 1 << 20)
    mb = 1048576
    return {
        "arenas_mb": round(values.get("# arenas allocated current", 0) * arena / mb, 1),
        "arenas_highwater_mb": round(values.get("# arenas highwater mark", 0) * arena / mb, 1),
        "live_objects_mb": round(values.get("# bytes in allocated blocks", 0) / mb, 1),
        "free_blocks_mb": round(values.get("# bytes in available blocks", 0) / mb, 1),
        "unused_pools_mb": round(
            sum(v for k, v in values.items() if k.endswith("unused pools * 16384 bytes")) / mb, 1
        ),
    }


class PageWatch:
    """Graph pages alive now (decoded, not yet dropped by their reader): every page the agent's
    paging functions parse is remembered weakly, so counting costs nothing the agent holds."""

    def __init__(self) -> None:
        from agent.graph import paging

        # id -> weak reference, removed by its callback when the page is freed (a Page is an
        # unhashable dataclass: no WeakSet). No lock: a callback may run in any thread.
        self._alive: dict[int, tuple[weakref.ref[Any], int]] = {}
        self._paging = paging
        self._parse, self._read = paging.parse_page, paging.read_json
        self._last = threading.local()  # the JSON size of the body this thread read last

        def read(response: Any) -> Any:
            self._last.size = len(response.content or b"")
            return self._read(response)

        def watched(data: dict[str, Any]) -> Any:
            page = self._parse(data)
            key = id(page)
            ref = weakref.ref(page, lambda _: self._alive.pop(key, None))
            self._alive[key] = (ref, getattr(self._last, "size", 0))
            return page

        paging.parse_page, paging.read_json = watched, read

    def close(self) -> None:
        self._paging.parse_page, self._paging.read_json = self._parse, self._read

    def _pages(self) -> list[tuple[Any, int]]:
        entries = list(self._alive.values())
        return [(p, size) for p, size in ((r(), size) for r, size in entries) if p is not None]

    def counts(self) -> tuple[int, int, float]:
        """(pages alive, items in them, MB of JSON they were decoded from)."""
        pages = self._pages()
        size = sum(s for _, s in pages) / 1048576
        return len(pages), sum(len(p.items) for p, _ in pages), round(size, 1)

    def by_path(self) -> dict[str, list[float]]:
        """Per collection: [pages alive, items in them, MB of JSON]."""
        out: dict[str, list[float]] = {}
        for page, size in self._pages():
            where = str(page.next_link or page.delta_link or page.raw.get("@odata.context"))
            path = urlsplit(where).path or where
            entry = out.setdefault(_GUID.sub("{id}", path)[-60:], [0, 0, 0.0])
            entry[0] += 1
            entry[1] += len(page.items)
            entry[2] = round(entry[2] + size / 1048576, 2)
        return out


_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class MemoryTrace:
    def __init__(
        self, interval_s: float = 0.5, tracemalloc_on: bool = False, snapshot_step_mb: float = 5
    ) -> None:
        self.interval_s = interval_s
        self.tracemalloc_on = tracemalloc_on
        self.step = int(snapshot_step_mb * 1024 * 1024)
        self.samples: list[dict[str, Any]] = []
        self.peaks: list[dict[str, Any]] = []  # tracemalloc top sites at successive peaks
        self.after_phase: dict[str, dict[str, Any]] = {}
        self.phase = ""
        self._moving: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc = psutil.Process(os.getpid())
        self._mallinfo = _mallinfo2()
        self._sqlite_used = _sqlite_memory_used()
        self._started = 0.0
        self._peak_rss = 0
        self._at_peak_rss: dict[str, Any] = {}
        self._pages: PageWatch | None = None
        self._most_pages: tuple[int, int, float] = (0, 0, 0.0)

    def progress(self, kind: str, done: int) -> None:
        """A backup progress callback: remembers which kinds moved."""
        with self._lock:
            self._moving[kind] = done

    def __enter__(self) -> MemoryTrace:
        if self.tracemalloc_on:
            tracemalloc.start(6)
        self._started = time.monotonic()
        self._pages = PageWatch()
        self._thread = threading.Thread(target=self._run, name="memory-trace", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        if self._pages is not None:
            self._pages.close()
        if self.tracemalloc_on:
            tracemalloc.stop()

    def after(self, label: str) -> None:
        """With tracemalloc: what Python still holds once ``label`` is over."""
        if self.tracemalloc_on and tracemalloc.is_tracing():
            self.after_phase[label] = self._top(self._sample())
        self.after_phase.setdefault(label, {})["pymalloc"] = pymalloc_stats()

    def _run(self) -> None:
        last_snap = 0
        while not self._stop.wait(self.interval_s):
            sample = self._sample()
            traced = sample.get("py_traced_mb")
            if traced is not None and traced * 1048576 >= last_snap + self.step:
                last_snap = int(traced * 1048576)
                self.peaks.append(self._top(sample))

    def _sample(self) -> dict[str, Any]:
        rss = self._proc.memory_info().rss
        with self._lock:
            moving = dict(self._moving)
            self._moving.clear()
        sample: dict[str, Any] = {
            "t": round(time.monotonic() - self._started, 1),
            "phase": self.phase,
            "rss_mb": round(rss / 1048576, 1),
            "threads": self._proc.num_threads(),
            "moving": sorted(moving),
        }
        if self._mallinfo is not None:
            info = self._mallinfo()
            sample["heap_in_use_mb"] = round(info.uordblks / 1048576, 1)
            sample["heap_free_held_mb"] = round(info.fordblks / 1048576, 1)
            sample["heap_arena_mb"] = round(info.arena / 1048576, 1)
            sample["mmapped_mb"] = round(info.hblkhd / 1048576, 1)
        if self._sqlite_used is not None:
            sample["sqlite_mb"] = round(self._sqlite_used() / 1048576, 1)
        if self.tracemalloc_on and tracemalloc.is_tracing():
            current, _ = tracemalloc.get_traced_memory()
            sample["py_traced_mb"] = round(current / 1048576, 1)
        if self._pages is not None:
            pages, items, json_mb = self._pages.counts()
            sample.update(pages_alive=pages, page_items_alive=items, page_json_mb=json_mb)
            if json_mb > self._most_pages[2]:
                self._most_pages = (pages, items, json_mb)
        self.samples.append(sample)
        if rss > self._peak_rss:
            self._peak_rss = rss
            sample["pymalloc"] = pymalloc_stats()
            if self._pages is not None:
                sample["pages_by_path"] = self._pages.by_path()
            self._at_peak_rss = sample
        return sample

    def _top(self, sample: dict[str, Any], limit: int = 25) -> dict[str, Any]:
        snapshot = tracemalloc.take_snapshot().filter_traces(
            (tracemalloc.Filter(False, tracemalloc.__file__),)
        )
        by_line = snapshot.statistics("lineno")[:limit]
        by_trace = snapshot.statistics("traceback")[:8]
        return {
            **sample,
            "top_lines": [
                {
                    "site": f"{s.traceback[0].filename}:{s.traceback[0].lineno}",
                    "mb": round(s.size / 1048576, 2),
                    "count": s.count,
                }
                for s in by_line
            ],
            "top_tracebacks": [
                {
                    "mb": round(s.size / 1048576, 2),
                    "count": s.count,
                    "stack": [f"{f.filename}:{f.lineno}" for f in s.traceback],
                }
                for s in by_trace
            ],
        }

    def summary(self) -> dict[str, Any]:
        by_phase: dict[str, float] = {}
        for s in self.samples:
            by_phase[s["phase"]] = max(by_phase.get(s["phase"], 0.0), s["rss_mb"])
        return {
            "peak_rss_mb_sampled": round(self._peak_rss / 1048576, 1),
            "at_peak_rss": self._at_peak_rss,
            "peak_rss_by_phase": by_phase,
            # the most Graph pages alive at one sample (by JSON size): pages, items, MB of JSON
            "most_pages_alive": dict(
                zip(("pages", "items", "json_mb"), self._most_pages, strict=True)
            ),
            "tracemalloc_peaks": self.peaks[-3:],
            "tracemalloc_after_phase": self.after_phase,
            "samples": self.samples,
        }
