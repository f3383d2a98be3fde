"""Restore of directory roles: custom role definitions, active role assignments (built-in roles
included, tenant or administrative-unit scope) and PIM eligibility.

One write path for role holders: an assignment is written with POST
/roleManagement/directory/roleAssignments (principal, role definition, scope) whether Entra
shows it as a member of an activated directory role (``directoryRoleMember``), as a scoped role
member of an administrative unit (``administrativeUnitScopedRoleMember``) or as a custom role's
assignment. Those two relationship kinds are views of the same assignments, so they are never
written themselves: their plan entries say they come back through ``roleAssignment``, and a
built-in role is activated by its first assignment (``directoryRole``).

Assignments and eligibility created since the snapshot are removed in overwrite mode
(``prunes_added``), except the restore app's own; role management writes need
RoleManagement.ReadWrite.Directory — Directory.ReadWrite.All does not grant them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from agent.errors import WriteRejected
from agent.graph import GraphClient
from agent.kinds import KindSpec
from agent.restore.restorers import GraphLinks, GraphObjects, register

RM = "/roleManagement/directory"
BUILT_IN = "built-in: cannot be changed (Microsoft maintains built-in role definitions)"
VIA_ASSIGNMENTS = (
    "restored through roleAssignment: the same assignments, written once with POST "
    f"{RM}/roleAssignments"
)
JUSTIFICATION = "Restored from an entra-backup snapshot"


class RoleDefinitions(GraphObjects):
    """Custom role definitions: PATCH, POST (no recycle bin: a deleted one is recreated, with
    its templateId so assignments elsewhere keep naming it)."""

    WRITABLE = frozenset({"description", "displayName", "isEnabled", "rolePermissions"})

    def cannot_restore(
        self, spec: KindSpec, then: dict[str, Any], now: dict[str, Any] | None
    ) -> str:
        return BUILT_IN if then.get("isBuiltIn") else ""

    def write_permissions(self, spec: KindSpec) -> tuple[str, ...]:
        return spec.write_permissions

    def writable(self, spec: KindSpec) -> frozenset[str]:
        return self.WRITABLE

    def creatable(self, spec: KindSpec) -> frozenset[str]:
        return self.WRITABLE | {"templateId"}

    def why_not(self, spec: KindSpec, prop: str) -> str:
        if prop == "templateId":
            return "create-only: set when the role is created"
        return "read-only: Graph sets it (isBuiltIn, version) or it is deprecated (resourceScopes)"


class RoleAssignments(GraphObjects):
    """Active assignments: POST (all properties are create-only; a changed one is a different
    assignment), DELETE of those created since the snapshot in overwrite mode."""

    prunes_added = True
    CREATE = frozenset({"principalId", "roleDefinitionId", "directoryScopeId"})

    def write_permissions(self, spec: KindSpec) -> tuple[str, ...]:
        return spec.write_permissions

    def writable(self, spec: KindSpec) -> frozenset[str]:
        return frozenset()

    def creatable(self, spec: KindSpec) -> frozenset[str]:
        return self.CREATE

    def why_not(self, spec: KindSpec, prop: str) -> str:
        return "create-only: an assignment is removed and added, never changed"

    def create(self, g: GraphClient, spec: KindSpec, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return super().create(g, spec, body)
        except WriteRejected as error:
            return dict(_existing(g, spec.path or "", body, error))


WHO = ("principalId", "roleDefinitionId", "directoryScopeId")


def _existing(g: GraphClient, path: str, body: dict[str, Any], error: WriteRejected) -> Any:
    """The live assignment/eligibility a create was refused for as already there (undeleting
    its principal brought it back): the create's result, so the id map stays right."""
    if error.reason != "exists":
        raise error
    key = tuple(body.get(k) for k in WHO)
    for page in g.pages(path):
        for item in page.items:
            if tuple(item.get(k) for k in WHO) == key:
                return item
    raise error


def _ended(schedule: dict[str, Any] | None) -> bool:
    expiration = (schedule or {}).get("expiration") or {}
    end = expiration.get("endDateTime")
    if expiration.get("type") != "afterDateTime" or not end:
        return False
    return dt.datetime.fromisoformat(str(end).replace("Z", "+00:00")) <= dt.datetime.now(dt.UTC)


class RoleEligibility(GraphObjects):
    """PIM eligibility: written through schedule requests (adminAssign, adminUpdate,
    adminRemove); a schedule itself is never POSTed or PATCHed."""

    prunes_added = True
    CREATE = frozenset({"principalId", "roleDefinitionId", "directoryScopeId", "scheduleInfo"})
    REQUESTS = f"{RM}/roleEligibilityScheduleRequests"

    def cannot_restore(
        self, spec: KindSpec, then: dict[str, Any], now: dict[str, Any] | None
    ) -> str:
        if _ended(then.get("scheduleInfo")):
            return "expired since the snapshot: the eligibility would have ended by now"
        return ""

    def write_permissions(self, spec: KindSpec) -> tuple[str, ...]:
        return spec.write_permissions

    def writable(self, spec: KindSpec) -> frozenset[str]:
        return frozenset({"scheduleInfo"})

    def creatable(self, spec: KindSpec) -> frozenset[str]:
        return self.CREATE

    def why_not(self, spec: KindSpec, prop: str) -> str:
        return "read-only: PIM sets it when the schedule request is processed"

    def _request(self, g: GraphClient, action: str, who: dict[str, Any]) -> dict[str, Any]:
        body = {k: who.get(k) for k in ("principalId", "roleDefinitionId", "directoryScopeId")}
        body.update(action=action, justification=JUSTIFICATION)
        if action != "adminRemove":
            body["scheduleInfo"] = who.get("scheduleInfo")
        return g.post(self.REQUESTS, body)

    def create(self, g: GraphClient, spec: KindSpec, body: dict[str, Any]) -> dict[str, Any]:
        try:
            done = self._request(g, "adminAssign", body)
        except WriteRejected as error:
            return dict(_existing(g, spec.path or "", body, error))
        return {**done, "id": done.get("targetScheduleId") or done.get("id")}

    def patch(self, g: GraphClient, spec: KindSpec, oid: str, body: dict[str, Any]) -> None:
        now = self.read(g, spec, oid)
        self._request(g, "adminUpdate", {**now, **body})

    def delete(self, g: GraphClient, spec: KindSpec, oid: str, now: dict[str, Any]) -> None:
        self._request(g, "adminRemove", now)


class ViaAssignments(GraphLinks):
    """directoryRoleMember, administrativeUnitScopedRoleMember: never written themselves."""

    def cannot_relink(self, spec: KindSpec, parent: dict[str, Any]) -> str:
        return VIA_ASSIGNMENTS


class ActivatedRoles(GraphObjects):
    """directoryRole: Entra activates a built-in role at its first assignment."""

    def cannot_restore(
        self, spec: KindSpec, then: dict[str, Any], now: dict[str, Any] | None
    ) -> str:
        return "activated by its first role assignment (" + VIA_ASSIGNMENTS + ")"


# Proven by tests/test_restore_roles.py.
register(RoleDefinitions(), "roleDefinition")
register(RoleAssignments(), "roleAssignment")
register(RoleEligibility(), "roleEligibilitySchedule")
register(ViaAssignments(), "directoryRoleMember", "administrativeUnitScopedRoleMember")
register(ActivatedRoles(), "directoryRole")
