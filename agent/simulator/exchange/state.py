"""One tenant's simulated Exchange Online: settings, RBAC, DL overlay and failure switches.

Mail-enabled groups live in the Graph directory (agent/simulator/graph): Exchange keeps only
the Exchange-only properties of each distribution group / mail-enabled security group, keyed
by its Graph id (= ExternalDirectoryObjectId). Names, addresses, members and owners (ManagedBy)
are read from and written to the directory, so Graph delta sees what Exchange changes and the
other way round. Everything runs under the directory's lock.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from agent.simulator.exchange.defaults_defender import defender_defaults
from agent.simulator.exchange.defaults_exo import EXCHANGE_DEFAULTS
from agent.simulator.exchange.objects import OrgContext, stable_guid
from agent.simulator.exchange.rbac import (
    DEFAULT_POLICY,
    default_assignments,
    default_role_groups,
    granted,
)
from agent.simulator.graph import Directory
from agent.simulator.world import ROLE_TEMPLATE_IDS, SimTenant

DL_TYPES = {
    "MailUniversalDistributionGroup": "Distribution",
    "MailUniversalSecurityGroup": "Security",
}
ADMIN_ROLE_IDS = {
    ROLE_TEMPLATE_IDS["Exchange Administrator"],
    ROLE_TEMPLATE_IDS["Global Administrator"],
}
DEFENDER_LICENSE = "ATP"  # SimTenant.licenses: Defender for Office 365


@dataclass
class ExchangeFaults:
    """Failure switches of one tenant's Exchange (tests and benchmarks flip them)."""

    # Exchange PowerShell throttling (facts file §1, unconfirmed: 25 cmdlets / 5 s).
    throttle_limit: int | None = None  # cmdlets per window; None = off
    throttle_window_s: float = 5.0
    throttle_retry_after_s: int = 30
    throttled_until: float = 0.0  # time.monotonic(): every cmdlet throttled until then
    # Per cmdlet: how many of its next runs are throttled (Exchange budgets cmdlets separately).
    throttle_cmdlets: dict[str, int] = field(default_factory=dict)
    latency_s: dict[str, float] = field(default_factory=dict)  # per cmdlet, real seconds
    rest_timeout_s: float = 900.0  # REST cmdlets give up after 15 minutes (facts file §1)


@dataclass
class DlRecord:
    """The Exchange-only half of a mail-enabled group (the rest is the Graph group)."""

    group_id: str
    guid: str
    name: str
    recipient_type: str  # MailUniversalDistributionGroup | MailUniversalSecurityGroup
    when_created: float
    when_changed: float
    props: dict[str, Any] = field(default_factory=dict)


def dl_defaults(recipient_type: str) -> dict[str, Any]:
    """Exchange-only properties of a new group as Get-DistributionGroup shows them."""
    props: dict[str, Any] = {
        "MemberJoinRestriction": "Closed",
        "MemberDepartRestriction": "Closed",
        "RequireSenderAuthenticationEnabled": True,
        "AcceptMessagesOnlyFrom": [],
        "AcceptMessagesOnlyFromDLMembers": [],
        "RejectMessagesFrom": [],
        "RejectMessagesFromDLMembers": [],
        "ModerationEnabled": False,
        "ModeratedBy": [],
        "BypassModerationFromSendersOrMembers": [],
        "BypassNestedModerationEnabled": False,
        "SendModerationNotifications": "Always",
        "HiddenFromAddressListsEnabled": False,
        "HiddenGroupMembershipEnabled": False,
        "GrantSendOnBehalfTo": [],
        "MailTip": None,
        "MailTipTranslations": [],
        "ReportToManagerEnabled": False,
        "ReportToOriginatorEnabled": True,
        "SendOofMessageToOriginatorEnabled": False,
        "BccBlocked": False,
        "MaxSendSize": "Unlimited",
        "MaxReceiveSize": "Unlimited",
    }
    for i in range(1, 16):
        props[f"CustomAttribute{i}"] = ""
    for i in range(1, 6):
        props[f"ExtensionCustomAttribute{i}"] = []
    if recipient_type == "MailUniversalSecurityGroup":
        props["MemberDepartRestriction"] = "Closed"
    return props


def default_scopes() -> list[dict[str, Any]]:
    """Custom recipient management scopes an administrator made (Get-ManagementScope)."""
    return [
        {"Name": name, "RecipientRestrictionFilter": flt, "ScopeRestrictionType": "RecipientScope",
         "Exclusive": exclusive}
        for name, flt, exclusive in (
            ("Sales recipients", "Department -eq 'Sales'", False),
            ("Finance recipients", "Department -eq 'Finance'", False),
            ("Executive recipients", "Title -like 'Chief*'", True),
        )
    ]  # fmt: skip


def is_dl_row(row: dict[str, Any]) -> str | None:
    """The Exchange recipient type of a Graph group row, if Exchange manages it as a DL."""
    if not row.get("mailEnabled") or row.get("groupTypes"):
        return None
    return (
        "MailUniversalSecurityGroup"
        if row.get("securityEnabled")
        else "MailUniversalDistributionGroup"
    )


class ExchangeOrg:
    def __init__(self, tenant: SimTenant, directory: Directory, ctx: OrgContext) -> None:
        self.tenant = tenant
        self.directory = directory
        self.ctx = ctx
        self.lock = directory.lock
        self.faults = ExchangeFaults()
        # Failure mode "missing role": False takes Exchange Administrator away from the app.
        self.app_exchange_admin = True
        self.settings: dict[str, list[dict[str, Any]]] = {
            name: factory(ctx) for name, factory in EXCHANGE_DEFAULTS.items()
        }
        self.settings.update(defender_defaults(ctx))
        self.role_groups: list[dict[str, Any]] = default_role_groups(ctx)
        # Get-ManagementRoleAssignment: what gives role groups, users, policies and apps
        # their roles (a role group's Roles are read from here).
        self.role_assignments: list[dict[str, Any]] = default_assignments(ctx)
        self.management_scopes: list[dict[str, Any]] = default_scopes()
        self.assignment_policies: list[str] = [DEFAULT_POLICY]
        self.service_principals: dict[str, dict[str, Any]] = {}  # by ObjectId
        self.dls: dict[str, DlRecord] = {}
        self._seen_seq = directory.seq
        self._calls: deque[float] = deque()
        self._index_seq = -1
        self._index: dict[str, tuple[str, str]] = {}
        self.stats: dict[str, int] = {"cmdlets": 0, "throttled": 0}

    # -- licensing and roles ---------------------------------------------------------------

    @property
    def defender_licensed(self) -> bool:
        return DEFENDER_LICENSE in self.tenant.licenses

    def set_defender_licensed(self, licensed: bool) -> None:
        if licensed:
            self.tenant.licenses.add(DEFENDER_LICENSE)
        else:
            self.tenant.licenses.discard(DEFENDER_LICENSE)

    def roles_of_app(self, app_id: str) -> set[str] | None:
        """None = every role (an Entra admin role); else the roles of its role groups."""
        app = self.tenant.apps.get(app_id)
        if app is not None and (
            self.app_exchange_admin or ADMIN_ROLE_IDS & set(app.directory_roles)
        ):
            return None
        members = {oid for oid, sp in self.service_principals.items() if sp["AppId"] == app_id}
        return self._roles_of(members)

    def roles_of_account(self, object_id: str, directory_roles: list[str]) -> set[str] | None:
        if ADMIN_ROLE_IDS & set(directory_roles):
            return None
        return self._roles_of({object_id})

    def _roles_of(self, members: set[str]) -> set[str]:
        return granted(self.role_assignments, self.role_groups, members)

    # -- throttling ------------------------------------------------------------------------

    def throttle_check(self) -> int | None:
        """Count one cmdlet; return the back-off in seconds if it is throttled."""
        now = time.monotonic()
        self.stats["cmdlets"] += 1
        faults = self.faults
        if now < faults.throttled_until:
            self.stats["throttled"] += 1
            return max(1, round(faults.throttled_until - now))
        if faults.throttle_limit is None:
            return None
        while self._calls and self._calls[0] <= now - faults.throttle_window_s:
            self._calls.popleft()
        if len(self._calls) >= faults.throttle_limit:
            self.stats["throttled"] += 1
            return faults.throttle_retry_after_s
        self._calls.append(now)
        return None

    # -- settings --------------------------------------------------------------------------

    def settings_of(self, get_cmdlet: str) -> list[dict[str, Any]]:
        return self.settings.setdefault(get_cmdlet, [])

    def snapshot_settings(self, get_cmdlet: str) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.settings_of(get_cmdlet))

    # -- the DL overlay, kept in step with the directory -----------------------------------

    def sync(self) -> None:
        """Apply directory changes since the last look: new/deleted mail-enabled groups, and
        Graph-side changes (members, names) bump WhenChanged as Exchange would."""
        with self.lock:
            upto = self.directory.seq
            if upto == self._seen_seq:
                return
            now = self.directory.now()
            for gid in self.directory.changes("group", self._seen_seq, upto):
                row = self.directory.row("group", gid)
                record = self.dls.get(gid)
                if row is None:
                    self.dls.pop(gid, None)
                    continue
                kind = is_dl_row(row)
                if kind is None:
                    self.dls.pop(gid, None)
                elif record is None:
                    self.add_record(gid, kind, row.get("displayName") or gid, now)
                else:
                    record.when_changed = now
            self._seen_seq = upto

    def mark_seen(self) -> None:
        """After an Exchange write changed the directory: nothing new to learn from it."""
        self._seen_seq = self.directory.seq

    def add_record(self, gid: str, kind: str, name: str, ts: float) -> DlRecord:
        record = DlRecord(
            gid, stable_guid(self.ctx.tenant_id, "dl", gid), self._unique_name(name), kind, ts, ts
        )
        record.props = dl_defaults(kind)
        self.dls[gid] = record
        return record

    def _unique_name(self, name: str) -> str:
        taken = {r.name.lower() for r in self.dls.values()}
        candidate, n = name, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{name}{n}"
        return candidate

    # -- recipients ------------------------------------------------------------------------

    def recipient_index(self) -> dict[str, tuple[str, str]]:
        """lower-case identity (name, alias, SMTP, UPN, ids) -> (kind, object id)."""
        if self._index_seq == self.directory.seq and self._index:
            return self._index
        index: dict[str, tuple[str, str]] = {}
        for _, row in self.directory.scan("user", 0):
            if not row.get("mail"):
                continue
            entry = ("user", row["id"])
            keys = [row["id"], row.get("mailNickname"), row.get("userPrincipalName"), row["mail"]]
            keys += [p.split(":", 1)[1] for p in row.get("proxyAddresses", ()) if ":" in p]
            for key in keys:
                if key:
                    index.setdefault(key.lower(), entry)
        for gid, record in self.dls.items():
            row = self.directory.row("group", gid) or {}
            entry = ("group", gid)
            keys = [gid, record.guid, record.name, row.get("mailNickname"), row.get("mail")]
            keys += [p.split(":", 1)[1] for p in row.get("proxyAddresses", ()) if ":" in p]
            for key in keys:
                if key:
                    index.setdefault(key.lower(), entry)
        self._index, self._index_seq = index, self.directory.seq
        return index

    def invalidate_index(self) -> None:
        self._index_seq = -1

    def resolve(self, identity: str) -> tuple[str, str] | None:
        return self.recipient_index().get(identity.strip().lower())

    def recipient_name(self, kind: str, oid: str) -> str:
        """The identity string Exchange shows for a recipient (ManagedBy, AcceptMessages…)."""
        if kind == "group":
            record = self.dls.get(oid)
            return record.name if record else oid
        row = self.directory.row("user", oid) or {}
        return str(row.get("mailNickname") or oid)

    def recipient_view(self, kind: str, oid: str) -> dict[str, Any]:
        """What Get-DistributionGroupMember returns of a member."""
        if kind == "group":
            record = self.dls[oid]
            row = self.directory.row("group", oid) or {}
            return {
                "ExternalDirectoryObjectId": oid,
                "PrimarySmtpAddress": row.get("mail"),
                "RecipientTypeDetails": record.recipient_type,
                "Name": record.name,
            }
        row = self.directory.row("user", oid) or {}
        guest = row.get("userType") == "Guest"
        return {
            "ExternalDirectoryObjectId": oid,
            "PrimarySmtpAddress": row.get("mail"),
            "RecipientTypeDetails": "GuestMailUser" if guest else "UserMailbox",
            "Name": row.get("mailNickname") or oid,
        }
