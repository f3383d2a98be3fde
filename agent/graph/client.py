"""GraphClient: Microsoft Graph reads and writes with paging, delta rounds, $batch, retries and
pacing.

Every request goes through ``_send``: it spends resource units from the shared budget (and, for
writes, a slot of the write quota), adds the bearer token and a ``client-request-id``, and
absorbs throttling (429), 503/504 and dropped connections. What it cannot absorb becomes an
``AgentError`` naming the request, never the token; refused writes name the read-only property,
the missing object or the missing permission (write_errors.py).
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import islice
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from agent.errors import AuthError, ConnectionFailed, GraphError, PermissionMissing
from agent.graph.budget import ResourceBudget, WriteBudget
from agent.graph.costs import estimate_cost
from agent.graph.pacing import PathPacer
from agent.graph.write_errors import write_error

BATCH_LIMIT = 20  # Graph rejects a $batch with more requests (facts file §1)
RETRYABLE = frozenset({429, 503, 504})
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# A stored delta link Graph no longer accepts: start a full round instead (facts file §2).
RESYNC_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
DENIED_CODES = frozenset({"authorization_requestdenied", "accessdenied", "forbidden"})
PERMISSION_FIX = (
    "Grant the app the Microsoft Graph application permission this read needs and give admin "
    "consent (Entra admin center > App registrations > API permissions)."
)


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_link: str | None
    delta_link: str | None
    raw: dict[str, Any]  # the response without "value": @odata.context, @odata.count, …


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


class GraphClient:
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
        self._batch_url = f"{self.root}/$batch"

    # -- public API ---------------------------------------------------------------------

    def get_json(
        self,
        path_or_url: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = self._send("GET", self._url(path_or_url), params=params, headers=headers)
        return self._json(response)

    def get_media(self, path: str) -> tuple[bytes, str] | None:
        """A stream property (e.g. a branding image): (bytes, content type), or None when it
        is not set — Graph answers 404 or, as documented for branding, 200 with ``{}``."""
        url = self._url(path)
        response = self._send("GET", url, headers={"Accept": "*/*"})
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise self._error(response, f"GET {_display(url)}")
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if not response.content or content_type == "application/json":
            return None
        return response.content, content_type or "application/octet-stream"

    def pages(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[Page]:
        """Every page of a collection; the nextLink is followed as-is with the same headers."""
        url: str | None = self._url(path)
        while url is not None:
            page = _page(self.get_json(url, params, headers))
            params = None  # the nextLink carries the query
            url = page.next_link
            yield page

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
        """A deltaLink for "now" without reading a single object: ``$deltatoken=latest``
        answers an empty page with only the deltaLink (facts file §2). A full read taken
        after it plus the changes from it later miss nothing."""
        query = {**(params or {}), "$deltatoken": "latest"}
        page = _page(self.get_json(path, query, headers))
        if page.delta_link is None:
            raise GraphError(
                f"Graph answered GET {path}?$deltatoken=latest without a deltaLink.",
                "Run the job again; if it persists, report it with the job log.",
            )
        return page.delta_link

    def batch(self, requests: Sequence[BatchRequest]) -> list[BatchResult]:
        """Results in request order; ≤ 20 per POST, throttled items retried on their own."""
        results: list[BatchResult] = []
        for start in range(0, len(requests), BATCH_LIMIT):
            results += self._batch_chunk(list(requests[start : start + BATCH_LIMIT]))
        return results

    def run_batches(
        self, requests: Iterable[BatchRequest], workers: int = 4
    ) -> Iterator[BatchResult]:
        """Send batches from several threads; results come as their batch finishes."""
        source = iter(requests)
        limit = max(workers, 1) * 2
        in_flight: set[Future[list[BatchResult]]] = set()
        executor = ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="graph-batch")
        try:
            while True:
                while len(in_flight) < limit:
                    chunk = list(islice(source, BATCH_LIMIT))
                    if not chunk:
                        break
                    in_flight.add(executor.submit(self._batch_chunk, chunk))
                if not in_flight:
                    return
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    yield from future.result()
        finally:
            for future in in_flight:
                future.cancel()
            executor.shutdown(wait=True, cancel_futures=True)

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
        url = self._url(path)
        response = self._send("PUT", url, data=data, headers={"Content-Type": content_type})
        if response.status_code >= 400:
            try:
                payload = response.json()
            except ValueError:
                payload = None
            raise write_error(
                "PUT", url, response.status_code, payload, response.headers.get("request-id", "")
            )

    def write_batch(self, requests: Sequence[BatchRequest]) -> list[BatchResult]:
        """Writes in $batch (20 a POST, each paced by the write quota); a refused item is a
        result with its status — ``batch_error`` turns it into the AgentError."""
        return self.batch(requests)

    @staticmethod
    def batch_error(request: BatchRequest, result: BatchResult) -> Exception | None:
        """The AgentError for a failed $batch item, None when it succeeded."""
        if result.status < 400:
            return None
        return write_error(request.method, request.url, result.status, result.body)

    def _write(self, method: str, path: str, body: Any) -> dict[str, Any]:
        url = self._url(path)
        response = self._send(method, url, json_body=body)
        if response.status_code >= 400:
            try:
                payload = response.json()
            except ValueError:
                payload = None
            raise write_error(
                method, url, response.status_code, payload, response.headers.get("request-id", "")
            )
        return self._json(response)

    # -- internals ----------------------------------------------------------------------

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("https://", "http://")):
            # Links come from Graph; never send our token anywhere else.
            if _origin(path_or_url) != self._origin:
                raise GraphError(
                    f"Graph returned a link to another host ({urlsplit(path_or_url).hostname}).",
                    "Check graph_url in the tenant's configuration.",
                )
            return path_or_url
        return f"{self.root}/{path_or_url.lstrip('/')}"

    def _send(
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
        what = f"{method} {_display(url)}"
        if writes is None:
            writes = int(method.upper() in WRITE_METHODS)
        if cost is None:
            full = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
            cost = estimate_cost(method, full)
        request_id = str(uuid.uuid4())
        attempts = 0
        token_refreshed = False
        while True:
            self.pacer.acquire(url)  # per-path rates; $batch items wait in _batch_chunk
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
                self.sleep(self._backoff(attempts))
                continue

            units = _int_header(response.headers.get("x-ms-resource-unit"))
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
                raise _graph_error(response, what, f"still failing after {attempts} attempts")
            self.stats.add(retries=1)
            delay = _retry_after(response.headers.get("Retry-After"))
            if delay is None:
                delay = self._backoff(attempts)
            if status == 429 and not self.pacer.pause(url, delay):
                self._pause(response.headers, delay)  # every thread on this tenant waits
            self.sleep(delay)

    def _pause(self, headers: Any, delay: float) -> None:
        """A 429 pauses the quota it names: the write quota (WriteLimitExceeded or a
        …/Write/… scope) or the resource-unit budget."""
        info = f"{_header(dict(headers), 'x-ms-throttle-information') or ''}"
        scope = _header(dict(headers), "x-ms-throttle-scope") or ""
        if self.write_budget is not None and ("Write" in info or "/Write/" in scope):
            self.write_budget.pause(delay)
        elif self.budget is not None:
            self.budget.pause(delay)

    def _json(self, response: requests.Response) -> dict[str, Any]:
        what = f"{response.request.method} {_display(response.url)}"
        if response.status_code >= 400:
            raise self._error(response, what)
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError:
            raise GraphError(
                f"Graph answered {what} with a body that is not JSON.",
                "Check graph_url: it must point at Microsoft Graph, not a proxy page.",
                status=response.status_code,
            ) from None
        if not isinstance(data, dict):
            raise GraphError(
                f"Graph answered {what} with unexpected JSON.", "", status=response.status_code
            )
        return data

    def _error(self, response: requests.Response, what: str) -> Exception:
        code, message, _ = _error_parts(response)
        status = response.status_code
        # PIM wraps its own error in the message: {"errorCode":"PermissionScopeNotGranted",…}
        if status == 403 and (
            code.lower() in DENIED_CODES or "PermissionScopeNotGranted" in message
        ):
            return PermissionMissing(
                f"Graph denied {what} (403 {code}: {message.rstrip('.')}).", PERMISSION_FIX
            )
        if status == 401:
            return AuthError(
                f"Graph rejected the access token for {what} (401 {code}: {message.rstrip('.')}).",
                "Check tenant_id and the app's credentials, and that the token is issued for "
                "Microsoft Graph.",
            )
        return _graph_error(response, what)

    def _backoff(self, attempt: int) -> float:
        # Full jitter: spreads retries of many workers instead of synchronising them.
        return random.uniform(0, min(self.max_backoff_s, 0.5 * 2**attempt))

    def _batch_chunk(self, chunk: list[BatchRequest]) -> list[BatchResult]:
        # Wire ids are positions: callers' ids need not be unique or short.
        pending = {str(i): req for i, req in enumerate(chunk)}
        attempts = dict.fromkeys(pending, 0)
        results: dict[str, BatchResult] = {}
        url = self._batch_url
        while pending:
            for req in pending.values():  # items under a per-path rate wait for their slot
                self.pacer.acquire(req.url)
            body = {"requests": [_batch_item(wid, req) for wid, req in pending.items()]}
            cost = sum(estimate_cost(r.method, r.url) for r in pending.values())
            writes = sum(r.method.upper() in WRITE_METHODS for r in pending.values())
            response = self._send(
                "POST", url, json_body=body, cost=cost, item_units=_batch_units, writes=writes
            )
            data = self._json(response)
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
                if status in RETRYABLE and attempts[wid] < self.max_retries:
                    attempts[wid] += 1
                    self.stats.add(
                        retries=1, throttled=int(status == 429), server_errors=int(status != 429)
                    )
                    delay = _retry_after(_header(headers, "Retry-After"))
                    delay = self._backoff(attempts[wid]) if delay is None else delay
                    paced = status == 429 and self.pacer.pause(pending[wid].url, delay)
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
                if attempts[wid] > self.max_retries:
                    raise GraphError(
                        f"Graph's $batch answer kept leaving out {pending[wid].method} "
                        f"{pending[wid].url}.",
                        "Run the job again; if it persists, report it with the job log.",
                    )
            if pending and delays:
                delay = max(delays)
                if throttled is not None:
                    self._pause(throttled, delay)
                self.sleep(delay)
        return [results[str(i)] for i in range(len(chunk))]


class DeltaRound:
    """One delta round: a full sync or the changes since a stored delta link."""

    def __init__(
        self,
        client: GraphClient,
        path: str,
        params: dict[str, Any] | None,
        delta_link: str | None,
        headers: dict[str, str] | None,
    ) -> None:
        self._client = client
        self._path = path
        self._params = params
        self._stored = delta_link
        self._headers = headers
        self.full = delta_link is None
        self.delta_link: str | None = None

    def pages(self) -> Iterator[Page]:
        client = self._client
        url: str | None
        if self._stored is not None:
            url, params = client._url(self._stored), None
        else:
            url, params = client._url(self._path), self._params
        first = True
        while url is not None:
            response = client._send("GET", url, params=params, headers=self._headers)
            if first and not self.full and _rejects_delta(response):
                # The stored position is gone: resync in full, transparently for the caller.
                self.full = True
                location = response.headers.get("Location")
                if response.status_code == 410 and location:
                    url, params = client._url(urljoin(url, location)), None
                else:
                    url, params = client._url(self._path), self._params
                continue
            page = _page(client._json(response))
            first = False
            params = None
            url = page.next_link
            if page.delta_link is not None:
                self.delta_link = page.delta_link
            yield page


# -- helpers ------------------------------------------------------------------------------


def _page(data: dict[str, Any]) -> Page:
    items = data.get("value")
    raw = {k: v for k, v in data.items() if k != "value"}
    return Page(
        items=items if isinstance(items, list) else [],
        next_link=raw.get("@odata.nextLink"),
        delta_link=raw.get("@odata.deltaLink"),
        raw=raw,
    )


def _rejects_delta(response: requests.Response) -> bool:
    if response.status_code == 410:
        return True
    if 400 <= response.status_code < 500:
        return _error_parts(response)[0].lower() in RESYNC_CODES
    return False


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


def _batch_units(response: requests.Response) -> int | None:
    """RU of a $batch: the sum of the items' x-ms-resource-unit headers."""
    try:
        items = response.json().get("responses") or []
    except (ValueError, AttributeError):
        return None
    units = [_int_header(_header(i.get("headers") or {}, "x-ms-resource-unit")) for i in items]
    known = [u for u in units if u is not None]
    return sum(known) if known else None


def _graph_error(response: requests.Response, what: str, detail: str = "") -> GraphError:
    code, message, request_id = _error_parts(response)
    status = response.status_code
    text = f"Graph answered {what} with {status}"
    text += f" {code}: {message.rstrip('.')}" if code or message else ""
    text += f" ({detail})." if detail else "."
    fixes = {
        404: "The object may have been deleted since it was listed (run the job again), "
        "or graph_url does not point at Microsoft Graph.",
        429: "Graph kept throttling this app; run the job later or lower its concurrency.",
        400: "This is a request the agent should not send; report it with the job log.",
    }
    fix = fixes.get(status, "Retry later; if it persists, report it with the request id.")
    return GraphError(text, fix, status=status, graph_code=code, request_id=request_id)


def _error_parts(response: requests.Response) -> tuple[str, str, str]:
    """(code, message, request id) of a Graph error body; blanks when absent."""
    code = message = ""
    request_id = response.headers.get("request-id", "")
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if isinstance(error, dict):
        code = str(error.get("code") or "")
        message = str(error.get("message") or "")
        inner = error.get("innerError") or error.get("innererror") or {}
        if isinstance(inner, dict):
            request_id = str(inner.get("request-id") or request_id)
    return code, message, request_id


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number (Graph sends e.g. "2.128") or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _header(headers: dict[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _display(url: str) -> str:
    """The request path for messages: no host, no query (skip tokens are long and opaque)."""
    return urlsplit(url).path or url


def _reason(exc: Exception) -> str:
    # requests nests the root cause several levels deep; the innermost says what happened.
    cause: BaseException = exc
    while cause.args and isinstance(cause.args[0], BaseException):
        cause = cause.args[0]
    reason = getattr(cause, "reason", None)
    return str(reason or cause)[:200]
