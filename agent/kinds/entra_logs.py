"""Entra activity logs: directory audit events and sign-ins, archived by time window.

Entra keeps them 30 days (7 without an Entra ID P1/P2 licence); the backup keeps every event
it ever read. Each event is immutable and stored once; a run reads from the last archived
high-water mark (minus a small overlap for late-arriving events) up to now.
"""

from __future__ import annotations

from agent.kinds.spec import DIRECTORY_READ, Area, Incremental, KindSpec

AUDIT_READ = ("AuditLog.Read.All",)

DIRECTORY_AUDIT = KindSpec(
    name="directoryAudit",
    title="Directory audit log",
    area=Area.ENTRA,
    collector="graph.window",
    describes="Directory audit events: who changed which user, group, app, device or role, "
    "when, and which properties.",
    source="GET /auditLogs/directoryAudits?$filter=activityDateTime ge {high-water mark}",
    incremental=Incremental.WINDOW,
    read_permissions=AUDIT_READ,
    entity_type="directoryAudit",
    path="/auditLogs/directoryAudits",
    time_property="activityDateTime",
    label="activityDisplayName",
    notes="An archive: events Entra has dropped after its retention (30 days, 7 without "
    "Entra ID P1) stay in every later snapshot. Nothing to restore.",
)

SIGN_IN = KindSpec(
    name="signIn",
    title="Sign-in log",
    area=Area.ENTRA,
    collector="graph.window",
    describes="Interactive user sign-ins: user, app, IP address, location, device, result.",
    source="GET /auditLogs/signIns?$filter=createdDateTime ge {high-water mark}",
    incremental=Incremental.WINDOW,
    read_permissions=AUDIT_READ,
    read_also=DIRECTORY_READ,
    entity_type="signIn",
    path="/auditLogs/signIns",
    time_property="createdDateTime",
    label="userPrincipalName",
    notes="Needs an Entra ID P1 licence: without one the kind is skipped ('not licensed'). "
    "Graph requires Directory.Read.All besides AuditLog.Read.All (documented known issue). "
    "An archive, like directoryAudit.",
)

LOG_KINDS: tuple[KindSpec, ...] = (DIRECTORY_AUDIT, SIGN_IN)
