"""A tenant's activity logs: directory audit events and sign-ins, as Entra keeps them.

Directory audits come from the directory's own change log: every logged change is recorded
here at the moment it happens (with the target's name then), so an edit of a user yields an
audit event naming that user, and an event never changes once written. Sign-ins are
generated: a steady trickle of interactive sign-ins of random users to first-party apps,
produced lazily up to the simulated clock, each visible only after a short ingestion delay
(as in Entra, events can arrive a minute or two late).

Retention (Entra's documented data retention): 30 days with an Entra ID P1/P2 licence, 7 days
without; older events vanish. Memory: compact tuples, trimmed to the retention window.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.simulator.graph.directory import Directory

DAY_S = 24 * 3600
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
PREMIUM_PLANS = frozenset({"AAD_PREMIUM", "AAD_PREMIUM_P2"})
MAX_INGEST_DELAY_S = 120.0  # sign-ins may surface this long after they happened
_STEP_S = 60.0  # sign-ins are produced a minute at a time

# (appDisplayName, appId) of first-party apps users sign in to.
APPS = (
    ("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000"),
    ("Microsoft Teams", "1fec8e78-bce4-4aaf-ab1b-5451cc387264"),
    ("Azure Portal", "c44b4083-3bb0-49c1-b47d-974e53cbdf3c"),
    ("Office 365 SharePoint Online", "00000003-0000-0ff1-ce00-000000000000"),
    ("Graph Explorer", "de8bc8b5-d9f9-48b1-a8ad-b748da725064"),
)
PLACES = (("Redmond", "Washington", "US", 47.68, -122.12), ("Dublin", "Dublin", "IE", 53.35, -6.26))
# Audit categories of Core Directory activities (Microsoft Entra audit log activity reference).
CATEGORY = {
    "user": "UserManagement",
    "group": "GroupManagement",
    "application": "ApplicationManagement",
    "servicePrincipal": "ApplicationManagement",
    "oauth2PermissionGrant": "ApplicationManagement",
    "device": "Device",
    "directoryRole": "RoleManagement",
    "administrativeUnit": "AdministrativeUnit",
    "policy": "Policy",
}
TARGET_TYPE = {
    "user": "User",
    "group": "Group",
    "servicePrincipal": "ServicePrincipal",
    "application": "Application",
    "device": "Device",
    "directoryRole": "Role",
    "policy": "Policy",
}
# How the activity names each kind ("Add service principal", "Delete administrative unit").
NOUN = {
    "servicePrincipal": "service principal",
    "administrativeUnit": "administrative unit",
    "oauth2PermissionGrant": "delegated permission grant",
    "directoryRole": "role",
}
# Activities whose wording differs from "{verb} {noun}" (same reference).
SPECIAL = {
    ("servicePrincipal", "soft"): "Remove service principal",
    ("servicePrincipal", "hard"): "Hard delete service principal",
    ("oauth2PermissionGrant", "soft"): "Remove delegated permission grant",
    ("oauth2PermissionGrant", "hard"): "Remove delegated permission grant",
    ("device", "hard"): "Delete device",  # devices have no recycle bin
    ("directoryRole", "upsert+"): "Add role from template",
}


def has_premium(d: Directory) -> bool:
    """An Entra ID P1 or P2 service plan in the tenant's subscriptions."""
    return any(
        plan.get("servicePlanName") in PREMIUM_PLANS
        for sku in d.objects.skus
        if sku.get("capabilityStatus") == "Enabled"
        for plan in sku.get("servicePlans", ())
    )


def retention_s(d: Directory) -> float:
    return (30 if has_premium(d) else 7) * DAY_S


def drop_premium(d: Directory) -> None:
    """Make the tenant a free one: no P1/P2 subscription, no such licence on any user."""
    premium = {
        s["skuId"]
        for s in d.objects.skus
        if any(p.get("servicePlanName") in PREMIUM_PLANS for p in s.get("servicePlans", ()))
    }
    d.objects.skus[:] = [s for s in d.objects.skus if s["skuId"] not in premium]
    for kind in ("user", "group"):
        for _, row in d.scan(kind, 0):
            if "assignedLicenses" in row:
                row["assignedLicenses"] = [
                    lic for lic in row["assignedLicenses"] if lic["skuId"] not in premium
                ]
            if "licenseAssignmentStates" in row:
                row["licenseAssignmentStates"] = [
                    s for s in row["licenseAssignmentStates"] if s["skuId"] not in premium
                ]


def micros(ts: float) -> int:
    """Event times compare in whole microseconds, exactly as they are rendered."""
    return round(ts * 1_000_000)


def iso7(ts: float) -> str:
    """Graph's activity-log timestamp: seven fractional digits, UTC."""
    when = _EPOCH + dt.timedelta(microseconds=micros(ts))
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


class ActivityLog:
    """Audit records and sign-ins of one tenant; the owning Directory's lock guards it."""

    def __init__(self) -> None:
        # (seq, time, kind, object id, op, detail, name, upn) — from Directory._append.
        self.audits: list[tuple[Any, ...]] = []
        # (serial, time, visible_at, id, user id, upn, name, app, ip, error code, place)
        self.signins: list[tuple[Any, ...]] = []
        self.signins_until: float | None = None
        self.serial = 0
        self.audit_serial = 0  # audit records' own order (links are not in the change log)

    # -- recording ------------------------------------------------------------------------

    def record_change(self, d: Directory, entry: tuple[Any, ...], op: str | None = None) -> None:
        """One audit event for a logged change; ``op`` overrides how it reads ("restore")."""
        _, ts, kind, oid, logged, detail = entry
        self._record(d, ts, kind, oid, op or logged, detail)

    def record_link(
        self,
        d: Directory,
        kind: str,
        oid: str,
        activity: str,
        related: list[tuple[str, str]],
        category: str | None = None,
        properties: tuple[str, ...] = (),
        name: str | None = None,
    ) -> None:
        """A change Entra audits but delta does not track (owners, AU members, device users,
        policy links, app role assignments, credentials, policies): the parent object first
        among the targets, then the related objects as (id, kind)."""
        detail = [activity, category or CATEGORY.get(kind, "Other"), related, list(properties)]
        self._record(d, d.now(), kind, oid, "link", detail, name)

    def _record(
        self,
        d: Directory,
        ts: float,
        kind: str,
        oid: str,
        op: str,
        detail: Any,
        name: str | None = None,
    ) -> None:
        row = d.get(oid) if name is None else None
        if row is None and oid in d.deleted:
            row = d.deleted[oid].row
        name = name or (row or {}).get("displayName")
        upn = (row or {}).get("userPrincipalName")
        self.audit_serial += 1
        self.audits.append((self.audit_serial, ts, kind, oid, op, detail, name, upn))

    def produce_signins(self, d: Directory, now: float) -> None:
        """Sign-ins up to ``now``; the first call fills the whole retention window."""
        start = self.signins_until
        if start is None:
            start = now - 30 * DAY_S
        if now - start < _STEP_S:
            return
        users = d.count("user")
        per_hour = max(1, users // 400)
        rng = random.Random(f"{d.tenant_id}/signins/{int(start)}")
        count = int(per_hour * (now - start) / 3600 + rng.random())
        times = sorted(rng.uniform(start, now) for _ in range(count))
        for ts in times:
            row = (
                next((r for _, r in d.scan("user", rng.randrange(users))), None) if users else None
            )
            if row is None:
                continue
            self.serial += 1
            place = rng.randrange(len(PLACES))
            self.signins.append(
                (
                    self.serial,
                    ts,
                    ts + rng.uniform(0, MAX_INGEST_DELAY_S),
                    str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    row["id"],
                    row.get("userPrincipalName"),
                    row.get("displayName"),
                    rng.randrange(len(APPS)),
                    f"203.0.113.{rng.randrange(1, 255)}",
                    0 if rng.random() < 0.9 else 50126,
                    place,
                )
            )
        self.signins_until = now

    def trim(self, now: float) -> None:
        """Events older than the longest retention are gone for good."""
        cutoff = now - 30 * DAY_S
        for records in (self.audits, self.signins):
            drop = bisect_left(records, cutoff, key=lambda r: r[1])
            del records[:drop]

    # -- reading --------------------------------------------------------------------------

    def newest_first(
        self,
        records: list[tuple[Any, ...]],
        lo: int,
        hi: int,
        below: int | None,
        now: float,
    ) -> Any:
        """Records with lo <= time <= hi (microseconds; visible by ``now``), newest first,
        starting below the ``below`` cursor (a seq or serial, which only grows)."""
        end = bisect_right(records, hi, key=lambda r: micros(r[1]))
        if below is not None:
            end = min(end, bisect_left(records, below, key=lambda r: r[0]))
        for i in range(end - 1, -1, -1):
            record = records[i]
            if micros(record[1]) < lo:
                return
            if len(record) > 10 and record[2] > now:  # a sign-in not ingested yet
                continue
            yield record

    # -- persistence ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "audits": self.audits,
            "signins": self.signins,
            "signins_until": self.signins_until,
            "serial": self.serial,
            "audit_serial": self.audit_serial,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ActivityLog:
        log = cls()
        if data:
            log.audits = [tuple(r) for r in data["audits"]]
            log.signins = [tuple(r) for r in data["signins"]]
            log.signins_until = data["signins_until"]
            log.serial = int(data["serial"])
            # States saved before links were audited numbered audits by change sequence.
            last = max((int(r[0]) for r in log.audits), default=0)
            log.audit_serial = int(data.get("audit_serial", last))
        return log


# -- rendering as Graph entities (CSDL: microsoft.graph.directoryAudit / signIn) ------------

_ACTIVITY = {"upsert": "Update", "soft": "Delete", "hard": "Hard Delete", "restore": "Restore"}


def _target(oid: str, kind: str, name: Any = None, upn: Any = None) -> dict[str, Any]:
    return {
        "id": oid,
        "displayName": name,
        "type": TARGET_TYPE.get(kind, "Other"),
        "userPrincipalName": upn,
        "groupType": None,
        "modifiedProperties": [],
    }


def _activity(kind: str, op: str, detail: Any) -> tuple[str, str]:
    """(activityDisplayName, operationType) of a logged change."""
    noun = NOUN.get(kind, kind)
    created = op == "upsert" and "createdDateTime" in detail
    special = SPECIAL.get((kind, "upsert+" if created else op))
    if op == "restore":
        return f"Restore {noun}", "Update"
    if created:
        return special or f"Add {noun}", "Add"
    if op == "upsert":
        return special or f"Update {noun}", "Update"
    if op == "hard" and kind in ("servicePrincipal", "device", "oauth2PermissionGrant"):
        return special or f"Hard delete {noun}", "Delete"
    return special or f"{_ACTIVITY[op]} {noun}", "Delete"


def audit_entity(tenant_id: str, record: tuple[Any, ...]) -> dict[str, Any]:
    seq, ts, kind, oid, op, detail, name, upn = record
    target = _target(oid, kind, name, upn)
    targets = [target]
    category = CATEGORY.get(kind, "Other")
    if op in ("member+", "member-"):
        verb = "Add member to" if op == "member+" else "Remove member from"
        activity, operation = f"{verb} group", "Assign" if op == "member+" else "Unassign"
        targets.append(_target(detail, "other"))
    elif op == "link":
        activity, category, related, properties = detail
        operation = "Unassign" if activity.startswith("Remove") else "Assign"
        targets += [_target(rid, rkind) for rid, rkind in related]
        target["modifiedProperties"] = [
            {"displayName": p, "oldValue": None, "newValue": None} for p in properties
        ]
    else:
        activity, operation = _activity(kind, op, detail)
        if op == "upsert" and operation == "Update":
            target["modifiedProperties"] = [
                {"displayName": p, "oldValue": None, "newValue": None} for p in detail
            ]
    correlation = uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/audit/{seq}")
    return {
        "id": f"Directory_{correlation}_{seq}",
        "category": category,
        "correlationId": str(correlation),
        "result": "success",
        "resultReason": "",
        "activityDisplayName": activity,
        "activityDateTime": iso7(ts),
        "loggedByService": "Core Directory",
        "operationType": operation,
        "initiatedBy": {
            "app": {
                "appId": None,
                "displayName": "Microsoft Graph",
                "servicePrincipalId": None,
                "servicePrincipalName": None,
            },
            "user": None,
        },
        "targetResources": targets,
        "additionalDetails": [],
    }


def signin_entity(tenant_id: str, record: tuple[Any, ...]) -> dict[str, Any]:
    _, ts, _, sid, uid, upn, name, app, ip, code, place = record
    app_name, app_id = APPS[app]
    city, state, country, lat, lon = PLACES[place]
    return {
        "id": sid,
        "createdDateTime": iso7(ts),
        "userDisplayName": name,
        "userPrincipalName": upn,
        "userId": uid,
        "appId": app_id,
        "appDisplayName": app_name,
        "ipAddress": ip,
        "clientAppUsed": "Browser",
        "correlationId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/signin/{sid}")),
        "conditionalAccessStatus": "notApplied",
        "isInteractive": True,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes": [],
        "riskEventTypes_v2": [],
        "resourceDisplayName": "Microsoft Graph",
        "resourceId": "00000003-0000-0000-c000-000000000000",
        "status": {
            "errorCode": code,
            "failureReason": "Invalid username or password." if code else None,
            "additionalDetails": None,
        },
        "deviceDetail": {
            "deviceId": "",
            "displayName": None,
            "operatingSystem": "Windows 10",
            "browser": "Edge 120.0.0",
            "isCompliant": None,
            "isManaged": None,
            "trustType": None,
        },
        "location": {
            "city": city,
            "state": state,
            "countryOrRegion": country,
            "geoCoordinates": {"altitude": None, "latitude": lat, "longitude": lon},
        },
        "appliedConditionalAccessPolicies": [],
    }
