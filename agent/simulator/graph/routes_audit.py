"""GET /auditLogs/directoryAudits and /auditLogs/signIns (List directoryAudits / List signIns).

Newest first; ``$filter`` on the event time (``activityDateTime`` / ``createdDateTime``) with
ge/gt/le/lt joined by ``and``; ``$top`` up to 1,000 (the signIns default and maximum);
``@odata.nextLink`` with an opaque skip token. Only events inside the tenant's retention are
returned. Permissions: AuditLog.Read.All; sign-ins also need Directory.Read.All (the documented
known issue) and an Entra ID P1/P2 licence, else Graph's 403
Authentication_RequestFromNonPremiumTenantOrB2CTenant.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import jwt

from agent.simulator.graph.activity import (
    audit_entity,
    has_premium,
    micros,
    retention_s,
    signin_entity,
)
from agent.simulator.graph.errors import GraphError, bad_request
from agent.simulator.graph.permissions import DIRECTORY_READ
from agent.simulator.graph.pipeline import Context, GraphApi
from agent.simulator.graph.query import parse_top, seal, unseal
from agent.simulator.httpserver import Response

READ_AUDIT = frozenset({"AuditLog.Read.All"})
NOT_PREMIUM = (
    "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
    "Neither tenant is B2C or tenant doesn't have premium license",
)
_CLAUSE = re.compile(r"^\s*(\w+)\s+(ge|gt|le|lt)\s+'?([0-9T:.\-+Z]+)'?\s*$", re.IGNORECASE)
_OPTIONS = ("$top", "$filter")


def parse_window(prop: str, raw: str | None) -> tuple[int, int]:
    """(lowest, highest) event time in microseconds that ``$filter`` lets through."""
    lo, hi = 0, 2**62
    if raw is None or not raw.strip():
        return lo, hi
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.match(clause)
        if match is None or match.group(1) != prop:
            raise bad_request(f"Invalid filter clause: {clause.strip()}", "BadRequest")
        text = match.group(3)
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise bad_request(f"Invalid DateTimeOffset value: '{text}'.", "BadRequest") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        value = micros(when.timestamp())
        op = match.group(2).lower()
        if op in ("ge", "gt"):
            lo = max(lo, value + (1 if op == "gt" else 0))
        else:
            hi = min(hi, value - (1 if op == "lt" else 0))
    return lo, hi


def _roles(ctx: Context) -> set[str]:
    header = ctx.request.headers.get("authorization", "")
    claims = jwt.decode(header[7:].strip(), options={"verify_signature": False})
    return set(claims.get("roles") or ())


def _options(ctx: Context) -> tuple[dict[str, str], int | None]:
    token = next((v[-1] for k, v in ctx.request.query.items() if k.lower() == "$skiptoken"), None)
    if token is None:
        return {k: v[-1] for k, v in ctx.request.query.items() if k in _OPTIONS}, None
    state = unseal(ctx.directory.token_key, token)
    if state is None or state.get("path") != ctx.path:
        raise bad_request("Invalid $skiptoken.", "BadRequest")
    return dict(state["opts"]), int(state["cursor"])


def activity_list(kind: str) -> Callable[[Context], Response]:
    sign_ins = kind == "signIn"
    prop = "createdDateTime" if sign_ins else "activityDateTime"
    render = signin_entity if sign_ins else audit_entity
    context = "auditLogs/signIns" if sign_ins else "auditLogs/directoryAudits"

    def handler(ctx: Context) -> Response:
        d = ctx.directory
        if sign_ins:
            if not _roles(ctx) & DIRECTORY_READ:
                raise GraphError(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                )
            if not has_premium(d):
                raise GraphError(403, *NOT_PREMIUM)
        opts, cursor = _options(ctx)
        top = parse_top(opts.get("$top"), 1000 if sign_ins else 100, 1000)
        lo, hi = parse_window(prop, opts.get("$filter"))
        items: list[dict[str, Any]] = []
        next_cursor: int | None = None
        last: tuple[Any, ...] = ()
        with d.lock:
            now = d.now()
            log = d.activity
            if sign_ins:
                log.produce_signins(d, now)
            log.trim(now)
            lo = max(lo, micros(now - retention_s(d)))  # older events are gone
            records = log.signins if sign_ins else log.audits
            for record in log.newest_first(records, lo, hi, cursor, now):
                if len(items) == top:
                    next_cursor = int(last[0])
                    break
                items.append(render(d.tenant_id, record))
                last = record
        body: dict[str, Any] = {
            "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{context}",
            "value": items,
        }
        if next_cursor is not None:
            token = seal(d.token_key, {"path": ctx.path, "opts": opts, "cursor": next_cursor})
            body["@odata.nextLink"] = f"{ctx.request.base_url}/v1.0{ctx.path}?$skiptoken={token}"
        return Response.json(body)

    return handler


def register_audit_routes(api: GraphApi) -> None:
    api.add("GET", "/auditLogs/directoryAudits", activity_list("directoryAudit"), READ_AUDIT)
    api.add("GET", "/auditLogs/signIns", activity_list("signIn"), READ_AUDIT)
