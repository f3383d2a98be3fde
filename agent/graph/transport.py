"""One Graph request with everything around it: the shared resource-unit budget and write
quota, per-path pacing, the bearer token and a ``client-request-id``, and retries of throttling
(429), 503/504 and dropped connections with Retry-After or full-jitter backoff. Whatever it
cannot absorb is returned (an error status) or raised as ConnectionFailed / GraphError naming
the request, never the token. GraphClient (client.py) builds its operations on top of it."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from agent.errors import ConnectionFailed, GraphError
from agent.graph.budget import ResourceBudget, WriteBudget
from agent.graph.costs import estimate_cost
from agent.graph.pacing import PathPacer
from agent.graph.responses import display, graph_error, header, int_header, retry_after

RETRYABLE = frozenset({429, 503, 504})
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass
class GraphStats:
    """Counters shared by every thread using one client."""

    requests: int = 0
    resource_units: int = 0
    throttled: int = 0
    retries: int = 0
    server_errors: int = 0
    bytes_received: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> GraphStats:
        with self._lock:
            values = self._values()
        return GraphStats(
            requests=values["requests"],
            resource_units=values["resource_units"],
            throttled=values["throttled"],
            retries=values["retries"],
            server_errors=values["server_errors"],
            bytes_received=values["bytes_received"],
        )

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return self._values()

    def _values(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _STAT_NAMES}


_STAT_NAMES = (
    "requests",
    "resource_units",
    "throttled",
    "retries",
    "server_errors",
    "bytes_received",
)


class GraphTransport:
    def __init__(
        self,
        base_url: str,
        session: requests.Session,
        token: Callable[[], str],
        budget: ResourceBudget | None = None,
        *,
        api_version: str = "v1.0",
        max_retries: int = 8,
        timeout: tuple[float, float] = (10, 120),
        max_backoff_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        write_budget: WriteBudget | None = None,
        pacer: PathPacer | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.root = f"{self.base_url}/{api_version}"
        self.session = session
        self.token = token
        self.budget = budget
        self.write_budget = write_budget
        self.max_retries = max_retries
        self.timeout = timeout
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep
        self.pacer = pacer or PathPacer(sleep=sleep)  # per-path rates (conditional access)
        self.stats = GraphStats()
        parts = urlsplit(self.base_url)
        self.host = parts.hostname or self.base_url
        self._origin = _origin(self.base_url)

    def resolve(self, path_or_url: str) -> str:
        """The full URL of a path under the version root, or a link Graph gave as it is."""
        if path_or_url.startswith(("https://", "http://")):
            # Links come from Graph; never send our token anywhere else.
            if _origin(path_or_url) != self._origin:
                raise GraphError(
                    f"Graph returned a link to another host ({urlsplit(path_or_url).hostname}).",
                    "Check graph_url in the tenant's configuration.",
                )
            return path_or_url
        return f"{self.root}/{path_or_url.lstrip('/')}"

    def send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        cost: int | None = None,
        item_units: Callable[[requests.Response], int | None] | None = None,
        writes: int | None = None,
    ) -> requests.Response:
        """One request with retries; returns the final response, whatever its status.
        ``writes``: write-quota slots it takes (default: 1 for POST/PATCH/PUT/DELETE)."""
        what = f"{method} {display(url)}"
        if writes is None:
            writes = int(method.upper() in WRITE_METHODS)
        if cost is None:
            full = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
            cost = estimate_cost(method, full)
        request_id = str(uuid.uuid4())
        attempts = 0
        token_refreshed = False
        while True:
            self.pacer.acquire(url)  # per-path rates; $batch items wait in batch.send_chunk
            if self.budget is not None:
                self.budget.acquire(cost)
            if writes and self.write_budget is not None:
                self.write_budget.acquire(writes)
            send_headers = {
                "Accept": "application/json",
                **(headers or {}),
                "Authorization": f"Bearer {self.token()}",
                "client-request-id": request_id,
            }
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    headers=send_headers,
                    json=json_body,
                    data=data,
                    timeout=self.timeout,
                )
                content = response.content  # read here so a reset mid-body is retried too
            except requests.exceptions.SSLError as exc:
                raise ConnectionFailed(
                    f"TLS verification failed for {self.host} ({_reason(exc)}).",
                    "If this host presents a certificate from a private or TLS-inspection CA, "
                    "set ca_bundle for this tenant to that CA's PEM file; otherwise check the "
                    "proxy and the system clock.",
                ) from None
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,  # body cut off mid-stream
            ) as exc:
                attempts += 1
                if attempts > self.max_retries:
                    raise ConnectionFailed(
                        f"Could not reach {self.host} for {what} after {attempts} attempts "
                        f"({_reason(exc)}).",
                        "Check DNS, the firewall and proxy rules for this host, and graph_url "
                        "in the tenant's configuration.",
                    ) from None
                self.stats.add(retries=1)
                self.sleep(self.backoff(attempts))
                continue

            units = int_header(response.headers.get("x-ms-resource-unit"))
            if item_units is not None:
                units = item_units(response)
            self.stats.add(
                requests=1,
                bytes_received=len(content),
                resource_units=cost if units is None else units,
            )
            status = response.status_code
            if status == 401 and not token_refreshed:
                token_refreshed = True  # the token may just have expired: fetch it again once
                self.stats.add(retries=1)
                continue
            if status not in RETRYABLE:
                self.stats.add(server_errors=int(status >= 500))
                if self.budget is not None:
                    self.budget.settle(cost, units)
                return response
            attempts += 1
            self.stats.add(throttled=int(status == 429), server_errors=int(status != 429))
            if attempts > self.max_retries:
                raise graph_error(response, what, f"still failing after {attempts} attempts")
            self.stats.add(retries=1)
            delay = retry_after(response.headers.get("Retry-After"))
            if delay is None:
                delay = self.backoff(attempts)
            if status == 429 and not self.pacer.pause(url, delay):
                self.pause_quota(response.headers, delay)  # every thread on this tenant waits
            self.sleep(delay)

    def pause_quota(self, headers: Any, delay: float) -> None:
        """A 429 pauses the quota it names: the write quota (WriteLimitExceeded or a
        …/Write/… scope) or the resource-unit budget."""
        info = f"{header(dict(headers), 'x-ms-throttle-information') or ''}"
        scope = header(dict(headers), "x-ms-throttle-scope") or ""
        if self.write_budget is not None and ("Write" in info or "/Write/" in scope):
            self.write_budget.pause(delay)
        elif self.budget is not None:
            self.budget.pause(delay)

    def backoff(self, attempt: int) -> float:
        # Full jitter: spreads retries of many workers instead of synchronising them.
        return random.uniform(0, min(self.max_backoff_s, 0.5 * 2**attempt))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _reason(exc: Exception) -> str:
    # requests nests the root cause several levels deep; the innermost says what happened.
    cause: BaseException = exc
    while cause.args and isinstance(cause.args[0], BaseException):
        cause = cause.args[0]
    reason = getattr(cause, "reason", None)
    return str(reason or cause)[:200]
