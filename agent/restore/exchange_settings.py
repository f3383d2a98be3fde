"""Restore of Exchange Online and Defender settings through the Exchange bridge.

- Singletons and objects that exist: Set-EbSetting with the properties that differ, limited to
  the module's per-cmdlet table (``EbSettableByCmdlet``); a rule's priority is one of them.
- A removed Defender policy (anti-spam, outbound spam, anti-malware, anti-phishing, Safe Links,
  Safe Attachments) comes back with its rule by New-EbPolicyWithRule: the rule's conditions,
  name and priority from the snapshot; the rule kind's own action then sets what New- left.
  A removed mail flow rule comes back by New-EbTransportRule at its priority. Rules are
  created in priority order so the order comes out as it was.
- Objects created after the snapshot are listed; policies (with their rules) and mail flow
  rules are removed only with ``--prune`` (Remove-EbSetting, rules before their policy).
  Built-in and default policies are never removed.
- Everything else that is gone (accepted domains, connectors, quarantine and mailbox
  policies…) is listed as not restorable: the module has no New- for it.
Settings keep their Identity (their name) when recreated, so nothing goes into the id map.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from agent.compare.live import LiveRead
from agent.compare.sides import SnapshotSide, label_of
from agent.exchange.bridge import ExchangeBridge
from agent.kinds import BY_NAME, KindSpec
from agent.kinds.exchange import SETTINGS_KINDS
from agent.restore.bridge_base import (
    READ_ONLY,
    BridgeAction,
    BridgeRestorer,
    differing,
    empty,
    module_tables,
    not_in_snapshot,
    pairs_of,
    run_write,
)
from agent.restore.idmap import IdMap
from agent.restore.plan import Action, Request
from agent.restore.restorers import register

# Identity columns and stamps: they identify the object or change with every write.
IGNORED = frozenset({"Identity", "Id", "WhenChanged", "WhenChangedUTC"})
WHY = {
    "Guid": "Exchange gives a recreated object a new Guid",
    "WhenCreated": "set by Exchange when the object is created",
    "WhenCreatedUTC": "set by Exchange when the object is created",
    "DistinguishedName": "set by Exchange",
    "State": "Enable-/Disable- cmdlets switch a rule; the module does not run them",
    "IsDefault": "Microsoft's default policy; not a setting",
}
# Microsoft's own policies and rules: never removed (their names, or the flags they carry).
BUILT_IN_NAMES = frozenset({"default", "office365 antiphish default", "built-in protection policy"})
BUILT_IN_FLAGS = ("IsDefault", "IsBuiltInProtection", "IsSystemRule")
TRANSPORT_RULE = "TransportRule"


def noun_of(spec: KindSpec) -> str:
    return spec.extra["cmdlet"].removeprefix("Get-")


def settable(noun: str) -> list[str]:
    return list(module_tables()["EbSettableByCmdlet"].get(f"Set-{noun}", []))


def families() -> dict[str, dict[str, str]]:
    return dict(module_tables()["EbPolicyRuleFamilies"])


def kind_of_noun(noun: str) -> KindSpec:
    return next(k for k in SETTINGS_KINDS if noun_of(k) == noun)


def rule_family(noun: str) -> tuple[str, dict[str, str]] | None:
    """(family, its table row) when ``noun`` is the rule of a policy family."""
    for family, row in families().items():
        if row["RuleSet"] == f"Set-{noun}":
            return family, row
    return None


def built_in(obj: dict[str, Any]) -> bool:
    name = str(obj.get("Name") or obj.get("Identity") or "").lower()
    return (
        any(obj.get(flag) for flag in BUILT_IN_FLAGS)
        or name in BUILT_IN_NAMES
        or "preset security policy" in name
    )


def values(obj: dict[str, Any], allowed: list[str], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """``obj``'s values of the ``allowed`` parameters (nulls left out: New- takes defaults)."""
    return {k: obj[k] for k in allowed if k in obj and obj[k] is not None and k not in drop}


class ExchangeSettings(BridgeRestorer):
    """One restorer for every settings kind (one Set- cmdlet each)."""

    def writable(self, spec: KindSpec) -> frozenset[str]:
        return frozenset(settable(noun_of(spec)))

    def why_not(self, spec: KindSpec, prop: str) -> str:
        return WHY.get(prop, READ_ONLY)

    # -- plan ----------------------------------------------------------------------------------

    def plan_kind(
        self, spec: KindSpec, snap: SnapshotSide, live: LiveRead, request: Request, ids: IdMap
    ) -> list[Action]:
        if (absent := not_in_snapshot(spec, snap, request)) is not None:
            return absent
        noun = noun_of(spec)
        pairs = pairs_of(spec, snap, live, request.ids)
        # Rules in the order of their priority: each New-/Set- lands where it was.
        pairs.sort(key=lambda p: int((p[1] or p[2] or {}).get("Priority") or 0))
        actions: list[Action] = []
        for oid, then, now in pairs:
            action: Action | None
            if then is None:
                action = self._created_since(spec, noun, oid, now or {}, snap, live, request)
            elif now is None:
                action = self._gone(spec, noun, oid, then, snap, live)
            else:
                action = self._patch(spec, noun, oid, then, now, request)
            if action is not None:
                action.label = label_of(spec.name, oid, then or now or {}, (snap, live))
                actions.append(action)
        return actions

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
        writable = set(settable(noun))
        for prop in differing(then, now, set(IGNORED)):
            if request.properties is not None and prop not in request.properties:
                continue
            if request.mode == "merge" and not (empty(now.get(prop)) and not empty(then.get(prop))):
                continue
            if prop in writable:
                action.patch[prop] = then.get(prop)
            else:
                action.notes[prop] = self.why_not(spec, prop)
        if not action.patch and not action.notes:
            return None
        if not action.patch:
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
    ) -> Action:
        family = spec.extra.get("policy_family")
        if spec.singleton:
            return Action(spec.name, oid, "skip", snapshot=then,
                          reason="a tenant-wide setting is only ever set, never recreated")  # fmt: skip
        if family:
            row = families()[family]
            rule_kind = kind_of_noun(row["RuleSet"].removeprefix("Set-"))
            rule = next(
                (
                    r
                    for _, r, now in pairs_of(rule_kind, snap, live, None)
                    if r is not None and now is None
                    and str(r.get(row["RulePolicyParameter"], "")).lower() == oid.lower()
                ),
                None,
            )  # fmt: skip
            if rule is None:
                return Action(spec.name, oid, "skip", snapshot=then,
                              reason="had no rule of its own at the snapshot (or the rule "
                              "still exists): the module recreates a policy only with its "
                              "rule (New-EbPolicyWithRule)")  # fmt: skip
            return BridgeAction(
                spec.name, oid, "recreate", snapshot=then, extra={"rule": rule},
                reason=f"removed since the snapshot: {row['Policy']} with its rule "
                f"'{rule.get('Name')}' at priority {rule.get('Priority')} (New-EbPolicyWithRule)",
            )  # fmt: skip
        found = rule_family(noun)
        if found is not None:
            family, row = found
            policy_kind = kind_of_noun(row["PolicySet"].removeprefix("Set-"))
            policy = str(then.get(row["RulePolicyParameter"]) or "")
            if live.find(policy_kind.name, policy) is None and snap.find(policy_kind.name, policy):
                return BridgeAction(spec.name, oid, "recreate", snapshot=then,
                                    reason=f"created with its policy '{policy}', then set")  # fmt: skip
            return Action(spec.name, oid, "skip", snapshot=then,
                          reason=f"gone while its policy '{policy}' remains: the module "
                          "recreates a rule only together with its policy")  # fmt: skip
        if noun == TRANSPORT_RULE:
            return BridgeAction(spec.name, oid, "recreate", snapshot=then,
                                reason=f"removed since the snapshot: New-TransportRule at "
                                f"priority {then.get('Priority')}")  # fmt: skip
        return Action(spec.name, oid, "skip", snapshot=then,
                      reason=f"gone: restore recreates only Defender policies with their rules "
                      f"and mail flow rules, not {spec.title.lower()}; recreate it in the "
                      "admin center")  # fmt: skip

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
        if built_in(now):
            return Action(spec.name, oid, "skip", reason=f"{listed}; built-in: never removed")
        family = spec.extra.get("policy_family")
        found = rule_family(noun)
        if family:
            row = families()[family]
            rule_kind = kind_of_noun(row["RuleSet"].removeprefix("Set-"))
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
        if found is not None:
            row = found[1]
            policy_kind = kind_of_noun(row["PolicySet"].removeprefix("Set-"))
            policy = str(now.get(row["RulePolicyParameter"]) or "")
            if snap.find(policy_kind.name, policy) is None:
                return Action(spec.name, oid, "skip", reason=f"{listed}; removed with its "
                              f"policy '{policy}' by --prune")  # fmt: skip
        if found is not None or noun == TRANSPORT_RULE:
            if not request.prune:
                return Action(spec.name, oid, "skip", reason=f"{listed}; --prune removes it")
            return BridgeAction(spec.name, oid, "remove", reason=f"{listed} (--prune)")
        return Action(spec.name, oid, "skip",
                      reason=f"{listed}; restore does not remove {spec.title.lower()}")  # fmt: skip

    # -- apply ---------------------------------------------------------------------------------

    def apply_action(
        self, bridge: ExchangeBridge, action: Action, ids: IdMap, request: Request, outcome: Any
    ) -> None:
        assert isinstance(action, BridgeAction)
        spec = BY_NAME[action.kind]
        noun = noun_of(spec)
        identity = None if spec.singleton else action.object_id
        then = action.snapshot
        if action.action == "patch":
            run_write(outcome, lambda: bridge.apply_setting(f"Set-{noun}", action.patch, identity))
        elif action.action == "remove":
            rules = action.extra.get("rules", [])
            rule_noun = str(action.extra.get("row", {}).get("RuleSet", "")).removeprefix("Set-")
            for rule in rules:  # a policy goes only once no rule names it
                write = partial(bridge.remove_setting, f"Remove-{rule_noun}", str(rule))
                if not run_write(outcome, write):
                    return
            run_write(outcome, lambda: bridge.remove_setting(f"Remove-{noun}", action.object_id))
        elif spec.extra.get("policy_family"):
            family = spec.extra["policy_family"]
            row = families()[family]
            rule = action.extra["rule"]
            rule_allowed = settable(row["RuleSet"].removeprefix("Set-"))
            run_write(
                outcome,
                lambda: bridge.new_policy_with_rule(
                    family,
                    action.object_id,
                    int(rule.get("Priority") or 0),
                    values(then, settable(noun)),
                    values(rule, rule_allowed, ("Priority",)),
                    rule_name=str(rule.get("Name") or action.object_id),
                ),
            )
        elif noun == TRANSPORT_RULE:
            run_write(
                outcome,
                lambda: bridge.new_transport_rule(
                    action.object_id,
                    int(then.get("Priority") or 0),
                    values(then, settable(noun), ("Priority",)),
                ),
            )
        else:  # a rule its policy's New-EbPolicyWithRule created: set what New- left
            body = values(then, settable(noun))
            run_write(outcome, lambda: bridge.apply_setting(f"Set-{noun}", body, identity))

    # -- verify --------------------------------------------------------------------------------

    def verify_action(self, outcome: Any, live: LiveRead, ids: IdMap, request: Request) -> None:
        action = outcome.action
        spec = BY_NAME[action.kind]
        now = live.find(spec.name, action.object_id)
        if action.action == "remove":
            if now is not None:
                outcome.status, outcome.reason = "failed", "still in the tenant after the restore"
            return
        if now is None:
            outcome.status, outcome.reason = "failed", "not found in the tenant after the restore"
            return
        writable = set(settable(noun_of(spec)))
        scope = set(action.patch) if action.action == "patch" else None
        for prop in differing(action.snapshot, now, set(IGNORED)):
            if request.properties is not None and prop not in request.properties:
                continue
            if scope is not None and prop in writable and prop not in scope:
                continue  # not part of this restore (merge left it)
            outcome.properties[prop] = (
                "still differs after the write" if prop in writable else self.why_not(spec, prop)
            )
        if outcome.properties and outcome.status == "restored":
            outcome.status = "partial"


SETTINGS = ExchangeSettings()
register(SETTINGS, *(k.name for k in SETTINGS_KINDS if "set" in k.restore))
