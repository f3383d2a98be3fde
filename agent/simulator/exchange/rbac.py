"""Exchange RBAC: management roles, built-in role groups and their assignments, which
management role each cmdlet needs, and the roles a connected principal holds.

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
    "New-ManagementRoleAssignment": "Role Management",
    "Set-ManagementRoleAssignment": "Role Management",
    "Remove-ManagementRoleAssignment": "Role Management",
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

# Every management role of Exchange Online the simulator knows, by kind: admin roles go to
# role groups, users and security groups; end-user roles (IsEndUserRole) only to role
# assignment policies; application roles (RBAC for Applications) only to service principals.
ADMIN_ROLES = (
    "Address Lists", "ApplicationImpersonation", "Audit Logs", "Compliance Admin",
    "Data Loss Prevention", "Distribution Groups", "E-Mail Address Policies",
    "Federated Sharing", "Information Rights Management", "Journaling", "Legal Hold",
    "Mail Enabled Public Folders", "Mail Recipient Creation", "Mail Recipients", "Mail Tips",
    "Mailbox Import Export", "Mailbox Search", "Message Tracking", "Move Mailboxes",
    "Org Custom Apps", "Org Marketplace Apps", "Organization Client Access",
    "Organization Configuration", "Organization Transport Settings", "Public Folders",
    "Recipient Policies", "Remote and Accepted Domains", "Reset Password",
    "Retention Management", "Role Management", "Security Admin",
    "Security Group Creation and Membership", "Security Reader", "Transport Hygiene",
    "Transport Rules", "User Options", "View-Only Audit Logs", "View-Only Configuration",
    "View-Only Recipients",
)  # fmt: skip
END_USER_ROLES = (
    "MyBaseOptions", "MyContactInformation", "MyProfileInformation", "MyDistributionGroups",
    "MyDistributionGroupMembership", "My Custom Apps", "My Marketplace Apps",
    "My ReadWriteMailbox Apps", "MyTextMessaging", "MyVoiceMail", "MyRetentionPolicies",
)  # fmt: skip
APPLICATION_ROLES = (
    "Application Mail.Read", "Application Mail.ReadWrite", "Application Mail.Send",
    "Application MailboxSettings.Read", "Application MailboxSettings.ReadWrite",
    "Application Calendars.Read", "Application Calendars.ReadWrite",
    "Application Contacts.Read", "Application Contacts.ReadWrite", "Application EWS.AccessAsApp",
)  # fmt: skip
DEFAULT_POLICY = "Default Role Assignment Policy"
DEFAULT_POLICY_ROLES = (
    "MyBaseOptions", "MyContactInformation", "MyProfileInformation",
    "MyDistributionGroupMembership", "My Marketplace Apps", "MyTextMessaging", "MyVoiceMail",
)  # fmt: skip

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
    ctx: OrgContext, name: str, members: list[str], description: str, ts: float
) -> dict[str, Any]:
    """A role group as stored; its Roles and RoleAssignments are read from the assignments
    (``with_roles``), as Exchange computes them."""
    stamp = iso_o(ts)
    return {
        "Identity": name,
        "Name": name,
        "DisplayName": name,
        "Guid": stable_guid(ctx.tenant_id, "RoleGroup", name),
        "ExternalDirectoryObjectId": stable_guid(ctx.tenant_id, "RoleGroupEdo", name),
        "Description": description,
        "RoleGroupType": "Standard",
        "Roles": [],
        "RoleAssignments": [],
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
            [],
            f"Members of this management role group have the {name} permissions.",
            ctx.created,
        )
        for name in BUILT_IN_ROLE_GROUPS
    ]


def default_assignments(ctx: OrgContext) -> list[dict[str, Any]]:
    """A new tenant's assignments: the built-in role groups' roles and the default role
    assignment policy's end-user roles."""
    out = [
        assignment_object(ctx, f"{role}-{group}", role, "RoleGroup", group, ctx.created)
        for group, roles in BUILT_IN_ROLE_GROUPS.items()
        for role in roles
    ]
    out += [
        assignment_object(
            ctx,
            f"{role}-{DEFAULT_POLICY}",
            role,
            "RoleAssignmentPolicy",
            DEFAULT_POLICY,
            ctx.created,
        )
        for role in DEFAULT_POLICY_ROLES
    ]
    return out


def assignment_object(
    ctx: OrgContext,
    name: str,
    role: str,
    assignee_type: str,
    assignee: str,
    ts: float,
    *,
    delegating: bool = False,
) -> dict[str, Any]:
    """Get-ManagementRoleAssignment's view of one assignment. A scoped one names its scope in
    CustomRecipientWriteScope and says which kind in RecipientWriteScope (a custom or exclusive
    scope, an OU, an administrative unit or a group)."""
    stamp = iso_o(ts)
    return {
        "Identity": name,
        "Name": name,
        "Guid": stable_guid(ctx.tenant_id, "RoleAssignment", name, stamp),
        "Role": role,
        "RoleAssigneeType": assignee_type,
        "RoleAssigneeName": assignee,
        "RoleAssignee": assignee,
        "AssignmentMethod": "Direct",
        "RoleAssignmentDelegationType": "Delegating" if delegating else "Regular",
        "Enabled": True,
        "RecipientReadScope": "Organization",
        "ConfigReadScope": "OrganizationConfig",
        "RecipientWriteScope": "Organization",
        "ConfigWriteScope": "OrganizationConfig",
        "CustomRecipientWriteScope": None,
        "CustomConfigWriteScope": None,
        "CustomResourceScope": None,
        "WhenChanged": stamp,
        "WhenCreated": stamp,
        "WhenChangedUTC": stamp,
        "WhenCreatedUTC": stamp,
    }


def of_group(assignments: list[dict[str, Any]], group: str) -> list[dict[str, Any]]:
    wanted = group.lower()
    return [
        a
        for a in assignments
        if a["RoleAssigneeType"] == "RoleGroup" and str(a["RoleAssigneeName"]).lower() == wanted
    ]


def with_roles(group: dict[str, Any], assignments: list[dict[str, Any]]) -> dict[str, Any]:
    """Get-RoleGroup's view: Roles and RoleAssignments from the group's assignments."""
    mine = of_group(assignments, str(group["Name"]))
    roles = list(dict.fromkeys(str(a["Role"]) for a in mine))
    return {**group, "Roles": roles, "RoleAssignments": [str(a["Name"]) for a in mine]}


def granted(
    assignments: list[dict[str, Any]], groups: list[dict[str, Any]], members: set[str]
) -> set[str]:
    """The roles ``members`` hold: enabled regular assignments to their role groups or to
    them directly (a disabled assignment grants nothing)."""
    mine = {str(g["Name"]).lower() for g in groups if members & set(g["Members"])}
    direct = {m.lower() for m in members}
    return {
        str(a["Role"])
        for a in assignments
        if a["Enabled"]
        and a["RoleAssignmentDelegationType"] == "Regular"
        and (
            (a["RoleAssigneeType"] == "RoleGroup" and str(a["RoleAssigneeName"]).lower() in mine)
            or (
                a["RoleAssigneeType"] in ("User", "ServicePrincipal")
                and str(a["RoleAssignee"]).lower() in direct
            )
        )
    }
