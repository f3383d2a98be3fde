"""Writes through the simulated bridge host change the simulated Exchange (and the Graph
directory for mail-enabled groups) so a later export shows them, and Exchange's own rules are
enforced: unknown identities, duplicate names/aliases, members that must exist, group manager
checks, property allow-lists, rule priorities."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypsrp.powershell import RunspacePool

from agent.simulator.exchange import role_assignments as rbac_writes
from agent.simulator.service import Simulator, TenantHandle, TenantSpec
from tests.exchange_helpers import open_bridge, run, set_setting, settings_of

DL, SG = "MailUniversalDistributionGroup", "MailUniversalSecurityGroup"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_tenant(TenantSpec(name="northwind", seed=9, users=120, groups=30))
        yield simulator
        assert simulator.errors == [] and simulator.winrm.errors == []


@pytest.fixture(scope="module")
def tenant(sim: Simulator) -> TenantHandle:
    return sim.tenants["northwind"]


@pytest.fixture
def pool(sim: Simulator, tenant: TenantHandle) -> Iterator[RunspacePool]:
    with open_bridge(sim, tenant) as opened:
        yield opened


def _users(tenant: TenantHandle, n: int) -> list[dict[str, Any]]:
    return [u for u in tenant.directory.users() if u["userType"] == "Member"][:n]


def _group(pool: RunspacePool, kind: str, identity: str) -> dict[str, Any]:
    items = run(pool, "Export-EbDistributionGroups", RecipientTypeDetails=kind, IncludeMembers=True)
    return next(i for i in items["items"] if identity in (i["Name"], i["Guid"], i["Alias"]))


def test_create_update_sync_and_remove_a_distribution_group(
    pool: RunspacePool, tenant: TenantHandle
) -> None:
    a, b, c = _users(tenant, 3)
    created = run(
        pool,
        "New-EbDistributionGroup",
        Name="Project Falcon",
        Type="Distribution",
        Alias="falcon",
        ManagedBy=[a["mailNickname"]],
        Members=[a["userPrincipalName"], b["mail"]],
    )
    assert created["ok"] and created["succeeded"] == ["New-DistributionGroup"]
    (item,) = created["items"]
    assert set(item) == {"Guid", "ExternalDirectoryObjectId", "Identity", "PrimarySmtpAddress"}
    group_id = item["ExternalDirectoryObjectId"]
    row = tenant.directory.get(group_id)
    assert row is not None and row["mailEnabled"] and not row["securityEnabled"]
    assert tenant.directory.members(group_id) == {a["id"], b["id"]}

    changed = run(
        pool,
        "Set-EbDistributionGroup",
        Identity="falcon",
        Properties={
            "displayname": "Falcon Team",
            "ModerationEnabled": True,
            "ModeratedBy": [c["mailNickname"]],
            "AcceptMessagesOnlyFromSendersOrMembers": [a["mail"]],
            "CustomAttribute3": "proj",
        },
    )
    assert changed["ok"], changed["errors"]
    synced = run(pool, "Sync-EbDistributionGroupMember", Identity=item["Guid"], Members=[c["id"]])
    assert synced["ok"] and synced["succeeded"] == ["Update-DistributionGroupMember"]
    exported = _group(pool, DL, "Project Falcon")
    assert exported["DisplayName"] == "Falcon Team" and exported["ModerationEnabled"] is True
    assert exported["ModeratedBy"] == [c["mailNickname"]]
    assert exported["AcceptMessagesOnlyFrom"] == [a["mailNickname"]]
    assert exported["AcceptMessagesOnlyFromSendersOrMembers"] == [a["mailNickname"]]
    assert exported["CustomAttribute3"] == "proj"
    assert [m["ExternalDirectoryObjectId"] for m in exported["Members"]] == [c["id"]]
    # The Graph half changed too: Graph delta sees name and membership changes.
    assert tenant.directory.get(group_id)["displayName"] == "Falcon Team"
    assert tenant.directory.members(group_id) == {c["id"]}

    cleared = run(pool, "Sync-EbDistributionGroupMember", Identity="falcon", Members=[])
    assert cleared["ok"] and tenant.directory.members(group_id) == set()
    removed = run(pool, "Remove-EbDistributionGroup", Identity="Project Falcon")
    assert removed["ok"] and removed["succeeded"] == ["Remove-DistributionGroup"]
    assert tenant.directory.get(group_id) is None
    again = run(pool, "Remove-EbDistributionGroup", Identity="Project Falcon")
    assert again["failed"] == ["Remove-DistributionGroup"]
    assert again["errors"][0]["category"] == "NotFound"


def test_exchange_rules_are_enforced(pool: RunspacePool, tenant: TenantHandle) -> None:
    (a,) = _users(tenant, 1)
    first = run(
        pool, "New-EbDistributionGroup", Name="Rules A", Type="Distribution", Alias="rules-a"
    )
    assert first["ok"]
    duplicate_name = run(pool, "New-EbDistributionGroup", Name="Rules A", Type="Distribution")
    assert "already being used" in duplicate_name["errors"][0]["message"]
    duplicate_alias = run(
        pool, "New-EbDistributionGroup", Name="Rules B", Type="Distribution", Alias="rules-a"
    )
    assert "proxy address" in duplicate_alias["errors"][0]["message"]
    ghost = run(
        pool,
        "Sync-EbDistributionGroupMember",
        Identity="rules-a",
        Members=["nobody@nowhere.example"],
    )
    assert ghost["errors"][0]["category"] == "NotFound"
    unknown = run(
        pool, "Set-EbDistributionGroup", Identity="no-such-group", Properties={"MailTip": "x"}
    )
    assert unknown["errors"][0]["category"] == "NotFound"
    # The module refuses properties that are not on its allow-list before calling Exchange.
    refused = run(
        pool,
        "Set-EbDistributionGroup",
        Identity="rules-a",
        Properties={"Guid": "x", "Identity": "y"},
    )
    assert refused["failed"] == ["Set-DistributionGroup"] and refused["succeeded"] == []
    assert refused["errors"][0]["message"] == "properties not allowed: Guid, Identity" or (
        refused["errors"][0]["message"] == "properties not allowed: Identity, Guid"
    )
    wrong_type = run(
        pool, "Set-EbDistributionGroup", Identity="rules-a", Properties={"ModerationEnabled": "yes"}
    )
    assert wrong_type["errors"][0]["category"] == "Other"
    # A mail-enabled security group keeps at least one manager.
    security = run(
        pool, "New-EbDistributionGroup", Name="Rules SG", Type="Security", ManagedBy=[a["mail"]]
    )
    assert security["ok"]
    no_owner = run(
        pool, "Set-EbDistributionGroup", Identity="Rules SG", Properties={"ManagedBy": []}
    )
    assert "at least one owner" in no_owner["errors"][0]["message"]


def test_security_group_writes_need_manager_or_bypass_rights(
    sim: Simulator, tenant: TenantHandle
) -> None:
    org = tenant.exchange
    (owner,) = _users(tenant, 1)
    with open_bridge(sim, tenant) as pool:
        assert run(
            pool,
            "New-EbDistributionGroup",
            Name="Guarded SG",
            Type="Security",
            ManagedBy=[owner["mail"]],
        )["ok"]
    # Take Exchange Administrator away; give the app a role group without Role Management,
    # as New-EbRoleGroupSetup -Mode ReadWrite does.
    org.app_exchange_admin = False
    sp = "0f0e0d0c-0b0a-4909-8807-060504030201"
    org.service_principals[sp] = {"AppId": tenant.client_id, "ObjectId": sp}
    writers = {"Name": "Writers", "Roles": ["Distribution Groups", "View-Only Recipients"]}
    rbac_writes.new_role_group(org, {**writers, "Members": [sp]})
    try:
        # Roles are read when a session connects, as in Exchange Online.
        with open_bridge(sim, tenant) as pool:
            result = run(
                pool, "Set-EbDistributionGroup", Identity="Guarded SG", Properties={"MailTip": "hi"}
            )
            # The principal is not a manager, and bypassing the manager check needs
            # Organization Management or Security Group Creation and Membership (the
            # -BypassSecurityGroupManagerCheck documentation).
            assert result["failed"] == ["Set-DistributionGroup"]
            assert "manager of the group" in result["errors"][0]["message"]
            dl = run(pool, "New-EbDistributionGroup", Name="Writers DL", Type="Distribution")
            assert dl["ok"]
            assert run(
                pool, "Set-EbDistributionGroup", Identity="Writers DL", Properties={"MailTip": "hi"}
            )["ok"]
        # An administrator sets up the least-privilege role group for restore instead …
        rbac_writes.remove_role_group(org, "Writers")
        org.service_principals.clear()
        org.app_exchange_admin = True
        with open_bridge(sim, tenant) as admin:
            setup = run(
                admin,
                "New-EbRoleGroupSetup",
                AppId=tenant.client_id,
                ServicePrincipalObjectId=sp,
                DisplayName="entra-backup",
                RoleGroupName="Restore Writers",
                Mode="ReadWrite",
            )
            assert setup["ok"], setup["errors"]
        assert "Security Group Creation and Membership" in setup["items"][0]["roles"]
        assert "Role Management" not in setup["items"][0]["roles"]
        # … and with it alone the app writes the group it does not manage.
        org.app_exchange_admin = False
        with open_bridge(sim, tenant) as pool:
            assert run(
                pool, "Set-EbDistributionGroup", Identity="Guarded SG", Properties={"MailTip": "hi"}
            )["ok"]
            assert run(pool, "Sync-EbDistributionGroupMember", Identity="Guarded SG", Members=[])[
                "ok"
            ]
            assert run(pool, "Remove-EbDistributionGroup", Identity="Guarded SG")["ok"]
    finally:
        org.app_exchange_admin = True
        for name in ("Writers", "Restore Writers"):
            if any(g["Name"] == name for g in org.role_groups):
                rbac_writes.remove_role_group(org, name)
        org.service_principals.clear()


def test_set_setting_changes_what_export_shows(pool: RunspacePool, tenant: TenantHandle) -> None:
    result = set_setting(
        pool,
        "Set-HostedContentFilterPolicy",
        {"BulkThreshold": 4, "BlockedSenderDomains": ["spam.example"]},
        identity="Default",
    )
    assert result["ok"] and result["succeeded"] == ["Set-HostedContentFilterPolicy"]
    singleton = set_setting(pool, "Set-OrganizationConfig", {"FocusedInboxOn": False})
    assert singleton["ok"]
    refused = set_setting(pool, "Set-OrganizationConfig", {"IsDehydrated": True})
    assert refused["errors"][0]["message"] == "properties not allowed: IsDehydrated"
    missing = set_setting(
        pool, "Set-RemoteDomain", {"AutoForwardEnabled": False}, identity="NoSuchDomain"
    )
    assert missing["errors"][0]["category"] == "NotFound"
    bad = set_setting(
        pool, "Set-HostedContentFilterPolicy", {"BulkThreshold": "high"}, identity="Default"
    )
    assert bad["errors"][0]["category"] == "Other"
    exported = run(
        pool,
        "Export-EbSettings",
        Cmdlet=["Get-HostedContentFilterPolicy", "Get-OrganizationConfig"],
    )
    policy = next(
        p for p in settings_of(exported, "Get-HostedContentFilterPolicy") if p["Name"] == "Default"
    )
    assert policy["BulkThreshold"] == 4 and policy["BlockedSenderDomains"] == ["spam.example"]
    assert policy["WhenChangedUTC"] > policy["WhenCreatedUTC"]
    assert settings_of(exported, "Get-OrganizationConfig")[0]["FocusedInboxOn"] is False


def test_new_policy_with_rule(pool: RunspacePool, tenant: TenantHandle) -> None:
    result = run(
        pool,
        "New-EbPolicyWithRule",
        Family="MalwareFilter",
        Name="Finance malware",
        PolicyProperties={"FileTypeAction": "Quarantine"},
        RuleProperties={"SentToMemberOf": ["finance"]},
        Priority=0,
    )
    assert result["ok"], result["errors"]
    assert result["succeeded"] == ["New-MalwareFilterPolicy", "New-MalwareFilterRule"]
    assert result["items"] == [
        {
            "family": "MalwareFilter",
            "policy": "Finance malware",
            "rule": "Finance malware",
            "priority": 0,
        }
    ]
    exported = run(
        pool, "Export-EbSettings", Cmdlet=["Get-MalwareFilterPolicy", "Get-MalwareFilterRule"]
    )
    policy = next(
        p
        for p in settings_of(exported, "Get-MalwareFilterPolicy")
        if p["Name"] == "Finance malware"
    )
    assert policy["FileTypeAction"] == "Quarantine" and policy["IsDefault"] is False
    (rule,) = settings_of(exported, "Get-MalwareFilterRule")
    assert rule["MalwareFilterPolicy"] == "Finance malware" and rule["SentToMemberOf"] == [
        "finance"
    ]
    again = run(
        pool, "New-EbPolicyWithRule", Family="MalwareFilter", Name="Finance malware", Priority=0
    )
    assert again["failed"] == ["New-MalwareFilterPolicy"] and again["items"] == []
    # Rule priorities must be contiguous: 5 with one existing rule is out of range.
    far = run(pool, "New-EbPolicyWithRule", Family="MalwareFilter", Name="Far away", Priority=5)
    assert far["succeeded"] == ["New-MalwareFilterPolicy"]
    assert far["failed"] == ["New-MalwareFilterRule"]
    assert far["items"][0]["rule"] is None
    both_bad = run(
        pool,
        "New-EbPolicyWithRule",
        Family="AntiPhish",
        Name="X",
        PolicyProperties={"Bogus": 1},
        RuleProperties={"Priority": 1},
        Priority=0,
    )
    assert both_bad["failed"] == ["New-AntiPhishPolicy", "New-AntiPhishRule"]


def test_role_group_setup(pool: RunspacePool, tenant: TenantHandle) -> None:
    sp = "a1b2c3d4-0000-4000-8000-000000000001"
    result = run(
        pool,
        "New-EbRoleGroupSetup",
        AppId=tenant.client_id,
        ServicePrincipalObjectId=sp,
        DisplayName="entra-backup",
        Mode="ReadOnly",
    )
    assert result["ok"], result["errors"]
    assert result["succeeded"] == ["New-ServicePrincipal", "New-RoleGroup", "Add-RoleGroupMember"]
    (item,) = result["items"]
    assert item["roleGroup"] == "EntraBackup Service"
    assert item["roles"] == ["View-Only Configuration", "View-Only Recipients", "Security Reader"]
    exported = run(pool, "Export-EbSettings", Cmdlet=["Get-RoleGroup"])
    group = next(
        g for g in settings_of(exported, "Get-RoleGroup") if g["Name"] == "EntraBackup Service"
    )
    assert group["Members"] == [sp] and group["Roles"] == item["roles"]
    twice = run(
        pool,
        "New-EbRoleGroupSetup",
        AppId=tenant.client_id,
        ServicePrincipalObjectId=sp,
        DisplayName="entra-backup",
    )
    assert set(twice["failed"]) == {"New-ServicePrincipal", "New-RoleGroup", "Add-RoleGroupMember"}


def test_exchange_state_survives_a_restart_with_state(tmp_path: Path) -> None:
    spec = TenantSpec(name="persisted", seed=2, users=40, groups=12)
    with Simulator(tmp_path) as first:
        tenant = first.add_tenant(spec)
        with open_bridge(first, tenant) as pool:
            assert run(pool, "New-EbDistributionGroup", Name="Kept DL", Type="Distribution")["ok"]
            assert run(
                pool, "Set-EbDistributionGroup", Identity="Kept DL", Properties={"MailTip": "kept"}
            )["ok"]
            assert set_setting(pool, "Set-TransportConfig", {"MaxRecipientEnvelopeLimit": "250"})[
                "ok"
            ]
        before = {g.group_id: g.props for g in tenant.exchange.dls.values()}
    with Simulator(tmp_path) as second:
        tenant = second.add_tenant(spec)
        with open_bridge(second, tenant) as pool:
            kept = _group(pool, DL, "Kept DL")
            config = run(pool, "Export-EbSettings", Cmdlet=["Get-TransportConfig"])
        assert kept["MailTip"] == "kept"
        assert settings_of(config, "Get-TransportConfig")[0]["MaxRecipientEnvelopeLimit"] == "250"
        assert {g.group_id: g.props for g in tenant.exchange.dls.values()} == before
