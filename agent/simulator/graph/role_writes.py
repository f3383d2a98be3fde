"""Writes to directory role management as Graph v1.0 does them: custom role definitions
(create, update, delete; built-in ones are read-only), active role assignments (create and
delete, tenant or administrative-unit scope) and PIM eligibility through schedule requests
(adminAssign / adminUpdate / adminRemove; Entra ID P2 required).

Assignments of built-in roles are stored where Entra shows them too (tenant_store.py): a
tenant-scope one is a member of the activated directory role (the role is activated on its
first assignment, as in Entra), an AU-scoped one is a scoped role member of the unit; custom
roles' assignments are kept in the store. Error texts marked UNCONFIRMED follow the documented
rule where the exact wording was not found. Callers hold no lock; each function takes it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from agent.simulator.graph import audit_links
from agent.simulator.graph.directory import Directory, iso
from agent.simulator.graph.errors import GraphError, bad_request, not_found
from agent.simulator.graph.tenant_store import TenantStore, assignment_id
from agent.simulator.graph.writes import check_body, conflict

PRINCIPALS = ("user", "group", "servicePrincipal")
# Custom roles may hold only directory resource actions (custom-create-role docs).
CUSTOM_ACTION_PREFIX = "microsoft.directory/"
SCHEDULE_ACTIONS = ("adminAssign", "adminUpdate", "adminRemove")


def _store(d: Directory) -> TenantStore:
    return d.tenant_config


def _definition(store: TenantStore, rid: str) -> dict[str, Any]:
    row = store.role_definitions.get(rid)
    if row is None:
        raise not_found(rid)
    return row


def _built_in(row: dict[str, Any]) -> None:
    if row.get("isBuiltIn"):
        # unifiedRoleDefinition: rolePermissions, isEnabled, … are "Read-only when isBuiltIn
        # is true"; built-in roles cannot be deleted either. UNCONFIRMED wording.
        raise bad_request("Built-in role definitions cannot be modified or deleted.")


def _check_actions(props: dict[str, Any]) -> None:
    for perm in props.get("rolePermissions") or []:
        for action in (perm or {}).get("allowedResourceActions") or []:
            if not str(action).lower().startswith(CUSTOM_ACTION_PREFIX):
                raise bad_request(  # UNCONFIRMED wording
                    f"The resource action '{action}' is not supported in custom roles."
                )


def _name_taken(store: TenantStore, name: str, except_id: str | None) -> bool:
    return any(
        r["displayName"].lower() == name.lower() and r["id"] != except_id
        for r in store.role_definitions.values()
    )


# -- role definitions ---------------------------------------------------------------------------


def create_definition(d: Directory, body: dict[str, Any]) -> dict[str, Any]:
    props, _ = check_body("roleDefinition", body, create=True)
    _check_actions(props)
    with d.lock:
        store = _store(d)
        if _name_taken(store, str(props["displayName"]), None):
            raise conflict("displayName")
        rid = str(uuid.uuid4())
        template = props.pop("templateId", None) or rid
        if template in store.role_definitions:
            raise conflict("templateId")
        row = {
            "id": rid,
            "description": None,
            "isBuiltIn": False,
            "resourceScopes": ["/"],
            "version": None,
            **props,
            "templateId": template,
        }
        store.role_definitions[rid] = row
        return dict(row)


def update_definition(d: Directory, rid: str, body: dict[str, Any]) -> None:
    props, _ = check_body("roleDefinition", body, create=False)
    _check_actions(props)
    with d.lock:
        store = _store(d)
        row = _definition(store, rid)
        _built_in(row)
        if "displayName" in props and _name_taken(store, str(props["displayName"]), rid):
            raise conflict("displayName")
        row.update(props)


def delete_definition(d: Directory, rid: str) -> None:
    with d.lock:
        store = _store(d)
        row = _definition(store, rid)
        _built_in(row)
        if any(a["roleDefinitionId"] == rid for a in store.role_assignments(d).values()):
            raise bad_request(  # UNCONFIRMED wording: a role in use cannot be deleted
                "The role definition cannot be deleted because it has active assignments."
            )
        del store.role_definitions[rid]


# -- role assignments ---------------------------------------------------------------------------


def _principal(d: Directory, pid: str) -> dict[str, Any]:
    kind = d.kind_of(pid)
    if kind not in PRINCIPALS:
        raise not_found(pid)
    row = d.row(str(kind), pid) or {}
    if kind == "group" and not row.get("isAssignableToRole"):
        raise bad_request(  # documented rule; UNCONFIRMED wording
            "Only groups with isAssignableToRole set to true can be assigned directory roles."
        )
    return row


def _unit(d: Directory, scope: str) -> str | None:
    """The AU id of an AU scope; None for the tenant scope; 400 for anything else."""
    if scope == "/":
        return None
    unit = scope.removeprefix("/administrativeUnits/")
    if unit == scope or not unit:
        raise bad_request(f"Invalid value specified for property 'directoryScopeId': '{scope}'.")
    if d.row("administrativeUnit", unit) is None:
        raise not_found(unit)
    return unit


def _activated(d: Directory, template: str) -> dict[str, Any]:
    """The directoryRole of a built-in template, activated now if it never was."""
    for _, role in d.scan("directoryRole", 0):
        if role["roleTemplateId"] == template:
            return role
    definition = _store(d).role_definitions[template]
    return d.create(
        "directoryRole",
        displayName=definition["displayName"],
        description=definition.get("description"),
        roleTemplateId=template,
    )


def create_assignment(d: Directory, body: dict[str, Any]) -> dict[str, Any]:
    props, _ = check_body("roleAssignment", body, create=True)
    rid, pid = str(props["roleDefinitionId"]), str(props["principalId"])
    scope = str(props["directoryScopeId"])
    with d.lock:
        store = _store(d)
        definition = _definition(store, rid)
        principal = _principal(d, pid)
        unit = _unit(d, scope)
        aid = assignment_id(rid, pid, scope)
        if aid in store.role_assignments(d):
            raise GraphError(  # UNCONFIRMED code
                409,
                "Request_BadRequest",
                "A conflicting object with one or more of the specified property values is "
                "present in the directory.",
            )
        if not definition.get("isBuiltIn"):
            store.custom_assignments[aid] = {
                "id": aid,
                "directoryScopeId": scope,
                "principalId": pid,
                "roleDefinitionId": rid,
            }
        elif unit is None:
            audit_links.link(d, "directoryRole.members", _activated(d, rid)["id"], pid)
        else:
            role = _activated(d, rid)["id"]
            d.objects.add_child(
                "administrativeUnit.scopedRoleMembers",
                unit,
                {
                    "id": str(uuid.uuid4()),
                    "administrativeUnitId": unit,
                    "roleId": role,
                    "roleMemberInfo": {"id": pid, "displayName": principal.get("displayName")},
                },
            )
            audit_links.scoped_member(d, unit, role, pid, added=True)
        return store.role_assignments(d)[aid]


def delete_assignment(d: Directory, aid: str) -> None:
    with d.lock:
        store = _store(d)
        row = store.role_assignments(d).get(aid)
        if row is None:
            raise not_found(aid)
        if aid in store.custom_assignments:
            del store.custom_assignments[aid]
            return
        pid, scope = row["principalId"], row["directoryScopeId"]
        roles = {r["roleTemplateId"]: r["id"] for _, r in d.scan("directoryRole", 0)}
        role = roles[row["roleDefinitionId"]]
        unit = _unit(d, scope)
        if unit is None:
            audit_links.unlink(d, "directoryRole.members", role, pid)
            return
        scoped = d.objects.children["administrativeUnit.scopedRoleMembers"].get(unit, [])
        scoped[:] = [
            s for s in scoped if not (s["roleId"] == role and s["roleMemberInfo"]["id"] == pid)
        ]
        audit_links.scoped_member(d, unit, role, pid, added=False)


# -- PIM eligibility (schedule requests) --------------------------------------------------------


def _end(schedule: dict[str, Any]) -> dt.datetime | None:
    expiration = (schedule or {}).get("expiration") or {}
    end = expiration.get("endDateTime")
    if expiration.get("type") != "afterDateTime" or not end:
        return None
    return dt.datetime.fromisoformat(str(end).replace("Z", "+00:00"))


def eligibility_request(d: Directory, body: dict[str, Any]) -> dict[str, Any]:
    """POST roleEligibilityScheduleRequests: the request as Graph answers it (status
    Provisioned); the schedule it creates, changes or removes is applied at once."""
    props, _ = check_body("roleEligibilityScheduleRequest", body, create=True)
    action = str(props["action"])
    if action not in SCHEDULE_ACTIONS:
        raise bad_request(f"Invalid value specified for property 'action': '{action}'.")
    rid, pid = str(props["roleDefinitionId"]), str(props["principalId"])
    scope = str(props["directoryScopeId"])
    schedule = props.get("scheduleInfo") or {}
    with d.lock:
        store = _store(d)
        _definition(store, rid)
        _principal(d, pid)
        _unit(d, scope)
        now = d.now()
        end = _end(schedule)
        if action != "adminRemove" and end is not None and end.timestamp() <= now:
            raise bad_request(  # PIM refuses a schedule that has already ended; UNCONFIRMED
                "The expiration time of the schedule is in the past.", "InvalidScheduleRequest"
            )
        same = [
            r
            for r in store.eligibility.values()
            if (r["principalId"], r["roleDefinitionId"], r["directoryScopeId"]) == (pid, rid, scope)
        ]
        request_id = str(uuid.uuid4())
        if action == "adminAssign":
            if same:
                raise bad_request("The Role assignment already exists.", "RoleAssignmentExists")
            start = schedule.get("startDateTime") or iso(now)
            store.eligibility[request_id] = {
                "id": request_id,
                "appScopeId": None,
                "createdDateTime": iso(now),
                "createdUsing": request_id,
                "directoryScopeId": scope,
                "memberType": "Direct",
                "modifiedDateTime": None,
                "principalId": pid,
                "roleDefinitionId": rid,
                "scheduleInfo": {
                    "startDateTime": start,
                    "recurrence": schedule.get("recurrence"),
                    "expiration": schedule.get("expiration")
                    or {"type": "noExpiration", "endDateTime": None, "duration": None},
                },
                "status": "Provisioned",
            }
            target = request_id
        elif not same:
            raise bad_request("The Role assignment does not exist.", "RoleAssignmentDoesNotExist")
        elif action == "adminUpdate":
            same[0]["scheduleInfo"] = {**same[0]["scheduleInfo"], **schedule}
            same[0]["modifiedDateTime"] = iso(now)
            target = same[0]["id"]
        else:
            del store.eligibility[same[0]["id"]]
            target = same[0]["id"]
        return {
            "id": request_id,
            "action": action,
            "appScopeId": None,
            "approvalId": None,
            "completedDateTime": iso(now),
            "createdDateTime": iso(now),
            "directoryScopeId": scope,
            "isValidationOnly": False,
            "justification": props.get("justification"),
            "principalId": pid,
            "roleDefinitionId": rid,
            "scheduleInfo": schedule or None,
            "status": "Provisioned" if action != "adminRemove" else "Revoked",
            "targetScheduleId": target,
        }
