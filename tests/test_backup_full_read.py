"""The full read path: the delta position is taken first ($deltatoken=latest), the objects are
read with plain list paging beside it, and every change made while the read ran comes with the
next incremental run — which then equals a full snapshot."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

from agent.jobs.backup import run_backup
from tests.agent_helpers import agent_for, simulated_tenant, state_of


def _objects(rt: Any, snapshot_id: int, kind: str) -> dict[str, Any]:
    state = state_of(rt, snapshot_id)
    return {oid: rt.repository.get(b) for (k, oid), b in state.items() if k == kind}


def test_changes_made_during_a_full_read_come_with_the_next_incremental(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=250, groups=30) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim)
        users = sorted(u["id"] for u in d.users())
        renamed, moved, boss = users[0], users[1], users[2]
        group = sorted(g["id"] for g in d.groups() if len(d.members(g["id"])) > 1)[0]
        leaver = sorted(d.members(group))[0]
        changed: list[str] = []
        once = {"user": threading.Lock(), "group": threading.Lock()}

        def change_while_reading(kind: str, done: int) -> None:
            # Called by the collectors after a page: the position was taken before any page,
            # and the only list page of users (250 < 999) or groups has been read already.
            if kind == "user" and once["user"].acquire(blocking=False):
                d.update_user(renamed, displayName="Renamed during the full read")
                d.set_manager(moved, boss)
                changed.append(d.create_user(displayName="Hired during the full read")["id"])
                d.delete_user(users[3])
            if kind == "group" and once["group"].acquire(blocking=False):
                d.update_group(group, description="Changed during the full read")
                d.remove_member(group, leaver)
                d.add_member(group, renamed)

        full = run_backup(rt, "contoso", force_full=True, progress=change_while_reading)
        assert full.status == "succeeded" and changed
        in_full = _objects(rt, full.snapshot.id, "user")
        assert in_full[renamed]["displayName"] != "Renamed during the full read"
        groups_in_full = _objects(rt, full.snapshot.id, "group")
        assert groups_in_full[group].get("description") != "Changed during the full read"

        incremental = run_backup(rt, "contoso")
        assert incremental.mode == "incremental"
        users_now = _objects(rt, incremental.snapshot.id, "user")
        assert users_now[renamed]["displayName"] == "Renamed during the full read"
        assert changed[0] in users_now and users[3] not in users_now
        managers = _objects(rt, incremental.snapshot.id, "userManager")
        assert managers[moved]["manager"]["id"] == boss
        groups = _objects(rt, incremental.snapshot.id, "group")
        assert groups[group]["description"] == "Changed during the full read"
        members = {
            m["id"] for m in _objects(rt, incremental.snapshot.id, "groupMember")[group]["members"]
        }
        assert renamed in members and leaver not in members
        assert members == set(d.members(group))

        again = run_backup(rt, "contoso", force_full=True)
        assert state_of(rt, incremental.snapshot.id) == state_of(rt, again.snapshot.id)
        rt.close()


def test_incremental_after_a_list_read_full_equals_a_full_snapshot(tmp_path: Path) -> None:
    """Users read from the collection (nulls and [] shown) and from delta (unset left out)
    are stored alike, so churn read incrementally gives what a full read gives."""
    with simulated_tenant(tmp_path / "sim", users=300, groups=40) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim)
        run_backup(rt, "contoso", force_full=True)
        d.churn(random.Random(23), 0.1)
        incremental = run_backup(rt, "contoso")
        assert {k.kind: k.mode for k in incremental.kinds}["user"] == "incremental"
        full = run_backup(rt, "contoso", force_full=True)
        assert state_of(rt, incremental.snapshot.id) == state_of(rt, full.snapshot.id)
        assert all(k.added == k.changed == k.removed == 0 for k in full.snapshot.kinds)
        rt.close()


def test_stored_objects_keep_no_annotations_nor_volatile_properties(tmp_path: Path) -> None:
    """What Graph sends beside the data (annotations other than the type) and what moves on
    its own (a licence state's lastUpdatedDateTime, a device's last sign-in) is not stored:
    it would make every run store a new version of an unchanged object."""
    with simulated_tenant(tmp_path / "sim", users=60, groups=8, devices=10) as sim:
        _, rt = agent_for(tmp_path / "agent", sim, kinds=("user", "device", "group"))
        full = run_backup(rt, "contoso", force_full=True)
        assert full.status == "succeeded"
        users = _objects(rt, full.snapshot.id, "user")
        states = [s for u in users.values() for s in u.get("licenseAssignmentStates") or []]
        assert states and all("skuId" in s and "lastUpdatedDateTime" not in s for s in states)
        devices = _objects(rt, full.snapshot.id, "device")
        assert devices and all("approximateLastSignInDateTime" not in d for d in devices.values())
        for kind in ("user", "device", "group"):
            for obj in _objects(rt, full.snapshot.id, kind).values():
                assert [k for k in obj if "@" in k] in ([], ["@odata.type"]), (kind, obj)
        rt.close()
