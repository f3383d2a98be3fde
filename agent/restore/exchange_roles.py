"""Restore of Exchange management role assignments through the bridge (a role group's roles
are restored with the role group: exchange_settings.py, Sync-EbRoleGroupRole).

- Exists: Enabled and the recipient write scope by Set-ManagementRoleAssignment
  (Set-EbRoleAssignment); the scope goes back through the parameter that made it (a custom or
  exclusive scope, an OU, an administrative unit, a group, a relative scope; an app's
  CustomResourceScope).
- Gone: New-ManagementRoleAssignment (New-EbRoleAssignment) with its name, role, assignee
  (-SecurityGroup/-User/-Policy/-App), delegation, scope and state. An assignment of that role
  the assignee holds again (its role group was recreated with its roles, or the role was given
  back) is set as the snapshot's instead of made twice: its name, which Exchange chose, goes
  into the id map. Assignments of the built-in role groups are Microsoft's: a gone one is
  reported, by design not created.
- Created after the snapshot: listed; removed only with ``--prune``
  (Remove-ManagementRoleAssignment). One giving a custom role group a role it did not have is
  left to that role group's restore when it runs too (it takes the role away).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from agent.compare.live import LiveRead
from agent.compare.sides import SnapshotSide
from agent.exchange.bridge import ExchangeBridge
from agent.kinds import KindSpec
from agent.restore.actions import Action, Request
from agent.restore.bridge_base import (
    BridgeAction,
    BridgeRestorer,
    differing,
    empty,
    not_in_snapshot,
    pairs_of,
    plan_pairs,
    run_write,
)
from agent.restore.exchange_settings import BUILT_IN_ROLE_GROUPS
from agent.restore.idmap import IdMap
from agent.restore.restorers import register

KIND = "managementRoleAssignment"
ROLE_GROUP_KIND = "roleGroup"
# Identity columns and stamps (an assignment made again has a new Guid; Exchange names one
# made with its role group).
IGNORED = frozenset(
    {"Identity", "Id", "Name", "Guid", "DistinguishedName", "WhenChanged", "WhenChangedUTC",
     "WhenCreated", "WhenCreatedUTC", "ExchangeVersion"}
)  # fmt: skip
SCOPE_PROPERTIES = ("RecipientWriteScope", "CustomRecipientWriteScope", "CustomResourceScope")
RESTORED = frozenset({"Enabled", *SCOPE_PROPERTIES})
# What verify leaves out: the rest of IGNORED is reported (a recreated one's new Guid).
VERIFY_IGNORED = frozenset({"Identity", "Id", "Name", "WhenChanged", "WhenChangedUTC"})
WHY = {
    "Guid": "Exchange gives an assignment made again a new Guid",
    "WhenCreated": "set by Exchange when the assignment is made",
    "WhenCreatedUTC": "set by Exchange when the assignment is made",
    "DistinguishedName": "set by Exchange",
    "Role": "what the assignment grants: another role is another assignment",
    "RoleAssignee": "who holds it: another assignee is another assignment",
    "RoleAssigneeName": "who holds it: another assignee is another assignment",
    "RoleAssigneeType": "who holds it: another assignee is another assignment",
    "RoleAssignmentDelegationType": "set when the assignment is made (-Delegating)",
}
# RoleAssigneeType -> the New-ManagementRoleAssignment parameter naming the assignee.
ASSIGNEE = {
    "RoleGroup": "SecurityGroup",
    "SecurityGroup": "SecurityGroup",
    "User": "User",
    "RoleAssignmentPolicy": "Policy",
    "ServicePrincipal": "App",
}
# RecipientWriteScope -> the parameter that sets it (its value: CustomRecipientWriteScope).
SCOPE_PARAMETER = {
    "CustomRecipientScope": "CustomRecipientWriteScope",
    "ExclusiveRecipientScope": "ExclusiveRecipientWriteScope",
    "OU": "RecipientOrganizationalUnitScope",
    "AdministrativeUnit": "RecipientAdministrativeUnitScope",
    "Group": "RecipientGroupScope",
}
RELATIVE = frozenset({"None", "Organization", "MyGAL", "Self", "MyDistributionGroups"})


def scope_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The one scope parameter that gives an assignment its recipient write scope; None for
    a scope Exchange sets itself (MyDirectReports, NotApplicable…)."""
    if obj.get("RoleAssigneeType") == "ServicePrincipal":
        resource = obj.get("CustomResourceScope")
        return {"CustomResourceScope": resource} if resource else {}
    kind = str(obj.get("RecipientWriteScope") or "Organization")
    if kind in SCOPE_PARAMETER and obj.get("CustomRecipientWriteScope"):
        return {SCOPE_PARAMETER[kind]: obj["CustomRecipientWriteScope"]}
    return {"RecipientRelativeWriteScope": kind} if kind in RELATIVE else None


def assignee_of(obj: dict[str, Any]) -> str:
    return str(obj.get("RoleAssignee") or obj.get("RoleAssigneeName") or "")


def delegating(obj: dict[str, Any]) -> bool:
    return str(obj.get("RoleAssignmentDelegationType") or "Regular") != "Regular"


def grant(obj: dict[str, Any]) -> tuple[str, str, str, bool]:
    """What an assignment gives to whom: the same grant made again is the same assignment."""
    kind = ASSIGNEE.get(str(obj.get("RoleAssigneeType")), "")
    return str(obj.get("Role") or "").lower(), kind, assignee_of(obj).lower(), delegating(obj)


def built_in(obj: dict[str, Any]) -> bool:
    """An assignment of a built-in role group: Microsoft's."""
    return (
        obj.get("RoleAssigneeType") == "RoleGroup"
        and str(obj.get("RoleAssigneeName") or "").lower() in BUILT_IN_ROLE_GROUPS
    )


class ExchangeRoleAssignments(BridgeRestorer):
    why = WHY

    def writable(self, spec: KindSpec) -> frozenset[str]:
        return RESTORED

    # -- plan ----------------------------------------------------------------------------------

    def plan_kind(
        self, spec: KindSpec, snap: SnapshotSide, live: LiveRead, request: Request, ids: IdMap
    ) -> list[Action]:
        if (absent := not_in_snapshot(spec, snap, request)) is not None:
            return absent
        pairs = pairs_of(spec, snap, live, request.ids)
        # A gone assignment and one made since that grants the same: the same assignment
        # made again (by hand, or by its role group's recreation), under another name.
        made = {grant(now): oid for oid, then, now in pairs if then is None and now}
        gone = {grant(then) for _, then, now in pairs if then and now is None}
        twins = {k: oid for k, oid in made.items() if k in gone}
        live_of = {oid: now for oid, _, now in pairs if now}
        with_groups = ROLE_GROUP_KIND in {k.name for k in request.kinds}

        def decide(
            oid: str, then: dict[str, Any] | None, now: dict[str, Any] | None
        ) -> Action | None:
            if then is None:
                if oid in twins.values():
                    return None
                return self._created_since(spec, oid, now or {}, snap, live, request, with_groups)
            if now is None and (twin := twins.get(grant(then))) is not None:
                ids.add(spec.name, oid, twin)
                return self._patch(spec, oid, then, live_of[twin], request)
            if now is None:
                return self._gone(spec, oid, then, live, request, ids, with_groups)
            return self._patch(spec, oid, then, now, request)

        return plan_pairs(spec.name, snap, live, pairs, decide)

    def _patch(
        self, spec: KindSpec, oid: str, then: dict[str, Any], now: dict[str, Any], request: Request
    ) -> Action | None:
        if request.mode == "skip":
            return Action(spec.name, oid, "skip", reason="exists; --mode skip leaves it as it is")
        action = BridgeAction(spec.name, oid, "patch", snapshot=then)
        for prop in differing(then, now, set(IGNORED)):
            if request.properties is not None and prop not in request.properties:
                continue
            if request.mode == "merge" and not (empty(now.get(prop)) and not empty(then.get(prop))):
                continue
            if prop == "Enabled":
                action.patch[prop] = action.extra["enabled"] = bool(then.get("Enabled"))
            elif prop in SCOPE_PROPERTIES and (scope := scope_of(then)) is not None:
                action.patch[prop] = then.get(prop)
                action.extra["scope"] = scope
            else:
                action.notes[prop] = (
                    "a scope Exchange sets itself: no parameter gives it"
                    if prop in SCOPE_PROPERTIES
                    else self.why_not(spec, prop)
                )
        if not action.patch and not action.notes:
            return None
        if not action.patch:
            action.action, action.reason = "skip", "only properties no cmdlet writes differ"
        return action

    def _gone(
        self,
        spec: KindSpec,
        oid: str,
        then: dict[str, Any],
        live: LiveRead,
        request: Request,
        ids: IdMap,
        with_groups: bool,
    ) -> Action:
        def skip(reason: str) -> Action:
            return Action(spec.name, oid, "skip", snapshot=then, reason=f"gone: {reason}")

        kind = str(then.get("RoleAssigneeType"))
        if built_in(then):
            return skip(f"an assignment of the built-in role group '{then['RoleAssigneeName']}' "
                        "is Microsoft's: by design restore does not create it again")  # fmt: skip
        if str(then.get("AssignmentMethod") or "Direct") != "Direct":
            return skip("Exchange made it through another assignment; it comes back with that one")
        if kind not in ASSIGNEE:
            return skip(f"restore cannot assign roles to a {kind}")
        if (scope := scope_of(then)) is None:
            return skip(f"its scope ({then.get('RecipientWriteScope')}) is one Exchange sets "
                        "itself; no parameter gives it")  # fmt: skip
        if request.properties is not None:
            return skip("restoring single properties cannot recreate it; run without --properties")
        role, assignee = str(then.get("Role")), assignee_of(then)
        parameter = ASSIGNEE[kind]
        how = f"New-ManagementRoleAssignment -Role '{role}' -{parameter} '{assignee}'"
        if kind == "RoleGroup" and with_groups and live.find(ROLE_GROUP_KIND, assignee) is None:
            how = f"with its role group '{assignee}' (New-RoleGroup -Roles), then its scope and state set"  # fmt: skip
        extra = {
            "role": role,
            "type": parameter,
            "assignee": str(ids.rewrite(assignee)),  # a recreated user's new id
            "scope": scope,
        }
        return BridgeAction(spec.name, oid, "recreate", snapshot=then,
                            reason=f"removed since the snapshot: {how}", extra=extra)  # fmt: skip

    def _created_since(
        self,
        spec: KindSpec,
        oid: str,
        now: dict[str, Any],
        snap: SnapshotSide,
        live: LiveRead,
        request: Request,
        with_groups: bool,
    ) -> Action:
        listed = "created after the snapshot"
        if built_in(now):
            return Action(spec.name, oid, "skip", reason=f"{listed}; built-in role group: never "
                          "removed")  # fmt: skip
        group = str(now.get("RoleAssigneeName") or "")
        then_group = snap.find(ROLE_GROUP_KIND, group) if now.get("RoleAssigneeType") == "RoleGroup" else None  # fmt: skip
        if (
            with_groups
            and request.mode == "overwrite"
            and then_group is not None
            and live.find(ROLE_GROUP_KIND, group) is not None
            and str(now.get("Role")).lower() not in {str(r).lower() for r in then_group.get("Roles") or []}
        ):  # fmt: skip
            return Action(spec.name, oid, "skip", reason=f"{listed}: a role role group '{group}' "
                          "did not have; restoring the role group's roles removes it")  # fmt: skip
        if not request.prune:
            return Action(spec.name, oid, "skip", reason=f"{listed}; --prune removes it")
        return BridgeAction(spec.name, oid, "remove", reason=f"{listed} (--prune)")

    # -- apply ---------------------------------------------------------------------------------

    def apply_action(
        self, bridge: ExchangeBridge, action: Action, ids: IdMap, request: Request, outcome: Any
    ) -> None:
        assert isinstance(action, BridgeAction)
        extra, then = action.extra, action.snapshot
        if action.action == "patch":
            write = partial(bridge.set_role_assignment, ids.get(action.object_id))
            run_write(
                outcome, partial(write, enabled=extra.get("enabled"), scope=extra.get("scope"))
            )
            return
        if action.action == "remove":
            run_write(outcome, partial(bridge.remove_setting, "Remove-ManagementRoleAssignment",
                                       action.object_id))  # fmt: skip
            return
        made: list[tuple[str, bool]] = []

        def new() -> None:
            made.append(bridge.new_role_assignment(
                extra["role"], extra["type"], extra["assignee"], name=str(then.get("Name") or action.object_id),
                delegating=delegating(then), scope=extra["scope"], enabled=bool(then.get("Enabled", True))))  # fmt: skip

        if run_write(outcome, new):
            identity, created = made[0]
            if identity != action.object_id:
                ids.add(action.kind, action.object_id, identity)
                outcome.new_id = identity
            if not created:
                outcome.reason = f"the assignee held the role again as '{identity}': set as it was"

    # -- verify --------------------------------------------------------------------------------

    def verify_ignored(self, spec: KindSpec) -> set[str]:
        return set(VERIFY_IGNORED)

    def still_differs(
        self, spec: KindSpec, action: Action, now: dict[str, Any], prop: str
    ) -> str | None:
        if prop not in RESTORED:
            return self.why_not(spec, prop)
        if action.action == "patch" and prop not in action.patch:
            return None  # not part of this restore (merge left it)
        return "still differs after the write"


ROLE_ASSIGNMENTS = ExchangeRoleAssignments()
register(ROLE_ASSIGNMENTS, KIND)
