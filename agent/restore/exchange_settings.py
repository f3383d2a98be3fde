"""Restore of Exchange Online and Defender settings through the Exchange bridge.

- Objects that exist: Set-EbSetting with the settable properties that differ (a rule's priority
  is one of them); a rule's State by Enable-/Disable-; a role group's members by
  Update-RoleGroupMember (built-in role groups: nothing else) and a custom one's roles through
  its role assignments (Sync-EbRoleGroupRole: New-/Remove-ManagementRoleAssignment).
- Gone: a Defender policy comes back with its rule (New-EbPolicyWithRule: the rule's name,
  conditions and priority from the snapshot; one that had no rule alone); a Defender rule
  whose policy remains, and every family with a New- cmdlet (domains, connectors, quarantine,
  OWA and mobile policies, DKIM, report submission, Teams protection rule, alert policies,
  custom role groups) by New-EbSetting; a mail flow rule by New-EbTransportRule; a Tenant Allow/Block List entry by
  New-EbAllowBlockListItem (a changed entry is removed and created again). Rules are created in
  priority order, so the order comes out as it was; a disabled rule is disabled again.
- Objects created after the snapshot are listed; with ``--prune`` those the module has a
  Remove- for go (a policy's rules first). Microsoft's own objects (default and built-in
  policies, preset rules, system alert policies, built-in role groups) are never created or
  removed. Tenant-wide singletons and the one connection filter policy are only ever set.
Settings keep their Identity (their name) when recreated; new ids (allow/block entries) go into
the id map.
"""

from __future__ import annotations

from typing import Any

from agent.compare.live import LiveRead
from agent.compare.sides import SnapshotSide
from agent.exchange.bridge import ExchangeBridge
from agent.kinds import KindSpec
from agent.kinds.exchange import SETTINGS_KINDS
from agent.restore import exchange_settings_write as w
from agent.restore.actions import Action, Request
from agent.restore.bridge_base import (
    BridgeAction,
    BridgeRestorer,
    differing,
    empty,
    not_in_snapshot,
    pairs_of,
    plan_pairs,
)
from agent.restore.idmap import IdMap
from agent.restore.restorers import register

# Identity columns and stamps: they identify the object or change with every write.
IGNORED = frozenset({"Identity", "Id", "WhenChanged", "WhenChangedUTC", "LastModifiedDateTime"})
WHY = {
    "Guid": "Exchange gives a recreated object a new Guid",
    "WhenCreated": "set by Exchange when the object is created",
    "WhenCreatedUTC": "set by Exchange when the object is created",
    "DistinguishedName": "set by Exchange",
    "State": "this rule has no Enable-/Disable- cmdlet",
    "IsDefault": "Microsoft's default policy; not a setting",
    "Roles": "built-in role group: only its members are restored",
    "RoleAssignments": "the names of its role assignments, which Exchange gives them",
}
# Microsoft's own objects: never created or removed (their names, or the flags they carry).
BUILT_IN_NAMES = frozenset({"default", "office365 antiphish default", "built-in protection policy"})
BUILT_IN_FLAGS = ("IsDefault", "IsBuiltInProtection", "IsSystemRule", "IsBuiltIn", "SysManaged")
BUILT_IN_ROLE_GROUPS = frozenset(
    g.lower()
    for g in (
        "Organization Management",
        "Recipient Management",
        "View-Only Organization Management",
        "Security Administrator",
        "Security Reader",
        "Hygiene Management",
        "Compliance Management",
        "Help Desk",
        "Discovery Management",
        "Records Management",
        "UM Management",
        "Public Folder Management",
    )
)
ONLY_SET = {
    "HostedConnectionFilterPolicy": "Exchange Online has exactly one connection filter policy "
    '("Default"): it is only ever set, never created or removed',
    "TeamsProtectionPolicy": "the one Teams protection policy is only ever set",
    "ATPBuiltInProtectionRule": "Microsoft keeps the built-in protection rule: only set",
    "EOPProtectionPolicyRule": "Microsoft creates preset rules when a preset is turned on",
    "ATPProtectionPolicyRule": "Microsoft creates preset rules when a preset is turned on",
}


def built_in(noun: str, obj: dict[str, Any]) -> bool:
    name = str(obj.get("Name") or obj.get("Identity") or "").lower()
    if noun == w.ROLE_GROUP:
        return name in BUILT_IN_ROLE_GROUPS
    return (
        any(obj.get(flag) for flag in BUILT_IN_FLAGS)
        or name in BUILT_IN_NAMES
        or "preset security policy" in name
    )


def restorable(noun: str) -> set[str]:
    """Properties some write of this family restores."""
    props = set(w.settable(noun))
    if w.state_switchable(noun):
        props.add("State")
    if noun == w.ROLE_GROUP:
        props |= {"Members", "Roles"}
    if noun == w.ALLOW_BLOCK:
        props |= {"Value", "Action", "Notes", "ExpirationDate", "ListType"}
    return props


def entry_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    def text(key: str) -> str:
        return str(obj.get(key) or "").lower()

    return text("ListType"), text("Value"), text("Action")


class ExchangeSettings(BridgeRestorer):
    """One restorer for every settings kind."""

    why = WHY

    def writable(self, spec: KindSpec) -> frozenset[str]:
        return frozenset(restorable(w.noun_of(spec)))

    # -- plan ----------------------------------------------------------------------------------

    def plan_kind(
        self, spec: KindSpec, snap: SnapshotSide, live: LiveRead, request: Request, ids: IdMap
    ) -> list[Action]:
        if (absent := not_in_snapshot(spec, snap, request)) is not None:
            return absent
        noun = w.noun_of(spec)
        pairs = pairs_of(spec, snap, live, request.ids)
        # Rules in the order of their priority: each New-/Set- lands where it was.
        pairs.sort(key=lambda p: int((p[1] or p[2] or {}).get("Priority") or 0))
        # Allow/block entries get a new id when created: one created since that matches a gone
        # one (list, value, action) is the same entry restored earlier.
        twins: dict[tuple[str, str, str], str] = {}
        if noun == w.ALLOW_BLOCK:
            twins = {entry_key(now): oid for oid, then, now in pairs if then is None and now}
            gone = {entry_key(then) for _, then, now in pairs if then and now is None}
            twins = {k: v for k, v in twins.items() if k in gone}

        def decide(
            oid: str, then: dict[str, Any] | None, now: dict[str, Any] | None
        ) -> Action | None:
            if then is None:
                if oid in twins.values():
                    return None
                return self._created_since(spec, noun, oid, now or {}, snap, live, request)
            if now is None:
                twin = twins.get(entry_key(then)) if twins else None
                if twin is not None:
                    ids.add(spec.name, oid, twin)
                    return None
                return self._gone(spec, noun, oid, then, snap, live, request)
            return self._patch(spec, noun, oid, then, now, request)

        return plan_pairs(spec.name, snap, live, pairs, decide)

    def _patch(
        self,
        spec: KindSpec,
        noun: str,
        oid: str,
        then: dict[str, Any],
        now: dict[str, Any],
        request: Request,
    ) -> Action | None:
        if request.mode == "skip":
            return Action(spec.name, oid, "skip", reason="exists; --mode skip leaves it as it is")
        action = BridgeAction(spec.name, oid, "patch", snapshot=then)
        writable = set(w.settable(noun))
        frozen = noun == w.ROLE_GROUP and built_in(noun, then)
        for prop in differing(then, now, set(IGNORED)):
            if request.properties is not None and prop not in request.properties:
                continue
            if prop == "Roles" and noun == w.ROLE_GROUP and not frozen:
                # Through its role assignments; merge only gives back the roles it lost.
                missing = {str(r).lower() for r in then.get("Roles") or []} - {
                    str(r).lower() for r in now.get("Roles") or []
                }
                if request.mode != "merge" or missing:
                    action.extra["roles"] = list(then.get("Roles") or [])
                    action.extra["add_only"] = request.mode == "merge"
                continue
            if request.mode == "merge" and not (empty(now.get(prop)) and not empty(then.get(prop))):
                continue
            if noun == w.ALLOW_BLOCK:
                action.notes[prop] = "entries are created and removed, never patched"
            elif prop == "Members" and noun == w.ROLE_GROUP:
                action.extra["members"] = list(then.get("Members") or [])
            elif prop == "State" and w.state_switchable(noun):
                action.extra["state"] = str(then.get("State") or "Enabled")
            elif prop in writable and not frozen:
                action.patch[prop] = then.get(prop)
            else:
                action.notes[prop] = (
                    "built-in role group: only its members are restored"
                    if frozen and prop in writable
                    else self.why_not(spec, prop)
                )
        if not action.patch and not action.notes and not action.extra:
            return None
        if noun == w.ALLOW_BLOCK:  # created again with the snapshot's values (a new id)
            action.action, action.extra["replace"] = "recreate", oid
            action.reason = "changed since the snapshot: removed and created again"
        elif not action.patch and not action.extra:
            action.action, action.reason = "skip", "only properties no cmdlet writes differ"
        return action

    def _gone(
        self,
        spec: KindSpec,
        noun: str,
        oid: str,
        then: dict[str, Any],
        snap: SnapshotSide,
        live: LiveRead,
        request: Request,
    ) -> Action:
        def skip(reason: str) -> Action:
            return Action(spec.name, oid, "skip", snapshot=then, reason=reason)

        def recreate(reason: str, **extra: Any) -> Action:
            return BridgeAction(
                spec.name, oid, "recreate", snapshot=then, reason=reason, extra=extra
            )

        if spec.singleton:
            return skip("a tenant-wide setting is only ever set, never recreated")
        if noun in ONLY_SET:
            return skip(f"gone: {ONLY_SET[noun]}")
        if request.properties is not None:
            return skip("gone: restoring single properties cannot recreate it; run without "
                        "--properties")  # fmt: skip
        if family := spec.extra.get("policy_family"):
            row = w.families()[family]
            rule_kind = w.kind_of_noun(row["RuleSet"].removeprefix("Set-"))
            rule = next(
                (r for _, r, now in pairs_of(rule_kind, snap, live, None)
                 if r is not None and now is None
                 and str(r.get(row["RulePolicyParameter"], "")).lower() == oid.lower()),
                None,
            )  # fmt: skip
            if rule is None:  # applied to no one then: it comes back alone
                return recreate(f"removed since the snapshot: {row['Policy']} (it had no rule "
                                "of its own)", alone=True)  # fmt: skip
            return recreate(f"removed since the snapshot: {row['Policy']} with its rule "
                            f"'{rule.get('Name')}' at priority {rule.get('Priority')} "
                            "(New-EbPolicyWithRule)", rule=rule)  # fmt: skip
        if (found := w.rule_family(noun)) is not None:
            row = found[1]
            policy_kind = w.kind_of_noun(row["PolicySet"].removeprefix("Set-"))
            policy = str(then.get(row["RulePolicyParameter"]) or "")
            if live.find(policy_kind.name, policy) is None and snap.find(policy_kind.name, policy):
                return recreate(f"created with its policy '{policy}', then set", with_policy=True)
            return recreate(f"gone while its policy '{policy}' remains: New-{noun} at "
                            f"priority {then.get('Priority')}")  # fmt: skip
        if noun == w.TRANSPORT_RULE:
            return recreate(f"removed since the snapshot: New-TransportRule at priority "
                            f"{then.get('Priority')}")  # fmt: skip
        if built_in(noun, then) and noun != w.ALLOW_BLOCK:
            return skip("gone, yet Microsoft's own (default or built-in): it cannot be "
                        "created again")  # fmt: skip
        if noun == w.ALLOW_BLOCK:
            return recreate("removed since the snapshot: New-TenantAllowBlockListItems (the "
                            "entry gets a new id)")  # fmt: skip
        if w.new_allowed(noun) is not None:
            extra = " (created disabled, then enabled)" if noun in w.ENABLE_AFTER else ""
            return recreate(f"removed since the snapshot: New-{noun}, then Set-{noun}{extra}")
        return skip(f"gone: restore cannot create {spec.title.lower()} again; recreate it in "
                    "the admin center")  # fmt: skip

    def _created_since(
        self,
        spec: KindSpec,
        noun: str,
        oid: str,
        now: dict[str, Any],
        snap: SnapshotSide,
        live: LiveRead,
        request: Request,
    ) -> Action:
        listed = "created after the snapshot"
        if built_in(noun, now):
            return Action(spec.name, oid, "skip", reason=f"{listed}; built-in: never removed")
        if family := spec.extra.get("policy_family"):
            row = w.families()[family]
            rule_kind = w.kind_of_noun(row["RuleSet"].removeprefix("Set-"))
            rules = [
                rid
                for rid, then_r, now_r in pairs_of(rule_kind, snap, live, None)
                if then_r is None and now_r
                and str(now_r.get(row["RulePolicyParameter"], "")).lower() == oid.lower()
            ]  # fmt: skip
            if not request.prune:
                return Action(spec.name, oid, "skip",
                              reason=f"{listed}; --prune removes it with its rules")  # fmt: skip
            return BridgeAction(spec.name, oid, "remove", reason=f"{listed} (--prune)",
                                extra={"rules": rules, "row": row})  # fmt: skip
        if (found := w.rule_family(noun)) is not None:
            row = found[1]
            policy_kind = w.kind_of_noun(row["PolicySet"].removeprefix("Set-"))
            policy = str(now.get(row["RulePolicyParameter"]) or "")
            if snap.find(policy_kind.name, policy) is None:
                return Action(spec.name, oid, "skip", reason=f"{listed}; removed with its "
                              f"policy '{policy}' by --prune")  # fmt: skip
        if found is not None or noun == w.TRANSPORT_RULE or w.removable(noun):
            if not request.prune:
                return Action(spec.name, oid, "skip", reason=f"{listed}; --prune removes it")
            extra = {"list_type": now.get("ListType")} if noun == w.ALLOW_BLOCK else {}
            return BridgeAction(spec.name, oid, "remove", reason=f"{listed} (--prune)",
                                extra=extra)  # fmt: skip
        return Action(spec.name, oid, "skip",
                      reason=f"{listed}; restore does not remove {spec.title.lower()}")  # fmt: skip

    # -- apply ---------------------------------------------------------------------------------

    def apply_action(
        self, bridge: ExchangeBridge, action: Action, ids: IdMap, request: Request, outcome: Any
    ) -> None:
        assert isinstance(action, BridgeAction)
        w.apply(bridge, action, ids, outcome)

    # -- verify --------------------------------------------------------------------------------

    def verify_ignored(self, spec: KindSpec) -> set[str]:
        return set(IGNORED)

    def still_differs(
        self, spec: KindSpec, action: Action, now: dict[str, Any], prop: str
    ) -> str | None:
        assert isinstance(action, BridgeAction)
        noun = w.noun_of(spec)
        writable = restorable(noun)
        if action.action == "patch" and prop in writable:
            written = set(action.patch) | {
                p
                for p, k in (("State", "state"), ("Members", "members"), ("Roles", "roles"))
                if k in action.extra
            }
            if prop not in written:
                return None  # not part of this restore (merge left it)
        if prop == "Roles" and action.extra.get("add_only") and roles_held(action, now):
            return None  # merge: the roles it lost are back, those it gained stay
        frozen = noun == w.ROLE_GROUP and built_in(noun, action.snapshot)
        if prop in writable and not (frozen and prop != "Members"):
            return "still differs after the write"
        return self.why_not(spec, prop)


def roles_held(action: Action, now: dict[str, Any]) -> bool:
    assert isinstance(action, BridgeAction)
    held = {str(r).lower() for r in now.get("Roles") or []}
    return {str(r).lower() for r in action.extra.get("roles", [])} <= held


SETTINGS = ExchangeSettings()
# Role assignments have their own restorer (exchange_roles.py).
register(
    SETTINGS,
    *(k.name for k in SETTINGS_KINDS if k.restore and k.name != "managementRoleAssignment"),
)
