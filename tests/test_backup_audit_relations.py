"""Relationship kinds without Graph delta kept incremental through the directory audit log:
after churn and writes that touch every such kind, an incremental snapshot holds exactly what
a full one taken right after holds, untouched parents are not re-read, and without
AuditLog.Read.All (or when full_every_days is due) the kinds are read in full."""

from __future__ import annotations

import datetime as dt
import random
import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from agent.jobs.backup import run_backup
from agent.kinds import ALL_KINDS
from agent.runtime import Runtime
from agent.simulator.graph import audit_links
from agent.simulator.graph.directory import Directory
from agent.simulator.service import READ_PERMISSIONS, Simulator
from tests.agent_helpers import agent_for, simulated_tenant, state_of

AUDITED = {k.name for k in ALL_KINDS if k.incremental == "audit"}
WITH_AUDIT = [*READ_PERMISSIONS, "AuditLog.Read.All"]
_ID = "[0-9a-f-]{36}"
PATHS = {
    "applicationOwner": "applications/owners",
    "servicePrincipalOwner": "servicePrincipals/owners",
    "appRoleAssignment": "servicePrincipals/appRoleAssignedTo",
    "deviceRegisteredOwner": "devices/registeredOwners",
    "groupOwner": "groups/owners",
}


def _tenant(tmp_path: Path, permissions: list[str]) -> Any:
    return simulated_tenant(
        tmp_path / "sim", users=300, groups=30, applications=40, graph_permissions=permissions
    )


def _touch_every_relation(d: Directory, rng: random.Random) -> dict[str, set[str]]:
    """Changes churn does not make (app / SP owners, app role assignments, a user deleted
    while owning and holding links, a device owner); returns the parents touched per kind."""
    with d.lock:
        users = sorted(r["id"] for _, r in d.scan("user", 0))
        apps = sorted(r["id"] for _, r in d.scan("application", 0))
        sps = sorted(
            r["id"]
            for _, r in d.scan("servicePrincipal", 0)
            if r.get("appOwnerOrganizationId") == d.tenant_id and r.get("appRoles")
        )
        devices = sorted(r["id"] for _, r in d.scan("device", 0))
        app, sp, device = apps[3], sps[2], devices[5]
        owner = next(u for u in users if u not in d.objects.targets("application.owners", app))
        audit_links.link(d, "application.owners", app, owner)
        sp_owners = d.objects.targets("servicePrincipal.owners", sp)
        if sp_owners:
            audit_links.unlink(d, "servicePrincipal.owners", sp, sp_owners[0])
        else:
            audit_links.link(d, "servicePrincipal.owners", sp, users[1])
        role = (d.row("servicePrincipal", sp) or {})["appRoles"][0]["id"]
        audit_links.add_assignment(
            d,
            {
                "id": f"test-assignment-{rng.randrange(10**6)}",
                "appRoleId": role,
                "createdDateTime": "2026-01-01T00:00:00Z",
                "deletedDateTime": None,
                "principalDisplayName": None,
                "principalId": users[7],
                "principalType": "User",
                "resourceDisplayName": None,
                "resourceId": sp,
            },
        )
        audit_links.link(d, "device.registeredOwners", device, users[9])
        group = sorted(r["id"] for _, r in d.scan("group", 0))[4]
        d.add_owner(group, next(u for u in users if u not in d.owners_of[group]))
        # A user who owns a device leaves: the device's owners change with no event on it.
        leaver = next(
            u
            for u in users[20:]
            if any(u in d.objects.targets("device.registeredOwners", x) for x in devices)
        )
        d.delete_user(leaver)
    return {
        "applicationOwner": {app},
        "servicePrincipalOwner": {sp},
        "appRoleAssignment": {sp},
        "deviceRegisteredOwner": {device},
        "groupOwner": {group},
    }


def _reread(sim: Simulator, since: int) -> dict[str, set[str]]:
    """Per relationship path (e.g. 'devices/registeredOwners'): the parents read one by one
    (in $batch) since request ``since``."""
    seen: dict[str, set[str]] = {}
    for item in sim.log.items()[since:]:
        for path in item.note.get("batch_paths", ()):
            match = re.fullmatch(rf"/?(?:directory/)?(\w+)/({_ID})/(\w+)", path)
            if match:
                seen.setdefault(f"{match[1]}/{match[3]}", set()).add(match[2])
    return seen


def _listed(sim: Simulator, since: int) -> list[str]:
    """Relationship listings of whole parent collections ($expand) since ``since``."""
    return [i.path for i in sim.log.items()[since:] if "$expand" in unquote(i.query)]


def _by_kind(rt: Runtime, snapshot_id: int) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for (kind, oid), blob in state_of(rt, snapshot_id).items():
        out.setdefault(kind, {})[oid] = blob
    return out


def test_incremental_through_the_audit_log_equals_a_full_read(tmp_path: Path) -> None:
    with _tenant(tmp_path, WITH_AUDIT) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim)
        first = run_backup(rt, "contoso", force_full=True)
        assert first.status == "succeeded", [k for k in first.kinds if k.status != "succeeded"]

        summary = d.churn(random.Random(5), 0.05)
        assert summary.links_changed and summary.au_members_added
        touched = _touch_every_relation(d, random.Random(3))
        before = len(sim.log.items())
        incremental = run_backup(rt, "contoso")
        assert incremental.mode == "incremental"
        by_kind = {k.kind: k for k in incremental.kinds}
        for name in AUDITED:
            assert by_kind[name].status == "succeeded", (name, by_kind[name].reason)
            assert by_kind[name].mode == "incremental", (name, by_kind[name].reason)
        assert not _listed(sim, before), "an incremental run listed a whole parent collection"
        reread = _reread(sim, before)

        after = len(sim.log.items())
        full = run_backup(rt, "contoso", force_full=True)
        assert full.status == "succeeded"
        got, want = _by_kind(rt, incremental.snapshot.id), _by_kind(rt, full.snapshot.id)
        for name in sorted(AUDITED):
            assert got.get(name) == want.get(name), name  # same parents, same content
        assert got == want

        # The changes show, and only parents something happened to were read again.
        changed = {k.kind for k in incremental.snapshot.kinds if k.added or k.changed or k.removed}
        assert {
            *touched,
            "groupOwner",
            "administrativeUnitMember",
            "deviceRegisteredUser",
        } <= changed
        assert after
        for path, parent in (
            ("devices/registeredUsers", "device"),
            ("servicePrincipals/appRoleAssignedTo", "servicePrincipal"),
        ):
            assert 0 < len(reread.get(path, ())) < d.count(parent) / 4, path
        for kind, parents in touched.items():
            assert parents <= reread[PATHS[kind]], kind
        rt.close()


def test_without_audit_permission_relations_are_read_in_full_with_a_note(tmp_path: Path) -> None:
    with _tenant(tmp_path, list(READ_PERMISSIONS)) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim)
        run_backup(rt, "contoso", force_full=True)
        d.churn(random.Random(5), 0.05)
        report = run_backup(rt, "contoso")
        by_kind = {k.kind: k for k in report.kinds}
        for name in AUDITED:
            assert by_kind[name].status == "succeeded", name
            assert by_kind[name].mode == "full", name
            assert "AuditLog.Read.All" in by_kind[name].reason, name
        warnings = [e.message for e in rt.catalog.events(report.job_id) if e.level == "warning"]
        assert any("Device owners read in full" in w and "AuditLog.Read.All" in w for w in warnings)
        full = run_backup(rt, "contoso", force_full=True)
        assert state_of(rt, report.snapshot.id) == state_of(rt, full.snapshot.id)
        rt.close()


def test_full_every_days_reads_relations_in_full(tmp_path: Path) -> None:
    with _tenant(tmp_path, WITH_AUDIT) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        assert "full_every_days = 7" in config.read_text()
        run_backup(rt, "contoso", force_full=True)
        assert run_backup(rt, "contoso").mode == "incremental"
        # A week passes: the last full snapshot is full_every_days old.
        week_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
        database = rt.config.agent.database_url.removeprefix("sqlite:///")
        with sqlite3.connect(database) as db:
            db.execute("UPDATE snapshot SET completed_at = ?", (week_ago.replace(tzinfo=None),))
        before = len(sim.log.items())
        report = run_backup(rt, "contoso")
        assert report.mode == "full"
        assert {k.mode for k in report.kinds if k.kind in AUDITED} == {"full"}
        assert any("/devices" in p for p in _listed(sim, before))
        rt.close()


def test_relations_are_read_in_full_once_the_audit_log_dropped_the_last_run(
    tmp_path: Path,
) -> None:
    # A tenant without Entra ID P1 keeps 7 days of directory audit events.
    with simulated_tenant(
        tmp_path / "sim", users=120, groups=12, graph_permissions=WITH_AUDIT, entra_premium=False
    ) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim)
        d.churn(random.Random(1), 0.05)  # events before the first run: it keeps a mark
        run_backup(rt, "contoso", force_full=True)
        d.advance_clock(8 * 24 * 3600)
        d.churn(random.Random(2), 0.05)
        report = run_backup(rt, "contoso")
        by_kind = {k.kind: k for k in report.kinds}
        for name in AUDITED:
            assert by_kind[name].mode == "full", name
            assert "retention" in by_kind[name].reason, (name, by_kind[name].reason)
        full = run_backup(rt, "contoso", force_full=True)
        assert state_of(rt, report.snapshot.id) == state_of(rt, full.snapshot.id)
        rt.close()
