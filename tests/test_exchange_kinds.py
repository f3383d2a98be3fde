"""The Exchange kinds agree with the ps_scripts module they are read and restored through."""

from __future__ import annotations

import re
from pathlib import Path

from agent.exchange.contract import load_contract
from agent.kinds import ALL_KINDS, BY_NAME, resolve
from agent.kinds.exchange import GROUP_KINDS, SETTING_BY_KIND, SETTINGS_KINDS
from tests.agent_helpers import cli

PS_DIR = Path(__file__).resolve().parent.parent / "ps_scripts"
MODULE = (PS_DIR / "EntraBackup.Exchange.psm1").read_text(encoding="utf-8")


def _module_list(variable: str) -> set[str]:
    block = re.search(rf"\$script:{variable} = @\((.*?)\n\)", MODULE, re.S)
    assert block, variable
    return set(re.findall(r"'([A-Za-z0-9-]+)'", block.group(1)))


def test_one_kind_per_settings_cmdlet_the_module_exports() -> None:
    contract = load_contract(PS_DIR)
    exported = set(contract["Export-EbSettings"].params["Cmdlet"].validate_set or ())
    assert {k.extra["cmdlet"] for k in SETTINGS_KINDS} == exported


def test_restore_strategies_match_the_write_functions() -> None:
    contract = load_contract(PS_DIR)
    settable = set(contract["Set-EbSetting"].params["Cmdlet"].validate_set or ())
    families = set(contract["New-EbPolicyWithRule"].params["Family"].validate_set or ())
    creatable = set(contract["New-EbSetting"].params["Cmdlet"].validate_set or ())
    # Role assignments have functions of their own (New-/Set-EbRoleAssignment).
    roles = contract["New-EbRoleAssignment"].wrapped_cmdlets
    assert "New-ManagementRoleAssignment" in roles and "Set-ManagementRoleAssignment" in roles
    settable.add("Set-ManagementRoleAssignment")
    creatable.add("New-ManagementRoleAssignment")
    for kind in SETTINGS_KINDS:
        noun = kind.extra["cmdlet"].removeprefix("Get-")
        assert ("set" in kind.restore) == (f"Set-{noun}" in settable), kind.name
        # Policies come back with their rule (New-EbPolicyWithRule), mail flow rules alone,
        # the other families by New-EbSetting, allow/block entries by their own function.
        recreated = (
            bool(kind.extra["policy_family"])
            or noun in ("TransportRule", "TenantAllowBlockListItems")
            or f"New-{noun}" in creatable
        )
        assert ("recreate" in kind.restore) == recreated, kind.name
        assert noun != "TransportRule" or "New-EbTransportRule" in contract
        assert not kind.extra["policy_family"] or kind.extra["policy_family"] in families


def test_defender_licence_flags_match_the_modules_list() -> None:
    # The module also lists the Set-/New- cmdlets of those families (they vanish too).
    mdo = {c for c in _module_list("EbMdoCmdlets") if c.startswith("Get-")}
    flagged = {k.extra["cmdlet"] for k in SETTINGS_KINDS if k.extra["licence"]}
    assert flagged == mdo


def test_bridge_kinds_are_registered_with_their_channel_and_areas() -> None:
    bridge = [k for k in ALL_KINDS if k.channel == "bridge"]
    assert {k.name for k in bridge} == {k.name for k in (*GROUP_KINDS, *SETTINGS_KINDS)}
    assert {k.area.value for k in bridge} == {"exchange", "defender"}
    assert {k.name for k in resolve(["defender"])} == {
        k.name for k in SETTINGS_KINDS if k.area == "defender"
    }
    # The Graph group id: the key Graph's groups delta and restore both use.
    assert {k.key for k in GROUP_KINDS} == {"ExternalDirectoryObjectId", "groupId"}
    assert len(SETTING_BY_KIND) == len(SETTINGS_KINDS)


def test_permissions_command_names_the_exchange_permission_and_roles() -> None:
    result = cli("permissions", "--scope", "exchange", "--scope", "defender", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["read"] == []  # no Graph permission for bridge kinds
    exchange = data["exchange"]
    assert "Exchange.ManageAsApp" in exchange["permission"]
    assert exchange["entra_role"] == "Exchange Administrator"
    assert exchange["role_group_roles"] == [
        "Security Reader",
        "View-Only Configuration",
        "View-Only Recipients",
    ]
    write = cli("permissions", "--scope", "exchange", "--write", "--json").json()["exchange"]
    assert {"Distribution Groups", "Transport Rules"} <= set(write["role_group_roles"])
    # Restore writes groups the app does not manage (-BypassSecurityGroupManagerCheck): the
    # role Microsoft documents for that, not Role Management (which could grant more roles).
    assert "Security Group Creation and Membership" in write["role_group_roles"]
    assert "Role Management" not in write["role_group_roles"]
    # Restoring Exchange role groups and role assignments needs Role Management (Organization
    # Management has it) or the Entra role: never the least-privilege group.
    assert write["entra_role_only"] == ["managementRoleAssignment", "roleGroup"]
    assert write["entra_role_only_exchange_role"] == "Role Management"
    assert write["entra_role_only_role_group"] == "Organization Management"
    text = cli("permissions", "--scope", "exchange", "--write").out
    assert "managementRoleAssignment, roleGroup needs the Exchange role Role Management" in text


def test_member_lists_and_multi_valued_properties_compare_as_sets() -> None:
    from agent.compare.differ import diff_objects
    from agent.exchange.contract import parse_module

    dl_properties = set(parse_module(PS_DIR).tables["EbDlProperties"])
    a = {"ExternalDirectoryObjectId": "u-a", "PrimarySmtpAddress": "a@contoso.com"}
    b = {"ExternalDirectoryObjectId": "u-b", "PrimarySmtpAddress": "b@contoso.com"}
    c = {"ExternalDirectoryObjectId": "u-c", "PrimarySmtpAddress": "c@contoso.com"}
    for group, members in (
        ("distributionGroup", "distributionGroupMember"),
        ("mailEnabledSecurityGroup", "mailEnabledSecurityGroupMember"),
    ):
        assert {e.partition("[")[0] for e in BY_NAME[group].unordered} <= dl_properties
        # Exchange returns members in any order: the same set is no difference.
        old = {"groupId": "g", "members": [a, b]}
        assert diff_objects(members, "g", old, {"groupId": "g", "members": [b, a]}) is None
        changed = diff_objects(members, "g", old, {"groupId": "g", "members": [b, c]})
        assert changed is not None
        assert {(ch.path, ch.op) for ch in changed.changes} == {
            ("members[u-a]", "removed"),
            ("members[u-c]", "added"),
        }
        before = {
            "ExternalDirectoryObjectId": "g",
            "EmailAddresses": ["SMTP:x@c.com", "smtp:y@c.com"],
        }
        after = {
            "ExternalDirectoryObjectId": "g",
            "EmailAddresses": ["smtp:y@c.com", "SMTP:x@c.com"],
        }
        assert diff_objects(group, "g", before, after) is None
