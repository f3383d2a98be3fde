"""Fetch the next page while the current one is stored.

A delta or paged read is a chain (each page names the next), so its speed is network latency
plus our own work per page. Reading one page ahead overlaps the two. The producer takes a
read-ahead slot *before* it fetches a page and the reader gives it back when it takes that
page, so a chain holds the page being stored plus at most ``depth`` pages fetched ahead —
never one more waiting for room in a queue. A backup runs a dozen chains at once, each page
up to 999 decoded objects (~3 MB of small Python objects): pages in flight, not the tenant,
set the agent's peak memory, and the fewer of them, the lower it is (docs/benchmarks.md).

The long chains of small pages (the managers' and members' delta rounds, a relationship read
100 parents a page: ~1,000 pages each at 100k users, and they set the backup's wall time) read
``CHAIN_DEPTH`` pages ahead: with one slot the producer waits, after each page, until the
reader thread is woken and takes it — a thread wake-up per page on the critical path, 10 ms
and more when the agent's other threads keep the GIL and the cores busy. Their pages are
small (100 items, or ids only), so the extra page costs little memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()
_POLL_S = 0.2  # how often a producer waiting for a slot looks whether the reader stopped
CHAIN_DEPTH = 2  # read-ahead of the long chains of small pages (see above)


def prefetched(source: Iterable[T], depth: int = 1) -> Iterator[T]:
    ready: queue.Queue[object] = queue.Queue()  # bounded by the slots, not by itself
    ahead = threading.Semaphore(max(depth, 1))
    stop = threading.Event()

    def produce() -> None:
        try:
            pages = iter(source)
            while True:
                while not ahead.acquire(timeout=_POLL_S):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                item = next(pages, _DONE)
                ready.put(item)
                if item is _DONE:
                    return
                del item  # the reader's now: do not keep it alive while fetching the next
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put(exc)

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            ahead.release()  # taken: the producer may fetch the next page meanwhile
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        ahead.release()  # wake a producer waiting for a slot
        worker.join()
