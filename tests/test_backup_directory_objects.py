"""Apps, enterprise apps with their SSO settings, AUs, devices, roles and grants: backed up
completely, incrementally equal to a full read, and skipped by name without permission."""

from __future__ import annotations

import random
from pathlib import Path

from agent.jobs.backup import run_backup
from tests.agent_helpers import (
    agent_for,
    counts,
    kinds_with_permissions,
    simulated_tenant,
    state_of,
)

DELTA_KINDS = (
    "application",
    "servicePrincipal",
    "administrativeUnit",
    "device",
    "directoryRole",
    "oauth2PermissionGrant",
)


def test_every_directory_object_kind_is_captured_and_incremental_equals_full(
    tmp_path: Path,
) -> None:
    with simulated_tenant(tmp_path / "sim", users=400, groups=40) as sim:
        directory = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim)
        first = run_backup(rt, "contoso", force_full=True)
        assert first.status == "succeeded", [k for k in first.kinds if k.status != "succeeded"]
        present = counts(rt, first.snapshot.id)
        for kind in DELTA_KINDS:
            assert present.get(kind, 0) == directory.count(kind) > 0, kind
        # One relationship object per parent.
        assert present["applicationOwner"] == directory.count("application")
        assert present["appRoleAssignment"] == directory.count("servicePrincipal")

        # SSO configuration of enterprise apps is in the backup (the seed's SSO fields).
        state = state_of(rt, first.snapshot.id)
        sps = [rt.repository.get(b) for (k, _), b in state.items() if k == "servicePrincipal"]
        assert any(sp.get("preferredSingleSignOnMode") == "saml" for sp in sps)
        assert all("servicePrincipalNames" in sp for sp in sps)
        assignments = [
            rt.repository.get(b) for (k, _), b in state.items() if k == "appRoleAssignment"
        ]
        assert any(
            a["appRoleAssignedTo"] and "principalId" in a["appRoleAssignedTo"][0]
            for a in assignments
        )

        directory.churn(random.Random(3), 0.05)
        incremental = run_backup(rt, "contoso")
        full = run_backup(rt, "contoso", force_full=True)
        assert state_of(rt, incremental.snapshot.id) == state_of(rt, full.snapshot.id)
        changed = {k.kind for k in incremental.snapshot.kinds if k.added or k.changed or k.removed}
        assert {"application", "servicePrincipal", "device"} <= changed
        rt.close()


def test_kinds_without_application_permission_are_skipped_by_name(tmp_path: Path) -> None:
    permissions = ["User.Read.All", "Group.Read.All", "Device.Read.All"]
    by_kind = kinds_with_permissions(tmp_path, permissions)
    assert by_kind["device"].status == "succeeded"
    assert by_kind["application"].status == "skipped"
    assert by_kind["application"].reason == "missing Application.Read.All"
    assert by_kind["administrativeUnit"].reason == "missing AdministrativeUnit.Read.All"
    assert by_kind["oauth2PermissionGrant"].reason == "missing DelegatedPermissionGrant.Read.All"
