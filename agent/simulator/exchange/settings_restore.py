"""Settings cmdlets restore needs beyond Set- and the Defender policy/rule pairs: New- of the
other settings families, Enable-/Disable- of rules, role group writes and the Tenant
Allow/Block List. Each refuses parameters the real cmdlet does not have (Exchange's
"A parameter cannot be found that matches parameter name …"). The caller holds the lock."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from agent.simulator.exchange import errors, role_assignments
from agent.simulator.exchange.defaults_defender import defender_defaults, rule
from agent.simulator.exchange.defaults_exo import EXCHANGE_DEFAULTS
from agent.simulator.exchange.objects import iso_o, settings_object, touch
from agent.simulator.exchange.settings import _reorder, _stamp_new, coerce, find
from agent.simulator.exchange.state import ExchangeOrg

_SCOPE = ("Comments", "ExceptIfSentTo", "ExceptIfSentToMemberOf", "ExceptIfRecipientDomainIs")
_CONDITIONS = ("Priority", "SentTo", "SentToMemberOf", "RecipientDomainIs", *_SCOPE)
_REPORT = (
    "EnableReportToMicrosoft",
    "EnableThirdPartyAddress",
    "ReportJunkToCustomizedAddress",
    "ReportJunkAddresses",
    "ReportNotJunkToCustomizedAddress",
    "ReportNotJunkAddresses",
    "ReportPhishToCustomizedAddress",
    "ReportPhishAddresses",
    "EnableUserEmailNotification",
    "DisableUserSubmissionOptions",
    "PreSubmitMessageEnabled",
    "PostSubmitMessageEnabled",
    "NotificationSenderAddress",
    "EnableCustomizedMsg",
)
_COMMON = ("Identity", "Confirm", "WhatIf", "ErrorAction")
# Documented parameters of the cmdlets restore added (Exchange Online PowerShell reference).
PARAMETERS: dict[str, frozenset[str]] = {
    name: frozenset((*_COMMON, *params))
    for name, params in {
        "Set-EOPProtectionPolicyRule": ("Name", *_CONDITIONS),
        "Set-ATPProtectionPolicyRule": ("Name", *_CONDITIONS),
        "Set-ATPBuiltInProtectionRule": _SCOPE,
        "Set-ReportSubmissionPolicy": _REPORT,
        "Set-ReportSubmissionRule": ("Comments", "SentTo", "Name"),
        "Set-TeamsProtectionPolicy": (
            "ZapEnabled",
            "HighConfidencePhishQuarantineTag",
            "MalwareQuarantineTag",
            "AdminDisplayName",
        ),
        "Set-TeamsProtectionPolicyRule": _SCOPE,
        "Set-ProtectionAlert": (
            "Severity",
            "NotifyUser",
            "Disabled",
            "NotificationEnabled",
            "Comment",
            "AggregationType",
            "Operation",
            "Description",
            "Filter",
            "Threshold",
            "TimeWindow",
        ),
        "Set-RoleGroup": (
            "Description",
            "DisplayName",
            "ManagedBy",
            "Name",
            "BypassSecurityGroupManagerCheck",
            "Force",
        ),
        "Update-RoleGroupMember": ("Members", "BypassSecurityGroupManagerCheck"),
        "New-AcceptedDomain": ("Name", "DomainName", "DomainType"),
        "New-RemoteDomain": ("Name", "DomainName"),
        "New-DkimSigningConfig": (
            "DomainName",
            "Enabled",
            "BodyCanonicalization",
            "HeaderCanonicalization",
            "KeySize",
        ),
        "New-OwaMailboxPolicy": ("Name",),
        "New-ReportSubmissionPolicy": _REPORT,
        "New-ReportSubmissionRule": ("Name", "ReportSubmissionPolicy", "Comments", "SentTo"),
        "New-TeamsProtectionPolicyRule": ("Name", "TeamsProtectionPolicy", *_SCOPE),
        "New-ProtectionAlert": (
            "Name",
            "Category",
            "NotifyUser",
            "ThreatType",
            "Operation",
            "Severity",
            "AggregationType",
            "Comment",
            "Disabled",
            "NotificationEnabled",
            "Description",
            "Filter",
        ),
        "New-TenantAllowBlockListItems": (
            "ListType",
            "Entries",
            "Allow",
            "Block",
            "Notes",
            "ExpirationDate",
            "NoExpiration",
            "ListSubType",
            "RemoveAfter",
        ),
        "Remove-TenantAllowBlockListItems": ("ListType", "Ids", "Entries", "ListSubType"),
    }.items()
}
PARAMETERS.update({k: frozenset(v) for k, v in role_assignments.PARAMETERS.items()})
# Mandatory parameters of the New- cmdlets (besides -Name where the cmdlet has one).
MANDATORY: dict[str, tuple[str, ...]] = {
    "New-AcceptedDomain": ("Name", "DomainName"),
    "New-RemoteDomain": ("Name", "DomainName"),
    "New-InboundConnector": ("Name", "SenderDomains"),
    "New-DkimSigningConfig": ("DomainName", "Enabled"),
    "New-ReportSubmissionRule": ("Name", "ReportSubmissionPolicy"),
    "New-TeamsProtectionPolicyRule": ("Name", "TeamsProtectionPolicy"),
    "New-ProtectionAlert": ("Name", "Category", "NotifyUser", "ThreatType"),
    "New-ManagementRoleAssignment": ("Role",),
    "Set-ManagementRoleAssignment": ("Identity",),
    "Remove-ManagementRoleAssignment": ("Identity",),
}
# Flags of Microsoft's own objects: a New- object never carries them.
_BUILT_IN_FLAGS = ("IsDefault", "IsBuiltIn", "IsSystemRule", "Default", "InitialDomain")


def check_parameters(cmdlet: str, params: dict[str, Any]) -> None:
    known = PARAMETERS.get(cmdlet)
    if known is None:
        return
    lowered = {k.lower() for k in known}
    for key in params:
        if key.lower() not in lowered:
            raise errors.CmdletError(
                "System.Management.Automation.ParameterBindingException",
                f"A parameter cannot be found that matches parameter name '{key}'.",
                f"NamedParameterNotFound,{cmdlet}",
            )
    default = ("Name",) if cmdlet.startswith("New-") and "Name" in known else ()
    for key in MANDATORY.get(cmdlet, default):
        if key not in params:
            raise errors.CmdletError(
                "System.Management.Automation.ParameterBindingException",
                "Cannot process command because of one or more missing mandatory parameters: "
                f"{key}.",
                f"MissingMandatoryParameter,{cmdlet}",
            )


def new_object(org: ExchangeOrg, noun: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """New-<noun> of a settings family that is not a Defender policy/rule pair."""
    objects = org.settings_of(f"Get-{noun}")
    name = str(params.get("Name") or params.get("DomainName") or f"Default{noun}")
    if any(str(o.get("Name", "")).lower() == name.lower() for o in objects):
        raise errors.name_taken(name)
    if noun in ("AcceptedDomain", "DkimSigningConfig"):
        domain = str(params["DomainName"]).lower()
        if domain not in {d.lower() for d in org.ctx.domains}:
            raise errors.validation(
                f"The domain {domain} isn't a verified domain of this organization. Add and "
                "verify it in the Microsoft 365 admin center first."
            )
    if noun == "ReportSubmissionPolicy" and objects:
        raise errors.validation("The report submission policy already exists.")
    if noun == "ReportSubmissionRule":
        find(org, "ReportSubmissionPolicy", str(params["ReportSubmissionPolicy"]))
        if objects:
            raise errors.validation("The report submission rule already exists.")
    obj = _template(org, noun, name)
    for key, value in params.items():
        if key not in ("Confirm", "ErrorAction", "Name"):
            obj[key] = coerce(key, obj.get(key), value)
    if noun == "DkimSigningConfig":  # Microsoft publishes the CNAMEs of the initial domain only
        domain = obj["Domain"] = obj["DomainName"] = str(params["DomainName"])
        obj["Status"] = "Valid" if domain.endswith(".onmicrosoft.com") else "CnameMissing"
    _stamp_new(org, obj)
    if "Priority" in obj:
        _reorder(org, noun, obj, int(params.get("Priority", len(objects))))
    else:
        objects.append(obj)
    return [copy.deepcopy(obj)]


def _template(org: ExchangeOrg, noun: str, name: str) -> dict[str, Any]:
    """A new object of the family: its shape and defaults as a new tenant has them, without
    the flags of Microsoft's own objects."""
    if noun == "TeamsProtectionPolicyRule":
        return rule(org.ctx, noun, name, "TeamsProtectionPolicy", "", 0)
    getter = f"Get-{noun}"
    factory = EXCHANGE_DEFAULTS.get(getter)
    defaults = factory(org.ctx) if factory else defender_defaults(org.ctx).get(getter, [])
    props = copy.deepcopy(defaults[0]) if defaults else {}
    for key in ("Identity", "Name", "Guid", "Id", "DistinguishedName"):
        props.pop(key, None)
    for flag in _BUILT_IN_FLAGS:
        if flag in props:
            props[flag] = False
    return settings_object(org.ctx, noun, name, props)


def set_state(org: ExchangeOrg, verb: str, noun: str, params: dict[str, Any]) -> list[Any]:
    """Enable-/Disable-<rule>."""
    target = find(org, noun, str(params["Identity"]))
    target["State"] = "Enabled" if verb == "Enable" else "Disabled"
    touch(target, org.directory.now())
    return []


# -- role groups ----------------------------------------------------------------------------


def role_group(org: ExchangeOrg, identity: str) -> dict[str, Any]:
    wanted = identity.lower()
    for group in org.role_groups:
        if wanted in (str(group["Name"]).lower(), str(group["Guid"]).lower()):
            return group
    raise errors.not_found(identity)


def set_role_group(org: ExchangeOrg, params: dict[str, Any]) -> list[Any]:
    group = role_group(org, str(params["Identity"]))
    for key in ("Description", "DisplayName", "ManagedBy"):
        if key in params:
            group[key] = coerce(key, group.get(key), params[key])
    touch(group, org.directory.now())
    return []


def update_role_group_member(org: ExchangeOrg, params: dict[str, Any]) -> list[Any]:
    group = role_group(org, str(params["Identity"]))
    members = [str(m) for m in params.get("Members") or []]
    for member in members:
        if member not in org.service_principals and org.resolve(member) is None:
            raise errors.recipient_not_found(member)
    group["Members"] = members
    touch(group, org.directory.now())
    return []


# -- Tenant Allow/Block List ------------------------------------------------------------------


def new_allow_block(org: ExchangeOrg, params: dict[str, Any]) -> list[dict[str, Any]]:
    list_type = str(params["ListType"])
    allow, block = bool(params.get("Allow")), bool(params.get("Block"))
    if allow == block:
        raise errors.validation("Specify exactly one of the Allow and Block switches.")
    if bool(params.get("NoExpiration")) == ("ExpirationDate" in params):
        raise errors.validation("Specify either ExpirationDate or NoExpiration.")
    items = org.settings_of("Get-TenantAllowBlockListItems")
    created = []
    for value in params.get("Entries") or []:
        if any(
            i["ListType"].lower() == list_type.lower() and i["Value"].lower() == str(value).lower()
            for i in items
        ):
            raise errors.validation(f"The entry '{value}' already exists in the {list_type} list.")
        expires = params.get("ExpirationDate")
        entry = {
            "Identity": str(uuid.uuid4()),
            "Value": str(value),
            "Action": "Allow" if allow else "Block",
            "ListType": list_type,
            "ListSubType": "Tenant",
            "Notes": str(params.get("Notes") or ""),
            "ExpirationDate": None if expires is None else iso_o(expires.timestamp()),
            "LastModifiedDateTime": iso_o(org.directory.now()),
            "LastUsedDate": None,
            "ModifiedBy": "",
            "SubmissionID": "",
            "SysManaged": False,
        }
        items.append(entry)
        created.append(copy.deepcopy(entry))
    return created


def remove_allow_block(org: ExchangeOrg, params: dict[str, Any]) -> list[Any]:
    items = org.settings_of("Get-TenantAllowBlockListItems")
    list_type = str(params["ListType"]).lower()
    for entry_id in params.get("Ids") or []:
        entry = next(
            (i for i in items if i["Identity"] == entry_id and i["ListType"].lower() == list_type),
            None,
        )
        if entry is None:
            raise errors.not_found(str(entry_id))
        items.remove(entry)
    return []
