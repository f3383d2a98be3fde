"""What restore may write to Exchange/Defender settings, read from the ps_scripts module's own
tables, and the writes of one settings action (exchange_settings.py plans and verifies).

- Set-EbSetting: the settable properties per Set- cmdlet (``EbSettableByCmdlet``);
- New-EbPolicyWithRule: a removed Defender policy with its rule (``EbPolicyRuleFamilies``; one
  that had no rule by New-EbSetting);
- New-EbSetting: every other family with a New- cmdlet (``EbNewByCmdlet``): New- with what it
  takes, then Set- with the rest in the same call (DKIM: created disabled, then enabled);
- Set-EbRuleState: a rule's State (Enable-/Disable-<rule>);
- Update-EbRoleGroupMember: a role group's members; Sync-EbRoleGroupRole: a custom role group's
  roles (its role assignments); New-/Remove-EbAllowBlockListItem: entries
  of the Tenant Allow/Block List (created and removed, never patched);
- Remove-EbSetting: what --prune removes.
"""

from __future__ import annotations

import datetime as dt
from functools import cache, partial
from typing import Any

from agent.exchange import protocol
from agent.exchange.bridge import ExchangeBridge
from agent.exchange.contract import load_contract
from agent.kinds import BY_NAME, KindSpec
from agent.kinds.exchange import SETTINGS_KINDS
from agent.restore.bridge_base import BridgeAction, module_tables, run_write
from agent.restore.idmap import IdMap

TRANSPORT_RULE = "TransportRule"
ROLE_GROUP = "RoleGroup"
ALLOW_BLOCK = "TenantAllowBlockListItems"
# Enabled after New- (New-DkimSigningConfig -Enabled $false, then Set- -Enabled $true).
ENABLE_AFTER = {"DkimSigningConfig": "Enabled"}


def noun_of(spec: KindSpec) -> str:
    return str(spec.extra["cmdlet"]).removeprefix("Get-")


def settable(noun: str) -> list[str]:
    return list(module_tables()["EbSettableByCmdlet"].get(f"Set-{noun}", []))


def new_allowed(noun: str) -> list[str] | None:
    """What New-EbSetting passes to New-<noun>; None when the module cannot create it."""
    found = module_tables()["EbNewByCmdlet"].get(f"New-{noun}")
    return None if found is None else list(found)


def families() -> dict[str, dict[str, str]]:
    return dict(module_tables()["EbPolicyRuleFamilies"])


@cache
def _validate_set(function: str, parameter: str) -> frozenset[str]:
    contract = load_contract(protocol.PS_DIR)
    return frozenset(contract[function].params[parameter].validate_set or ())


def removable(noun: str) -> bool:
    """--prune can remove objects of ``noun`` (Remove-EbSetting takes its Remove- cmdlet)."""
    return noun == ALLOW_BLOCK or f"Remove-{noun}" in _validate_set("Remove-EbSetting", "Cmdlet")


def state_switchable(noun: str) -> bool:
    """The rule's State has Enable-/Disable- cmdlets the module runs."""
    return f"Enable-{noun}" in _validate_set("Set-EbRuleState", "Cmdlet")


def kind_of_noun(noun: str) -> KindSpec:
    return next(k for k in SETTINGS_KINDS if noun_of(k) == noun)


def rule_family(noun: str) -> tuple[str, dict[str, str]] | None:
    """(family, its table row) when ``noun`` is the rule of a policy family."""
    for family, row in families().items():
        if row["RuleSet"] == f"Set-{noun}":
            return family, row
    return None


def values(obj: dict[str, Any], allowed: list[str], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """``obj``'s values of the ``allowed`` parameters (nulls left out: New- takes defaults)."""
    return {k: obj[k] for k in allowed if k in obj and obj[k] is not None and k not in drop}


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(str(value)[:26].rstrip("Z") + "+00:00")


def _state(bridge: ExchangeBridge, outcome: Any, noun: str, then: dict[str, Any], oid: str) -> None:
    """A rule created Enabled by New- that was Disabled at the snapshot."""
    if state_switchable(noun) and str(then.get("State") or "Enabled") != "Enabled":
        run_write(outcome, partial(bridge.set_rule_state, noun, False, oid))


def apply(bridge: ExchangeBridge, action: BridgeAction, ids: IdMap, outcome: Any) -> None:
    spec = BY_NAME[action.kind]
    noun = noun_of(spec)
    identity = None if spec.singleton else ids.get(action.object_id)
    then = action.snapshot
    extra = action.extra
    if action.action == "patch":
        if action.patch and not run_write(
            outcome, lambda: bridge.apply_setting(f"Set-{noun}", action.patch, identity)
        ):
            return
        if "state" in extra:
            enabled = extra["state"] == "Enabled"
            run_write(outcome, partial(bridge.set_rule_state, noun, enabled, str(identity)))
        if "members" in extra:
            members = [str(m) for m in extra["members"]]
            run_write(outcome, partial(bridge.update_role_group_members, str(identity), members))
        if "roles" in extra:
            roles = [str(r) for r in extra["roles"]]
            sync = partial(bridge.sync_role_group_roles, str(identity), roles)
            run_write(outcome, partial(sync, add_only=bool(extra["add_only"])))
        return
    if action.action == "remove":
        if noun == ALLOW_BLOCK:
            list_type = str(extra["list_type"])
            run_write(outcome, partial(bridge.remove_allow_block_item, list_type, action.object_id))
            return
        rule_noun = str(extra.get("row", {}).get("RuleSet", "")).removeprefix("Set-")
        for rule in extra.get("rules", []):  # a policy goes only once no rule names it
            if not run_write(outcome, partial(bridge.remove_setting, f"Remove-{rule_noun}", rule)):
                return
        run_write(outcome, lambda: bridge.remove_setting(f"Remove-{noun}", action.object_id))
        return
    # recreate
    if spec.extra.get("policy_family") and not extra.get("alone"):
        family = spec.extra["policy_family"]
        row = families()[family]
        rule = extra["rule"]
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
    elif noun == ALLOW_BLOCK:
        _new_entry(bridge, action, ids, outcome)
    elif noun == TRANSPORT_RULE:
        body = values(then, settable(noun), ("Priority",))
        write = partial(bridge.new_transport_rule, action.object_id, int(then.get("Priority") or 0))
        if run_write(outcome, partial(write, body)):
            _state(bridge, outcome, noun, then, action.object_id)
    elif extra.get("with_policy"):  # its policy's New-EbPolicyWithRule created it: set the rest
        body = values(then, settable(noun))
        if run_write(outcome, lambda: bridge.apply_setting(f"Set-{noun}", body, identity)):
            _state(bridge, outcome, noun, then, action.object_id)
    else:
        _new_setting(bridge, action, ids, outcome, noun)


def _new_setting(
    bridge: ExchangeBridge, action: BridgeAction, ids: IdMap, outcome: Any, noun: str
) -> None:
    then = action.snapshot
    allowed = new_allowed(noun) or []
    body = values(then, allowed)
    later = values(then, settable(noun), ("Priority", *allowed))
    switch = ENABLE_AFTER.get(noun)
    if switch is not None:  # created disabled, then enabled: its DNS records may not exist yet
        body[switch] = False
        later.pop(switch, None)
        if then.get(switch):
            later[switch] = True
    created: list[str] = []

    def new() -> None:
        created.append(bridge.new_setting(f"New-{noun}", body, later))

    if not run_write(outcome, new):
        return
    if created[0] != action.object_id:
        ids.add(action.kind, action.object_id, created[0])
        outcome.new_id = created[0]
    _state(bridge, outcome, noun, then, created[0])


def _new_entry(bridge: ExchangeBridge, action: BridgeAction, ids: IdMap, outcome: Any) -> None:
    then = action.snapshot
    old = action.extra.get("replace")
    if old and not run_write(
        outcome, partial(bridge.remove_allow_block_item, str(then["ListType"]), str(old))
    ):
        return
    created: list[str] = []

    def new() -> None:
        created.append(
            bridge.new_allow_block_item(
                str(then["ListType"]),
                str(then["Value"]),
                str(then["Action"]),
                None if then.get("Notes") is None else str(then["Notes"]),
                _parse_time(then.get("ExpirationDate")),
            )
        )

    if run_write(outcome, new):
        ids.add(action.kind, action.object_id, created[0])
        outcome.new_id = created[0]
