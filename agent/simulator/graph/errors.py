"""Graph's error envelope: ``{"error": {"code", "message", "innerError": {...}}}``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from agent.simulator.httpserver import Request, Response


class GraphError(Exception):
    """Raised by a handler; the pipeline turns it into Graph's error response."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details: list[dict[str, str]] = []  # error.details: [{target, code}] on conflicts


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def error_body(
    code: str,
    message: str,
    request_id: str,
    client_request_id: str | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    inner: dict[str, Any] = {"date": now_iso(), "request-id": request_id}
    if client_request_id:
        inner["client-request-id"] = client_request_id
    inner.update(extra or {})
    return {"error": {"code": code, "message": message, "innerError": inner}}


def _with_details(body: dict[str, Any], details: list[dict[str, str]]) -> dict[str, Any]:
    if details:
        body["error"]["details"] = details
    return body


def error_response(request: Request, request_id: str, err: GraphError) -> Response:
    extra: dict[str, Any] = {}
    if err.status == 429:  # facts file §1: the 429 body carries code and status inside
        extra = {"code": "429", "status": "429"}
    body = error_body(
        err.code, err.message, request_id, request.headers.get("client-request-id"), extra
    )
    _with_details(body, err.details)
    return Response.json(body, err.status, dict(err.headers))


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def not_found(oid: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{oid}' does not exist or one of its queried reference-property objects are not present.",
    )
