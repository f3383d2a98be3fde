"""JSON $batch: requests in chunks of 20 (Graph's limit), throttled or left-out items retried on
their own, several chunks in flight from worker threads, and a failed item's AgentError."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import islice
from typing import Any

import requests

from agent.errors import GraphError
from agent.graph.costs import estimate_cost
from agent.graph.responses import header, int_header, json_or_none, read_json, retry_after
from agent.graph.transport import RETRYABLE, WRITE_METHODS, GraphTransport
from agent.graph.write_errors import write_error

BATCH_LIMIT = 20  # Graph rejects a $batch with more requests (facts file §1)


@dataclass(frozen=True)
class BatchRequest:
    id: str
    method: str
    url: str  # relative to the version root, e.g. "/groups/{id}/owners?$select=id"
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


@dataclass
class BatchResult:
    id: str
    status: int
    headers: dict[str, str]
    body: dict[str, Any] | None


def batch(transport: GraphTransport, requests: Sequence[BatchRequest]) -> list[BatchResult]:
    """Results in request order; ≤ 20 per POST, throttled items retried on their own."""
    results: list[BatchResult] = []
    for start in range(0, len(requests), BATCH_LIMIT):
        results += send_chunk(transport, list(requests[start : start + BATCH_LIMIT]))
    return results


def run_batches(
    transport: GraphTransport, requests: Iterable[BatchRequest], workers: int = 4
) -> Iterator[BatchResult]:
    """Send batches from several threads; results come as their batch finishes. At most
    ``workers`` chunks are sent or answered and not yet read: a chunk's answer is up to 20
    decoded relationship pages (~4 MB of small objects for app role assignments), and answers
    waiting for a busy reader set the agent's peak memory."""
    source = iter(requests)
    limit = max(workers, 1)
    in_flight: set[Future[list[BatchResult]]] = set()
    executor = ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="graph-batch")
    try:
        while True:
            while len(in_flight) < limit:
                chunk = list(islice(source, BATCH_LIMIT))
                if not chunk:
                    break
                in_flight.add(executor.submit(send_chunk, transport, chunk))
            if not in_flight:
                return
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                yield from future.result()
    finally:
        for future in in_flight:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)


def batch_error(request: BatchRequest, result: BatchResult) -> Exception | None:
    """The AgentError for a failed $batch item, None when it succeeded."""
    if result.status < 400:
        return None
    return write_error(request.method, request.url, result.status, result.body)


def send_chunk(transport: GraphTransport, chunk: list[BatchRequest]) -> list[BatchResult]:
    """One chunk of at most 20 requests, POSTed again with the items still pending."""
    # Wire ids are positions: callers' ids need not be unique or short.
    pending = {str(i): req for i, req in enumerate(chunk)}
    attempts = dict.fromkeys(pending, 0)
    results: dict[str, BatchResult] = {}
    url = f"{transport.root}/$batch"
    while pending:
        for req in pending.values():  # items under a per-path rate wait for their slot
            transport.pacer.acquire(req.url)
        body = {"requests": [_batch_item(wid, req) for wid, req in pending.items()]}
        cost = sum(estimate_cost(r.method, r.url) for r in pending.values())
        writes = sum(r.method.upper() in WRITE_METHODS for r in pending.values())
        units = _BatchUnits()
        response = transport.send(
            "POST", url, json_body=body, cost=cost, item_units=units, writes=writes
        )
        data = units.body if units.response is response else read_json(response)
        delays: list[float] = []
        throttled: dict[str, str] | None = None  # headers of a throttled item (not paced)
        answered: set[str] = set()
        for item in data.get("responses") or []:
            wid = str(item.get("id"))
            if wid not in pending:
                continue
            answered.add(wid)
            status = int(item.get("status") or 0)
            headers = {str(k): str(v) for k, v in (item.get("headers") or {}).items()}
            if status in RETRYABLE and attempts[wid] < transport.max_retries:
                attempts[wid] += 1
                transport.stats.add(
                    retries=1, throttled=int(status == 429), server_errors=int(status != 429)
                )
                delay = retry_after(header(headers, "Retry-After"))
                delay = transport.backoff(attempts[wid]) if delay is None else delay
                paced = status == 429 and transport.pacer.pause(pending[wid].url, delay)
                throttled = headers if status == 429 and not paced else throttled
                delays.append(delay)
                continue
            item_body = item.get("body")
            results[wid] = BatchResult(
                pending.pop(wid).id,
                status,
                headers,
                item_body if isinstance(item_body, dict) else None,
            )
        for wid in set(pending) - answered:
            attempts[wid] += 1
            if attempts[wid] > transport.max_retries:
                raise GraphError(
                    f"Graph's $batch answer kept leaving out {pending[wid].method} "
                    f"{pending[wid].url}.",
                    "Run the job again; if it persists, report it with the job log.",
                )
        if pending and delays:
            delay = max(delays)
            if throttled is not None:
                transport.pause_quota(throttled, delay)
            transport.sleep(delay)
    return [results[str(i)] for i in range(len(chunk))]


def _batch_item(wid: str, req: BatchRequest) -> dict[str, Any]:
    item: dict[str, Any] = {"id": wid, "method": req.method.upper(), "url": req.url}
    headers = dict(req.headers or {})
    if req.body is not None:
        item["body"] = req.body
        # Graph requires Content-Type on every item that has a body.
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    if headers:
        item["headers"] = headers
    return item


class _BatchUnits:
    """RU of a $batch: the sum of the items' x-ms-resource-unit headers. The body it decodes
    for them is kept: a successful answer is not decoded a second time."""

    def __init__(self) -> None:
        self.response: requests.Response | None = None
        self.body: dict[str, Any] = {}

    def __call__(self, response: requests.Response) -> int | None:
        body = json_or_none(response) if response.content else None
        if not isinstance(body, dict):
            return None
        if response.status_code < 400:
            self.response, self.body = response, body
        items = body.get("responses") or []
        units = [int_header(header(i.get("headers") or {}, "x-ms-resource-unit")) for i in items]
        known = [u for u in units if u is not None]
        return sum(known) if known else None
