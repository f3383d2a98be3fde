"""GraphClient requests against a real loopback HTTPS server: paging, retries (429 with and
without Retry-After, 5xx, cut connections), error mapping (401/403/404/400) and TLS trust.

Only ``sleep`` is injected, so retries do not really wait.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from agent.errors import AuthError, ConnectionFailed, GraphError, PermissionMissing
from agent.graph.client import GraphClient
from agent.simulator.ca import generate
from agent.simulator.httpserver import DropConnection, HttpsServer, Request, Response, Router
from tests.graph_client_helpers import (
    Sleeps,
    fail_first,
    graph_error,
    make_client,
    ok_users,
    serve_users,
    session_for,
    throttled,
)

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


def test_bodies_decode_as_json_whatever_their_form(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    """A body with a byte-order mark, escapes, non-ASCII text and Graph's largest numbers
    (Edm.Int64, Edm.Double) reads as the JSON it is; an HTML page where JSON was expected is a
    GraphError naming the fix."""
    item = {"id": "u\u00e9-\u2028", "n": [2**63 - 1, -(2**63)], "x": 1.5e300, "s": 'q"\\\n\t'}
    body = json.dumps({"value": [item]}, ensure_ascii=True).encode()
    router.add("GET", "/v1.0/users", lambda r: Response(200, b"\xef\xbb\xbf" + body))
    router.add("GET", "/v1.0/groups", lambda r: Response(200, body.replace(b",", b" ,\n ")))
    router.add("GET", "/v1.0/devices", lambda r: Response(200, b"<html>Sign in</html>"))
    client = make_client(server, ca_file)
    assert [p.items for p in client.pages("/users")] == [[item]]
    group = client.get_json("/groups")["value"][0]
    assert group == item and all(type(n) is int for n in group["n"])
    with pytest.raises(GraphError) as caught:
        client.get_json("/devices")
    assert "not JSON" in caught.value.message and "graph_url" in caught.value.fix


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
