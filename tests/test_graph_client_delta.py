"""GraphClient delta rounds against a loopback Graph: full then continued rounds, 410 Gone and
a lost sync state restart a full round."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.errors import GraphError
from agent.simulator.httpserver import HttpsServer, Request, Response, Router
from tests.graph_client_helpers import graph_error, make_client, users

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


def test_delta_next_link_to_another_host_is_refused(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    """A delta page naming its next page on another host: the token never goes there."""
    router.add(
        "GET",
        "/v1.0/users/delta",
        lambda r: Response.json(
            {"value": users(0, 2), "@odata.nextLink": "https://evil.example/v1.0/users/delta"}
        ),
    )
    round_ = make_client(server, ca_file).delta("/users/delta")
    with pytest.raises(GraphError, match="another host"):
        list(round_.pages())


def test_delta_rounds_ask_for_pages_of_200_on_every_request(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    """A delta round's chain of pages cannot be split: the agent asks for the largest page
    Graph grants (odata.maxpagesize=200) on the first request and on every nextLink, and keeps
    a preference of the caller's own beside it."""
    graph = DeltaGraph(router)
    client = make_client(server, ca_file)
    list(client.delta("/users/delta", {"$select": "id"}).pages())
    assert len(graph.requests) == 3
    assert {r.headers.get("prefer") for r in graph.requests} == {"odata.maxpagesize=200"}

    graph.requests.clear()
    minimal = client.delta("/users/delta", {"$select": "id"}, headers={"Prefer": "return=minimal"})
    list(minimal.pages())
    assert {r.headers.get("prefer") for r in graph.requests} == {
        "return=minimal, odata.maxpagesize=200"
    }
