"""GraphClient, ResourceBudget and request costs against real HTTPS servers.

Each test serves the Graph behaviour it needs (paging, throttling, delta, $batch) from a
loopback HTTPS server with a throwaway CA, and talks to it through a real ``requests.Session``.
Only ``sleep`` (and the budget's clock) are injected, so retries do not really wait.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from agent.errors import AuthError, ConnectionFailed, GraphError, PermissionMissing
from agent.graph.budget import ResourceBudget
from agent.graph.client import BatchRequest, GraphClient
from agent.graph.costs import estimate_cost
from agent.graph.pacing import MARGIN, PathPacer
from agent.simulator.ca import TlsMaterial, generate
from agent.simulator.httpserver import DropConnection, HttpsServer, Request, Response, Router

# -- fixtures and a faithful-enough Graph -------------------------------------------------


@pytest.fixture(scope="module")
def tls() -> TlsMaterial:
    return generate()


@pytest.fixture(scope="module")
def ca_file(tls: TlsMaterial, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    path.write_bytes(tls.ca_pem)
    return path


@pytest.fixture
def router() -> Router:
    return Router()


@pytest.fixture
def server(router: Router, tls: TlsMaterial) -> Iterator[HttpsServer]:
    with HttpsServer(router, tls) as srv:
        yield srv
    assert srv.errors == []


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


# -- paging --------------------------------------------------------------------------------


def test_pages_follow_next_links_and_resend_headers(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    seen: list[Request] = []
    serve_users(router, total=1234, page_size=50, seen=seen)
    client = make_client(server, ca_file)
    params = {"$select": "id,displayName", "$count": "true"}

    pages = client.pages("/users", params, {"ConsistencyLevel": "eventual"})
    first = next(pages)
    assert len(seen) == 1  # a generator: nothing is read ahead
    assert first.raw["@odata.count"] == 1234 and "value" not in first.raw
    rest = list(pages)

    ids = [u["id"] for page in [first, *rest] for u in page.items]
    assert ids == [f"user-{i}" for i in range(1234)]
    assert len(seen) == 25 and rest[-1].next_link is None
    assert seen[0].query["$select"] == ["id,displayName"]
    for request in seen:
        assert request.headers["consistencylevel"] == "eventual"
        assert request.headers["authorization"] == "Bearer token-1"
        uuid.UUID(request.headers["client-request-id"])
    assert client.stats.requests == 25 and client.stats.resource_units == 25
    assert client.stats.bytes_received > 0


def test_get_json_accepts_absolute_links_only_for_the_graph_host(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    router.add("GET", "/v1.0/organization", lambda r: Response.json({"value": [{"id": "t1"}]}))
    client = make_client(server, ca_file)
    assert client.get_json(f"{server.base_url}/v1.0/organization")["value"] == [{"id": "t1"}]
    with pytest.raises(GraphError, match="another host"):
        client.get_json("https://evil.example/v1.0/organization")


# -- retries -------------------------------------------------------------------------------


def test_429_with_retry_after_is_absorbed(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    inner = fail_first(2, throttled, ok_users)
    request_ids: list[str] = []

    def handler(request: Request) -> Response:
        request_ids.append(request.headers["client-request-id"])
        return inner(request)

    router.add("GET", "/v1.0/users", handler)
    sleeps = Sleeps()
    client = make_client(server, ca_file, sleeps)
    page = next(client.pages("/users"))
    assert [u["id"] for u in page.items] == ["user-0", "user-1", "user-2"]
    assert sleeps.calls == [2.128, 2.128]
    stats = client.stats.snapshot()
    assert (stats.requests, stats.throttled, stats.retries) == (3, 2, 2)
    # One client-request-id for the request and its retries: support can follow it.
    assert len(request_ids) == 3 and len(set(request_ids)) == 1


def test_retry_after_as_http_date(server: HttpsServer, router: Router, ca_file: Path) -> None:
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    router.add("GET", "/v1.0/users", fail_first(1, lambda: throttled(when), ok_users))
    sleeps = Sleeps()
    make_client(server, ca_file, sleeps).get_json("/users")
    assert len(sleeps.calls) == 1 and 25 <= sleeps.calls[0] <= 31


def test_429_without_retry_after_backs_off_exponentially(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    router.add("GET", "/v1.0/users", fail_first(5, lambda: throttled(None), ok_users))
    sleeps = Sleeps()
    client = make_client(server, ca_file, sleeps, max_backoff_s=3.0)
    assert len(client.get_json("/users")["value"]) == 3
    assert len(sleeps.calls) == 5
    # Full jitter: each wait lies in [0, min(cap, 0.5 * 2**attempt)].
    for attempt, waited in enumerate(sleeps.calls, start=1):
        assert 0 <= waited <= min(3.0, 0.5 * 2**attempt)
    assert client.stats.throttled == 5


def test_503_and_504_then_success(server: HttpsServer, router: Router, ca_file: Path) -> None:
    failures = iter(
        [
            graph_error(503, "serviceNotAvailable", "Service unavailable.", {"Retry-After": "1"}),
            graph_error(504, "UnknownError", "Gateway timeout."),
        ]
    )
    router.add("GET", "/v1.0/users", fail_first(2, lambda: next(failures), ok_users))
    sleeps = Sleeps()
    client = make_client(server, ca_file, sleeps)
    assert len(client.get_json("/users")["value"]) == 3
    assert sleeps.calls[0] == 1.0 and len(sleeps.calls) == 2
    assert client.stats.server_errors == 2 and client.stats.throttled == 0


def test_connection_reset_is_retried(server: HttpsServer, router: Router, ca_file: Path) -> None:
    def drop() -> Response:
        raise DropConnection()

    router.add("GET", "/v1.0/users", fail_first(1, drop, ok_users))
    client = make_client(server, ca_file)
    assert len(client.get_json("/users")["value"]) == 3
    assert client.stats.retries == 1


def test_body_cut_off_mid_stream_is_retried(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    def truncated() -> Response:
        body = b'{"value":[{"id":"user-0"},{"id":"us'
        # Promise more than is sent, then close: the client sees the stream end early.
        return Response(
            200,
            body,
            {"Content-Type": "application/json", "Content-Length": "4096", "Connection": "close"},
        )

    router.add("GET", "/v1.0/users", fail_first(1, truncated, ok_users))
    client = make_client(server, ca_file)
    assert [u["id"] for u in client.get_json("/users")["value"]] == ["user-0", "user-1", "user-2"]
    assert client.stats.retries == 1


def test_persistent_429_names_the_path(server: HttpsServer, router: Router, ca_file: Path) -> None:
    router.add("GET", "/v1.0/groups/{id}/members", lambda r: throttled("1"))
    client = make_client(server, ca_file, max_retries=3)
    with pytest.raises(GraphError) as caught:
        list(client.pages("/groups/g1/members", {"$select": "id"}))
    error = caught.value
    assert "/v1.0/groups/g1/members" in error.message and "token-1" not in str(error)
    assert error.status == 429 and error.graph_code == "TooManyRequests"
    assert error.request_id == "9f3e8c1a-0000-4000-8000-000000000001"
    assert len(server.log.items()) == 4 and client.stats.throttled == 4


def test_403_is_permission_missing(server: HttpsServer, router: Router, ca_file: Path) -> None:
    router.add(
        "GET",
        "/v1.0/applications",
        lambda r: graph_error(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        ),
    )
    with pytest.raises(PermissionMissing) as caught:
        make_client(server, ca_file).get_json("/applications")
    assert "/v1.0/applications" in caught.value.message
    assert "admin consent" in caught.value.fix


def test_404_and_400_carry_graphs_code(server: HttpsServer, router: Router, ca_file: Path) -> None:
    router.add(
        "GET",
        "/v1.0/groups/{id}",
        lambda r: graph_error(
            404, "Request_ResourceNotFound", f"Resource '{r.params['id']}' does not exist."
        ),
    )
    router.add(
        "GET",
        "/v1.0/users",
        lambda r: graph_error(
            400,
            "Request_UnsupportedQuery",
            "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive.",
        ),
    )
    client = make_client(server, ca_file)
    with pytest.raises(GraphError) as missing:
        client.get_json("/groups/gone")
    assert missing.value.status == 404 and missing.value.graph_code == "Request_ResourceNotFound"
    with pytest.raises(GraphError) as bad:
        client.get_json("/users", {"$top": "1000"})
    assert bad.value.status == 400 and bad.value.graph_code == "Request_UnsupportedQuery"
    assert "Invalid page size" in bad.value.message


def test_401_refreshes_the_token_once(server: HttpsServer, router: Router, ca_file: Path) -> None:
    tokens = iter(["expired", "fresh", "stale", "stale-again"])
    issued: list[str] = []

    def token() -> str:
        issued.append(next(tokens))
        return issued[-1]

    def handler(request: Request) -> Response:
        if request.headers["authorization"] != "Bearer fresh":
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )
        return ok_users(request)

    router.add("GET", "/v1.0/users", handler)
    client = GraphClient(server.base_url, session_for(ca_file), token, sleep=Sleeps())
    assert len(client.get_json("/users")["value"]) == 3
    assert issued == ["expired", "fresh"]
    router.add(
        "GET",
        "/v1.0/me",
        lambda r: graph_error(401, "InvalidAuthenticationToken", "Access token is empty."),
    )
    with pytest.raises(AuthError, match=r"/v1\.0/me"):
        client.get_json("/me")


def test_untrusted_certificate_points_at_ca_bundle(
    server: HttpsServer, router: Router, tmp_path: Path
) -> None:
    router.add("GET", "/v1.0/users", ok_users)
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(generate().ca_pem)
    client = make_client(server, other_ca)
    with pytest.raises(ConnectionFailed) as caught:
        client.get_json("/users")
    assert "127.0.0.1" in caught.value.message
    assert "ca_bundle" in caught.value.fix


def test_connection_refused_names_the_host(ca_file: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once closed: nothing listens there
    sleeps = Sleeps()
    client = GraphClient(
        f"https://127.0.0.1:{port}", session_for(ca_file), lambda: "t", sleep=sleeps, max_retries=2
    )
    with pytest.raises(ConnectionFailed) as caught:
        client.get_json("/users")
    assert "127.0.0.1" in caught.value.message and "3 attempts" in caught.value.message
    assert len(sleeps.calls) == 2


# -- delta ---------------------------------------------------------------------------------


class DeltaGraph:
    """/v1.0/users/delta with skip tokens, delta tokens, expiry and forced resync."""

    def __init__(self, router: Router, total: int = 7, page_size: int = 3) -> None:
        self.total = total
        self.page_size = page_size
        self.changes: dict[str, list[dict[str, Any]]] = {}  # delta token → changed users
        self.expired: set[str] = set()
        self.resync: set[str] = set()
        self.requests: list[Request] = []
        router.add("GET", "/v1.0/users/delta", self.handle)

    def handle(self, request: Request) -> Response:
        self.requests.append(request)
        base = f"{request.base_url}/v1.0/users/delta"
        token = request.arg("$deltatoken")
        if token in self.expired:
            return graph_error(
                400, "syncStateNotFound", "The sync state was not found or has expired."
            )
        if token in self.resync:
            return Response.json(
                {"error": {"code": "resyncRequired", "message": "Resync required."}},
                410,
                {"Location": f"{base}?$deltatoken="},
            )
        if token:  # an incremental round: what changed since the token
            return Response.json(
                {
                    "value": self.changes.get(token, []),
                    "@odata.deltaLink": f"{base}?$deltatoken={token}-next",
                }
            )
        start = int(request.arg("$skiptoken") or 0)
        body: dict[str, Any] = {"value": users(start, min(self.page_size, self.total - start))}
        if start + self.page_size < self.total:
            body["@odata.nextLink"] = f"{base}?$skiptoken={start + self.page_size}"
        else:
            body["@odata.deltaLink"] = f"{base}?$deltatoken=T1"
        return Response.json(body)


def test_delta_full_round_then_continued_round(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    graph = DeltaGraph(router)
    graph.changes["T1"] = [
        {"id": "user-2", "displayName": "Renamed"},
        {"id": "user-5", "@removed": {"reason": "changed"}},
    ]
    client = make_client(server, ca_file)

    full = client.delta("/users/delta", {"$select": "id,displayName"})
    assert full.full
    pages = list(full.pages())
    assert [len(p.items) for p in pages] == [3, 3, 1]
    assert pages[-1].delta_link == full.delta_link and full.delta_link is not None
    assert graph.requests[0].query["$select"] == ["id,displayName"]

    continued = client.delta(
        "/users/delta", {"$select": "id,displayName"}, delta_link=full.delta_link
    )
    assert not continued.full
    items = [i for p in continued.pages() for i in p.items]
    assert not continued.full
    assert items[1]["@removed"] == {"reason": "changed"}
    assert continued.delta_link is not None and continued.delta_link.endswith("T1-next")


def test_delta_410_gone_restarts_full_from_location(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    graph = DeltaGraph(router)
    graph.resync.add("OLD")
    client = make_client(server, ca_file)
    round_ = client.delta(
        "/users/delta",
        {"$select": "id"},
        delta_link=f"{server.base_url}/v1.0/users/delta?$deltatoken=OLD",
    )
    pages = round_.pages()
    first = next(pages)
    assert round_.full  # known once the first page is out
    ids = [u["id"] for p in [first, *pages] for u in p.items]
    assert ids == [f"user-{i}" for i in range(7)]
    assert graph.requests[1].raw_query == "$deltatoken="  # the Location link, as-is
    assert round_.delta_link is not None and round_.delta_link.endswith("$deltatoken=T1")


def test_delta_sync_state_not_found_restarts_with_the_original_query(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    graph = DeltaGraph(router)
    graph.expired.add("STALE")
    client = make_client(server, ca_file)
    round_ = client.delta(
        "/users/delta",
        {"$select": "id,displayName"},
        delta_link=f"{server.base_url}/v1.0/users/delta?$deltatoken=STALE",
    )
    items = [i for p in round_.pages() for i in p.items]
    assert round_.full and len(items) == 7
    assert graph.requests[1].query == {"$select": ["id,displayName"]}


def test_delta_error_in_a_full_round_is_raised(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    router.add("GET", "/v1.0/users/delta", lambda r: graph_error(400, "syncStateNotFound", "gone"))
    round_ = make_client(server, ca_file).delta("/users/delta")
    with pytest.raises(GraphError, match="syncStateNotFound"):
        list(round_.pages())


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
    results = list(client.run_batches(source(), workers=workers))
    assert sorted(r.id for r in results) == sorted(f"g{i}" for i in range(600))
    assert max(ahead) <= workers * 2 * 20
    assert graph.max_active <= workers
    assert len(graph.envelopes) == 30


def test_run_batches_can_be_abandoned(server: HttpsServer, router: Router, ca_file: Path) -> None:
    BatchGraph(router, owners_answer)
    stream = make_client(server, ca_file).run_batches(iter(owner_requests(200)), workers=2)
    assert next(stream).status == 200
    assert isinstance(stream, Generator)  # so it can be closed early
    stream.close()  # cancels what has not started and waits for the rest


# -- pacing --------------------------------------------------------------------------------


def test_budget_blocks_for_the_simulated_refill_time() -> None:
    clock = FakeClock()
    budget = ResourceBudget(1000, window_s=10.0, target=0.95, clock=clock.clock, sleep=clock.sleep)
    assert budget.capacity == pytest.approx(950) and budget.rate == pytest.approx(95)
    budget.acquire(950)
    assert clock.sleeps == []
    budget.acquire(190)  # 190 RU at 95 RU/s: two seconds
    assert sum(clock.sleeps) == pytest.approx(2.0)
    assert budget.spent == 1140
    # Graph said the request cost more than estimated: the difference is paid back first.
    budget.settle(estimated=1, actual=96)
    before = clock.now
    budget.acquire(1)
    assert clock.now - before == pytest.approx(96 / 95, rel=0.01)
    assert budget.spent == 1140 + 95 + 1


def test_budget_request_dearer_than_the_bucket_waits_for_a_full_bucket() -> None:
    clock = FakeClock()
    budget = ResourceBudget(100, window_s=10.0, target=1.0, clock=clock.clock, sleep=clock.sleep)
    budget.acquire(100)
    budget.acquire(250)
    assert sum(clock.sleeps) == pytest.approx(10.0)


def test_budget_pause_blocks_everyone_and_lowers_the_rate() -> None:
    clock = FakeClock()
    budget = ResourceBudget(3500, clock=clock.clock, sleep=clock.sleep)
    rate = budget.rate
    budget.pause(2.5)
    budget.pause(1.0)  # a second 429 of the same episode: no extra cut, no shorter pause
    assert budget.rate == pytest.approx(rate * 0.8)
    budget.acquire(1)
    assert clock.now == pytest.approx(1002.5)
    for _ in range(100):
        budget.settle(1, 1)  # clean responses win the rate back slowly
    assert budget.rate == pytest.approx(rate)


def test_budget_pause_holds_other_threads_in_real_time() -> None:
    budget = ResourceBudget.for_tenant_size("S")
    budget.pause(0.3)
    waited: list[float] = []

    def worker() -> None:
        started = time.monotonic()
        budget.acquire(1)
        waited.append(time.monotonic() - started)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(waited) == 3 and min(waited) >= 0.25


def test_budget_sizes() -> None:
    assert ResourceBudget.for_tenant_size("S").ru_per_window == 3500
    assert ResourceBudget.for_tenant_size("m").ru_per_window == 5000
    assert ResourceBudget.for_tenant_size("L").ru_per_window == 8000
    with pytest.raises(ValueError):
        ResourceBudget.for_tenant_size("XL")


def test_client_throttle_pauses_the_shared_budget(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    router.add("GET", "/v1.0/users", fail_first(1, lambda: throttled("4"), ok_users))
    clock = FakeClock()
    budget = ResourceBudget(5000, clock=clock.clock, sleep=clock.sleep)
    client = make_client(server, ca_file, budget=budget)
    client.get_json("/users", {"$select": "id"})
    assert budget.paused_until == pytest.approx(1004.0)
    assert budget.throttles == 1
    # Another worker on the same tenant waits out the pause before its request.
    other = make_client(server, ca_file, budget=budget)
    other.get_json("/users")
    assert clock.now >= 1004.0


def test_budget_settles_with_the_resource_unit_header(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    router.add(
        "GET",
        "/v1.0/groups/{id}/transitiveMembers",
        lambda r: Response.json({"value": []}, headers={"x-ms-resource-unit": "4"}),
    )
    budget = ResourceBudget(5000)
    client = make_client(server, ca_file, budget=budget)
    client.get_json("/groups/g1/transitiveMembers", {"$select": "id"})  # estimated 5 - 1
    client.get_json("/groups/g1/transitiveMembers")  # estimated 5, Graph says 4
    assert budget.spent == 8 and client.stats.resource_units == 8


# -- costs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "cost"),
    [
        ("GET", "/users", 2),
        ("GET", "/users?$select=id,displayName&$top=999", 1),
        ("GET", "/users/u1?$expand=manager", 3),
        ("GET", "/applications", 2),
        ("GET", "/applications/a1/extensionProperties", 2),
        ("GET", "/groups", 1),
        ("GET", "/groups/g1/members", 3),
        ("GET", "/groups/g1/members?$select=id", 2),
        ("GET", "/groups/g1/members/microsoft.graph.user?$select=id", 2),
        ("GET", "/groups/g1/transitiveMembers", 5),
        ("GET", "/users/u1/memberOf", 2),
        ("GET", "/users/u1/transitiveMemberOf?$top=10", 1),
        ("GET", "/users/u1/licenseDetails", 2),
        ("GET", "/users/u1/ownedObjects", 2),
        ("GET", "/oauth2PermissionGrants", 2),
        ("GET", "/servicePrincipals/s1/appRoleAssignments", 2),
        ("GET", "/subscribedSkus", 3),
        ("POST", "/directoryObjects/getByIds", 5),
        ("GET", "/users/delta?$select=id", 1),
        ("GET", "https://graph.microsoft.com/v1.0/users/delta()?$skiptoken=abc", 1),
        ("GET", "https://graph.microsoft.com/v1.0/users?%24select=id&%24skiptoken=x", 1),
        ("GET", "https://graph.microsoft.com/v1.0/groups/g1/members?$top=5&$select=id", 1),
        ("PATCH", "/users/u1", 1),
        ("POST", "/groups/g1/members/$ref", 1),
        ("GET", "/organization", 1),
    ],
)
def test_estimate_cost_follows_the_documented_table(method: str, url: str, cost: int) -> None:
    assert estimate_cost(method, url) == cost


# -- per-path request rates ----------------------------------------------------------------


def test_conditional_access_paths_are_paced_to_their_own_rate() -> None:
    clock = FakeClock()
    pacer = PathPacer(clock=clock.clock, sleep=clock.sleep)
    pacer.acquire("https://graph.example/v1.0/identity/conditionalAccess/policies")
    pacer.acquire("/identity/conditionalAccess/namedLocations")  # the same tenant-wide limit
    pacer.acquire("https://graph.example/v1.0/IDENTITY/conditionalaccess/policies?$skiptoken=x")
    assert clock.sleeps == pytest.approx([MARGIN, MARGIN])
    pacer.acquire("https://graph.example/v1.0/users")  # other paths never wait
    pacer.acquire("/policies/authorizationPolicy")
    assert len(clock.sleeps) == 2
    assert pacer.pause("/identity/conditionalAccess/policies", 5.0)
    assert not pacer.pause("/users", 5.0)
    before = clock.now
    pacer.acquire("/identity/conditionalAccess/policies")
    assert clock.now - before == pytest.approx(5.0)


def test_a_429_on_a_paced_path_waits_for_that_path_only(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    path = "/v1.0/identity/conditionalAccess/policies"
    router.add("GET", path, fail_first(1, lambda: throttled("1"), ok_users))
    budget = ResourceBudget(3500)
    sleeps = Sleeps()
    client = make_client(server, ca_file, sleeps, budget=budget)
    assert len(client.get_json("/identity/conditionalAccess/policies")["value"]) == 3
    assert sleeps.calls[0] == 1.0 and client.stats.throttled == 1
    assert budget.throttles == 0  # the resource-unit budget of the other kinds is untouched
