"""Distribution group cmdlets over the DL overlay and the Graph directory (facts file §5).

Get-/New-/Set-/Remove-DistributionGroup, Get-/Update-DistributionGroupMember. Names, alias,
addresses, members and owners (ManagedBy) are Graph data and are written there; the rest is
Exchange-only (``DlRecord.props``). The caller holds the org lock.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from agent.simulator.exchange import errors
from agent.simulator.exchange.objects import iso_o
from agent.simulator.exchange.state import DL_TYPES, DlRecord, ExchangeOrg
from agent.simulator.graph import DirectoryError

# Recipient-list properties: stored as object ids with their kind, shown as names.
_USERS_ONLY = ("AcceptMessagesOnlyFrom", "RejectMessagesFrom", "ModeratedBy", "GrantSendOnBehalfTo")
_GROUPS_ONLY = ("AcceptMessagesOnlyFromDLMembers", "RejectMessagesFromDLMembers")
_MIXED = ("BypassModerationFromSendersOrMembers",)
_UNION = {  # computed property -> (senders, DL members); setting it replaces both
    "AcceptMessagesOnlyFromSendersOrMembers": (
        "AcceptMessagesOnlyFrom",
        "AcceptMessagesOnlyFromDLMembers",
    ),
    "RejectMessagesFromSendersOrMembers": ("RejectMessagesFrom", "RejectMessagesFromDLMembers"),
}
_ENUMS = {
    "MemberJoinRestriction": ("Open", "Closed", "ApprovalRequired"),
    "MemberDepartRestriction": ("Open", "Closed"),
    "SendModerationNotifications": ("Never", "Internal", "Always"),
}
_FILTER = re.compile(
    r"^\s*WhenChangedUTC\s+-gt\s+'(\d\d)/(\d\d)/(\d{4}) (\d\d):(\d\d):(\d\d)'\s*$", re.I
)


def find(org: ExchangeOrg, identity: str) -> DlRecord:
    found = org.resolve(identity)
    if found is None or found[0] != "group" or found[1] not in org.dls:
        raise errors.not_found(identity)
    return org.dls[found[1]]


def view(org: ExchangeOrg, record: DlRecord) -> dict[str, Any]:
    """Get-DistributionGroup's object for one group (what the module's property list reads)."""
    row = org.directory.row("group", record.group_id) or {}
    props = record.props

    def names(key: str) -> list[str]:
        return [org.recipient_name(kind, oid) for kind, oid in props.get(key, [])]

    out: dict[str, Any] = {
        "ExternalDirectoryObjectId": record.group_id,
        "Guid": record.guid,
        "Identity": record.name,
        "Name": record.name,
        "DisplayName": row.get("displayName"),
        "Alias": row.get("mailNickname"),
        # Directory timestamps have whole seconds (and the OPATH filter compares at that).
        "WhenChangedUTC": iso_o(int(record.when_changed)),
        "WhenCreatedUTC": iso_o(int(record.when_created)),
        "RecipientTypeDetails": record.recipient_type,
        "ManagedBy": sorted(
            org.recipient_name("user", o) for o in org.directory.owners(record.group_id)
        ),
        "EmailAddresses": list(row.get("proxyAddresses", [])),
        "PrimarySmtpAddress": row.get("mail"),
        "WindowsEmailAddress": row.get("mail"),
    }
    for key, value in props.items():
        if key in _USERS_ONLY or key in _GROUPS_ONLY or key in _MIXED:
            out[key] = names(key)
        else:
            out[key] = list(value) if isinstance(value, list) else value
    for union, (senders, members) in _UNION.items():
        out[union] = names(senders) + names(members)
    return out


def get_groups(org: ExchangeOrg, params: dict[str, Any]) -> list[dict[str, Any]]:
    org.sync()
    wanted = params.get("RecipientTypeDetails")
    since = _parse_filter(params["Filter"]) if params.get("Filter") else None
    records = sorted(org.dls.values(), key=lambda r: r.when_created)
    if "Identity" in params:
        records = [find(org, str(params["Identity"]))]
    limit = _result_size(params.get("ResultSize"))
    out = []
    for record in records:
        if wanted and record.recipient_type.lower() != str(wanted).lower():
            continue
        if since is not None and int(record.when_changed) <= since:
            continue
        out.append(view(org, record))
        if limit is not None and len(out) >= limit:
            break
    return out


def get_members(org: ExchangeOrg, params: dict[str, Any]) -> list[dict[str, Any]]:
    org.sync()
    record = find(org, str(params["Identity"]))
    members = []
    for oid in sorted(org.directory.members(record.group_id)):
        kind = org.directory.kind_of(oid)
        if kind == "user" or (kind == "group" and oid in org.dls):
            members.append(org.recipient_view(kind, oid))
    limit = _result_size(params.get("ResultSize"))
    return members if limit is None else members[:limit]


def _result_size(value: Any) -> int | None:
    # facts file §5: without -ResultSize Unlimited Get-DistributionGroup stops at 1000.
    if value is None:
        return 1000
    if str(value).lower() == "unlimited":
        return None
    return int(value)


def _parse_filter(text: str) -> int:
    match = _FILTER.match(str(text))
    if match is None:
        raise errors.server_error(
            "Microsoft.Exchange.Management.Tasks.ThrowTerminatingErrorException",
            f'Cannot bind parameter \'Filter\' to the target. Exception setting "Filter": "Invalid '
            f"filter syntax. For a description of the filter parameter syntax see the command "
            f'help.\n"{text}" at position 1."',
        )
    month, day, year, hour, minute, second = (int(g) for g in match.groups())
    return int(dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC).timestamp())


def _recipients(org: ExchangeOrg, values: Any, key: str) -> list[tuple[str, str]]:
    items = values if isinstance(values, list) else [] if values is None else [values]
    out: list[tuple[str, str]] = []
    for item in items:
        found = org.resolve(str(item))
        if found is None:
            raise errors.recipient_not_found(str(item))
        if key in _USERS_ONLY and found[0] != "user":
            raise errors.validation(f'The recipient "{item}" isn\'t a mailbox or mail user.')
        if key in _GROUPS_ONLY and found[0] != "group":
            raise errors.validation(f'The recipient "{item}" isn\'t a distribution group.')
        if found not in out:
            out.append(found)
    return out


def check_manager(
    org: ExchangeOrg, record: DlRecord, params: dict[str, Any], can_bypass: bool, caller: str | None
) -> None:
    """facts file §5: a security group is changed by its managers, or with
    -BypassSecurityGroupManagerCheck by holders of Organization Management or the Security Group
    Creation and Membership role (Microsoft's -BypassSecurityGroupManagerCheck docs)."""
    if record.recipient_type != "MailUniversalSecurityGroup":
        return
    if caller is not None and caller in org.directory.owners(record.group_id):
        return
    if params.get("BypassSecurityGroupManagerCheck") and can_bypass:
        return
    raise errors.not_group_manager()


def new_group(org: ExchangeOrg, params: dict[str, Any]) -> list[dict[str, Any]]:
    org.sync()
    name = str(params["Name"])
    kind = next(
        k
        for k, v in DL_TYPES.items()
        if v.lower() == str(params.get("Type", "Distribution")).lower()
    )
    alias = str(params.get("Alias") or re.sub(r"[^A-Za-z0-9._-]", "", name) or "group")
    address = str(params.get("PrimarySmtpAddress") or f"{alias}@{org.ctx.domain}")
    if any(r.name.lower() == name.lower() for r in org.dls.values()):
        raise errors.name_taken(name)
    for key in (alias, address):
        owner = org.resolve(key)
        if owner is not None:
            raise errors.proxy_taken(address, org.recipient_name(*owner))
    managers = _recipients(org, params.get("ManagedBy"), "ModeratedBy")
    members = _recipients(org, params.get("Members"), "BypassModerationFromSendersOrMembers")
    try:
        row = org.directory.create_group(
            displayName=str(params.get("DisplayName") or name),
            mailNickname=alias,
            mail=address,
            proxyAddresses=[f"SMTP:{address}"],
            mailEnabled=True,
            securityEnabled=kind == "MailUniversalSecurityGroup",
            groupTypes=[],
        )
        for _, oid in managers:
            org.directory.add_owner(row["id"], oid)
        for _, oid in members:
            org.directory.add_member(row["id"], oid)
    except DirectoryError as exc:
        raise errors.validation(str(exc)) from None
    now = org.directory.now()
    record = org.add_record(row["id"], kind, name, now)
    if "HiddenGroupMembershipEnabled" in params:
        record.props["HiddenGroupMembershipEnabled"] = bool(params["HiddenGroupMembershipEnabled"])
    org.mark_seen()
    org.invalidate_index()
    return [view(org, record)]


def set_group(
    org: ExchangeOrg, params: dict[str, Any], can_bypass: bool, caller: str | None
) -> list[dict[str, Any]]:
    org.sync()
    record = find(org, str(params["Identity"]))
    check_manager(org, record, params, can_bypass, caller)
    graph: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    owners: list[tuple[str, str]] | None = None
    row = org.directory.row("group", record.group_id) or {}
    for key, value in params.items():
        if key in ("Identity", "BypassSecurityGroupManagerCheck", "Confirm"):
            continue
        if key == "DisplayName":
            graph["displayName"] = str(value)
        elif key == "Alias":
            graph["mailNickname"] = str(value)
        elif key == "Name":
            if any(
                r.name.lower() == str(value).lower() and r is not record for r in org.dls.values()
            ):
                raise errors.name_taken(str(value))
            changes["__name"] = str(value)
        elif key in ("PrimarySmtpAddress", "WindowsEmailAddress"):
            address = str(value)
            owner = org.resolve(address)
            if owner is not None and owner != ("group", record.group_id):
                raise errors.proxy_taken(address, org.recipient_name(*owner))
            others = [
                p for p in row.get("proxyAddresses", []) if p.lower() != f"smtp:{address.lower()}"
            ]
            graph["mail"] = address
            graph["proxyAddresses"] = [f"SMTP:{address}"] + [
                "smtp:" + p.split(":", 1)[1] if p.startswith("SMTP:") else p for p in others
            ]
        elif key == "EmailAddresses":
            addresses = [str(v) for v in (value if isinstance(value, list) else [value])]
            primary = [a for a in addresses if a.startswith("SMTP:")]
            if len(primary) != 1:
                raise errors.validation("Exactly one primary SMTP address (SMTP:) is required.")
            graph["proxyAddresses"] = addresses
            graph["mail"] = primary[0].split(":", 1)[1]
        elif key == "ManagedBy":
            owners = _recipients(org, value, "ModeratedBy")
            if record.recipient_type == "MailUniversalSecurityGroup" and not owners:
                raise errors.validation(
                    "A mail-enabled security group must have at least one owner (ManagedBy)."
                )
        elif key in _UNION:
            found = _recipients(org, value, "BypassModerationFromSendersOrMembers")
            senders, members = _UNION[key]
            changes[senders] = [r for r in found if r[0] == "user"]
            changes[members] = [r for r in found if r[0] == "group"]
        elif key in _USERS_ONLY or key in _GROUPS_ONLY or key in _MIXED:
            changes[key] = _recipients(org, value, key)
        elif key in record.props:
            changes[key] = _coerce(key, record.props[key], value)
        else:
            raise errors.CmdletError(
                "System.Management.Automation.ParameterBindingException",
                f"A parameter cannot be found that matches parameter name '{key}'.",
                "NamedParameterNotFound,Set-DistributionGroup",
            )
    if "__name" in changes:
        record.name = changes.pop("__name")
    record.props.update(changes)
    try:
        if graph:
            org.directory.update_group(record.group_id, **graph)
        if owners is not None:
            current = org.directory.owners(record.group_id)
            wanted = {oid for _, oid in owners}
            for oid in wanted - current:
                org.directory.add_owner(record.group_id, oid)
            for oid in current - wanted:
                org.directory.remove_owner(record.group_id, oid)
    except DirectoryError as exc:
        raise errors.validation(str(exc)) from None
    record.when_changed = org.directory.now()
    org.mark_seen()
    org.invalidate_index()
    return []


def _coerce(key: str, current: Any, value: Any) -> Any:
    if key in _ENUMS:
        for option in _ENUMS[key]:
            if str(value).lower() == option.lower():
                return option
        raise errors.invalid_value(
            key, value, "Microsoft.Exchange.Data.Directory.Recipient.MemberUpdateType"
        )
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        raise errors.invalid_value(key, value, "System.Boolean")
    if isinstance(current, list):
        return [str(v) for v in (value if isinstance(value, list) else [value])]
    return None if value is None else str(value)


def remove_group(
    org: ExchangeOrg, params: dict[str, Any], can_bypass: bool, caller: str | None
) -> list[dict[str, Any]]:
    org.sync()
    record = find(org, str(params["Identity"]))
    check_manager(org, record, params, can_bypass, caller)
    org.directory.delete_group(record.group_id)  # mail-enabled groups go for good (facts §3)
    org.dls.pop(record.group_id, None)
    org.mark_seen()
    org.invalidate_index()
    return []


def update_members(
    org: ExchangeOrg, params: dict[str, Any], can_bypass: bool, caller: str | None
) -> list[dict[str, Any]]:
    """Update-DistributionGroupMember: replace the whole list ($null clears it)."""
    org.sync()
    record = find(org, str(params["Identity"]))
    check_manager(org, record, params, can_bypass, caller)
    wanted = _recipients(org, params.get("Members"), "BypassModerationFromSendersOrMembers")
    if ("group", record.group_id) in wanted:
        raise errors.validation("A group can't be a member of itself.")
    target = {oid for _, oid in wanted}
    current = org.directory.members(record.group_id)
    for oid in sorted(target - current):
        org.directory.add_member(record.group_id, oid)
    for oid in sorted(current - target):
        org.directory.remove_member(record.group_id, oid)
    if target != current:
        record.when_changed = org.directory.now()
    org.mark_seen()
    return []
