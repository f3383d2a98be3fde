"""What an incremental Entra backup asks Graph for: only what changed, each source once.

Counted on the simulator's request log (real sockets, real msal/requests): an administrative
unit whose members changed is checked member by member ("Get a member"), not re-listed; the
directory audit log is read once for the archive and the relationship kinds together; and the
incremental snapshot still equals a full one taken right after."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from agent.jobs.backup import run_backup
from agent.runtime import Runtime
from agent.simulator.graph import audit_links
from agent.simulator.graph.directory import Directory
from agent.simulator.service import READ_PERMISSIONS, Simulator
from tests.agent_helpers import agent_for, simulated_tenant, state_of

WITH_AUDIT = [*READ_PERMISSIONS, "AuditLog.Read.All"]
_ID = "[0-9a-f-]{36}"
AU_KINDS = (
    "administrativeUnit",
    "administrativeUnitMember",
    "user",
    "group",
    "device",
    "directoryAudit",
)


def _requests(sim: Simulator, since: int) -> list[str]:
    """Every request since ``since`` as "path" and each $batch item as "batch:path"."""
    out: list[str] = []
    for item in sim.log.items()[since:]:
        out.append(item.path)
        out += [f"batch:{p}" for p in item.note.get("batch_paths", ())]
    return out


def _by_kind(rt: Runtime, snapshot_id: int, kind: str) -> dict[str, str]:
    return {oid: blob for (k, oid), blob in state_of(rt, snapshot_id).items() if k == kind}


def _largest_units(d: Directory, count: int) -> list[str]:
    with d.lock:
        units = d.objects.links["administrativeUnit.members"]
        return sorted(units, key=lambda u: (-len(units[u]), u))[:count]


def test_changed_unit_members_are_checked_one_by_one_and_the_audit_log_read_once(
    tmp_path: Path,
) -> None:
    with simulated_tenant(tmp_path / "sim", graph_permissions=WITH_AUDIT) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim, kinds=AU_KINDS)
        assert run_backup(rt, "contoso", force_full=True).status == "succeeded"

        grown, shrunk = _largest_units(d, 2)
        rng = random.Random(4)
        with d.lock:
            users = sorted(r["id"] for _, r in d.scan("user", 0))
            joiner = next(u for u in users if u not in d.objects.links[
                "administrativeUnit.members"].get(grown, ()))  # fmt: skip
            leaver = rng.choice(sorted(d.objects.links["administrativeUnit.members"][shrunk]))
            audit_links.link(d, "administrativeUnit.members", grown, joiner)
            audit_links.unlink(d, "administrativeUnit.members", shrunk, leaver)
        before = len(sim.log.items())
        incremental = run_backup(rt, "contoso")
        assert incremental.mode == "incremental"
        members = next(k for k in incremental.kinds if k.kind == "administrativeUnitMember")
        assert members.status == "succeeded" and members.mode == "incremental", members.reason
        asked = _requests(sim, before)

        # The two named members were checked; neither unit's member list was read again.
        unit_paths = "/directory/administrativeUnits"
        assert f"batch:{unit_paths}/{grown}/members/{joiner}" in asked
        assert f"batch:{unit_paths}/{shrunk}/members/{leaver}" in asked
        listed = [p for p in asked if re.search(rf"administrativeUnits/{_ID}/members$", p)]
        assert listed == []
        # The audit archive and the relationship kinds shared one read of the log (a page).
        assert asked.count("/v1.0/auditLogs/directoryAudits") == 1
        archive = next(k for k in incremental.kinds if k.kind == "directoryAudit")
        assert archive.status == "succeeded" and archive.succeeded >= 2

        full = run_backup(rt, "contoso", force_full=True)
        assert _by_kind(rt, incremental.snapshot.id, "administrativeUnitMember") == _by_kind(
            rt, full.snapshot.id, "administrativeUnitMember"
        )
        stored: dict[str, Any] = {
            oid: rt.repository.get(blob)
            for oid, blob in _by_kind(
                rt, incremental.snapshot.id, "administrativeUnitMember"
            ).items()
        }
        assert joiner in {m["id"] for m in stored[grown]["members"]}
        assert leaver not in {m["id"] for m in stored[shrunk]["members"]}
        rt.close()


LIST_KINDS = (
    "subscribedSku",
    "deletedUser",
    "roleDefinition",
    "groupSetting",
    "domain",
    "authorizationPolicy",
    "tokenLifetimePolicy",
    "companyBranding",
)
PARENT_KINDS = (
    "application",
    "applicationOwner",
    "applicationExtensionProperty",
    "servicePrincipal",
    "servicePrincipalOwner",
    "appRoleAssignment",
    "device",
    "deviceRegisteredOwner",
    "deviceRegisteredUser",
    "user",
)


def test_small_lists_come_in_one_batch_and_unchanged_images_are_not_read(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", graph_permissions=WITH_AUDIT) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim, kinds=LIST_KINDS)
        before = len(sim.log.items())
        first = run_backup(rt, "contoso", force_full=True)
        assert first.status == "succeeded", [k for k in first.kinds if k.status != "succeeded"]
        asked = _requests(sim, before)
        # The list kinds' first pages went out together: none was asked for on its own.
        for path in ("/subscribedSkus", "/domains", "/policies/authorizationPolicy"):
            assert f"batch:{path}" in asked
            assert f"/v1.0{path}" not in asked
        streams = [p for p in asked if "/branding/localizations/" in p]
        assert streams  # the full run read every image

        # Nothing changed: no image is read again.
        before = len(sim.log.items())
        again = run_backup(rt, "contoso")
        assert not [p for p in _requests(sim, before) if "/branding/localizations/" in p]
        assert {k.kind for k in again.snapshot.kinds if k.added or k.changed or k.removed} == set()

        # One image replaced: exactly that one is read, and the snapshot equals a full read.
        from agent.simulator.graph.tenant_generate import image_for, set_image

        with d.lock:
            set_image(d, d.tenant_config, "0", "bannerLogo", image_for(random.Random(9), "x"))
        before = len(sim.log.items())
        incremental = run_backup(rt, "contoso")
        read = [p for p in _requests(sim, before) if "/branding/localizations/" in p]
        assert read == [f"/v1.0/organization/{d.tenant_id}/branding/localizations/0/bannerLogo"]
        full = run_backup(rt, "contoso", force_full=True)
        assert state_of(rt, incremental.snapshot.id) == state_of(rt, full.snapshot.id)
        rt.close()


def test_relationship_kinds_share_their_parent_kinds_delta_round(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", graph_permissions=WITH_AUDIT, applications=40) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim, kinds=PARENT_KINDS)
        before = len(sim.log.items())
        assert run_backup(rt, "contoso", force_full=True).status == "succeeded"
        # The relationship kinds took the parent kinds' positions: no position of their own.
        positions = [p for p in _requests(sim, before) if p.endswith("/delta")]
        assert positions.count("/v1.0/applications/delta") == 1
        assert positions.count("/v1.0/servicePrincipals/delta") == 1
        assert positions.count("/v1.0/devices/delta") == 1

        d.churn(random.Random(5), 0.05)
        with d.lock:
            app = sorted(r["id"] for _, r in d.scan("application", 0))[2]
            owner = sorted(r["id"] for _, r in d.scan("user", 0))[11]
            audit_links.link(d, "application.owners", app, owner)
        before = len(sim.log.items())
        incremental = run_backup(rt, "contoso")
        assert incremental.mode == "incremental"
        for k in incremental.kinds:
            assert k.status == "succeeded" and k.mode == "incremental", (k.kind, k.reason)
        asked = _requests(sim, before)
        # One delta round per parent collection (a page each here), shared by its kinds.
        assert asked.count("/v1.0/applications/delta") == 1
        assert asked.count("/v1.0/servicePrincipals/delta") == 1
        assert asked.count("/v1.0/devices/delta") == 1
        assert f"batch:/applications/{app}/owners" in asked

        full = run_backup(rt, "contoso", force_full=True)
        assert state_of(rt, incremental.snapshot.id) == state_of(rt, full.snapshot.id)
        rt.close()
