"""Paging of long link lists in the simulated Graph over real HTTPS, while the lists change:
an administrative unit's members (deleted members hidden, $count of the live ones) and a big
group's members spread over groups/delta pages (facts file §2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from agent.simulator.graph import Directory
from agent.simulator.service import READ_PERMISSIONS, Simulator, TenantSpec
from tests.test_sim_support import Graph, serving

AU_MEMBERS = "administrativeUnit.members"
REF = "https://graph.microsoft.com/v1.0/directoryObjects/"


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[tuple[Simulator, Graph, Directory]]:
    """1,300 users: the tenant-wide group has more members than one delta page carries."""
    spec = TenantSpec(
        name="pager",
        seed=9,
        users=1300,
        groups=40,
        graph_permissions=[
            *READ_PERMISSIONS,
            "User.ReadWrite.All",
            "GroupMember.ReadWrite.All",
            "AdministrativeUnit.ReadWrite.All",
        ],
        directory_roles=["Global Administrator"],  # restoring a deleted user needs it
    )
    with serving(spec, tmp_path / "sim") as (sim, handle):
        yield sim, Graph(sim, handle), handle.directory


def _delete(g: Graph, path: str) -> requests.Response:
    return g.http.delete(
        f"{g.sim.base_url}/v1.0{path}", headers={"Authorization": f"Bearer {g.bearer}"}
    )


def _pages(
    g: Graph, response: requests.Response, headers: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    while True:
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        yield body
        if "@odata.nextLink" not in body:
            return
        response = g.get(body["@odata.nextLink"], headers)


def test_au_member_pages_hide_deleted_members_count_live_ones_and_follow_changes(
    tenant: tuple[Simulator, Graph, Directory],
) -> None:
    _, g, d = tenant
    static = [
        r["id"] for _, r in d.scan("administrativeUnit", 0) if r["membershipType"] == "Assigned"
    ]
    au = max(static, key=lambda a: len(d.objects.links[AU_MEMBERS].get(a, ())))
    targets = sorted(d.objects.links[AU_MEMBERS][au])
    assert len(targets) >= 12
    # Deleted: the first member, one on a page boundary, and enough of the last ones that the
    # live members fill whole pages (no empty page may follow the last full one).
    tail = (len(targets) - 2) % 3 or 3
    gone = [targets[0], targets[3], *targets[-tail:]]
    for uid in gone:
        assert _delete(g, f"/users/{uid}").status_code == 204
    live = [t for t in targets if t not in gone]
    assert len(live) % 3 == 0

    path = f"/directory/administrativeUnits/{au}/members"
    eventual = {"ConsistencyLevel": "eventual"}  # $count needs it on every page
    first = g.get(path, eventual, **{"$top": "3", "$count": "true"})
    pages = list(_pages(g, first, eventual))
    assert pages[0]["@odata.count"] == len(live)
    assert all("@odata.count" not in p for p in pages[1:])
    assert [len(p["value"]) for p in pages] == [3] * (len(live) // 3)
    assert [m["id"] for p in pages for m in p["value"]] == live
    assert {m["@odata.type"] for p in pages for m in p["value"]} == {"#microsoft.graph.user"}

    # Changes between two pages of one listing show on the pages still to come.
    walk = _pages(g, g.get(path, **{"$top": "3", "$select": "id"}))
    seen = [m["id"] for m in next(walk)["value"]]
    restored = gone[-1]  # a deleted member comes back with its AU membership
    assert g.post(f"/directory/deletedItems/{restored}/restore").status_code == 200
    dropped = live[-1]
    assert _delete(g, f"{path}/{dropped}/$ref").status_code == 204
    outsider = max(r["id"] for _, r in d.scan("user", 0) if r["id"] not in targets)
    assert outsider > seen[-1]
    assert g.post(f"{path}/$ref", {"@odata.id": f"{REF}{outsider}"}).status_code == 204
    rest = [m["id"] for page in walk for m in page["value"]]
    expected = sorted({*live, restored, outsider} - {dropped})
    assert seen + rest == expected


def test_group_delta_member_pages_resume_after_membership_changes(
    tenant: tuple[Simulator, Graph, Directory],
) -> None:
    _, g, d = tenant
    big = max(d.groups(), key=lambda x: len(d.members(x["id"])))["id"]
    before = d.members(big)
    assert len(before) > 1000  # more than one page's member entries

    walk = _pages(g, g.get("/groups/delta", **{"$select": "id,displayName,members"}))
    listed: list[str] = []
    for page in walk:
        for item in page["value"]:
            if item["id"] == big:
                listed += [m["id"] for m in item.get("members@delta", [])]
        if 0 < len(listed) < len(before):
            break  # the round stopped inside the big group's members
    assert listed == sorted(listed) and 0 < len(listed) < len(before)

    # Between two pages: one member not listed yet leaves, a user that sorts later joins.
    dropped = max(before)
    assert _delete(g, f"/groups/{big}/members/{dropped}/$ref").status_code == 204
    joined = d.create_user(
        id="ffffffff-ffff-4fff-bfff-ffffffffffff",
        displayName="Late Joiner",
        userPrincipalName="late.joiner@pager.onmicrosoft.com",
    )["id"]
    assert g.post(f"/groups/{big}/members/$ref", {"@odata.id": f"{REF}{joined}"}).status_code == 204

    rest: list[str] = []
    for page in walk:
        for item in page["value"]:
            if item["id"] == big:
                assert set(item) == {"id", "members@delta"}  # the repeat carries members only
                rest += [m["id"] for m in item["members@delta"]]
    assert listed + rest == sorted((before - {dropped}) | {joined})
