"""GraphClient $batch against a loopback Graph: per-item retries of throttled items, 20 per
batch in order, bodies with content types, streamed batches with bounded requests in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

from agent.graph.client import BatchRequest
from agent.simulator.httpserver import HttpsServer, Request, Response, Router
from tests.graph_client_helpers import Sleeps, graph_error, make_client

# -- $batch --------------------------------------------------------------------------------


class BatchGraph:
    """POST /v1.0/$batch answering each item from ``item`` and recording every envelope."""

    def __init__(
        self, router: Router, item: Callable[[dict[str, Any]], dict[str, Any]], delay_s: float = 0.0
    ) -> None:
        self.item = item
        self.delay_s = delay_s
        self.envelopes: list[list[dict[str, Any]]] = []
        self.items_answered = 0
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        router.add("POST", r"/v1.0/\$batch", self.handle)  # the pattern is a regex

    def handle(self, request: Request) -> Response:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            items = request.json()["requests"]
            if len(items) > 20:
                return graph_error(400, "BadRequest", "Maximum number of requests in batch is 20.")
            if len({i["id"] for i in items}) != len(items):
                return graph_error(400, "BadRequest", "Batch request ids must be unique.")
            time.sleep(self.delay_s)
            with self._lock:
                self.envelopes.append(items)
                self.items_answered += len(items)
            # Graph answers items in any order: reverse them to prove the client re-orders.
            answers = [{"id": i["id"], **self.item(i)} for i in reversed(items)]
            return Response.json({"responses": answers})
        finally:
            with self._lock:
                self.active -= 1


def owners_answer(item: dict[str, Any]) -> dict[str, Any]:
    group = item["url"].split("/")[2]
    return {
        "status": 200,
        "headers": {"Content-Type": "application/json", "x-ms-resource-unit": "2"},
        "body": {"value": [{"id": f"owner-of-{group}"}]},
    }


def owner_requests(count: int) -> list[BatchRequest]:
    return [
        BatchRequest(id=f"g{i}", method="GET", url=f"/groups/g{i}/owners?$select=id")
        for i in range(count)
    ]


def test_batch_retries_only_the_throttled_item(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    throttled_once: set[str] = set()

    def answer(item: dict[str, Any]) -> dict[str, Any]:
        if "/g3/" in item["url"] and item["url"] not in throttled_once:
            throttled_once.add(item["url"])
            return {
                "status": 429,
                "headers": {"Retry-After": "1.5", "Content-Type": "application/json"},
                "body": {
                    "error": {"code": "TooManyRequests", "message": "Please retry again later."}
                },
            }
        return owners_answer(item)

    graph = BatchGraph(router, answer)
    sleeps = Sleeps()
    client = make_client(server, ca_file, sleeps)
    results = client.batch(owner_requests(5))

    assert [r.id for r in results] == ["g0", "g1", "g2", "g3", "g4"]
    assert all(r.status == 200 for r in results)
    assert results[3].body == {"value": [{"id": "owner-of-g3"}]}
    assert [len(e) for e in graph.envelopes] == [5, 1]
    assert graph.envelopes[1][0]["url"] == "/groups/g3/owners?$select=id"
    assert sleeps.calls == [1.5]
    assert client.stats.throttled == 1 and client.stats.requests == 2
    assert client.stats.resource_units == 10  # items x-ms-resource-unit: 4 x 2, then 1 x 2


def test_batch_item_still_throttled_after_retries_is_returned(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    BatchGraph(
        router,
        lambda item: {
            "status": 429,
            "headers": {"Retry-After": "1"},
            "body": {"error": {"code": "TooManyRequests"}},
        },
    )
    results = make_client(server, ca_file, max_retries=2).batch(owner_requests(2))
    assert [r.status for r in results] == [429, 429]


def test_batch_splits_into_twenties_and_keeps_order(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    graph = BatchGraph(router, owners_answer)
    requests_ = owner_requests(45)
    results = make_client(server, ca_file).batch(requests_)
    assert [len(e) for e in graph.envelopes] == [20, 20, 5]
    assert [r.id for r in results] == [r.id for r in requests_]
    assert all(r.body == {"value": [{"id": f"owner-of-{r.id}"}]} for r in results)


def test_batch_items_with_a_body_carry_content_type(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    graph = BatchGraph(router, lambda item: {"status": 200, "body": {"value": []}})
    request = BatchRequest(
        id="ids",
        method="POST",
        url="/directoryObjects/getByIds",
        body={"ids": ["a"], "types": ["user"]},
    )
    make_client(server, ca_file).batch([request])
    sent = graph.envelopes[0][0]
    assert sent["headers"] == {"Content-Type": "application/json"}
    assert sent["body"] == {"ids": ["a"], "types": ["user"]}


def test_run_batches_streams_with_bounded_in_flight(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    graph = BatchGraph(router, owners_answer, delay_s=0.01)
    workers = 2
    consumed = 0
    ahead: list[int] = []

    def source() -> Iterator[BatchRequest]:
        nonlocal consumed
        for request in owner_requests(600):
            # How far the client has read past what the server has answered.
            ahead.append(consumed - graph.items_answered)
            consumed += 1
            yield request

    client = make_client(server, ca_file)
    results = []
    unread: list[int] = []  # answered by the server, not yet taken by the reader
    for result in client.run_batches(source(), workers=workers):
        unread.append(graph.items_answered - len(results))
        results.append(result)
        if len(results) % 40 == 0:
            threading.Event().wait(0.05)  # a busy reader: answers must not pile up
    assert sorted(r.id for r in results) == sorted(f"g{i}" for i in range(600))
    assert max(ahead) <= workers * 20
    assert max(unread) <= workers * 20  # decoded answers held: the workers' chunks, no more
    assert graph.max_active <= workers
    assert len(graph.envelopes) == 30


def test_run_batches_can_be_abandoned(server: HttpsServer, router: Router, ca_file: Path) -> None:
    BatchGraph(router, owners_answer)
    stream = make_client(server, ca_file).run_batches(iter(owner_requests(200)), workers=2)
    assert next(stream).status == 200
    assert isinstance(stream, Generator)  # so it can be closed early
    stream.close()  # cancels what has not started and waits for the rest
