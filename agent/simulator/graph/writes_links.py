"""Relationship writes as Graph v1.0 does them: ``$ref`` adds and removes of members and owners
(groups, administrative units, applications, service principals), a user's manager, and app
role assignments — with the real errors for a missing object (404), a reference that already
exists (400) and objects Graph does not let you change (synced groups, distribution lists).

Group members go through ``Directory.add_member``/``remove_member`` (``members@delta``); a
manager through ``set_manager`` (``manager@delta``); the other links are not tracked by delta.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from agent.simulator.graph import audit_links
from agent.simulator.graph.audit_links import link, unlink
from agent.simulator.graph.directory import Directory, iso
from agent.simulator.graph.errors import bad_request, not_found
from agent.simulator.graph.licences import inherit
from agent.simulator.graph.writes import (
    MAIL_ENABLED_GROUP,
    SYNCED,
    check_body,
    check_link_target,
    json_body,
    ref_id,
)

DEFAULT_ROLE = "00000000-0000-0000-0000-000000000000"  # "default access": an app with no roles
PRINCIPAL_TYPES = {"user": "User", "group": "Group", "servicePrincipal": "ServicePrincipal"}


def target_of(body: Any) -> str:
    raw = json_body(body).get("@odata.id")
    if not raw:
        raise bad_request("Invalid request body: '@odata.id' is missing.", "BadRequest")
    return ref_id(raw)


def already_exists(relation: str) -> Exception:
    return bad_request(
        "One or more added object references already exist for the following modified "
        f"properties: '{relation}'."
    )


def _live(d: Directory, kind: str, oid: str) -> dict[str, Any]:
    row = d.row(kind, oid)
    if row is None:
        raise not_found(oid)
    return row


def _writable_group(row: dict[str, Any]) -> None:
    if row.get("onPremisesSyncEnabled"):
        raise bad_request(SYNCED)
    if row.get("mailEnabled") and "Unified" not in (row.get("groupTypes") or []):
        raise bad_request(MAIL_ENABLED_GROUP)


# -- $ref on groups, AUs, applications and service principals -----------------------------------


def add_link(d: Directory, kind: str, relation: str, source: str, body: Any) -> None:
    target = target_of(body)
    with d.lock:
        row = _live(d, kind, source)
        check_link_target(d, f"{kind}.{relation}", target)
        if kind == "group":
            _writable_group(row)
            current = d.members_of if relation == "members" else d.owners_of
            if target in current.get(source, ()):
                raise already_exists(relation)
            if relation == "members":
                if target == source:
                    raise bad_request("A group cannot be a member of itself.")
                d.add_member(source, target)
                inherit(d, source, target)  # group-based licences reach the new member
            else:
                d.load_owner(source, target)  # owners are not tracked by groups delta
                d.activity.record_link(
                    d, "group", source, "Add owner to group", [(target, d.kind_of(target) or "")]
                )
            return
        name = f"{kind}.{relation}"
        if target in d.objects.links[name].get(source, set()):
            raise already_exists(relation)
        link(d, name, source, target)


def remove_link(d: Directory, kind: str, relation: str, source: str, target: str) -> None:
    with d.lock:
        row = _live(d, kind, source)
        if kind == "group":
            _writable_group(row)
            current = d.members_of if relation == "members" else d.owners_of
            if target not in current.get(source, ()):
                raise not_found(target)
            if relation == "members":
                d.remove_member(source, target)
                inherit(d, source, target)
            else:
                d.remove_owner(source, target)
            return
        name = f"{kind}.{relation}"
        if target not in d.objects.links[name].get(source, set()):
            raise not_found(target)
        unlink(d, name, source, target)


# -- manager -------------------------------------------------------------------------------------


def set_manager(d: Directory, user_id: str, body: Any) -> None:
    manager = target_of(body)
    with d.lock:
        user = _live(d, "user", user_id)
        if user.get("onPremisesSyncEnabled"):
            raise bad_request(SYNCED)
        if d.row("user", manager) is None:
            raise not_found(manager)
        if manager == user_id:
            raise bad_request("A user cannot be their own manager.")
        d.set_manager(user_id, manager)


def remove_manager(d: Directory, user_id: str) -> None:
    with d.lock:
        user = _live(d, "user", user_id)
        if user.get("onPremisesSyncEnabled"):
            raise bad_request(SYNCED)
        if d.manager.get(user_id) is None:
            raise not_found("manager")
        d.set_manager(user_id, None)


# -- app role assignments --------------------------------------------------------------------------


def add_assignment(d: Directory, resource_side: bool, parent: str, body: Any) -> dict[str, Any]:
    """POST …/appRoleAssignedTo (parent = resource SP) or …/appRoleAssignments (parent =
    principal)."""
    props, _ = check_body("appRoleAssignment", json_body(body), create=True)
    with d.lock:
        parent_kind = d.kind_of(parent)
        if parent_kind is None:
            raise not_found(parent)
        principal_id, resource_id = str(props["principalId"]), str(props["resourceId"])
        if (resource_id if resource_side else principal_id) != parent:
            name = "resourceId" if resource_side else "principalId"
            raise bad_request(f"Invalid value specified for property '{name}'.")
        principal_kind = d.kind_of(principal_id)
        if principal_kind not in PRINCIPAL_TYPES:
            raise not_found(principal_id)
        resource = d.row("servicePrincipal", resource_id)
        if resource is None:
            raise not_found(resource_id)
        role = str(props["appRoleId"])
        roles = {r.get("id") for r in resource.get("appRoles") or []}
        if role not in roles and not (role == DEFAULT_ROLE and not roles):
            raise bad_request(
                f"Permission being assigned was not found on application '{resource.get('appId')}'."
            )
        store = d.objects
        for existing in store.by_principal.get(principal_id, ()):
            row = store.assignments[existing]
            if row["resourceId"] == resource_id and row["appRoleId"] == role:
                raise bad_request("Permission being assigned already exists on the object")
        principal = d.row(principal_kind, principal_id) or {}
        row = {
            "id": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()[:43],
            "appRoleId": role,
            "createdDateTime": iso(d.now()),
            "deletedDateTime": None,
            "principalDisplayName": principal.get("displayName"),
            "principalId": principal_id,
            "principalType": PRINCIPAL_TYPES[principal_kind],
            "resourceDisplayName": resource.get("displayName"),
            "resourceId": resource_id,
        }
        audit_links.add_assignment(d, row)
        return dict(row)


def remove_assignment(d: Directory, resource_side: bool, parent: str, assignment_id: str) -> None:
    with d.lock:
        store = d.objects
        row = store.assignments.get(assignment_id)
        side = "resourceId" if resource_side else "principalId"
        if d.kind_of(parent) is None or row is None or row[side] != parent:
            raise not_found(assignment_id)
        audit_links.remove_assignment(d, assignment_id)
