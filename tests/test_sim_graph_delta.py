"""The simulated Microsoft Graph's delta functions and deleted items over real HTTPS: full
rounds, changes with @removed reasons, $deltatoken=latest, expiry and resync, churn."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.simulator.service import Simulator
from agent.simulator.world import ROLE_TEMPLATE_IDS
from tests.test_sim_support import Graph, big_tenant, schema_problems, small_tenant


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[Simulator, Graph]]:
    """A read-only tenant big enough for multi-page member lists (throttling off)."""
    yield from big_tenant()


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[Simulator, Graph]]:
    yield from small_tenant(tmp_path / "sim")


# -- delta ---------------------------------------------------------------------------------------


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


def test_delta_page_size_preference_is_capped_at_200(big: tuple[Simulator, Graph]) -> None:
    """Pages of 100 by default; Prefer: odata.maxpagesize up to 200 objects, no more."""
    sim, g = big
    users = sim.tenants["fabrikam"].directory.count("user")
    assert users > 400
    sizes: dict[str | None, int] = {}
    for prefer in (None, "odata.maxpagesize=150", "odata.maxpagesize=999"):
        headers = {"Prefer": prefer} if prefer else {}
        r = g.get("/users/delta", headers=headers, **{"$select": "id"})
        assert r.status_code == 200 and "@odata.nextLink" in r.json()
        sizes[prefer] = len(r.json()["value"])
    assert sizes == {None: 100, "odata.maxpagesize=150": 150, "odata.maxpagesize=999": 200}


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


def test_incremental_members_past_a_page_continue_without_losing_the_next_groups(
    small: tuple[Simulator, Graph],
) -> None:
    """More member changes than a page carries: the group cut off continues on the next page,
    and the groups after it on that page keep every one of their changes."""
    sim, g = small
    d = sim.tenants["contoso"].directory
    _, link, _ = g.delta("/groups/delta", **{"$select": "id,members"})
    first, second, third = (x["id"] for x in d.groups()[:3])
    newcomers = [
        d.create_user(displayName=f"N{i}", mailNickname=f"n{i}")["id"] for i in range(1300)
    ]
    for user in newcomers[:700]:
        d.add_member(first, user)
    for user in newcomers[700:1290]:
        d.add_member(second, user)
    for user in newcomers[1290:]:
        d.add_member(third, user)
    items, _, pages = g.delta(link)
    assert pages >= 2
    added: dict[str, set[str]] = {}
    for item in items:
        added.setdefault(item["id"], set()).update(
            m["id"] for m in item.get("members@delta", []) if "@removed" not in m
        )
    assert added[first] == set(newcomers[:700])
    assert added[second] == set(newcomers[700:1290])
    assert added[third] == set(newcomers[1290:])


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


# -- deleted items -------------------------------------------------------------------------------


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
