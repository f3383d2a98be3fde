"""The module's exported functions, step for step as ps_scripts/EntraBackup.Exchange.psm1
runs them: same cmdlet calls and parameters, same labels, same envelope.

Each handler gets the bound parameters (binding.py) and the session; module tables
(allow-lists, DL property list, settable properties, policy families) come from the module's
parse tree (agent.exchange.contract), not from copies.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from agent.simulator.exchange.binding import Bound
from agent.simulator.exchange.envelope import Envelope, _string, _test_properties
from agent.simulator.exchange.functions_restore import (
    new_allow_block_item,
    new_role_assignment,
    new_setting,
    remove_allow_block_item,
    replace_members,
    set_role_assignment,
    set_rule_state,
    sync_role_group_role,
    update_role_group_member,
)

__all__ = ["FUNCTIONS", "READS", "Envelope"]


def export_distribution_groups(env: Envelope, bound: Bound) -> None:
    values = bound.values
    cursors = env.session.group_cursors
    cursor: dict[str, Any] | None = None
    cursor_id, offset = "", 0
    if "ResumeToken" in bound.bound:
        cursor_id, _, offset_text = str(values["ResumeToken"]).partition(":")
        offset = int(offset_text)
        cursor = cursors.get(cursor_id)
        if (
            cursor is None
            or cursor["RecipientTypeDetails"] != values["RecipientTypeDetails"]
            or offset > len(cursor["Groups"])
        ):
            env.add_error(
                "ResumeToken",
                "NotFound",
                "The resume token is not known to this session; start the listing again.",
            )
            cursor = None
    else:
        query: dict[str, Any] = {
            "RecipientTypeDetails": values["RecipientTypeDetails"],
            "ResultSize": "Unlimited",
        }
        if "ChangedSinceUtc" in bound.bound:
            since: dt.datetime = values["ChangedSinceUtc"]
            stamp = since.astimezone(dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
            query["Filter"] = f"WhenChangedUTC -gt '{stamp}'"
        groups = env.invoke("Get-DistributionGroup", query)
        if groups is not None:
            properties = list(env.module.tables["EbDlProperties"])
            items = [{name: group.get(name) for name in properties} for group in groups]
            cursor_id = uuid.uuid4().hex
            cursor = {"RecipientTypeDetails": values["RecipientTypeDetails"], "Groups": items}
            while len(cursors) >= int(env.module.tables["EbMaxGroupCursors"]):
                cursors.pop(next(iter(cursors)))  # oldest first
            cursors[cursor_id] = cursor
    if cursor is None:
        return
    listing: list[dict[str, Any]] = cursor["Groups"]
    end = min(offset + int(values["PageSize"]), len(listing))
    for source in listing[offset:end]:
        item = dict(source)
        if values.get("IncludeMembers"):
            group_id = _string(source, "Guid") or ""
            members = env.invoke(
                "Get-DistributionGroupMember",
                {"Identity": group_id, "ResultSize": "Unlimited"},
                "Get-DistributionGroupMember:" + group_id,
            )
            item["Members"] = (
                None
                if members is None
                else [
                    {
                        "ExternalDirectoryObjectId": _string(m, "ExternalDirectoryObjectId"),
                        "PrimarySmtpAddress": _string(m, "PrimarySmtpAddress"),
                        "RecipientTypeDetails": _string(m, "RecipientTypeDetails"),
                    }
                    for m in members
                ]
            )
        env.items.append(item)
    if end < len(listing):
        env.next = f"{cursor_id}:{end}"


def export_settings(env: Envelope, bound: Bound) -> None:
    result_size = {c.lower() for c in env.module.tables["EbResultSizeCmdlets"]}
    for name in bound.values["Cmdlet"]:
        calls: list[str | None] = [None]
        if name.lower() == "get-tenantallowblocklistitems":
            calls = ["Sender", "Url", "FileHash", "IP"]
        for list_type in calls:
            parameters: dict[str, Any] = {}
            label = name
            if list_type is not None:
                parameters["ListType"] = list_type
                label = f"{name}:{list_type}"
            if name.lower() in result_size:
                parameters["ResultSize"] = "Unlimited"
            objects = env.invoke(name, parameters, label)
            if objects is None:
                continue
            env.items.append({"cmdlet": name, "listType": list_type, "objects": objects})


def new_distribution_group(env: Envelope, bound: Bound) -> None:
    values = bound.values
    parameters = {"Name": values["Name"], "Type": values["Type"]}
    for key in (
        "Alias",
        "DisplayName",
        "PrimarySmtpAddress",
        "ManagedBy",
        "Members",
        "HiddenGroupMembershipEnabled",
    ):
        if key in bound.bound:
            parameters[key] = values[key]
    created = env.invoke("New-DistributionGroup", parameters)
    for group in created or []:
        env.items.append(
            {
                key: _string(group, key)
                for key in ("Guid", "ExternalDirectoryObjectId", "Identity", "PrimarySmtpAddress")
            }
        )


def set_distribution_group(env: Envelope, bound: Bound) -> None:
    allowed = list(env.module.tables["EbDlSettable"])
    properties = _test_properties(env, "Set-DistributionGroup", allowed, bound.values["Properties"])
    if properties is not None:
        parameters = dict(properties)
        parameters["Identity"] = bound.values["Identity"]
        parameters["BypassSecurityGroupManagerCheck"] = True
        env.invoke("Set-DistributionGroup", parameters)


def sync_members(env: Envelope, bound: Bound) -> None:
    replace_members(env, bound, "Update-DistributionGroupMember")


def remove_distribution_group(env: Envelope, bound: Bound) -> None:
    parameters = {
        "Identity": bound.values["Identity"],
        "BypassSecurityGroupManagerCheck": True,
        "Confirm": False,
    }
    env.invoke("Remove-DistributionGroup", parameters)


def set_setting(env: Envelope, bound: Bound) -> None:
    cmdlet = bound.values["Cmdlet"]
    table = {k.lower(): v for k, v in env.module.tables["EbSettableByCmdlet"].items()}
    allowed = list(table.get(cmdlet.lower(), []))
    properties = _test_properties(env, cmdlet, allowed, bound.values["Properties"])
    if properties is not None:
        parameters = dict(properties)
        if "Identity" in bound.bound:
            parameters["Identity"] = bound.values["Identity"]
        env.invoke(cmdlet, parameters)


def new_policy_with_rule(env: Envelope, bound: Bound) -> None:
    values = bound.values
    families = {k.lower(): v for k, v in env.module.tables["EbPolicyRuleFamilies"].items()}
    spec = families[values["Family"].lower()]
    settable = env.module.tables["EbSettableByCmdlet"]
    rule_allowed = [p for p in settable[spec["RuleSet"]] if p != "Priority"]
    policy = _test_properties(
        env, spec["Policy"], list(settable[spec["PolicySet"]]), values["PolicyProperties"]
    )
    rule = _test_properties(env, spec["Rule"], rule_allowed, values["RuleProperties"])
    if policy is None or rule is None:
        return
    created = env.invoke(spec["Policy"], {**policy, "Name": values["Name"]})
    if created is None:
        return
    rule_parameters = {
        **rule,
        "Name": values["RuleName"] if "RuleName" in bound.bound else values["Name"],
        spec["RulePolicyParameter"]: values["Name"],
        "Priority": values["Priority"],
    }
    created_rule = env.invoke(spec["Rule"], rule_parameters)
    env.items.append(
        {
            "family": values["Family"],
            "policy": _string(created[0] if created else None, "Identity"),
            "rule": _string(created_rule[0] if created_rule else None, "Identity"),
            "priority": values["Priority"],
        }
    )


def new_transport_rule(env: Envelope, bound: Bound) -> None:
    values = bound.values
    settable = env.module.tables["EbSettableByCmdlet"]["Set-TransportRule"]
    allowed = [p for p in settable if p != "Priority"]
    properties = _test_properties(env, "New-TransportRule", allowed, values["Properties"])
    if properties is None:
        return
    parameters = {**properties, "Name": values["Name"], "Priority": values["Priority"]}
    created = env.invoke("New-TransportRule", parameters)
    if created is not None:
        env.items.append(
            {
                "rule": _string(created[0] if created else None, "Identity"),
                "priority": values["Priority"],
            }
        )


def remove_setting(env: Envelope, bound: Bound) -> None:
    env.invoke(bound.values["Cmdlet"], {"Identity": bound.values["Identity"], "Confirm": False})


_READ_ROLES = ("View-Only Configuration", "View-Only Recipients", "Security Reader")
_WRITE_ROLES = (
    "Distribution Groups",
    "Security Group Creation and Membership",
    "Security Admin",
    "Transport Rules",
    "Remote and Accepted Domains",
    "Organization Transport Settings",
    "Organization Configuration",
    "Organization Client Access",
)


def new_role_group_setup(env: Envelope, bound: Bound) -> None:
    values = bound.values
    roles = list(_READ_ROLES) + (list(_WRITE_ROLES) if values["Mode"] == "ReadWrite" else [])
    name = values["RoleGroupName"]
    sp = values["ServicePrincipalObjectId"]
    env.invoke(
        "New-ServicePrincipal",
        {"AppId": values["AppId"], "ObjectId": sp, "DisplayName": values["DisplayName"]},
    )
    env.invoke(
        "New-RoleGroup",
        {"Name": name, "Roles": roles, "Description": "entra-backup service app (least privilege)"},
    )
    env.invoke(
        "Add-RoleGroupMember",
        {"Identity": name, "Member": sp, "BypassSecurityGroupManagerCheck": True},
    )
    env.items.append({"roleGroup": name, "roles": roles, "servicePrincipal": sp})


Handler = Callable[[Envelope, Bound], None]
# Exported function -> (envelope op, handler). Connect-EbExchange lives in the bridge (it needs
# the world's tenants and credentials).
FUNCTIONS: dict[str, tuple[str, Handler]] = {
    "Export-EbDistributionGroups": ("exportDistributionGroups", export_distribution_groups),
    "Export-EbSettings": ("exportSettings", export_settings),
    "New-EbDistributionGroup": ("newDistributionGroup", new_distribution_group),
    "Set-EbDistributionGroup": ("setDistributionGroup", set_distribution_group),
    "Sync-EbDistributionGroupMember": ("syncDistributionGroupMember", sync_members),
    "Remove-EbDistributionGroup": ("removeDistributionGroup", remove_distribution_group),
    "Set-EbSetting": ("setSetting", set_setting),
    "New-EbPolicyWithRule": ("newPolicyWithRule", new_policy_with_rule),
    "New-EbTransportRule": ("newTransportRule", new_transport_rule),
    "Remove-EbSetting": ("removeSetting", remove_setting),
    "New-EbRoleGroupSetup": ("newRoleGroupSetup", new_role_group_setup),
    "New-EbSetting": ("newSetting", new_setting),
    "Set-EbRuleState": ("setRuleState", set_rule_state),
    "Update-EbRoleGroupMember": ("updateRoleGroupMember", update_role_group_member),
    "New-EbAllowBlockListItem": ("newAllowBlockListItem", new_allow_block_item),
    "Remove-EbAllowBlockListItem": ("removeAllowBlockListItem", remove_allow_block_item),
    "New-EbRoleAssignment": ("newRoleAssignment", new_role_assignment),
    "Set-EbRoleAssignment": ("setRoleAssignment", set_role_assignment),
    "Sync-EbRoleGroupRole": ("syncRoleGroupRole", sync_role_group_role),
}
# Parameters each handler reads (the contract test checks them against the module).
READS: dict[str, tuple[str, ...]] = {
    "Connect-EbExchange": (
        "AppId",
        "Organization",
        "CertificateThumbprint",
        "CertificateFilePath",
        "CertificatePassword",
        "Credential",
        "IncludeSecurityCompliance",
    ),
    "Export-EbDistributionGroups": (
        "RecipientTypeDetails",
        "ChangedSinceUtc",
        "IncludeMembers",
        "PageSize",
        "ResumeToken",
    ),
    "Export-EbSettings": ("Cmdlet",),
    "New-EbDistributionGroup": (
        "Name",
        "Type",
        "Alias",
        "DisplayName",
        "PrimarySmtpAddress",
        "ManagedBy",
        "Members",
        "HiddenGroupMembershipEnabled",
    ),
    "Set-EbDistributionGroup": ("Identity", "Properties"),
    "Sync-EbDistributionGroupMember": ("Identity", "Members"),
    "Remove-EbDistributionGroup": ("Identity",),
    "Set-EbSetting": ("Cmdlet", "Identity", "Properties"),
    "New-EbPolicyWithRule": (
        "Family",
        "Name",
        "RuleName",
        "PolicyProperties",
        "RuleProperties",
        "Priority",
    ),
    "New-EbTransportRule": ("Name", "Priority", "Properties"),
    "Remove-EbSetting": ("Cmdlet", "Identity"),
    "New-EbRoleGroupSetup": (
        "AppId",
        "ServicePrincipalObjectId",
        "DisplayName",
        "RoleGroupName",
        "Mode",
    ),
    "New-EbSetting": ("Cmdlet", "Properties", "SetProperties"),
    "Set-EbRuleState": ("Cmdlet", "Identity"),
    "Update-EbRoleGroupMember": ("Identity", "Members"),
    "New-EbAllowBlockListItem": ("ListType", "Value", "Action", "Notes", "ExpirationDate"),
    "Remove-EbAllowBlockListItem": ("ListType", "Id"),
    "New-EbRoleAssignment": (
        "Role",
        "AssigneeType",
        "Assignee",
        "Name",
        "Delegating",
        "Scope",
        "Enabled",
    ),
    "Set-EbRoleAssignment": ("Identity", "Enabled", "Scope"),
    "Sync-EbRoleGroupRole": ("Identity", "Roles", "AddOnly"),
}
