"""Exchange RBAC writes: management role assignments (Get-/New-/Set-/Remove-
ManagementRoleAssignment) and role groups with their roles (New-RoleGroup -Roles, and
Remove-RoleGroup for the simulator's own churn and drills). The caller holds the lock.

What Exchange Online refuses, refused here: a role that does not exist, an assignee that does
not exist (role group, user, role assignment policy, service principal), a role of the wrong
kind for the assignee (end-user roles go to policies, application roles to apps, admin roles
to the others), an unknown management scope, two scope parameters at once, an assignment
whose name is taken or that repeats one the assignee already has. Unknown objects fail as
Exchange words it ("The operation couldn't be performed because object '…' couldn't be
found"); the duplicate texts are modeled on Exchange's ADObjectAlreadyExistsException
(exact wording unconfirmed).
"""

from __future__ import annotations

import copy
from typing import Any

from agent.simulator.exchange import errors
from agent.simulator.exchange.objects import touch
from agent.simulator.exchange.rbac import (
    ADMIN_ROLES,
    APPLICATION_ROLES,
    END_USER_ROLES,
    assignment_object,
    of_group,
    role_group_object,
    with_roles,
)
from agent.simulator.exchange.state import ExchangeOrg

ROLES = {r.lower(): r for r in (*ADMIN_ROLES, *END_USER_ROLES, *APPLICATION_ROLES)}
ASSIGNEES = ("SecurityGroup", "User", "Policy", "App")  # the parameters naming the assignee
# Scope parameter -> the RecipientWriteScope Get- shows; its value is kept in
# CustomRecipientWriteScope (CustomResourceScope for apps).
SCOPES = {
    "CustomRecipientWriteScope": "CustomRecipientScope",
    "ExclusiveRecipientWriteScope": "ExclusiveRecipientScope",
    "RecipientOrganizationalUnitScope": "OU",
    "RecipientAdministrativeUnitScope": "AdministrativeUnit",
    "RecipientGroupScope": "Group",
}
RELATIVE = ("None", "Organization", "MyGAL", "Self", "MyDistributionGroups")
_SCOPE_PARAMETERS = (*SCOPES, "RecipientRelativeWriteScope", "CustomResourceScope")
_COMMON = ("Confirm", "WhatIf", "ErrorAction", "Force")
# Documented Exchange Online parameters (checked by settings_restore.check_parameters).
PARAMETERS: dict[str, tuple[str, ...]] = {
    "Get-ManagementRoleAssignment": (
        "Identity", "Role", "RoleAssignee", "RoleAssigneeType", "Delegating", "Enabled",
        "Exclusive", "CustomRecipientWriteScope", "RecipientWriteScope", "ResultSize",
        "ErrorAction",
    ),
    "New-ManagementRoleAssignment": (
        "Name", "Role", *ASSIGNEES, "Delegating", *_SCOPE_PARAMETERS, *_COMMON,
    ),
    "Set-ManagementRoleAssignment": ("Identity", "Enabled", *_SCOPE_PARAMETERS, *_COMMON),
    "Remove-ManagementRoleAssignment": ("Identity", *_COMMON),
}  # fmt: skip


def role_name(role: str) -> str:
    found = ROLES.get(role.strip().lower())
    if found is None:
        raise errors.not_found(role)
    return found


def get(org: ExchangeOrg, params: dict[str, Any]) -> list[dict[str, Any]]:
    found = org.role_assignments
    if params.get("Identity") is not None:
        found = [_find(org, str(params["Identity"]))]
    if params.get("Role") is not None:
        role = role_name(str(params["Role"]))
        found = [a for a in found if a["Role"] == role]
    if params.get("RoleAssignee") is not None:
        who = str(params["RoleAssignee"]).lower()
        if not _known(org, who):  # RoleAssigneeIdParameter: an existing role holder
            raise errors.not_found(str(params["RoleAssignee"]))
        found = [
            a
            for a in found
            if who in (str(a["RoleAssignee"]).lower(), str(a["RoleAssigneeName"]).lower())
        ]
    if params.get("Delegating") is not None:
        kind = "Delegating" if params["Delegating"] else "Regular"
        found = [a for a in found if a["RoleAssignmentDelegationType"] == kind]
    return copy.deepcopy(found)


def _known(org: ExchangeOrg, who: str) -> bool:
    return (
        any(who in (g["Name"].lower(), g["Guid"]) for g in org.role_groups)
        or who in {p.lower() for p in org.assignment_policies}
        or who in org.service_principals
        or org.resolve(who) is not None  # a user or a mail-enabled security group
    )


def _find(org: ExchangeOrg, identity: str) -> dict[str, Any]:
    wanted = identity.lower()
    for a in org.role_assignments:
        if wanted in (str(a["Name"]).lower(), str(a["Guid"]).lower()):
            return a
    raise errors.not_found(identity)


def _assignee(org: ExchangeOrg, parameter: str, value: str, role: str) -> tuple[str, str, str]:
    """(RoleAssignee, RoleAssigneeName, RoleAssigneeType) of an existing assignee that may
    hold ``role``."""
    end_user, app = role in END_USER_ROLES, role in APPLICATION_ROLES
    if parameter == "Policy":
        policy = next((p for p in org.assignment_policies if p.lower() == value.lower()), None)
        if policy is None:
            raise errors.not_found(value)
        if not end_user:
            raise errors.validation(
                f"The role '{role}' isn't an end-user role. Only roles with IsEndUserRole set to "
                "$true can be assigned to a role assignment policy."
            )
        return policy, policy, "RoleAssignmentPolicy"
    if end_user:
        raise errors.validation(
            f"The role '{role}' is an end-user role and can be assigned only to a role "
            "assignment policy."
        )
    if parameter == "App":
        if value not in org.service_principals:
            raise errors.not_found(value)
        if not app:
            raise errors.validation(
                f"The role '{role}' can't be assigned to a service principal: only application "
                "roles (for example, Application Mail.Read) can."
            )
        return (
            value,
            str(org.service_principals[value].get("DisplayName") or value),
            "ServicePrincipal",
        )
    if app:
        raise errors.validation(
            f"The application role '{role}' can be assigned only to a service principal (-App)."
        )
    if parameter == "SecurityGroup":
        group = next(
            (g for g in org.role_groups if value.lower() in (g["Name"].lower(), g["Guid"])), None
        )
        if group is not None:
            return group["Name"], group["Name"], "RoleGroup"
        # Or a mail-enabled universal security group.
        found = org.resolve(value)
        record = org.dls.get(found[1]) if found and found[0] == "group" else None
        if record is None or record.recipient_type != "MailUniversalSecurityGroup":
            raise errors.not_found(value)
        return record.name, record.name, "SecurityGroup"
    found = org.resolve(value)
    if found is None or found[0] != "user":
        raise errors.not_found(value)
    return found[1], org.recipient_name(*found), "User"


def _scope(org: ExchangeOrg, params: dict[str, Any], app: bool) -> dict[str, Any]:
    """The scope properties a New-/Set- call gives the assignment (empty: none given)."""
    given = [k for k in _SCOPE_PARAMETERS if params.get(k) is not None]
    if len(given) > 1:
        raise errors.validation(
            f"The {given[0]} and {given[1]} parameters can't be used together: an assignment "
            "has one recipient write scope."
        )
    if not given:
        return {}
    key, value = given[0], str(params[given[0]])
    if (key == "CustomResourceScope") != app:
        raise errors.validation(
            "CustomResourceScope is used only with the App parameter; an application role "
            "assignment takes no other scope."
        )
    if key in ("CustomRecipientWriteScope", "ExclusiveRecipientWriteScope", "CustomResourceScope"):
        scope = next((s for s in org.management_scopes if s["Name"].lower() == value.lower()), None)
        if scope is None:
            raise errors.not_found(value)
        if (key == "ExclusiveRecipientWriteScope") != bool(scope["Exclusive"]):
            kind = "an exclusive" if scope["Exclusive"] else "a regular"
            raise errors.validation(f"The management scope '{value}' is {kind} scope.")
        value = scope["Name"]
    if key == "CustomResourceScope":
        return {"CustomResourceScope": value}
    if key == "RecipientRelativeWriteScope":
        if value not in RELATIVE:
            raise errors.invalid_value(key, value, "RecipientWriteScopeType")
        return {"RecipientWriteScope": value, "CustomRecipientWriteScope": None}
    return {"RecipientWriteScope": SCOPES[key], "CustomRecipientWriteScope": value}


def new(org: ExchangeOrg, params: dict[str, Any]) -> list[dict[str, Any]]:
    """New-ManagementRoleAssignment."""
    role = role_name(str(params.get("Role") or ""))
    chosen = [p for p in ASSIGNEES if params.get(p) is not None]
    if len(chosen) != 1:
        raise errors.CmdletError(
            "System.Management.Automation.ParameterBindingException",
            "Parameter set cannot be resolved using the specified named parameters.",
            "AmbiguousParameterSet,New-ManagementRoleAssignment",
        )
    parameter = chosen[0]
    assignee, assignee_name, assignee_type = _assignee(org, parameter, str(params[parameter]), role)
    scope = _scope(org, params, parameter == "App")
    delegating = bool(params.get("Delegating"))
    name = str(params.get("Name") or f"{role}-{assignee_name}")[:64]
    for other in org.role_assignments:
        if (
            other["Role"] == role
            and other["RoleAssigneeType"] == assignee_type
            and str(other["RoleAssignee"]).lower() == assignee.lower()
            and (other["RoleAssignmentDelegationType"] == "Delegating") == delegating
            and all(other.get(k) == v for k, v in scope.items())
            and (scope or other["RecipientWriteScope"] == "Organization")
        ):
            raise errors.server_error(
                "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
                f"The role assignment \"{other['Name']}\" already assigns the role '{role}' to "
                f"'{assignee_name}' with the same scope.",
            )
    if any(a["Name"].lower() == name.lower() for a in org.role_assignments):
        raise errors.server_error(
            "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
            f'The role assignment "{name}" already exists. Please specify a different name.',
        )
    made = assignment_object(
        org.ctx, name, role, assignee_type, assignee, org.directory.now(), delegating=delegating
    )
    made["RoleAssigneeName"] = assignee_name
    made.update(scope)
    org.role_assignments.append(made)
    return [copy.deepcopy(made)]


def set_(org: ExchangeOrg, params: dict[str, Any]) -> list[Any]:
    """Set-ManagementRoleAssignment: Enabled, and one recipient write scope."""
    target = _find(org, str(params["Identity"]))
    scope = _scope(org, params, target["RoleAssigneeType"] == "ServicePrincipal")
    if "Enabled" in params:
        if not isinstance(params["Enabled"], bool):
            raise errors.invalid_value("Enabled", params["Enabled"], "System.Boolean")
        target["Enabled"] = params["Enabled"]
    target.update(scope)
    touch(target, org.directory.now())
    return []


def remove(org: ExchangeOrg, params: dict[str, Any]) -> list[Any]:
    org.role_assignments.remove(_find(org, str(params["Identity"])))
    return []


def new_role_group(org: ExchangeOrg, params: dict[str, Any]) -> list[dict[str, Any]]:
    """New-RoleGroup: the group, and one assignment per role (named role-group)."""
    name = str(params["Name"])
    if any(g["Name"].lower() == name.lower() for g in org.role_groups):
        raise errors.name_taken(name)
    roles = [role_name(str(r)) for r in (params.get("Roles") or [])]
    members = [str(m) for m in (params.get("Members") or [])]
    for member in members:
        if member not in org.service_principals and org.resolve(member) is None:
            raise errors.recipient_not_found(member)
    now = org.directory.now()
    group = role_group_object(org.ctx, name, members, str(params.get("Description", "")), now)
    for key in ("DisplayName", "ManagedBy"):
        if key in params:
            value = params[key]
            group[key] = [str(v) for v in value] if isinstance(value, list) else value
    org.role_groups.append(group)
    for role in roles:
        new(org, {"Role": role, "SecurityGroup": name})
    return [with_roles(copy.deepcopy(group), org.role_assignments)]


def remove_role_group(org: ExchangeOrg, identity: str) -> None:
    """Remove-RoleGroup: the group and every assignment it had."""
    group = next(g for g in org.role_groups if g["Name"].lower() == identity.lower())
    gone = {id(a) for a in of_group(org.role_assignments, group["Name"])}
    org.role_assignments[:] = [a for a in org.role_assignments if id(a) not in gone]
    org.role_groups.remove(group)
