"""Exchange RBAC: built-in role groups, which management role each cmdlet needs, and the
roles a connected principal holds.

Exchange Online exposes only the cmdlets the caller holds a role for (and the tenant is
licensed for): a cmdlet outside them is simply "not recognized". Exchange Administrator or
Global Administrator (Entra roles) cover everything; a service principal otherwise gets the
roles of the role groups it is a member of (facts file §6: New-ServicePrincipal,
Add-RoleGroupMember).
"""

from __future__ import annotations

from typing import Any

from agent.simulator.exchange.objects import OrgContext, iso_o, stable_guid

ALL = "*"
_EXO_CONFIG_NOUNS = (
    "OrganizationConfig",
    "TransportConfig",
    "AcceptedDomain",
    "RemoteDomain",
    "InboundConnector",
    "OutboundConnector",
    "TransportRule",
    "OwaMailboxPolicy",
    "MobileDeviceMailboxPolicy",
    "RoleGroup",
    "ManagementRoleAssignment",
    "ExternalInOutlook",
)
_WRITE_ROLES = {
    "Set-TransportRule": "Transport Rules",
    "New-TransportRule": "Transport Rules",
    "Remove-TransportRule": "Transport Rules",
    "Set-AcceptedDomain": "Remote and Accepted Domains",
    "Set-RemoteDomain": "Remote and Accepted Domains",
    "Set-TransportConfig": "Organization Transport Settings",
    "Set-InboundConnector": "Organization Transport Settings",
    "Set-OutboundConnector": "Organization Transport Settings",
    "Set-OrganizationConfig": "Organization Configuration",
    "Set-ExternalInOutlook": "Organization Configuration",
    "Set-ArcConfig": "Organization Configuration",
    "Set-OwaMailboxPolicy": "Organization Client Access",
    "Set-MobileDeviceMailboxPolicy": "Organization Client Access",
    "New-DistributionGroup": "Distribution Groups",
    "Set-DistributionGroup": "Distribution Groups",
    "Remove-DistributionGroup": "Distribution Groups",
    "Update-DistributionGroupMember": "Distribution Groups",
    "New-ServicePrincipal": "Role Management",
    "New-RoleGroup": "Role Management",
    "Add-RoleGroupMember": "Role Management",
    "Set-RoleGroup": "Role Management",
    "Update-RoleGroupMember": "Role Management",
    "Enable-TransportRule": "Transport Rules",
    "Disable-TransportRule": "Transport Rules",
    "New-AcceptedDomain": "Remote and Accepted Domains",
    "New-RemoteDomain": "Remote and Accepted Domains",
    "Remove-RemoteDomain": "Remote and Accepted Domains",
    "New-InboundConnector": "Organization Transport Settings",
    "New-OutboundConnector": "Organization Transport Settings",
    "Remove-InboundConnector": "Organization Transport Settings",
    "Remove-OutboundConnector": "Organization Transport Settings",
    "New-OwaMailboxPolicy": "Organization Client Access",
    "New-MobileDeviceMailboxPolicy": "Organization Client Access",
    "Remove-OwaMailboxPolicy": "Organization Client Access",
    "Remove-MobileDeviceMailboxPolicy": "Organization Client Access",
}

BUILT_IN_ROLE_GROUPS: dict[str, list[str]] = {
    "Organization Management": [
        "Distribution Groups",
        "Security Group Creation and Membership",
        "Organization Configuration",
        "Organization Transport Settings",
        "Transport Rules",
        "Remote and Accepted Domains",
        "Organization Client Access",
        "Role Management",
        "Security Admin",
        "View-Only Configuration",
        "View-Only Recipients",
        "Security Reader",
    ],
    "Recipient Management": ["Distribution Groups", "View-Only Recipients"],
    "View-Only Organization Management": ["View-Only Configuration", "View-Only Recipients"],
    "Security Administrator": ["Security Admin", "Security Reader", "View-Only Configuration"],
    "Security Reader": ["Security Reader"],
    "Hygiene Management": ["Security Admin", "View-Only Configuration", "View-Only Recipients"],
    "Compliance Management": ["View-Only Configuration", "View-Only Recipients"],
    "Help Desk": ["View-Only Recipients"],
}


def required_role(cmdlet: str) -> str:
    """The management role whose holders see ``cmdlet``."""
    if cmdlet in _WRITE_ROLES:
        return _WRITE_ROLES[cmdlet]
    verb, _, noun = cmdlet.partition("-")
    if noun in ("DistributionGroup", "DistributionGroupMember"):
        return "View-Only Recipients"
    if verb == "Get":
        return "View-Only Configuration" if noun in _EXO_CONFIG_NOUNS else "Security Reader"
    return "Security Admin"


def role_group_object(
    ctx: OrgContext, name: str, roles: list[str], members: list[str], description: str, ts: float
) -> dict[str, Any]:
    stamp = iso_o(ts)
    return {
        "Identity": name,
        "Name": name,
        "DisplayName": name,
        "Guid": stable_guid(ctx.tenant_id, "RoleGroup", name),
        "ExternalDirectoryObjectId": stable_guid(ctx.tenant_id, "RoleGroupEdo", name),
        "Description": description,
        "RoleGroupType": "Standard",
        "Roles": list(roles),
        "RoleAssignments": [f"{role}-{name}" for role in roles],
        "Members": list(members),
        "ManagedBy": [],
        "Capabilities": [],
        "WhenChanged": stamp,
        "WhenCreated": stamp,
        "WhenChangedUTC": stamp,
        "WhenCreatedUTC": stamp,
    }


def default_role_groups(ctx: OrgContext) -> list[dict[str, Any]]:
    return [
        role_group_object(
            ctx,
            name,
            roles,
            [],
            f"Members of this management role group have the {name} permissions.",
            ctx.created,
        )
        for name, roles in BUILT_IN_ROLE_GROUPS.items()
    ]


def role_assignments(ctx: OrgContext, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Get-ManagementRoleAssignment: one assignment per role of every role group."""
    assignments = []
    for group in groups:
        for role in group["Roles"]:
            name = f"{role}-{group['Name']}"
            assignments.append(
                {
                    "Identity": name,
                    "Name": name,
                    "Guid": stable_guid(ctx.tenant_id, "RoleAssignment", name),
                    "Role": role,
                    "RoleAssigneeType": "RoleGroup",
                    "RoleAssigneeName": group["Name"],
                    "RoleAssignee": group["Name"],
                    "AssignmentMethod": "Direct",
                    "Enabled": True,
                    "RecipientReadScope": "Organization",
                    "ConfigReadScope": "OrganizationConfig",
                    "RecipientWriteScope": "Organization",
                    "ConfigWriteScope": "OrganizationConfig",
                    "CustomRecipientWriteScope": None,
                    "CustomConfigWriteScope": None,
                    "WhenChangedUTC": group["WhenChangedUTC"],
                    "WhenCreatedUTC": group["WhenCreatedUTC"],
                }
            )
    return assignments
