"""Role definitions, role assignments, PIM eligibility, group settings, organization,
domains and company branding (with its images as blobs): captured completely from a
simulated tenant, stored only when changed, incrementally equal to a full read, checked by
verify, written out by export, and skipped by name without permission."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from agent.jobs.backup import run_backup
from agent.simulator.graph import Directory
from tests.agent_helpers import (
    agent_for,
    cli,
    counts,
    kinds_with_permissions,
    objects_of,
    simulated_tenant,
    state_of,
)

KINDS = (
    "roleDefinition",
    "roleAssignment",
    "roleEligibilitySchedule",
    "groupSetting",
    "organization",
    "domain",
    "companyBranding",
)


def expected_counts(d: Directory) -> dict[str, int]:
    store = d.tenant_config
    with d.lock:
        return {
            "roleDefinition": len(store.role_definitions),
            "roleAssignment": len(store.role_assignments(d)),
            "roleEligibilitySchedule": len(store.live_eligibility(d)),
            "groupSetting": len(store.group_settings),
            "organization": 1,
            "domain": len(store.domains),
            "companyBranding": len(store.branding),
        }


def test_tenant_configuration_is_captured_with_images_and_incremental_equals_full(
    tmp_path: Path,
) -> None:
    with simulated_tenant(tmp_path / "sim", users=400, groups=40) as sim:
        d = sim.tenants["contoso"].directory
        config, rt = agent_for(tmp_path / "agent", sim)
        first = run_backup(rt, "contoso", force_full=True)
        assert first.status == "succeeded", [k for k in first.kinds if k.status != "succeeded"]
        present = counts(rt, first.snapshot.id)
        assert {k: present.get(k, 0) for k in KINDS} == expected_counts(d)

        # The RBAC view ties real principals to roles, some scoped to an AU.
        assignments = objects_of(rt, first.snapshot.id, "roleAssignment")
        scopes = {a["directoryScopeId"] for a in assignments.values()}
        assert "/" in scopes and any(s.startswith("/administrativeUnits/") for s in scopes)
        definitions = objects_of(rt, first.snapshot.id, "roleDefinition")
        assert {a["roleDefinitionId"] for a in assignments.values()} <= set(definitions)
        assert any(r["isBuiltIn"] for r in definitions.values())
        assert any(not r["isBuiltIn"] for r in definitions.values())

        # Branding images are blobs of their own, byte for byte what the tenant serves.
        branding = objects_of(rt, first.snapshot.id, "companyBranding")
        images = d.tenant_config.images
        for locale, obj in branding.items():
            assert set(obj["images"]) == set(images.get(locale, {})), locale
            for name, ref in obj["images"].items():
                assert rt.repository.get_bytes(ref["blobId"]) == images[locale][name]
                assert ref["contentType"] == "image/png" and ref["bytes"] > 0
        assert branding["0"]["images"] and "signInPageText" in branding["0"]

        # Nothing changed: a second run stores no new version of any of these kinds.
        again = run_backup(rt, "contoso")
        unchanged = {k.kind: k for k in again.snapshot.kinds}
        for kind in KINDS:
            assert (unchanged[kind].added, unchanged[kind].changed, unchanged[kind].removed) == (
                0,
                0,
                0,
            ), kind

        summary = d.churn(random.Random(3), 0.05)
        assert summary.branding_images_changed and summary.role_definitions_changed
        incremental = run_backup(rt, "contoso")
        full = run_backup(rt, "contoso", force_full=True)
        assert state_of(rt, incremental.snapshot.id) == state_of(rt, full.snapshot.id)
        assert {k: counts(rt, full.snapshot.id).get(k, 0) for k in KINDS} == expected_counts(d)
        changed = {k.kind for k in incremental.snapshot.kinds if k.added or k.changed or k.removed}
        assert {
            "roleDefinition",
            "roleAssignment",
            "roleEligibilitySchedule",
            "groupSetting",
            "companyBranding",
        } <= changed
        assert not {"organization", "domain"} & changed
        locale, image = summary.branding_images_changed[0]
        ref = objects_of(rt, incremental.snapshot.id, "companyBranding")[locale]["images"][image]
        assert rt.repository.get_bytes(ref["blobId"]) == d.tenant_config.images[locale][image]

        # Export writes each image next to its localization's JSON.
        out = tmp_path / "export"
        result = cli(
            "export", str(incremental.snapshot.id), "--out", str(out), "--config", str(config)
        )
        assert result.code == 0, result.err
        written = json.loads((out / "snapshot.json").read_text())
        entry = next(
            e for e in written["index"] if e["kind"] == "companyBranding" and e["id"] == "0"
        )
        banner = out / entry["images"]["bannerLogo"]
        assert banner.read_bytes() == d.tenant_config.images["0"]["bannerLogo"]

        # Verify checks image blobs too: a damaged image is named by the object that needs it.
        assert cli("verify", "--config", str(config)).code == 0
        blob = ref["blobId"]
        pack, offset, length = rt.repository.location(blob) or pytest.fail("image not stored")
        with pack.open("r+b") as fh:  # bit rot in the middle of the image's sealed bytes
            fh.seek(offset + length // 2)
            fh.write(bytes([fh.read(1)[0] ^ 0xFF]))
        broken = cli("verify", "--json", "--config", str(config))
        assert broken.code != 0
        problems = broken.json()["problems"]
        assert any(
            blob in p and "authentication failed" in p and "companyBranding/0" in p
            for p in problems
        )
        rt.close()


def test_role_kinds_are_skipped_without_role_management_permission(tmp_path: Path) -> None:
    permissions = ["User.Read.All", "Group.Read.All", "Organization.Read.All", "Domain.Read.All"]
    by_kind = kinds_with_permissions(tmp_path, permissions)
    assert by_kind["roleDefinition"].reason == "missing RoleManagement.Read.Directory"
    assert by_kind["roleAssignment"].reason == "missing RoleManagement.Read.Directory"
    assert (
        by_kind["roleEligibilitySchedule"].reason
        == "missing RoleEligibilitySchedule.Read.Directory"
    )
    for kind in ("organization", "domain", "companyBranding"):
        assert by_kind[kind].status == "succeeded", kind
    assert by_kind["groupSetting"].reason == "missing GroupSettings.Read.All"


def test_pim_is_skipped_as_not_licensed_in_a_tenant_without_p2(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=60, groups=8) as sim:
        d = sim.tenants["contoso"].directory
        with d.lock:  # the E5 subscription (the only one with Entra ID P2) has lapsed
            for sku in d.objects.skus:
                if sku["skuPartNumber"] == "SPE_E5":
                    sku["capabilityStatus"] = "Suspended"
        _, rt = agent_for(tmp_path / "agent", sim)
        report = run_backup(rt, "contoso", force_full=True)
        by_kind = {k.kind: k for k in report.kinds}
        pim = by_kind["roleEligibilitySchedule"]
        assert (pim.status, pim.reason) == (
            "skipped",
            "not licensed (needs Microsoft Entra ID P2 or ID Governance)",
        )
        assert report.status == "succeeded"  # a fact about the tenant, not a failure
        assert by_kind["roleAssignment"].status == "succeeded"
        rt.close()


def test_branding_needs_only_its_own_permission(tmp_path: Path) -> None:
    permissions = ["User.Read.All", "OrganizationalBranding.Read.All"]
    with simulated_tenant(
        tmp_path / "sim", users=60, groups=8, graph_permissions=permissions
    ) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim)
        report = run_backup(rt, "contoso", force_full=True)
        by_kind = {k.kind: k for k in report.kinds}
        assert by_kind["organization"].reason == "missing Organization.Read.All"
        assert by_kind["companyBranding"].status == "succeeded"
        assert counts(rt, report.snapshot.id)["companyBranding"] == len(d.tenant_config.branding)
        rt.close()
