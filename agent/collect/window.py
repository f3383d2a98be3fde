"""Time-window collector: immutable events (audit and sign-in logs) archived incrementally.

Each run reads ``{time_property} ge (high-water mark - OVERLAP)`` — the whole retention window
on the first run (or a forced full one) — and stores every event once under its id: an event
read again in the overlap has the same content, hence the same blob, and adds no version. The
high-water mark (newest event time archived) is staged like a delta link and committed only
with the snapshot. The listing is never a full one: events that aged out of the service's
retention are not in the answer and must stay in the archive, so nothing is ever removed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from agent.collect.base import CollectContext
from agent.collect.prefetch import prefetched
from agent.db.catalog import KindResult
from agent.errors import GraphError
from agent.graph.client import GraphClient
from agent.kinds.spec import KindSpec

# Entra may surface an event a few minutes after it happened; re-read this much behind the mark.
OVERLAP = dt.timedelta(minutes=15)
PAGE = "1000"  # the maximum page size of the activity-log APIs
NOT_LICENSED = "authentication_requestfromnonpremiumtenantorb2ctenant"
AUDIT_PATH = "/auditLogs/directoryAudits"  # audit_feed.PATH (that module imports this one)


def parse_time(value: str) -> dt.datetime:
    """An ISO 8601 UTC time as Graph writes it (up to seven fractional digits)."""
    text = value.strip().replace("Z", "+00:00")
    head, plus, zone = text.partition("+")
    if "." in head:
        base, fraction = head.split(".", 1)
        head = f"{base}.{fraction[:6].ljust(6, '0')}"
    parsed = dt.datetime.fromisoformat(head + plus + (zone or "00:00"))
    return parsed.astimezone(dt.UTC)


def format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def collect_window(ctx: CollectContext) -> dict[str, KindResult]:
    # The reports service's own request rate is paced by the client (agent/graph/pacing.py).
    return {kind.name: _archive(ctx, ctx.graph, kind) for kind in ctx.kinds}


def _archive(ctx: CollectContext, graph: GraphClient, kind: KindSpec) -> KindResult:
    assert kind.path and kind.time_property, f"{kind.name} declares no path/time_property"
    stager = ctx.stager(kind.name)
    stored = ctx.delta_link(kind.name)  # the high-water mark; None: read the whole window
    mark = parse_time(stored) if stored else None
    start = mark - OVERLAP if mark is not None else None
    pages: Iterable[list[dict[str, Any]]]
    if ctx.audit is not None and kind.path == AUDIT_PATH:
        # The job's one read of the directory audit log: the relationship kinds of this
        # job take what they need from the same pages (agent/collect/audit_feed.py).
        pages = ctx.audit.archive_pages(start)
    else:
        params = {"$top": PAGE}
        if start is not None:
            params["$filter"] = f"{kind.time_property} ge {format_time(start)}"
        pages = (page.items for page in graph.pages(kind.path, params=params))
    newest = mark
    oldest: dt.datetime | None = None
    done = 0
    try:
        for items in prefetched(pages):
            for item in items:
                stager.put(item)
                when = item.get(kind.time_property)
                if isinstance(when, str):
                    at = parse_time(when)
                    newest = at if newest is None or at > newest else newest
                    oldest = at if oldest is None or at < oldest else oldest
            done += len(items)
            ctx.report(kind.name, done)
            stager.flush()
    except GraphError as exc:
        if exc.graph_code.lower() != NOT_LICENSED or done:
            raise
        ctx.log(
            "warning",
            f"Skipped {kind.name}: not licensed (the tenant has no Entra ID P1 licence, which "
            "Entra requires for this log; what was archived before is kept).",
            kind=kind.name,
        )
        return KindResult(
            kind=kind.name, status="skipped", mode=ctx.mode_for(kind), reason=("not licensed")
        )
    mark_text = format_time(newest) if newest is not None else None
    result = stager.finish(full_listing=False, delta_link=mark_text)
    result.window_start = format_time(oldest) if oldest is not None else ""
    return result
