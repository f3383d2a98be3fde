"""The simulated Microsoft Graph over real HTTPS with real msal tokens: paging, $select, $top,
$filter, $count, relationships and $expand, auth errors and permissions, CSDL-valid payloads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.simulator.service import Simulator, TenantSpec
from tests.test_sim_support import Graph, big_tenant, schema_problems, token


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[Simulator, Graph]]:
    """A read-only tenant big enough for multi-page member lists (throttling off)."""
    yield from big_tenant()


# -- paging, $select, $top -----------------------------------------------------------------------


def test_users_page_with_top_and_opaque_skiptoken(big: tuple[Simulator, Graph]) -> None:
    sim, g = big
    pages = list(g.pages("/users", **{"$top": "150", "$select": "id,displayName"}))
    assert len(pages) == 10  # 1500 users / 150
    ids = [u["id"] for p in pages for u in p["value"]]
    assert len(ids) == len(set(ids)) == 1500
    link = pages[0]["@odata.nextLink"]
    assert link.startswith(f"{sim.base_url}/v1.0/users?$skiptoken=")
    assert "$top" not in link and "$select" not in link  # options live in the token
    assert set(pages[3]["value"][0]) == {"id", "displayName"}
    # A tampered token is refused.
    bad = g.get(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"))
    assert bad.status_code == 400


def test_default_page_and_default_select(big: tuple[Simulator, Graph]) -> None:
    _, g = big
    body = g.get("/users").json()
    assert len(body["value"]) == 100
    assert set(body["value"][0]) == {
        "id", "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
        "officeLocation", "preferredLanguage", "surname", "userPrincipalName",
    }  # fmt: skip


def test_top_1000_is_refused_as_graph_does(big: tuple[Simulator, Graph]) -> None:
    _, g = big
    r = g.get("/users", **{"$top": "1000"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "Request_UnsupportedQuery"
    assert (
        err["message"]
        == "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."
    )
    assert len(g.get("/users", **{"$top": "999"}).json()["value"]) == 999


def test_unknown_select_property_is_400(big: tuple[Simulator, Graph]) -> None:
    _, g = big
    r = g.get("/users", **{"$select": "id,shoeSize"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "Request_BadRequest"
    assert "shoeSize" in r.json()["error"]["message"]


def test_filters(big: tuple[Simulator, Graph]) -> None:
    _, g = big
    unified = g.all(
        "/groups", **{"$filter": "groupTypes/any(c:c eq 'Unified')", "$select": "id,groupTypes"}
    )
    assert unified and all("Unified" in x["groupTypes"] for x in unified)
    first = g.get("/users", **{"$top": "1"}).json()["value"][0]
    one = g.get("/users", **{"$filter": f"id eq '{first['id']}'"}).json()["value"]
    assert [u["id"] for u in one] == [first["id"]]
    prefix = first["displayName"][:3]
    hits = g.all("/users", **{"$filter": f"startswith(displayName,'{prefix}')", "$top": "999"})
    assert hits and all(u["displayName"].startswith(prefix) for u in hits)
    mail = g.all("/groups", **{"$filter": "mailEnabled eq true", "$select": "id,mailEnabled"})
    assert mail and all(x["mailEnabled"] for x in mail)


# -- auth and permissions ------------------------------------------------------------------------


def test_missing_and_bad_tokens_get_graphs_401(big: tuple[Simulator, Graph]) -> None:
    sim, g = big
    r = g.http.get(f"{sim.base_url}/v1.0/users", headers={"client-request-id": "abc-123"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert r.headers["client-request-id"] == "abc-123" and r.headers["request-id"]
    assert r.json()["error"]["innerError"]["client-request-id"] == "abc-123"
    assert (
        Graph(sim, sim.tenants["fabrikam"], bearer="not.a.token").get("/users").status_code == 401
    )
    handle = sim.tenants["fabrikam"]
    tenant = sim.world.find(handle.tenant_id)
    assert tenant is not None
    expired = sim.issuer.issue(
        tenant=tenant, audience="https://graph.microsoft.com", app_id=handle.client_id,
        subject="x", roles=["User.Read.All"], lifetime_s=-10,
    )  # fmt: skip
    r = Graph(sim, handle, bearer=expired).get("/users")
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_missing_permission_is_403_authorization_request_denied(tmp_path: Path) -> None:
    with Simulator() as sim:
        handle = sim.add_tenant(TenantSpec(users=20, groups=4, graph_permissions=["User.Read.All"]))
        g = Graph(sim, handle)
        assert g.get("/users").status_code == 200
        r = g.get("/groups", headers={"client-request-id": "req-7"})
        assert r.status_code == 403
        err = r.json()["error"]
        assert err["code"] == "Authorization_RequestDenied"
        assert err["message"] == "Insufficient privileges to complete the operation."
        assert set(err["innerError"]) >= {"date", "request-id", "client-request-id"}


def test_certificate_credential_works(big: tuple[Simulator, Graph]) -> None:
    sim, _ = big
    handle = sim.tenants["fabrikam"]
    g = Graph(sim, handle, bearer=token(sim, handle, certificate=True))
    assert g.get("/users", **{"$top": "1"}).status_code == 200


# -- $count --------------------------------------------------------------------------------------


def test_count_needs_consistency_level(big: tuple[Simulator, Graph]) -> None:
    _, g = big
    r = g.get("/users/$count")
    assert r.status_code == 400 and r.json()["error"]["code"] == "Request_BadRequest"
    r = g.get("/users/$count", headers={"ConsistencyLevel": "eventual"})
    assert r.status_code == 200 and r.text == "1500"
    assert r.headers["Content-Type"].startswith("text/plain")
    pages = list(
        g.pages("/groups", {"ConsistencyLevel": "eventual"}, **{"$count": "true", "$top": "50"})
    )
    assert pages[0]["@odata.count"] == 120
    assert all("@odata.count" not in p for p in pages[1:])
    assert g.get("/groups", **{"$count": "true"}).status_code == 400


# -- relationships -------------------------------------------------------------------------------


def test_members_owners_manager_and_casts(big: tuple[Simulator, Graph]) -> None:
    sim, g = big
    d = sim.tenants["fabrikam"].directory
    gid = max((x["id"] for x in d.groups()), key=lambda i: len(d.members(i)))
    members = g.all(f"/groups/{gid}/members", **{"$select": "id", "$top": "999"})
    assert {m["id"] for m in members} == d.members(gid) and len(members) > 999
    assert all(m["@odata.type"] == "#microsoft.graph.user" for m in members)
    nested = next(
        x["id"] for x in d.groups() if any(d.kind_of(m) == "group" for m in d.members(x["id"]))
    )
    users_only = g.all(f"/groups/{nested}/members/microsoft.graph.user")
    groups_only = g.all(f"/groups/{nested}/members/microsoft.graph.group")
    assert {u["id"] for u in users_only} | {x["id"] for x in groups_only} == d.members(nested)
    assert groups_only and all("@odata.type" not in x for x in groups_only)
    transitive = {m["id"] for m in g.all(f"/groups/{nested}/transitiveMembers", **{"$top": "999"})}
    assert d.members(nested) <= transitive
    owners = g.all(f"/groups/{gid}/owners")
    assert {o["id"] for o in owners} == d.owners(gid)
    user = next(u for u in d.users() if d.manager_of(u["id"]))
    manager = g.get(f"/users/{user['id']}/manager").json()
    assert (
        manager["id"] == d.manager_of(user["id"])
        and manager["@odata.type"] == "#microsoft.graph.user"
    )
    top = next(u for u in d.users() if not d.manager_of(u["id"]))
    assert (
        g.get(f"/users/{top['id']}/manager").json()["error"]["code"] == "Request_ResourceNotFound"
    )
    assert g.get(f"/users/{user['userPrincipalName']}").json()["id"] == user["id"]


def test_expand_owners_caps_page_and_items(big: tuple[Simulator, Graph]) -> None:
    sim, g = big
    d = sim.tenants["fabrikam"].directory
    body = g.get(
        "/groups", **{"$select": "id", "$expand": "owners($select=id)", "$top": "999"}
    ).json()
    assert len(body["value"]) == 100 and "@odata.nextLink" in body
    by_id = {
        x["id"]: x for x in g.all("/groups", **{"$select": "id", "$expand": "owners($select=id)"})
    }
    assert len(by_id) == 120
    for gid, item in by_id.items():
        assert len(item["owners"]) == min(20, len(d.owners(gid)))
        assert "owners@odata.nextLink" not in item
    assert any(len(d.owners(gid)) > 20 for gid in by_id)
    users = g.get(
        "/users", **{"$select": "id", "$expand": "manager($select=id)", "$top": "50"}
    ).json()
    assert any("manager" in u and u["manager"] for u in users["value"])


# -- schema --------------------------------------------------------------------------------------


def test_every_served_entity_validates_against_csdl(big: tuple[Simulator, Graph]) -> None:
    sim, g = big
    d = sim.tenants["fabrikam"].directory
    from agent.kinds.entra import GROUP_SELECT, USER_SELECT

    problems: list[str] = []

    def check(kind: str, items: list[dict[str, Any]]) -> None:
        for item in items:
            problems.extend(schema_problems(kind, item))

    check("user", g.all("/users", **{"$top": "999"}))
    check("user", g.all("/users", **{"$top": "999", "$select": ",".join(USER_SELECT)}))
    check("group", g.all("/groups", **{"$top": "999"}))
    check(
        "group",
        g.all("/groups", **{"$select": ",".join(GROUP_SELECT), "$expand": "owners($select=id)"}),
    )
    gid = d.groups()[1]["id"]
    check("directoryObject", g.all(f"/groups/{gid}/members"))
    check("directoryObject", g.all(f"/groups/{gid}/owners"))
    users, _, _ = g.delta("/users/delta", **{"$select": ",".join([*USER_SELECT, "manager"])})
    check("user", users)
    groups, _, _ = g.delta("/groups/delta", **{"$select": ",".join([*GROUP_SELECT, "members"])})
    check("group", groups)
    assert problems == []
