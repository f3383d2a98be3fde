"""Reading a page ahead keeps order, surfaces errors and stops when the reader stops."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator

import pytest

from agent.collect.prefetch import prefetched


def test_keeps_order_and_reads_at_most_depth_ahead() -> None:
    produced: list[int] = []
    gate = threading.Event()

    def source() -> Iterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    stream = prefetched(source(), depth=2)
    assert next(stream) == 0
    gate.wait(0.3)
    assert len(produced) == 3  # the one yielded and two fetched ahead, no more
    assert list(stream) == list(range(1, 100))


class _Page:
    """Stands for a decoded Graph page (999 objects)."""


@pytest.mark.parametrize("length", [10, 2_000])
def test_pages_alive_at_once_do_not_grow_with_the_chain(length: int) -> None:
    # However long the chain and however slow its reader, what is alive at any moment is the
    # page being stored and the one read ahead: memory is set by the chains running at
    # once, never by the length of one.
    alive: weakref.WeakSet[_Page] = weakref.WeakSet()

    def source() -> Iterator[_Page]:
        for _ in range(length):
            page = _Page()
            alive.add(page)
            yield page
            del page

    most = 0
    count = 0
    for page in prefetched(source()):
        if count % 50 == 0:
            threading.Event().wait(0.01)  # a slow reader: the producer runs as far as it may
        most = max(most, len(alive))
        count += 1
        del page
    assert count == length
    assert most <= 2


def test_an_error_in_the_source_reaches_the_reader_after_the_pages_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise RuntimeError("Graph went away")

    stream = prefetched(source())
    assert next(stream) == 1
    with pytest.raises(RuntimeError, match="Graph went away"):
        next(stream)


def test_closing_early_stops_the_source() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(10_000):
            produced.append(i)
            yield i

    stream = prefetched(source(), depth=2)
    next(stream)
    stream.close()
    count = len(produced)
    threading.Event().wait(0.3)
    assert len(produced) == count < 10
