"""Exchange Online operations through the bridge host (``ExchangeBridge``).

``PsrpExchangeBridge`` follows agent/exchange/protocol.py: one pypsrp ``RunspacePool`` (one
runspace) per tenant session, the ps_scripts module loaded once by the constant loader script,
one ``Connect-EbExchange``, then one pipeline per call with every value a typed parameter.
Transport and envelope problems become the ``ExchangeError`` subclasses of agent/errors.py
(outcomes.py says which is which); a missing or malformed envelope is an error, never "no data".
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.errors import ExchangeError, ExchangeThrottled
from agent.exchange.outcomes import error_for
from agent.exchange.protocol import Envelope, EnvelopeError, iso_utc, retry_after_seconds

log = logging.getLogger("entra_backup.exchange")

# Throttled cmdlets of a read are retried this many times, waiting what the host asks (capped).
THROTTLE_RETRIES = 3
THROTTLE_WAIT_CAP_S = 60.0
GROUP_TYPES = ("MailUniversalDistributionGroup", "MailUniversalSecurityGroup")
# Groups per Export-EbDistributionGroups page: 100 groups of a few hundred members are a few MB.
GROUP_PAGE_SIZE = 100
# A listing whose session was lost mid-way is started again at most this many times.
GROUP_LISTING_RESTARTS = 2


@dataclass
class SettingsExport:
    """Objects per Get- cmdlet; cmdlets that failed map to the error an operator sees."""

    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: dict[str, ExchangeError] = field(default_factory=dict)


@dataclass
class GroupsExport:
    """One page of groups with their Exchange properties; ``Members`` is None where it could
    not be read. ``restarted``: the listing began again from its first group (the bridge host
    lost the session holding it), so the groups of earlier pages come again."""

    groups: list[dict[str, Any]] = field(default_factory=list)
    member_failures: dict[str, ExchangeError] = field(default_factory=dict)  # by group Guid
    restarted: bool = False


@dataclass
class BridgeStats:
    calls: int = 0
    retries: int = 0
    reconnects: int = 0
    seconds: float = 0.0
    by_function: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "retries": self.retries,
            "reconnects": self.reconnects,
            "seconds": round(self.seconds, 3),
            "by_function": dict(self.by_function),
        }


class ExchangeBridge(ABC):
    """The operations backup and restore need from Exchange Online."""

    host: str = "bridge"
    group_page_size: int = GROUP_PAGE_SIZE

    def __init__(self) -> None:
        self.stats = BridgeStats()

    # -- the one primitive an implementation provides -------------------------------------

    @abstractmethod
    def call(self, function: str, parameters: dict[str, Any], *, idempotent: bool) -> Envelope:
        """Run one module function; the envelope it wrote (op already checked)."""

    def close(self) -> None:  # noqa: B027 - optional for implementations without a session
        """End the session (nothing to do by default)."""

    def warnings(self) -> list[str]:
        """What the operator must hear about this session's setup (e.g. plain HTTP)."""
        return []

    def __enter__(self) -> ExchangeBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads -----------------------------------------------------------------------------

    def export_groups(
        self,
        recipient_type: str,
        *,
        changed_since: dt.datetime | None = None,
        include_members: bool = True,
        page_size: int | None = None,
    ) -> Iterator[GroupsExport]:
        """Every DL (or mail-enabled security group), or those changed since a UTC time, one
        page at a time: the agent holds one page of groups and members, never the tenant's."""
        if recipient_type not in GROUP_TYPES:
            raise ValueError(f"unknown recipient type {recipient_type}")
        first: dict[str, Any] = {
            "RecipientTypeDetails": recipient_type,
            "PageSize": page_size or self.group_page_size,
        }
        if changed_since is not None:
            # pypsrp cannot serialize DateTime: PowerShell binds the ISO string to [datetime].
            first["ChangedSinceUtc"] = iso_utc(changed_since)
        if include_members:
            first["IncludeMembers"] = True
        token: str | None = None
        restarts = 0
        restarted = False
        while True:
            params = dict(first)
            if token is not None:
                params = {k: v for k, v in first.items() if k != "ChangedSinceUtc"}
                params["ResumeToken"] = token
            envelope = self._read("Export-EbDistributionGroups", params)
            if token is not None and any(e.cmdlet == "ResumeToken" for e in envelope.errors):
                # The listing lived in a session the host dropped: list again from the start.
                if restarts >= GROUP_LISTING_RESTARTS:
                    raise error_for(envelope.errors[0], self.host)
                restarts += 1
                self.stats.retries += 1
                token, restarted = None, True
                log.warning("Bridge lost the %s listing; listing again.", recipient_type)
                continue
            page = self._groups_page(envelope, include_members)
            page.restarted, restarted = restarted, False
            yield page
            token = envelope.next
            if token is None:
                return

    def _groups_page(self, envelope: Envelope, include_members: bool) -> GroupsExport:
        result = GroupsExport()
        for error in envelope.errors:
            name, _, group = error.cmdlet.partition(":")
            if name == "Get-DistributionGroupMember" and group:
                result.member_failures[group] = error_for(error, self.host)
            else:  # the listing itself failed: nothing here can be trusted as complete
                raise error_for(error, self.host)
        for item in envelope.items:
            if not isinstance(item, dict) or not item.get("ExternalDirectoryObjectId"):
                raise self._malformed("Export-EbDistributionGroups", "a group without an id")
            if include_members and not isinstance(item.get("Members"), list | type(None)):
                raise self._malformed("Export-EbDistributionGroups", "Members is not a list")
            result.groups.append(item)
        return result

    def export_settings(self, cmdlets: Sequence[str]) -> SettingsExport:
        """Objects of each Get- cmdlet; throttled cmdlets are retried on their own."""
        result = SettingsExport()
        pending = list(dict.fromkeys(cmdlets))
        for attempt in range(THROTTLE_RETRIES + 1):
            if not pending:
                break
            envelope = self._read("Export-EbSettings", {"Cmdlet": pending})
            throttled: list[str] = []
            waits: list[float] = []
            failed: dict[str, EnvelopeError] = {}
            for error in envelope.errors:
                failed[error.cmdlet.partition(":")[0]] = error
            for item in envelope.items:
                cmdlet = item.get("cmdlet") if isinstance(item, dict) else None
                objects = item.get("objects") if isinstance(item, dict) else None
                if cmdlet not in pending or not isinstance(objects, list):
                    raise self._malformed("Export-EbSettings", "an item without cmdlet/objects")
                if cmdlet in failed:
                    continue  # one list type of several failed: the cmdlet is incomplete
                bucket = result.objects.setdefault(cmdlet, [])
                for obj in objects:
                    if not isinstance(obj, dict):
                        raise self._malformed("Export-EbSettings", f"{cmdlet} gave a non-object")
                    if item.get("listType") and "ListType" not in obj:
                        obj = {**obj, "ListType": item["listType"]}
                    bucket.append(obj)
            for cmdlet, error in failed.items():
                result.objects.pop(cmdlet, None)
                wait = retry_after_seconds(error.message) or 2.0 * (attempt + 1)
                # A back-off longer than the cap is not waited out: the job would stall.
                if (
                    error.category == "Throttled"
                    and attempt < THROTTLE_RETRIES
                    and wait <= THROTTLE_WAIT_CAP_S
                ):
                    throttled.append(cmdlet)
                    waits.append(wait)
                else:
                    result.failures[cmdlet] = error_for(error, self.host)
            for cmdlet in pending:
                if cmdlet not in failed and cmdlet not in result.objects:
                    result.objects[cmdlet] = []  # ran and returned nothing: truly empty
            pending = throttled
            if pending:
                self.stats.retries += 1
                time.sleep(max(waits))
        return result

    # -- writes (restore) ----------------------------------------------------------------------

    def new_group(
        self, name: str, group_type: str, properties: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """New-DistributionGroup (-Type Distribution|Security); the created ids."""
        params: dict[str, Any] = {"Name": name, "Type": group_type, **(properties or {})}
        envelope = self._write("New-EbDistributionGroup", params)
        if len(envelope.items) != 1 or not isinstance(envelope.items[0], dict):
            raise self._malformed("New-EbDistributionGroup", "no created group")
        return dict(envelope.items[0])

    def set_group(self, identity: str, properties: dict[str, Any]) -> None:
        self._write("Set-EbDistributionGroup", {"Identity": identity, "Properties": properties})

    def sync_members(self, identity: str, members: Sequence[str]) -> None:
        """Replace the whole member list (Update-DistributionGroupMember)."""
        self._write(
            "Sync-EbDistributionGroupMember", {"Identity": identity, "Members": list(members)}
        )

    def remove_group(self, identity: str) -> None:
        self._write("Remove-EbDistributionGroup", {"Identity": identity})

    def apply_setting(
        self, cmdlet: str, properties: dict[str, Any], identity: str | None = None
    ) -> None:
        """Set-<noun> with the allowed properties (identity omitted for singletons)."""
        params: dict[str, Any] = {"Cmdlet": cmdlet, "Properties": properties}
        if identity is not None:
            params["Identity"] = identity
        self._write("Set-EbSetting", params)

    def new_policy_with_rule(
        self,
        family: str,
        name: str,
        priority: int,
        policy_properties: dict[str, Any] | None = None,
        rule_properties: dict[str, Any] | None = None,
        rule_name: str | None = None,
    ) -> dict[str, Any]:
        """New-<family>Policy and its rule at ``priority`` (the rule named ``rule_name``, or
        after the policy)."""
        params: dict[str, Any] = {
            "Family": family,
            "Name": name,
            "Priority": priority,
            "PolicyProperties": policy_properties or {},
            "RuleProperties": rule_properties or {},
        }
        if rule_name is not None:
            params["RuleName"] = rule_name
        envelope = self._write("New-EbPolicyWithRule", params)
        return dict(envelope.items[0]) if envelope.items else {}

    def new_transport_rule(
        self, name: str, priority: int, properties: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """New-TransportRule with its conditions and actions, at ``priority``."""
        params: dict[str, Any] = {"Name": name, "Priority": priority}
        params["Properties"] = properties or {}
        envelope = self._write("New-EbTransportRule", params)
        return dict(envelope.items[0]) if envelope.items else {}

    def remove_setting(self, cmdlet: str, identity: str) -> None:
        """Remove-<policy or rule> (restore --prune); a policy's rules must go first."""
        self._write("Remove-EbSetting", {"Cmdlet": cmdlet, "Identity": identity})

    def new_setting(
        self,
        cmdlet: str,
        properties: dict[str, Any],
        set_properties: dict[str, Any] | None = None,
    ) -> str:
        """New-<noun> with what it takes, then Set-<noun> with the rest; the new Identity."""
        params: dict[str, Any] = {"Cmdlet": cmdlet, "Properties": properties}
        if set_properties:
            params["SetProperties"] = set_properties
        envelope = self._write("New-EbSetting", params)
        item = envelope.items[0] if envelope.items else None
        if not isinstance(item, dict) or not item.get("identity"):
            raise self._malformed("New-EbSetting", "no created object")
        return str(item["identity"])

    def set_rule_state(self, rule_noun: str, enabled: bool, identity: str) -> None:
        """Enable-<rule> / Disable-<rule>: a rule's State is never written by Set-."""
        cmdlet = f"{'Enable' if enabled else 'Disable'}-{rule_noun}"
        self._write("Set-EbRuleState", {"Cmdlet": cmdlet, "Identity": identity})

    def update_role_group_members(self, identity: str, members: Sequence[str]) -> None:
        """Replace a role group's whole member list (Update-RoleGroupMember)."""
        self._write("Update-EbRoleGroupMember", {"Identity": identity, "Members": list(members)})

    def new_role_assignment(
        self,
        role: str,
        assignee_type: str,
        assignee: str,
        *,
        name: str | None = None,
        delegating: bool = False,
        scope: dict[str, Any] | None = None,
        enabled: bool = True,
    ) -> tuple[str, bool]:
        """New-ManagementRoleAssignment -Role -<assignee_type> (SecurityGroup, User, Policy,
        App) with one recipient write scope; an assignment of that role the assignee holds
        already is set instead. Its Identity, and whether it was created."""
        params: dict[str, Any] = {"Role": role, "AssigneeType": assignee_type}
        params.update(Assignee=assignee, Scope=scope or {}, Enabled=enabled)
        if name is not None:
            params["Name"] = name
        if delegating:
            params["Delegating"] = True
        envelope = self._write("New-EbRoleAssignment", params)
        item = envelope.items[0] if envelope.items else None
        if not isinstance(item, dict) or not item.get("identity"):
            raise self._malformed("New-EbRoleAssignment", "no assignment")
        return str(item["identity"]), bool(item.get("created"))

    def set_role_assignment(
        self, identity: str, *, enabled: bool | None = None, scope: dict[str, Any] | None = None
    ) -> None:
        """Set-ManagementRoleAssignment: Enabled and the recipient write scope."""
        params: dict[str, Any] = {"Identity": identity, "Scope": scope or {}}
        if enabled is not None:
            params["Enabled"] = enabled
        self._write("Set-EbRoleAssignment", params)

    def sync_role_group_roles(self, identity: str, roles: Sequence[str], *, add_only: bool) -> None:
        """A role group's roles as ``roles``: assignments added (and, unless ``add_only``,
        removed) with -SecurityGroup."""
        params: dict[str, Any] = {"Identity": identity, "Roles": list(roles)}
        if add_only:
            params["AddOnly"] = True
        self._write("Sync-EbRoleGroupRole", params)

    def new_allow_block_item(
        self,
        list_type: str,
        value: str,
        action: str,
        notes: str | None = None,
        expires: dt.datetime | None = None,
    ) -> str:
        """A Tenant Allow/Block List entry (never expiring without ``expires``); its new id."""
        params: dict[str, Any] = {"ListType": list_type, "Value": value, "Action": action}
        if notes is not None:
            params["Notes"] = notes
        if expires is not None:
            params["ExpirationDate"] = iso_utc(expires)
        envelope = self._write("New-EbAllowBlockListItem", params)
        item = envelope.items[0] if envelope.items else None
        if not isinstance(item, dict) or not item.get("identity"):
            raise self._malformed("New-EbAllowBlockListItem", "no created entry")
        return str(item["identity"])

    def remove_allow_block_item(self, list_type: str, entry_id: str) -> None:
        self._write("Remove-EbAllowBlockListItem", {"ListType": list_type, "Id": entry_id})

    # -- helpers -------------------------------------------------------------------------------

    def _read(self, function: str, params: dict[str, Any]) -> Envelope:
        return self.call(function, params, idempotent=True)

    def _write(self, function: str, params: dict[str, Any]) -> Envelope:
        for attempt in range(THROTTLE_RETRIES + 1):
            envelope = self.call(function, params, idempotent=False)
            error = envelope.errors[0] if envelope.errors else None
            wait = retry_after_seconds(error.message) or 2.0 * (attempt + 1) if error else 0.0
            # A throttled cmdlet did not run: the call is repeated only when nothing before it
            # in the function ran either (New-EbPolicyWithRule's policy would exist twice).
            if (
                error is None
                or error.category != "Throttled"
                or envelope.succeeded
                or attempt == THROTTLE_RETRIES
                or wait > THROTTLE_WAIT_CAP_S
            ):
                break
            self.stats.retries += 1
            time.sleep(wait)
        if envelope.errors:
            error = envelope.errors[0]
            if error.category == "Throttled" and envelope.succeeded:
                raise ExchangeThrottled(
                    f"Exchange Online throttled {error.cmdlet} after {', '.join(envelope.succeeded)} "
                    "had run; not retried, since that would run twice.",
                    "Run the restore again later: it writes what is still missing.",
                )
            raise error_for(error, self.host)
        if not envelope.ok:
            raise self._malformed(function, "ok is false without an error")
        return envelope

    def _malformed(self, function: str, what: str) -> ExchangeError:
        from agent.errors import BridgeProtocolError

        return BridgeProtocolError(
            f"The bridge host {self.host} answered {function} with a malformed envelope "
            f"({what}); nothing from this call was used.",
            "Make sure the agent and its ps_scripts module are the same version; if they "
            "are, report this with the log file.",
        )
