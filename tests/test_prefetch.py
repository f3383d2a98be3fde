"""Reading a page ahead keeps order, surfaces errors and stops when the reader stops."""

from __future__ import annotations

import threading
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
    assert len(produced) <= 4  # one yielded, two queued, one waiting to be queued
    assert list(stream) == list(range(1, 100))


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
