"""The module's restore functions beyond groups and Set-EbSetting (New-EbSetting,
Set-EbRuleState, Update-EbRoleGroupMember, the Tenant Allow/Block List), step for step as
ps_scripts/EntraBackup.Exchange.psm1 runs them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from agent.simulator.exchange.binding import Bound
from agent.simulator.exchange.envelope import Envelope, _string, _test_properties


def new_setting(env: Envelope, bound: Bound) -> None:
    values = bound.values
    cmdlet = values["Cmdlet"]
    set_cmdlet = "Set-" + cmdlet[4:]
    settable = {k.lower(): v for k, v in env.module.tables["EbSettableByCmdlet"].items()}
    new_table = {k.lower(): v for k, v in env.module.tables["EbNewByCmdlet"].items()}
    properties = _test_properties(
        env, cmdlet, list(new_table[cmdlet.lower()]), values["Properties"]
    )
    later = _test_properties(
        env, set_cmdlet, list(settable.get(set_cmdlet.lower(), [])), values["SetProperties"]
    )
    if properties is None or later is None:
        return
    created = env.invoke(cmdlet, dict(properties))
    if created is None:
        return
    identity = _string(created[0] if created else None, "Identity")
    if later:
        env.invoke(set_cmdlet, {**later, "Identity": identity})
    env.items.append({"cmdlet": cmdlet, "identity": identity})


def set_rule_state(env: Envelope, bound: Bound) -> None:
    env.invoke(bound.values["Cmdlet"], {"Identity": bound.values["Identity"], "Confirm": False})


def replace_members(env: Envelope, bound: Bound, cmdlet: str) -> None:
    """Update-<X>Member: the whole list at once (an empty list clears it, as $null)."""
    members = bound.values["Members"]
    parameters = {
        "Identity": bound.values["Identity"],
        "Members": None if len(members) == 0 else list(members),
        "BypassSecurityGroupManagerCheck": True,
        "Confirm": False,
    }
    env.invoke(cmdlet, parameters)


def update_role_group_member(env: Envelope, bound: Bound) -> None:
    replace_members(env, bound, "Update-RoleGroupMember")


def new_allow_block_item(env: Envelope, bound: Bound) -> None:
    values = bound.values
    parameters: dict[str, Any] = {"ListType": values["ListType"], "Entries": [values["Value"]]}
    parameters[values["Action"]] = True
    if "Notes" in bound.bound:
        parameters["Notes"] = values["Notes"]
    if "ExpirationDate" in bound.bound:
        parameters["ExpirationDate"] = values["ExpirationDate"].astimezone(dt.UTC)
    else:
        parameters["NoExpiration"] = True
    created = env.invoke("New-TenantAllowBlockListItems", parameters)
    if created is not None:
        env.items.append(
            {
                "identity": _string(created[0] if created else None, "Identity"),
                "value": values["Value"],
            }
        )


def remove_allow_block_item(env: Envelope, bound: Bound) -> None:
    parameters = {"ListType": bound.values["ListType"], "Ids": [bound.values["Id"]]}
    env.invoke("Remove-TenantAllowBlockListItems", parameters)


# -- role assignments and a role group's roles ------------------------------------------------


def new_role_assignment(env: Envelope, bound: Bound) -> None:
    """New-EbRoleAssignment: the assignment as it was, or the one the assignee holds again."""
    values, given = bound.values, bound.bound
    scope = _test_properties(
        env,
        "New-ManagementRoleAssignment",
        list(env.module.tables["EbRoleAssignmentScopes"]),
        values["Scope"],
    )
    if scope is None:
        return
    delegating = bool(values.get("Delegating"))
    query = {"Role": values["Role"], "RoleAssignee": values["Assignee"], "Delegating": delegating}
    found = env.invoke("Get-ManagementRoleAssignment", query)
    if found is None:
        return
    existing = None
    types = list(env.module.tables["EbRoleAssigneeTypes"][values["AssigneeType"]])
    for candidate in found:
        if _string(candidate, "RoleAssigneeType") not in types:
            continue
        if existing is None:
            existing = candidate
        if "Name" in given and _string(candidate, "Name") == values["Name"]:
            existing = candidate
    created, settings = False, {}
    if existing is None:
        parameters: dict[str, Any] = {
            "Role": values["Role"],
            values["AssigneeType"]: values["Assignee"],
        }
        if "Name" in given:
            parameters["Name"] = values["Name"]
        if delegating:
            parameters["Delegating"] = True
        parameters.update(scope)
        made = env.invoke("New-ManagementRoleAssignment", parameters)
        if made is not None:
            existing, created = (made[0] if made else None), True
        if not values["Enabled"]:
            settings["Enabled"] = False
    else:
        settings = {**scope, "Enabled": values["Enabled"]}
    if existing is not None:
        identity = _string(existing, "Identity")
        if settings:
            env.invoke("Set-ManagementRoleAssignment", {**settings, "Identity": identity})
        env.items.append({"identity": identity, "created": created})


def set_role_assignment(env: Envelope, bound: Bound) -> None:
    allowed = list(env.module.tables["EbRoleAssignmentScopes"])
    scope = _test_properties(env, "Set-ManagementRoleAssignment", allowed, bound.values["Scope"])
    if scope is None:
        return
    parameters: dict[str, Any] = {"Identity": bound.values["Identity"], **scope}
    if "Enabled" in bound.bound:
        parameters["Enabled"] = bound.values["Enabled"]
    env.invoke("Set-ManagementRoleAssignment", parameters)


def sync_role_group_role(env: Envelope, bound: Bound) -> None:
    """Sync-EbRoleGroupRole: a role group's roles through its role assignments."""
    identity, roles = bound.values["Identity"], list(bound.values["Roles"])
    current = env.invoke("Get-ManagementRoleAssignment", {"RoleAssignee": identity})
    if current is None:
        return
    wanted = {r.lower() for r in roles}
    held: set[str] = set()
    added: list[str | None] = []
    removed: list[str | None] = []
    for assignment in current:
        if _string(assignment, "RoleAssigneeType") != "RoleGroup":
            continue
        role = _string(assignment, "Role") or ""
        held.add(role.lower())
        if not bound.values.get("AddOnly") and role.lower() not in wanted:
            name = _string(assignment, "Identity")
            env.invoke("Remove-ManagementRoleAssignment", {"Identity": name, "Confirm": False},
                       f"Remove-ManagementRoleAssignment:{name}")  # fmt: skip
            removed.append(name)
    for role in roles:
        if role.lower() in held:
            continue
        made = env.invoke("New-ManagementRoleAssignment", {"Role": role, "SecurityGroup": identity},
                          f"New-ManagementRoleAssignment:{role}")  # fmt: skip
        if made is not None:
            added.append(_string(made[0] if made else None, "Identity"))
        held.add(role.lower())
    env.items.append({"roleGroup": identity, "added": added, "removed": removed})
