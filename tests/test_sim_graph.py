"""The simulated Microsoft Graph over real HTTPS with real msal tokens: paging, $select,
errors, permissions, $count, delta, deleted items, $batch, throttling, persistence, CSDL."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.schema.csdl import load_schema
from agent.simulator.graph import Directory, generate
from agent.simulator.graph.persist import load, save
from agent.simulator.service import Simulator, TenantSpec
from agent.simulator.world import ROLE_TEMPLATE_IDS
from tests.test_sim_support import Graph, logged, serving, token


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[Simulator, Graph]]:
    """A read-only tenant big enough for multi-page member lists (throttling off)."""
    with serving(TenantSpec(name="fabrikam", seed=3, users=1500, groups=120)) as (sim, handle):
        yield sim, Graph(sim, handle)


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[Simulator, Graph]]:
    with serving(TenantSpec(name="contoso", seed=5, users=120, groups=30), tmp_path / "sim") as (
        sim,
        handle,
    ):
        yield sim, Graph(sim, handle)


def schema_problems(kind: str, item: dict[str, Any]) -> list[str]:
    return load_schema().validate(kind, item)


# -- paging, $select, $top -------------------------------------------------------------------


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


# -- auth and permissions ------------------------------------------------------------------


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


# -- $count --------------------------------------------------------------------------------


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


# -- relationships -------------------------------------------------------------------------


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


# -- delta ---------------------------------------------------------------------------------


def test_group_delta_full_round_splits_big_groups_across_pages(
    big: tuple[Simulator, Graph],
) -> None:
    sim, g = big
    d = sim.tenants["fabrikam"].directory
    items, link, pages = g.delta("/groups/delta", **{"$select": "id,displayName,members"})
    assert pages > 2 and "$deltatoken=" in link
    merged: dict[str, set[str]] = {}
    repeats = 0
    for item in items:
        if item["id"] in merged:
            repeats += 1
            assert set(item) == {"id", "members@delta"}
        merged.setdefault(item["id"], set()).update(m["id"] for m in item.get("members@delta", []))
    assert repeats > 0
    assert merged == {x["id"]: d.members(x["id"]) for x in d.groups()}


def test_delta_rejects_unsupported_options(big: tuple[Simulator, Graph]) -> None:
    _, g = big
    for option in ("$top", "$expand", "$orderby"):
        r = g.get("/users/delta", **{option: "5" if option == "$top" else "manager"})
        assert r.status_code == 400, option
    assert g.get("/users/delta", **{"$filter": "startswith(displayName,'A')"}).status_code == 400


def test_delta_changes_with_removed_reasons(small: tuple[Simulator, Graph]) -> None:
    sim, g = small
    d = sim.tenants["contoso"].directory
    _, user_link, _ = g.delta("/users/delta", **{"$select": "id,displayName,jobTitle,manager"})
    _, group_link, _ = g.delta("/groups/delta", **{"$select": "id,displayName,members"})
    users = d.users()
    static = [x for x in d.groups() if not x.get("membershipRule")]
    new = d.create_user(displayName="Ada Lovelace", userPrincipalName="ada@contoso.onmicrosoft.com")
    d.update_user(users[0]["id"], jobTitle="Chief Restorer")
    d.delete_user(users[1]["id"])
    d.delete_user(users[2]["id"], permanent=True)
    d.add_member(static[0]["id"], new["id"])
    gone = sorted(d.members(static[1]["id"]) - {users[1]["id"], users[2]["id"]})[0]
    d.remove_member(static[1]["id"], gone)

    items, user_link2, _ = g.delta(user_link)
    by_id = {u["id"]: u for u in items}
    assert by_id[new["id"]]["displayName"] == "Ada Lovelace"
    assert by_id[users[0]["id"]]["jobTitle"] == "Chief Restorer"
    assert by_id[users[1]["id"]]["@removed"] == {"reason": "changed"}
    assert by_id[users[2]["id"]]["@removed"] == {"reason": "deleted"}
    for item in items:
        if "@removed" not in item:
            assert schema_problems("user", item) == []

    groups, _, _ = g.delta(group_link)
    changes: dict[str, dict[str, bool]] = {}
    for item in groups:
        for m in item.get("members@delta", []):
            changes.setdefault(item["id"], {})[m["id"]] = "@removed" not in m
            assert m["@odata.type"] == "#microsoft.graph.user"
    assert changes[static[0]["id"]][new["id"]] is True
    assert changes[static[1]["id"]][gone] is False
    assert g.delta(user_link2)[0] == []  # nothing changed since


def test_delta_latest_expiry_and_forced_resync(small: tuple[Simulator, Graph]) -> None:
    sim, g = small
    d = sim.tenants["contoso"].directory
    body = g.get("/users/delta", **{"$deltatoken": "latest", "$select": "id,displayName"}).json()
    assert body["value"] == [] and "@odata.deltaLink" in body
    d.update_user(d.users()[0]["id"], displayName="Renamed")
    items, link, _ = g.delta(body["@odata.deltaLink"])
    assert [i["displayName"] for i in items] == ["Renamed"]

    sim.faults.expire_delta_tokens = True
    r = g.get(link)
    assert r.status_code == 410
    location = r.headers["Location"]
    assert location.endswith("$deltatoken=")
    sim.faults.expire_delta_tokens = False
    full, _, _ = g.delta(location)
    assert len(full) == d.count("user") and set(full[0]) <= {"id", "displayName"}

    d.advance_clock(8 * 24 * 3600)  # facts file §2: tokens live 7 days
    r = g.get(link)
    assert r.status_code == 400 and r.json()["error"]["code"] == "syncStateNotFound"


def test_churn_summary_matches_what_delta_reports(small: tuple[Simulator, Graph]) -> None:
    sim, g = small
    d = sim.tenants["contoso"].directory
    _, ulink, _ = g.delta("/users/delta", **{"$select": "id,department,jobTitle"})
    _, glink, _ = g.delta("/groups/delta", **{"$select": "id,description,members"})
    summary = d.churn(random.Random(4), 0.2)
    assert summary.users_added and summary.users_changed and summary.members_added
    users, _, _ = g.delta(ulink)
    seen = {u["id"]: u for u in users}
    for uid in summary.users_added + summary.users_changed:
        assert "@removed" not in seen[uid]
    for uid in summary.users_soft_deleted:
        assert seen[uid]["@removed"] == {"reason": "changed"}
    for uid in summary.users_hard_deleted:
        assert seen[uid]["@removed"] == {"reason": "deleted"}
    groups, _, _ = g.delta(glink)
    member_changes = {
        (x["id"], m["id"], "@removed" not in m) for x in groups for m in x.get("members@delta", [])
    }
    removed_groups = set(summary.groups_soft_deleted + summary.groups_hard_deleted)
    for gid, uid in summary.members_added:
        if gid not in removed_groups and uid in d.members(gid):
            assert (gid, uid, True) in member_changes
    for gid, uid in summary.members_removed:
        if gid not in removed_groups and uid not in d.members(gid):
            assert (gid, uid, False) in member_changes
    reasons = {x["id"]: x.get("@removed") for x in groups}
    for gid in summary.groups_soft_deleted:
        assert reasons[gid] == {"reason": "changed"}
    for gid in summary.groups_hard_deleted:
        assert reasons[gid] == {"reason": "deleted"}


# -- deleted items -------------------------------------------------------------------------


def test_deleted_items_list_and_restore(small: tuple[Simulator, Graph]) -> None:
    sim, g = small
    d = sim.tenants["contoso"].directory
    user = d.users()[5]
    groups_before = {x["id"] for x in d.groups() if user["id"] in d.members(x["id"])}
    d.delete_user(user["id"])
    unified = next(x for x in d.groups() if "Unified" in x["groupTypes"])
    d.delete_group(unified["id"])
    assert g.get("/directory/deletedItems").status_code == 400  # the cast is required
    deleted_users = g.all("/directory/deletedItems/microsoft.graph.user")
    assert [u["id"] for u in deleted_users] == [user["id"]]
    assert deleted_users[0]["deletedDateTime"]
    deleted_groups = g.all("/directory/deletedItems/microsoft.graph.group")
    assert [x["id"] for x in deleted_groups] == [unified["id"]]
    for item in deleted_users:
        assert schema_problems("user", item) == []
    for item in deleted_groups:
        assert schema_problems("group", item) == []
    r = g.post(f"/directory/deletedItems/{user['id']}/restore")
    assert r.status_code == 403  # restore is a write: the read-only app may not
    handle = sim.tenants["contoso"]
    handle.app.graph_permissions.append("User.ReadWrite.All")
    g = Graph(sim, handle)
    r = g.post(f"/directory/deletedItems/{user['id']}/restore")
    assert r.status_code == 403  # facts file §3: restoring a user needs Global Administrator
    handle.app.directory_roles.append(ROLE_TEMPLATE_IDS["Global Administrator"])
    g = Graph(sim, handle)
    r = g.post(f"/directory/deletedItems/{user['id']}/restore")
    assert r.status_code == 200 and r.json()["id"] == user["id"]
    assert d.get(user["id"]) is not None
    after = {x["id"] for x in d.groups() if user["id"] in d.members(x["id"])}
    assert after == groups_before - {unified["id"]}  # memberships come back with the user
    assert g.all("/directory/deletedItems/microsoft.graph.user") == []
    d.advance_clock(31 * 24 * 3600)  # facts file §3: 30 days, then gone
    assert g.all("/directory/deletedItems/microsoft.graph.group") == []


# -- $batch ----------------------------------------------------------------------------------


def test_batch_limits_dependencies_and_item_headers(small: tuple[Simulator, Graph]) -> None:
    sim, g = small
    d = sim.tenants["contoso"].directory
    many = {
        "requests": [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(21)]
    }
    assert g.post("/$batch", many).status_code == 400
    dup = {"requests": [{"id": "1", "method": "GET", "url": "/users"}] * 2}
    assert g.post("/$batch", dup).status_code == 400
    gid = d.groups()[0]["id"]
    body = {
        "requests": [
            {"id": "a", "method": "GET", "url": "/users?$select=id&$top=5"},
            {"id": "b", "method": "GET", "url": f"/groups/{gid}/owners?$select=id"},
            {"id": "c", "method": "GET", "url": "/groups/00000000-0000-0000-0000-000000000000"},
            {"id": "d", "method": "GET", "url": "/users?$top=1", "dependsOn": ["c"]},
            {
                "id": "e",
                "method": "GET",
                "url": "users/$count",
                "headers": {"ConsistencyLevel": "eventual"},
            },
        ]
    }
    r = g.post("/$batch", body)
    assert r.status_code == 200
    answers = {a["id"]: a for a in r.json()["responses"]}
    assert [answers[k]["status"] for k in "abcde"] == [200, 200, 404, 424, 200]
    assert len(answers["a"]["body"]["value"]) == 5
    assert answers["e"]["body"] == str(d.count("user"))
    assert all("x-ms-resource-unit" in answers[k]["headers"] for k in "abce")


def test_batch_items_are_throttled_one_by_one(tmp_path: Path) -> None:
    with Simulator() as sim:
        handle = sim.add_tenant(TenantSpec(users=20, groups=4))
        g = Graph(sim, handle)
        sim.faults.throttle_scale = 0.01  # 35 RU per 10 s for this S tenant
        body = {"requests": [{"id": str(i), "method": "GET", "url": "/users"} for i in range(20)]}
        answers = g.post("/$batch", body).json()["responses"]
        throttled = [a for a in answers if a["status"] == 429]
        assert throttled and len(throttled) < 20
        assert all(int(a["headers"]["Retry-After"]) >= 1 for a in throttled)
        assert throttled[0]["body"]["error"]["code"] == "TooManyRequests"


# -- throttling ------------------------------------------------------------------------------


def test_burst_beyond_budget_gets_429_with_retry_after(tmp_path: Path) -> None:
    with Simulator() as sim:
        handle = sim.add_tenant(TenantSpec(users=20, groups=4))
        g = Graph(sim, handle)
        sim.faults.throttle_scale = 0.01  # 35 RU per 10 s
        statuses = []
        for _ in range(30):
            r = g.get("/users")  # 2 RU each (facts file §1)
            assert r.headers["x-ms-resource-unit"] == "2"
            statuses.append(r.status_code)
            if r.status_code == 429:
                break
        assert statuses[-1] == 429 and 15 <= len(statuses) <= 19
        assert int(r.headers["Retry-After"]) >= 1
        assert r.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
        assert (
            r.headers["x-ms-throttle-scope"]
            == f"Tenant_Application/ReadWrite/{handle.client_id}/{handle.tenant_id}"
        )
        err = r.json()["error"]
        assert err["code"] == "TooManyRequests" and err["innerError"]["status"] == "429"
        log = logged(sim, len(statuses), "/v1.0/users")
        assert any(i.note.get("throttled") for i in log)
        assert sum(i.note.get("ru", 0) for i in log) == 2 * (len(statuses) - 1)
        time.sleep(float(r.headers["Retry-After"]))
        ok = g.get("/users", **{"$select": "id", "$top": "5"})
        assert ok.status_code == 200 and ok.headers["x-ms-resource-unit"] == "1"


def test_limit_percentage_header_above_80_percent(tmp_path: Path) -> None:
    with Simulator() as sim:
        handle = sim.add_tenant(TenantSpec(users=20, groups=4))
        g = Graph(sim, handle)
        sim.faults.throttle_scale = 0.01
        seen = [g.get("/users").headers.get("x-ms-throttle-limit-percentage") for _ in range(17)]
        assert seen[0] is None and any(seen)


# -- generation, persistence, schema -------------------------------------------------------


def test_generation_is_deterministic_and_realistic() -> None:
    a, b = Directory("t", "x.onmicrosoft.com"), Directory("t", "x.onmicrosoft.com")
    generate(a, 9, 400, 80)
    generate(b, 9, 400, 80)
    assert a.users() == b.users() and a.groups() == b.groups()
    assert all(a.members(x["id"]) == b.members(x["id"]) for x in a.groups())
    users = a.users()
    guests = [u for u in users if u["userType"] == "Guest"]
    assert 5 <= len(guests) <= 40 and all("#EXT#@" in u["userPrincipalName"] for u in guests)
    synced = [u for u in users if u.get("onPremisesSyncEnabled")]
    assert 0.15 * len(users) < len(synced) < 0.45 * len(users)
    kinds = {
        "unified": [x for x in a.groups() if "Unified" in x["groupTypes"]],
        "dynamic": [x for x in a.groups() if "DynamicMembership" in x["groupTypes"]],
        "distribution": [x for x in a.groups() if x["mailEnabled"] and not x["securityEnabled"]],
        "mail-security": [
            x
            for x in a.groups()
            if x["mailEnabled"] and x["securityEnabled"] and not x["groupTypes"]
        ],
        "role": [x for x in a.groups() if x.get("isAssignableToRole")],
    }
    assert all(kinds.values()), {k: len(v) for k, v in kinds.items()}
    c = Directory("t", "x.onmicrosoft.com")
    generate(c, 10, 400, 80)
    assert c.users() != a.users()


def test_persistence_round_trip(tmp_path: Path) -> None:
    d = Directory("t", "x.onmicrosoft.com")
    generate(d, 2, 200, 40)
    d.churn(random.Random(1), 0.1)
    save(d, tmp_path / "d.json.gz")
    e = load(tmp_path / "d.json.gz")
    assert e.users() == d.users() and e.groups() == d.groups()
    assert all(e.members(x["id"]) == d.members(x["id"]) for x in d.groups())
    assert all(e.owners(x["id"]) == d.owners(x["id"]) for x in d.groups())
    assert e.seq == d.seq and set(e.deleted) == set(d.deleted)
    assert e.changes("user", 0, e.seq).keys() == d.changes("user", 0, d.seq).keys()


def test_simulator_reloads_saved_tenant_and_its_tokens(tmp_path: Path) -> None:
    sim = Simulator(tmp_path / "state")
    handle = sim.add_tenant(TenantSpec(users=50, groups=10))
    sim.start()
    g = Graph(sim, handle)
    _, link, _ = g.delta("/users/delta", **{"$select": "id,displayName"})
    new = handle.directory.create_user(
        displayName="Persisted", userPrincipalName="p@contoso.onmicrosoft.com"
    )
    sim.stop()
    again = Simulator(tmp_path / "state")
    handle2 = again.add_tenant(TenantSpec(users=50, groups=10))
    again.start()
    try:
        assert (
            handle2.client_secret == handle.client_secret and handle2.client_id == handle.client_id
        )
        assert handle2.directory.get(new["id"]) is not None
        g2 = Graph(again, handle2)
        port_link = link.replace(sim.base_url, again.base_url)
        items, _, _ = g2.delta(port_link)
        assert [i["id"] for i in items] == [new["id"]]
    finally:
        again.stop()
    assert handle.certificate_path.stat().st_mode & 0o077 == 0


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


def test_delta_tracks_only_selected_properties(small: tuple[Simulator, Graph]) -> None:
    sim, g = small
    d = sim.tenants["contoso"].directory
    _, plain, _ = g.delta("/users/delta", **{"$select": "id,displayName"})
    _, with_manager, _ = g.delta("/users/delta", **{"$select": "id,displayName,manager"})
    user = next(u for u in d.users() if d.manager_of(u["id"]))
    d.set_manager(user["id"], None)
    d.update_user(user["id"], city="Oslo")  # not selected either
    assert g.delta(plain)[0] == []
    items = g.delta(with_manager)[0]
    assert [i["id"] for i in items] == [user["id"]] and items[0]["manager@delta"] == []


def test_delta_latest_position_for_groups_with_members_and_devices(
    small: tuple[Simulator, Graph],
) -> None:
    """Facts file §2: $deltatoken=latest answers only a deltaLink, for every delta function;
    the link replays exactly what changed after it (members@delta included)."""
    sim, g = small
    d = sim.tenants["contoso"].directory
    groups = g.get("/groups/delta", **{"$deltatoken": "latest", "$select": "id,members"})
    devices = g.get("/devices/delta", **{"$deltatoken": "latest", "$select": "id,displayName"})
    for body in (groups.json(), devices.json()):
        assert body["value"] == [] and "@odata.deltaLink" in body
        assert "@odata.nextLink" not in body
    group = d.groups()[0]["id"]
    user = next(u["id"] for u in d.users() if u["id"] not in d.members(group))
    d.add_member(group, user)
    device = next(iter(d.scan("device", 0)))[1]["id"]
    d.update("device", device, displayName="Renamed")
    items, _, _ = g.delta(groups.json()["@odata.deltaLink"])
    assert [(i["id"], [m["id"] for m in i["members@delta"]]) for i in items] == [(group, [user])]
    items, _, _ = g.delta(devices.json()["@odata.deltaLink"])
    assert [(i["id"], i["displayName"]) for i in items] == [(device, "Renamed")]
