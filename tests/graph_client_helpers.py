"""Helpers for the GraphClient tests: a client with injected sleeps against the loopback server
(tests/conftest.py), Graph-shaped error bodies, a paged users list."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from agent.graph.client import GraphClient
from agent.simulator.httpserver import HttpsServer, Request, Response, Router


class Sleeps:
    """Records the waits the client asked for instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def session_for(ca: Path) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca)
    return session


def make_client(
    server: HttpsServer, ca: Path, sleeps: Sleeps | None = None, **kwargs: Any
) -> GraphClient:
    return GraphClient(
        server.base_url,
        session_for(ca),
        lambda: "token-1",
        sleep=sleeps if sleeps is not None else Sleeps(),
        **kwargs,
    )


def graph_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": "2026-11-26T20:00:00",
                "request-id": "9f3e8c1a-0000-4000-8000-000000000001",
                "client-request-id": "9f3e8c1a-0000-4000-8000-000000000002",
            },
        }
    }
    return Response.json(body, status, headers)


def throttled(retry_after: str | None = "2.128") -> Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    headers["x-ms-throttle-scope"] = "Tenant_Application/ReadWrite/app/tenant"
    return graph_error(429, "TooManyRequests", "Please retry again later.", headers)


def users(start: int, count: int) -> list[dict[str, Any]]:
    return [{"id": f"user-{i}", "displayName": f"User {i}"} for i in range(start, start + count)]


def serve_users(router: Router, total: int, page_size: int, seen: list[Request]) -> None:
    """GET /v1.0/users with $skiptoken paging, like Graph's users list."""

    @router.route("GET", "/v1.0/users")
    def handler(request: Request) -> Response:
        seen.append(request)
        start = int(request.arg("$skiptoken") or 0)
        body: dict[str, Any] = {
            "@odata.context": f"{request.base_url}/v1.0/$metadata#users",
            "value": users(start, min(page_size, total - start)),
        }
        if start == 0 and request.arg("$count") == "true":
            body["@odata.count"] = total
        if start + page_size < total:
            body["@odata.nextLink"] = (
                f"{request.base_url}/v1.0/users?$skiptoken={start + page_size}"
            )
        return Response.json(body, headers={"x-ms-resource-unit": "1"})


def fail_first(
    times: int, failure: Callable[[], Response], then: Callable[[Request], Response]
) -> Callable[[Request], Response]:
    calls = {"n": 0}

    def handler(request: Request) -> Response:
        calls["n"] += 1
        return failure() if calls["n"] <= times else then(request)

    return handler


def ok_users(request: Request) -> Response:
    return Response.json({"value": users(0, 3)})
