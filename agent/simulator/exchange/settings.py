"""Settings cmdlets: Get-/Set- of every facts-file §7 family, New- of policies and rules, and
the RBAC cmdlets (role groups, assignments, service principals). The caller holds the lock."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from agent.simulator.exchange import defaults_defender as dd
from agent.simulator.exchange import errors
from agent.simulator.exchange import role_assignments as rbac_writes
from agent.simulator.exchange.defaults_exo import transport_rule
from agent.simulator.exchange.objects import settings_object, touch
from agent.simulator.exchange.rbac import with_roles
from agent.simulator.exchange.state import ExchangeOrg

# Settings that exist once per tenant: Set- without -Identity changes the one object.
SINGLETONS = {
    "OrganizationConfig",
    "TransportConfig",
    "AtpPolicyForO365",
    "ExternalInOutlook",
    "ArcConfig",
}
# Anti-phishing settings that only Defender for Office 365 has (EOP-only tenants refuse them).
MDO_ANTIPHISH = {
    "PhishThresholdLevel",
    "EnableMailboxIntelligence",
    "EnableMailboxIntelligenceProtection",
    "EnableOrganizationDomainsProtection",
    "EnableTargetedDomainsProtection",
    "TargetedDomainsToProtect",
    "EnableTargetedUserProtection",
    "TargetedUsersToProtect",
    "TargetedUserProtectionAction",
    "TargetedDomainProtectionAction",
    "MailboxIntelligenceProtectionAction",
    "EnableSimilarUsersSafetyTips",
    "EnableSimilarDomainsSafetyTips",
    "EnableUnusualCharactersSafetyTips",
}
_POLICY_FACTORIES: dict[str, Callable[..., dict[str, Any]]] = {
    "HostedContentFilterPolicy": dd.content_filter_policy,
    "HostedOutboundSpamFilterPolicy": dd.outbound_spam_policy,
    "MalwareFilterPolicy": dd.malware_policy,
    "AntiPhishPolicy": dd.anti_phish_policy,
    "SafeLinksPolicy": dd.safe_links_policy,
    "SafeAttachmentPolicy": dd.safe_attachment_policy,
}
_CONTROL = {"Identity", "Confirm", "Force", "ErrorAction", "Name"}
# Rule conditions are multi-valued even while unset (null): Set-/New- take arrays for them.
_MULTI_VALUED_CONDITIONS = {
    f"{prefix}{name}"
    for prefix in ("", "ExceptIf")
    for name in (
        "SentTo",
        "SentToMemberOf",
        "RecipientDomainIs",
        "From",
        "FromMemberOf",
        "SenderDomainIs",
    )
}


def get(org: ExchangeOrg, noun: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    if noun == "RoleGroup":
        return [with_roles(g, org.role_assignments) for g in copy.deepcopy(org.role_groups)]
    if noun == "ManagementRoleAssignment":
        return rbac_writes.get(org, params)
    objects = org.settings_of(f"Get-{noun}")
    if noun == "TenantAllowBlockListItems":
        list_type = str(params.get("ListType", ""))
        objects = [o for o in objects if o["ListType"].lower() == list_type.lower()]
    return copy.deepcopy(objects)


def find(org: ExchangeOrg, noun: str, identity: str | None) -> dict[str, Any]:
    objects = org.settings_of(f"Get-{noun}")
    if identity is None:
        if noun in SINGLETONS and objects:
            return objects[0]
        raise errors.CmdletError(
            "System.Management.Automation.ParameterBindingException",
            "Cannot process command because of one or more missing mandatory parameters: Identity.",
            f"MissingMandatoryParameter,Set-{noun}",
        )
    wanted = identity.lower()
    for obj in objects:
        keys = (obj.get("Identity"), obj.get("Name"), obj.get("Guid"), obj.get("DomainName"))
        if any(isinstance(k, str) and k.lower() == wanted for k in keys):
            return obj
    raise errors.not_found(identity)


def set_(org: ExchangeOrg, noun: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    identity = params.get("Identity")
    target = find(org, noun, None if identity is None else str(identity))
    if noun == "AntiPhishPolicy" and not org.defender_licensed:
        _refuse_mdo_parameters(params)
    changes = {k: v for k, v in params.items() if k not in _CONTROL}
    if noun == "AcceptedDomain" and changes.pop("MakeDefault", False):
        for obj in org.settings_of("Get-AcceptedDomain"):
            obj["Default"] = obj is target
    if noun == "MobileDeviceMailboxPolicy" and changes.get("IsDefault"):
        for obj in org.settings_of("Get-MobileDeviceMailboxPolicy"):
            obj["IsDefault"] = obj is target
    priority = changes.pop("Priority", None)
    for key, value in changes.items():
        target[key] = coerce(key, target.get(key), value)
    if priority is not None:
        _reorder(org, noun, target, _int("Priority", priority))
    touch(target, org.directory.now())
    return []


def coerce(key: str, current: Any, value: Any) -> Any:
    """Convert a splatted value to the property's type, as the cmdlet's binding would."""
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        raise errors.invalid_value(key, value, "System.Boolean")
    if isinstance(current, int):
        return _int(key, value)
    if isinstance(current, list) or (current is None and key in _MULTI_VALUED_CONDITIONS):
        items = [] if value is None else value if isinstance(value, list) else [value]
        return [str(v) for v in items]
    if value is None or isinstance(value, bool | int | str):
        return value
    raise errors.invalid_value(key, value, "System.String")


def _int(key: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise errors.invalid_value(key, value, "System.Int32")


def _refuse_mdo_parameters(params: dict[str, Any]) -> None:
    for key in params:
        if key in MDO_ANTIPHISH:
            raise errors.needs_defender(key)


def _reorder(org: ExchangeOrg, noun: str, target: dict[str, Any], priority: int) -> None:
    rules = [o for o in org.settings_of(f"Get-{noun}") if o is not target]
    rules.sort(key=lambda o: o.get("Priority", 0))
    if not 0 <= priority <= len(rules):
        raise errors.validation(
            f"The value of the Priority parameter must be between 0 and {len(rules)}."
        )
    rules.insert(priority, target)
    for index, rule in enumerate(rules):
        rule["Priority"] = index
    if target not in org.settings_of(f"Get-{noun}"):
        org.settings_of(f"Get-{noun}").append(target)


def new_policy(org: ExchangeOrg, noun: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    name = str(params["Name"])
    existing = org.settings_of(f"Get-{noun}")
    if any(o["Name"].lower() == name.lower() for o in existing):
        raise errors.server_error(
            "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
            f"The policy '{name}' already exists. Please choose another name.",
        )
    if noun == "AntiPhishPolicy" and not org.defender_licensed:
        _refuse_mdo_parameters(params)
    policy = _POLICY_FACTORIES[noun](org.ctx, name)
    for key, value in params.items():
        if key not in _CONTROL:
            policy[key] = coerce(key, policy.get(key), value)
    _stamp_new(org, policy)
    existing.append(policy)
    return [copy.deepcopy(policy)]


def new_rule(org: ExchangeOrg, noun: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    name = str(params["Name"])
    policy_noun = noun.removesuffix("Rule") + "Policy"
    policy_name = str(params.get(policy_noun, ""))
    find(org, policy_noun, policy_name)  # the rule's policy must exist
    rules = org.settings_of(f"Get-{noun}")
    if any(o["Name"].lower() == name.lower() for o in rules):
        raise errors.server_error(
            "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
            f"A rule with the name '{name}' already exists.",
        )
    for other in rules:
        if str(other.get(policy_noun, "")).lower() == policy_name.lower():
            raise errors.validation(
                f"The policy '{policy_name}' is already used by the rule '{other['Name']}'."
            )
    rule = dd.rule(org.ctx, noun, name, policy_noun, policy_name, len(rules))
    for key, value in params.items():
        if key not in _CONTROL and key not in ("Priority", policy_noun):
            rule[key] = coerce(key, rule.get(key), value)
    _stamp_new(org, rule)
    _reorder(org, noun, rule, _int("Priority", params.get("Priority", len(rules))))
    return [copy.deepcopy(rule)]


def new_transport_rule(org: ExchangeOrg, params: dict[str, Any]) -> list[dict[str, Any]]:
    name = str(params["Name"])
    rules = org.settings_of("Get-TransportRule")
    if any(o["Name"].lower() == name.lower() for o in rules):
        raise errors.server_error(
            "Microsoft.Exchange.Management.Tasks.RuleAlreadyExistsException",
            f"A rule with the name '{name}' already exists.",
        )
    rule = transport_rule(org.ctx, name, len(rules), {})
    for key, value in params.items():
        if key not in _CONTROL and key != "Priority":
            rule[key] = coerce(key, rule.get(key), value)
    _stamp_new(org, rule)
    _reorder(org, "TransportRule", rule, _int("Priority", params.get("Priority", len(rules))))
    return [copy.deepcopy(rule)]


def remove_(org: ExchangeOrg, noun: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Remove-<policy or rule>: default policies stay; a policy in use by a rule stays until
    the rule is removed."""
    target = find(org, noun, str(params["Identity"]))
    if any(
        target.get(f) for f in ("IsDefault", "IsBuiltInProtection", "IsBuiltIn", "IsSystemRule")
    ):
        raise errors.validation(f"The default policy '{target['Name']}' can't be removed.")
    if noun.endswith("Policy"):
        rule_noun = noun.removesuffix("Policy") + "Rule"
        for rule in org.settings_of(f"Get-{rule_noun}"):
            if str(rule.get(noun, "")).lower() == str(target["Name"]).lower():
                raise errors.validation(
                    f"The policy '{target['Name']}' is used by the rule '{rule['Name']}'. "
                    "Remove the rule first."
                )
    objects = org.settings_of(f"Get-{noun}")
    objects.remove(target)
    if "Priority" in target:  # the other rules close the gap
        for index, rule in enumerate(sorted(objects, key=lambda o: o.get("Priority", 0))):
            rule["Priority"] = index
    return []


def _stamp_new(org: ExchangeOrg, obj: dict[str, Any]) -> None:
    fresh = settings_object(org.ctx, "x", "x", {})
    now = org.directory.now()
    touch(fresh, now)
    for key in ("WhenCreated", "WhenCreatedUTC"):
        obj[key] = fresh["WhenChangedUTC"]
    touch(obj, now)


def remove(org: ExchangeOrg, get_cmdlet: str, identity: str) -> bool:
    """Churn helper: delete a policy or rule (and a policy's rules)."""
    noun = get_cmdlet.removeprefix("Get-")
    objects = org.settings_of(get_cmdlet)
    target = find(org, noun, identity)
    objects.remove(target)
    if noun.endswith("Policy"):
        rules = org.settings_of(f"Get-{noun.removesuffix('Policy')}Rule")
        rules[:] = [r for r in rules if str(r.get(noun, "")).lower() != target["Name"].lower()]
    return True


# -- RBAC ------------------------------------------------------------------------------------


def new_service_principal(org: ExchangeOrg, params: dict[str, Any]) -> list[dict[str, Any]]:
    object_id = str(params["ObjectId"])
    if object_id in org.service_principals:
        raise errors.server_error(
            "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
            f"The service principal with object id '{object_id}' already exists.",
        )
    principal = {
        "Identity": object_id,
        "AppId": str(params["AppId"]),
        "ObjectId": object_id,
        "DisplayName": str(params.get("DisplayName") or object_id),
    }
    org.service_principals[object_id] = principal
    return [dict(principal)]


def new_role_group(org: ExchangeOrg, params: dict[str, Any]) -> list[dict[str, Any]]:
    return rbac_writes.new_role_group(org, params)


def add_role_group_member(org: ExchangeOrg, params: dict[str, Any]) -> list[dict[str, Any]]:
    identity = str(params["Identity"]).lower()
    group = next((g for g in org.role_groups if g["Name"].lower() == identity), None)
    if group is None:
        raise errors.not_found(str(params["Identity"]))
    member = str(params["Member"])
    if member not in org.service_principals and org.resolve(member) is None:
        raise errors.recipient_not_found(member)
    if member in group["Members"]:
        raise errors.validation(
            f'The recipient "{member}" is already a member of the group "{group["Name"]}".'
        )
    group["Members"].append(member)
    touch(group, org.directory.now())
    return []
