"""A group holding every user (the tenant-wide "All Company" group) is the largest object a
backup stores. Its member list is merged and written from scratch space, never held as Python
objects (agent/collect/scratch.py): these tests hold that it still round-trips unchanged
through full and incremental backup, diff, history and restore, and that the text written is
byte for byte the canonical JSON of the object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.collect.scratch import SLICE_BYTES, TEXT_BATCH, GroupScratch, _member_slices
from agent.jobs.backup import run_backup
from agent.simulator.service import READ_PERMISSIONS
from agent.store.repository import canonical_json
from tests.agent_helpers import agent_for, cli, objects_of, simulated_tenant, state_of

KINDS = ("user", "group", "groupMember")
USER = "#microsoft.graph.user"


def _run(*args: str, code: int = 0) -> Any:
    result = cli(*args)
    assert result.code == code, result.out + result.err
    return result


def _backup(config: str, *full: str) -> int:
    out = _run("backup", "--tenant", "contoso", "--config", config, "--json", *full).json()
    assert out["status"] == "succeeded", out
    return int(out["snapshot"]["id"])


def test_a_tenant_wide_group_round_trips_through_backup_diff_history_and_restore(
    tmp_path: Path,
) -> None:
    writes = ["Group.ReadWrite.All", "GroupMember.ReadWrite.All"]
    with simulated_tenant(
        tmp_path / "sim", users=2 * TEXT_BATCH + 700, groups=8,
        graph_permissions=[*READ_PERMISSIONS, *writes],
    ) as sim:  # fmt: skip
        d = sim.tenants["contoso"].directory
        config, rt = agent_for(tmp_path / "agent", sim, kinds=KINDS)
        cfg = str(config)
        everyone = next(g["id"] for g in d.groups() if g["displayName"] == "All Company")
        first_members = set(d.members(everyone))
        assert len(first_members) > 2 * TEXT_BATCH  # written in more than two batches

        first = _backup(cfg)
        stored = objects_of(rt, first, "groupMember")[everyone]
        assert stored["groupId"] == everyone
        assert [m["id"] for m in stored["members"]] == sorted(first_members)
        assert {m["@odata.type"] for m in stored["members"]} == {USER}

        # Some leave, one joins, one leaves and comes back: the incremental run merges these
        # changes into the stored list.
        leavers = sorted(first_members)[:: len(first_members) // 4][:4]
        for uid in leavers:
            d.remove_member(everyone, uid)
        joiner = d.create_user(displayName="New Starter", mailNickname="newstarter")["id"]
        d.add_member(everyone, joiner)
        d.add_member(everyone, leavers[0])
        d.remove_member(everyone, leavers[0])  # back and gone again: stays gone
        d.add_member(everyone, leavers[1])
        d.remove_member(everyone, leavers[1])
        d.add_member(everyone, leavers[1])  # the last word wins: a member again
        second_members = set(d.members(everyone))
        assert second_members == (first_members - set(leavers) | {joiner, leavers[1]})

        second = _backup(cfg)
        kinds = {k.kind: k for k in rt.catalog.snapshot(second).kinds}
        assert kinds["groupMember"].changed >= 1
        assert [m["id"] for m in objects_of(rt, second, "groupMember")[everyone]["members"]] == (
            sorted(second_members)
        )
        # Incremental equals full: the same blob for every object.
        third = _backup(cfg, "--full")
        assert state_of(rt, second) == state_of(rt, third)

        # diff names exactly the members that left and joined.
        report = _run(
            "diff", str(first), str(second), "--kind", "groupMember", "-c", cfg, "--json"
        ).json()
        obj = next(o for o in report["objects"] if o["id"] == everyone)
        assert obj["status"] == "changed"
        text = json.dumps(obj["changes"])
        for uid in (*leavers, joiner):
            assert (uid in text) == (uid != leavers[1]), uid

        history = _run(
            "history", "--kind", "groupMember", "--id", everyone, "-c", cfg, "--json"
        ).json()
        assert [e["version"] for e in history["events"] if e["version"]] == [1, 2]

        # Restore the first snapshot's membership: the leavers are back, the joiner is out.
        result = _run(
            "restore", "--tenant", "contoso", "--snapshot", str(first), "--kind", "groupMember",
            "--id", everyone, "--yes", "-c", cfg, "--json",
        ).json()  # fmt: skip
        assert result["summary"]["failed"] == 0, result["results"]
        assert set(d.members(everyone)) == first_members
        after = _backup(cfg)
        assert objects_of(rt, after, "groupMember")[everyone] == stored
        rt.close()


def _round(scratch: GroupScratch, *items: dict[str, Any]) -> None:
    for item in items:
        scratch.add_group(item)
    scratch.index()


def _edges(*members: tuple[str, str] | str) -> list[dict[str, Any]]:
    """members@delta entries: an id (a user added) or (id, "removed")."""
    out: list[dict[str, Any]] = []
    for m in members:
        if isinstance(m, tuple):
            out.append({"@odata.type": USER, "id": m[0], "@removed": {"reason": "deleted"}})
        else:
            out.append({"@odata.type": USER, "id": m})
    return out


def test_member_list_text_is_the_canonical_json_of_the_object(tmp_path: Path) -> None:
    """Ids needing escapes, non-ASCII ids and types, a group repeated across pages, changes
    merged over a stored list: the bytes are what canonical_json gives for the object, or
    every group would store a new version on every run."""
    odd = ['c"ß\\\u00e9\u2028', "b\u00e9", "a" * 40, "d\n\x01\t\x1f\x7f"]  # escaped as JSON does
    many = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(2 * TEXT_BATCH + 5)]
    types = {**dict.fromkeys(many, USER), **dict.fromkeys(odd, "#microsoft.graph.gr\u00f6up")}

    def expected(group_id: str, members: dict[str, str]) -> bytes:
        listed = [{"id": m, "@odata.type": members[m]} for m in sorted(members)]
        return canonical_json({"groupId": group_id, "members": listed})

    with GroupScratch(str(tmp_path)) as scratch:  # a full round: no previous list
        half = len(many) // 2
        page1 = {"id": "g-1", "members@delta": _edges(*many[:half], (many[3],))}
        page2 = {"id": "g-1", "members@delta": _edges(*many[half:], many[3], (many[4],))}
        extra = [{"@odata.type": types[m], "id": m} for m in odd]
        _round(scratch, page1, {**page2, "members@delta": page2["members@delta"] + extra},
               {"id": "g-\u00e9", "members@delta": []})  # fmt: skip
        want = {m: types[m] for m in many + odd if m != many[4]}
        assert scratch.membership_json("g-1") == expected("g-1", want)
        assert scratch.membership_json("g-\u00e9") == expected("g-\u00e9", {})

    with GroupScratch(str(tmp_path)) as scratch:  # incremental: changes over a stored list
        _round(scratch, {"id": "g-1", "members@delta": _edges((odd[0],), (many[0],), "new")})
        stored = expected("g-1", want)
        # Read back a slice at a time (memory stays flat), not by decoding the text whole.
        slices = list(_member_slices([stored]))
        assert len(stored) > SLICE_BYTES and len(slices) == 2
        assert [m for part in slices for m in part] == json.loads(stored)["members"]
        # As the repository gives it: in parts cut anywhere, even inside a marker.
        for size in (1, 7, 4099, SLICE_BYTES + 3):
            parts = [stored[at : at + size] for at in range(0, len(stored), size)]
            assert list(_member_slices(parts)) == slices
        scratch.load_previous("g-1", lambda: [stored[:11], stored[11:]])
        after = {k: v for k, v in want.items() if k not in (odd[0], many[0])} | {"new": USER}
        assert scratch.membership_json("g-1") == expected("g-1", after)
        # A stored list of another shape (an extra property) is decoded the ordinary way.
        _round(scratch, {"id": "g-2", "members@delta": _edges("x")})
        other = {"groupId": "g-2", "members": [{"@odata.type": USER, "id": "w", "n": 1}]}
        scratch.load_previous("g-2", lambda: [canonical_json(other)])
        assert scratch.membership_json("g-2") == expected("g-2", {"w": USER, "x": USER})


def test_a_group_shown_again_after_it_was_staged_is_staged_again_whole(tmp_path: Path) -> None:
    """A full read stages each group once the members round has moved past it; a group the
    round shows again later is left for the end, where its list comes out whole, merged."""
    with GroupScratch(str(tmp_path)) as scratch:
        scratch.index()
        _round(scratch, {"id": "g-1", "members@delta": _edges("a", "b")},
               {"id": "g-2", "members@delta": _edges("c")})  # fmt: skip
        staged = json.loads(scratch.membership_json("g-1"))
        scratch.mark_staged("g-1")
        assert [m["id"] for m in staged["members"]] == ["a", "b"]
        assert [g for g, *_ in scratch.groups()] == ["g-2"] and scratch.staged_again == 0

        _round(scratch, {"id": "g-1", "members@delta": _edges("d", ("a",))})  # shown again
        assert [g for g, *_ in scratch.groups()] == ["g-1", "g-2"] and scratch.staged_again == 1
        again = json.loads(scratch.membership_json("g-1"))
        assert [m["id"] for m in again["members"]] == ["b", "d"]


def test_a_full_read_stages_every_group_once_with_its_whole_list(tmp_path: Path) -> None:
    """Groups are staged while the members round goes on: each group once, each list whole
    (a big group spans pages), the counts those of the directory."""
    with simulated_tenant(tmp_path / "sim", users=TEXT_BATCH + 300, groups=40) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim, kinds=KINDS)
        report = run_backup(rt, "contoso", force_full=True)
        kinds = {k.kind: k for k in report.kinds}
        assert kinds["groupMember"].succeeded == d.count("group") == 40
        stored = objects_of(rt, report.snapshot.id, "groupMember")
        assert {g: {m["id"] for m in o["members"]} for g, o in stored.items()} == {
            g["id"]: d.members(g["id"]) for g in d.groups()
        }
        assert max(len(o["members"]) for o in stored.values()) > 1000  # more than a page
        rt.close()


def test_a_long_relationship_is_written_as_the_object_relation_object_gives(
    tmp_path: Path,
) -> None:
    """A relationship read over several pages (a department's administrative unit, an app's
    assignments) is gathered in scratch space and written as text: byte for byte the
    canonical JSON of the object relation_object builds from the same pages."""
    from agent.collect.base import clean
    from agent.collect.graph_generic import relation_object
    from agent.collect.scratch import RelationScratch
    from agent.kinds import BY_NAME

    links = BY_NAME["administrativeUnitMember"]
    pages = [
        [{"@odata.type": USER, "id": f"u{i:05d}"} for i in range(TEXT_BATCH, -1, -1)],
        [
            {"@odata.type": "#microsoft.graph.gr\u00f6up", "id": 'c"\\\u2028\n\x01'},
            {"id": "u00003"},
        ],
    ]
    assignments = BY_NAME["appRoleAssignment"]
    rows = [
        [{"id": "b", "principalId": "p\u00e9", "@odata.etag": "x"}, {"id": "a", "n": [2, 1]}],
        [{"id": "b", "principalId": "second"}, {"principalDisplayName": "no id"}],
    ]
    for kind, seen in ((links, pages), (assignments, rows)):
        with RelationScratch(str(tmp_path), kind.relation_full_items) as scratch:
            for page in seen:
                scratch.add([clean(i) for i in page] if kind.relation_full_items else page)
            assert kind.relation
            text = scratch.object_json(kind.key, "parent-\u00e9", kind.relation)
        flat = [item for page in seen for item in page]
        assert text == canonical_json(relation_object(kind, "parent-\u00e9", flat)), kind.name


def test_an_administrative_unit_longer_than_a_page_round_trips(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=1300, groups=4) as sim:
        d = sim.tenants["contoso"].directory
        kinds = ("administrativeUnit", "administrativeUnitMember")
        config, rt = agent_for(tmp_path / "agent", sim, kinds=kinds)
        au = next(iter(d.objects.links["administrativeUnit.members"]))
        for user in d.users():
            d.objects.link("administrativeUnit.members", au, user["id"])
        everyone = sorted(u["id"] for u in d.users())
        assert len(everyone) > 999  # the relationship continues on a nextLink

        first = _backup(str(config), "--full")
        stored = objects_of(rt, first, "administrativeUnitMember")[au]
        assert [m["id"] for m in stored["members"]] == everyone
        assert stored["administrativeUnitId"] == au
        again = _backup(str(config), "--full")
        assert state_of(rt, first) == state_of(rt, again)  # the same text, the same blob
        rt.close()
