"""GraphClient: Microsoft Graph reads and writes for collectors and restorers.

Every request goes through ``GraphTransport.send`` (transport.py: budgets, pacing, token,
retries). This class is the one surface callers use; each operation lives in the module that
does that job: paging.py (pages, delta rounds), batch.py ($batch), media.py (stream
properties), responses.py (JSON bodies and the AgentErrors error bodies stand for). Refused
writes name the read-only property, the missing object or the missing permission
(write_errors.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from agent.graph import batch as batch_ops
from agent.graph import media, paging
from agent.graph.batch import BatchRequest, BatchResult
from agent.graph.paging import DeltaRound
from agent.graph.responses import Page, read_json, write_refusal
from agent.graph.transport import GraphStats, GraphTransport

# Callers import these from here (agent.graph.client) as before the split.
__all__ = ["BatchRequest", "BatchResult", "DeltaRound", "GraphClient", "GraphStats", "Page"]


class GraphClient(GraphTransport):
    # -- reads --------------------------------------------------------------------------

    def get_json(
        self,
        path_or_url: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return read_json(
            self.send("GET", self.resolve(path_or_url), params=params, headers=headers)
        )

    def get_media(self, path: str) -> tuple[bytes, str] | None:
        """A stream property (e.g. a branding image): (bytes, content type), or None when it
        is not set."""
        return media.get_media(self, path)

    def pages(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[Page]:
        """Every page of a collection; the nextLink is followed as-is with the same headers."""
        return paging.pages(self, path, params, headers)

    def delta(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        delta_link: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> DeltaRound:
        return DeltaRound(self, path, params, delta_link, headers)

    def delta_position(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        """A deltaLink for "now" without reading a single object ($deltatoken=latest)."""
        return paging.delta_position(self, path, params, headers)

    def batch(self, requests: Sequence[BatchRequest]) -> list[BatchResult]:
        """Results in request order; ≤ 20 per POST, throttled items retried on their own."""
        return batch_ops.batch(self, requests)

    def run_batches(
        self, requests: Iterable[BatchRequest], workers: int = 4
    ) -> Iterator[BatchResult]:
        """Send batches from several threads; results come as their batch finishes."""
        return batch_ops.run_batches(self, requests, workers)

    # -- writes -------------------------------------------------------------------------

    def post(self, path: str, body: Any = None) -> dict[str, Any]:
        """POST a create, a $ref or an action; the created object (or {} for 204)."""
        return self._write("POST", path, body)

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._write("PATCH", path, body)

    def put(self, path: str, body: Any) -> dict[str, Any]:
        return self._write("PUT", path, body)

    def delete(self, path: str) -> None:
        self._write("DELETE", path, None)

    def put_media(self, path: str, data: bytes, content_type: str) -> None:
        """PUT a stream property (a branding image) as raw bytes with its content type."""
        media.put_media(self, path, data, content_type)

    def write_batch(self, requests: Sequence[BatchRequest]) -> list[BatchResult]:
        """Writes in $batch (20 a POST, each paced by the write quota); a refused item is a
        result with its status — ``batch_error`` turns it into the AgentError."""
        return self.batch(requests)

    @staticmethod
    def batch_error(request: BatchRequest, result: BatchResult) -> Exception | None:
        """The AgentError for a failed $batch item, None when it succeeded."""
        return batch_ops.batch_error(request, result)

    def _write(self, method: str, path: str, body: Any) -> dict[str, Any]:
        url = self.resolve(path)
        response = self.send(method, url, json_body=body)
        if response.status_code >= 400:
            raise write_refusal(method, url, response)
        return read_json(response)
