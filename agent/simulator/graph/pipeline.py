"""Every Graph request (and every $batch item) passes here: faults, token, permissions,
resource-unit throttling, the handler, then Graph's headers and the request-log note."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

from agent.simulator.graph.directory import Directory
from agent.simulator.graph.errors import GraphError, error_response
from agent.simulator.graph.faults import Faults
from agent.simulator.graph.throttle import (
    RateLimiter,
    ReportsLimiter,
    Throttler,
    request_cost,
    retry_after_header,
)
from agent.simulator.graph.write_throttle import WriteLimiter, is_write
from agent.simulator.httpserver import DropConnection, Request, Response
from agent.simulator.tokens import GRAPH_APP_ID, GRAPH_RESOURCE, TokenIssuer
from agent.simulator.world import World

READ_USERS = frozenset(
    {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
READ_GROUPS = frozenset(
    {
        "Group.Read.All",
        "Group.ReadWrite.All",
        "GroupMember.Read.All",
        "GroupMember.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
WRITE_USERS = frozenset({"User.ReadWrite.All", "Directory.ReadWrite.All"})
WRITE_GROUPS = frozenset({"Group.ReadWrite.All", "Directory.ReadWrite.All"})


@dataclass
class Context:
    """What a handler gets: the caller's directory, the request, route parameters."""

    request: Request
    directory: Directory
    params: dict[str, str]
    path: str  # relative to /v1.0
    faults: Faults
    api: GraphApi
    claims: dict[str, Any] = field(default_factory=dict)  # the caller's token (roles, wids)


Handler = Callable[[Context], Response]
# method, path regex, handler, permissions check, first path segment (None: a placeholder)
_Route = tuple[str, re.Pattern[str], Handler, Callable[[Context], frozenset[str]], str | None]


class GraphApi:
    """The simulated Microsoft Graph v1.0: an internal route table behind one pipeline."""

    def __init__(self, world: World, issuer: TokenIssuer, faults: Faults) -> None:
        self.world = world
        self.issuer = issuer
        self.faults = faults
        self.throttler = Throttler()
        self.reports_limiter = ReportsLimiter()
        self.write_limiter = WriteLimiter()
        self.rate_limiter = RateLimiter()  # per-path request rates (conditional access)
        self._routes: list[_Route] = []
        # (method, first path segment) -> the routes that can match it, in the order added:
        # a $batch item of a late-registered path tried ~240 patterns otherwise.
        self._candidates: dict[tuple[str, str], list[_Route]] = {}

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        needs: frozenset[str] | Callable[[Context], frozenset[str]],
    ) -> None:
        parts = re.split(r"(\{\w+\})", pattern)
        body = "".join(
            f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts
        )
        regex = re.compile(f"^{body}/?$")
        check = needs if callable(needs) else (lambda _ctx, n=needs: n)
        first = pattern.lstrip("/").split("/", 1)[0]
        self._routes.append((method, regex, handler, check, None if "{" in first else first))
        self._candidates.clear()

    def serve(self, request: Request) -> Response:
        """Entry point for the HTTP server (``/v1.0/...``)."""
        return self.handle(request, in_batch=False)

    def handle(self, request: Request, *, in_batch: bool) -> Response:
        request_id = str(uuid.uuid4())
        path = request.path[len("/v1.0") :] if request.path.startswith("/v1.0") else request.path
        note: dict[str, Any] = {"ru": 0, "throttled": False}
        try:
            response = self._handle(request, path, note, in_batch)
        except GraphError as err:
            response = error_response(request, request_id, err)
        response.headers["request-id"] = request_id
        if "client-request-id" in request.headers:
            response.headers["client-request-id"] = request.headers["client-request-id"]
        response.headers.setdefault("x-ms-resource-unit", str(note.get("cost", 0)))
        note.pop("cost", None)
        if limit := note.pop("limit_percentage", None):  # facts file §1: only above 0.8
            response.headers["x-ms-throttle-limit-percentage"] = limit
        response.headers.setdefault("Cache-Control", "no-cache")
        for key, value in note.items():  # a $batch envelope reports its items' totals itself
            response.note.setdefault(key, value)
        return response

    def _handle(
        self, request: Request, path: str, note: dict[str, Any], in_batch: bool
    ) -> Response:
        faults = self.faults
        # One latency per HTTP request: the service runs a $batch's items side by side, so
        # the envelope's latency stands for all of them (not 20 latencies in a row).
        delay = 0.0 if in_batch else faults.delay_s()
        if delay:
            time.sleep(delay)
        if not in_batch and faults.roll(faults.reset_rate):
            raise DropConnection()
        claims = self._authenticate(request)
        note["app_id"] = claims.get("appid", "")
        note["tenant_id"] = claims.get("tid", "")
        tenant = self.world.find(str(claims.get("tid", "")))
        if tenant is None or tenant.directory is None:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid tenant.",
            )
        directory: Directory = tenant.directory
        route = self._match(request.method, path)
        if route is None:
            segment = path.strip("/").split("/")[-1] if path.strip("/") else ""
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        handler, params, needs = route
        ctx = Context(request, directory, params, path, faults, self, claims)
        required = needs(ctx)
        if required and not set(claims.get("roles") or ()) & required:
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        if forced := faults.forced_status(path):
            raise GraphError(
                forced,
                "serviceNotAvailable" if forced >= 500 else "BadRequest",
                "Injected fault.",
                {"Retry-After": "1"},
            )
        if faults.roll(faults.error_rate):
            raise GraphError(
                503,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry later.",
                {"Retry-After": "2"},
            )
        if path.rstrip("/") == "/$batch":
            return handler(ctx)  # items are throttled one by one
        cost = request_cost(request.method, path, request.query)
        note["cost"] = cost
        if path.startswith("/auditLogs/"):
            self._throttle_reports(note, claims)
        else:
            self._throttle(note, claims, directory, cost, path)
        if is_write(request.method, path):
            self._throttle_writes(note, claims, cost)
        note["ru"] = cost
        response = handler(ctx)
        return response

    def _throttle(
        self,
        note: dict[str, Any],
        claims: dict[str, Any],
        directory: Directory,
        cost: int,
        path: str,
    ) -> None:
        faults = self.faults
        app_id, tenant_id = str(claims.get("appid", "")), str(claims.get("tid", ""))
        scope = f"Tenant_Application/ReadWrite/{app_id}/{tenant_id}"
        wait = None if faults.disable_throttling else self.rate_limiter.take(tenant_id, path)
        if wait is not None:  # a per-tenant request rate (all apps): conditional access
            note["throttled"] = True
            raise GraphError(
                429,
                "TooManyRequests",
                "Please retry again later.",
                {
                    "Retry-After": retry_after_header(wait),
                    "x-ms-throttle-scope": f"Tenant/Read/{app_id}/{tenant_id}",
                    "x-ms-resource-unit": str(cost),
                },
            )
        storm = faults.roll(faults.throttle_probability)
        if faults.disable_throttling and not storm:
            return
        decision = None
        if not faults.disable_throttling:
            decision = self.throttler.take(
                app_id, tenant_id, directory.count("user"), cost, faults.throttle_scale
            )
            if decision.used_fraction > 0.8:
                note["limit_percentage"] = f"{min(decision.used_fraction, 1.8):.2f}"
        if storm or (decision is not None and not decision.allowed):
            note["throttled"] = True
            wait = decision.retry_after if decision is not None and not decision.allowed else 1.0
            raise GraphError(
                429,
                "TooManyRequests",
                "Please retry again later.",
                {
                    "Retry-After": retry_after_header(wait),
                    "x-ms-throttle-scope": scope,
                    "x-ms-throttle-information": "ResourceUnitLimitExceeded",
                    "x-ms-resource-unit": str(cost),
                },
            )

    def _throttle_reports(self, note: dict[str, Any], claims: dict[str, Any]) -> None:
        if self.faults.disable_throttling or self.faults.throttle_scale == 0:
            return
        app_id, tenant_id = str(claims.get("appid", "")), str(claims.get("tid", ""))
        decision = self.reports_limiter.take(app_id, tenant_id)
        if decision.allowed:
            return
        note["throttled"] = True
        raise GraphError(
            429,
            "TooManyRequests",
            "Please retry again later.",
            {
                "Retry-After": retry_after_header(decision.retry_after),
                "x-ms-throttle-scope": f"Tenant_Application/Read/{app_id}/{tenant_id}",
                "x-ms-throttle-information": "RequestLimitExceeded",
            },
        )

    def _throttle_writes(self, note: dict[str, Any], claims: dict[str, Any], cost: int) -> None:
        """The write quota (facts file §1): WriteLimitExceeded, scope …/Write/app/tenant."""
        faults = self.faults
        if faults.disable_throttling:
            return
        app_id, tenant_id = str(claims.get("appid", "")), str(claims.get("tid", ""))
        wait = self.write_limiter.take(app_id, tenant_id, faults.write_limit, faults.write_window_s)
        if wait is None:
            return
        note["throttled"] = True
        raise GraphError(
            429,
            "TooManyRequests",
            "Please retry again later.",
            {
                "Retry-After": retry_after_header(wait),
                "x-ms-throttle-scope": f"Tenant_Application/Write/{app_id}/{tenant_id}",
                "x-ms-throttle-information": "WriteLimitExceeded",
                "x-ms-resource-unit": str(cost),
            },
        )

    def _match(
        self, method: str, path: str
    ) -> tuple[Handler, dict[str, str], Callable[[Context], frozenset[str]]] | None:
        first = path.lstrip("/").split("/", 1)[0]
        routes = self._candidates.get((method, first))
        if routes is None:
            routes = [r for r in self._routes if r[0] == method and r[4] in (None, first)]
            if len(self._candidates) > 1024:  # unknown segments come from clients: bounded
                self._candidates.clear()
            self._candidates[(method, first)] = routes
        for _, regex, handler, needs, _ in routes:
            if m := regex.match(path):
                return handler, m.groupdict(), needs
        return None

    def _authenticate(self, request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        token = header[7:].strip()
        claims = self.issuer.verify(token, (GRAPH_RESOURCE, GRAPH_APP_ID))
        if claims is None:
            raise GraphError(401, "InvalidAuthenticationToken", self._why_invalid(token))
        return claims

    @staticmethod
    def _why_invalid(token: str) -> str:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return "IDX14100: JWT is not well formed, there are no dots (.)."
        if float(unverified.get("exp", 0)) < time.time():
            return "Lifetime validation failed, the token is expired."
        return "Access token validation failure. Invalid audience or signature."
