"""Relationship kinds Graph has no delta for (owners, AU members, device users, SP policy
links, …), kept incremental through the directory audit log.

A full read of such a kind (graph_generic.collect_relation) first takes a position: the
parent collection's delta position (``{delta}?$select=id&$deltatoken=latest``: only new,
deleted and restored parents show there, not property changes) and the newest directory
audit event. An incremental run then re-reads only

- parents named by an audit event the kind declares (``KindSpec.changed_by``) since the mark
  and parents new since the position (the parent's delta with ``$select=id``),

and drops an object deleted since (``links_to``, audit_trail.TARGET_GONE) from the stored
relationships of the other parents that show it — Entra takes it out of them without an event
naming those parents, and nothing else about them changed. Parents the delta reports deleted
lose their object, every other object is carried forward unchanged (a staged listing that is
not full). It reads the kind in full instead — with a
note in the job log saying why — when there is no position, the audit log cannot be read
(no AuditLog.Read.All: not a failure), the last run's newest event is no longer in the log
(retention), an object a relationship can show was restored (its links come back with no
event naming the parents), the parent delta position expired, or the kind's last full read
is ``full_every_days`` old.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from agent.collect.audit_feed import AuditUnavailable
from agent.collect.base import CollectContext, Stager
from agent.collect.window import OVERLAP, parse_time
from agent.db.catalog import Catalog
from agent.kinds import BY_NAME
from agent.kinds.audit_trail import TARGET_BACK, TARGET_GONE
from agent.kinds.spec import Incremental, KindSpec

# Entra keeps directory audit events 7 days without an Entra ID P1 licence (30 with one).
RETENTION = dt.timedelta(days=7)
VERSION = 1
# A parent whose events name more related objects than this is re-read whole: a $batch slot
# per named object would cost more than the relationship's pages.
CHECK_LIMIT = 40
# (parent -> related object ids its events name, deleted object ids) -> parents not checked
Check = Callable[[dict[str, set[str]], set[str]], set[str]]


@dataclass
class Position:
    parents: str  # the parent collection's deltaLink ($select=id)
    mark: str | None  # activityDateTime of the newest audit event read
    mark_id: str | None  # its id: still in the log = nothing aged out since
    read_at: str  # agent clock, when this position was taken
    full_at: str  # agent clock, the kind's last full read

    def text(self) -> str:
        return json.dumps({"v": VERSION, **self.__dict__}, sort_keys=True)

    @classmethod
    def parse(cls, text: str | None) -> Position | None:
        try:
            data = json.loads(text) if text else None
            if not isinstance(data, dict) or data.get("v") != VERSION:
                return None
            return cls(
                str(data["parents"]),
                data.get("mark"),
                data.get("mark_id"),
                str(data["read_at"]),
                str(data["full_at"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


class ReadInFull(Exception):
    """Why this run reads the kind in full; ``warn``: something the operator can fix."""

    def __init__(self, why: str, warn: bool = False) -> None:
        super().__init__(why)
        self.why, self.warn = why, warn


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def start_position(ctx: CollectContext, kind: KindSpec) -> Position | None:
    """Before a full read: where the next incremental run starts (None: it cannot)."""
    parent = BY_NAME[kind.parent or ""]
    if not parent.delta_path or ctx.audit is None:
        return None
    shared = ctx.parent_rounds.get(parent.name) if ctx.parent_rounds else None
    if shared is not None:  # the parent kind's own position, taken before this listing
        link: Any = shared.end
    else:
        answer = ctx.graph.get_json(
            parent.delta_path, params={"$select": "id", "$deltatoken": "latest"}
        )
        link = answer.get("@odata.deltaLink")
    if not link:
        return None
    try:
        newest = ctx.audit.newest()
    except AuditUnavailable:
        return None  # no mark: the next run reads in full again (and says why)
    now = _now().isoformat()
    return Position(
        str(link), newest[0] if newest else None, newest[1] if newest else None, now, now
    )


def window_starts(
    catalog: Catalog, tenant: str, kinds: Iterable[KindSpec], force_full: bool
) -> list[dt.datetime | None] | None:
    """Where the audit-log window of each relationship kind that may run incremental this
    job begins (None: the whole log); None when none will (a full run)."""
    if force_full:
        return None
    starts: list[dt.datetime | None] = []
    for kind in kinds:
        if kind.incremental == Incremental.AUDIT:
            position = Position.parse(catalog.delta_link(tenant, kind.name))
            if position is not None:
                starts.append(parse_time(position.mark) - OVERLAP if position.mark else None)
    return starts or None


def why_full(ctx: CollectContext, kind: KindSpec) -> tuple[Position | None, ReadInFull | None]:
    """The stored position, or why this run reads the kind in full."""
    if ctx.force_full:
        return None, ReadInFull("full run")
    position = Position.parse(ctx.delta_link(kind.name))
    if ctx.audit is None or not ctx.audit.readable:
        return None, ReadInFull(
            "no AuditLog.Read.All: the directory audit log, which says which parents "
            "changed, cannot be read",
            warn=True,
        )
    if position is None:
        return None, ReadInFull("no earlier position")
    age = _now() - dt.datetime.fromisoformat(position.full_at)
    if age >= dt.timedelta(days=ctx.full_every_days):
        return None, ReadInFull(f"last full read {age.days} days ago (full_every_days)")
    if _now() - dt.datetime.fromisoformat(position.read_at) >= RETENTION:
        return None, ReadInFull("the last run is older than the audit log's retention")
    return position, None


def read_changed(
    ctx: CollectContext,
    kind: KindSpec,
    position: Position,
    read: Callable[[Iterable[str]], set[str]],
    stager: Stager,
    check: Check | None = None,
) -> str:
    """Re-read only the parents that may have changed; the new position. ``read`` stages the
    relationship of each parent id it is given and returns those that were not found;
    ``check`` (kinds with ``relation_get_one``) stages a parent's stored relationship updated
    by checking only the objects its events name, and returns the parents it could not."""
    assert ctx.audit is not None and kind.parent
    mark = parse_time(position.mark) if position.mark else None
    window = ctx.audit.since(mark)
    if mark is not None and position.mark_id and not window.holds(mark, position.mark_id):
        raise ReadInFull("the audit log no longer holds the last run's events (retention)")
    start = mark - OVERLAP if mark else None  # the window may start earlier for another kind
    back = [a for k in kind.links_to for a in TARGET_BACK.get(k, ())]
    if window.named(back, start):
        raise ReadInFull("an object this relationship can show was restored")
    added, removed, parents_link = _parent_changes(ctx, kind, position)
    named = window.named(kind.changed_by, start)
    # A parent restored comes back with its links: re-read it (also when it was deleted and
    # restored between two runs, which its delta may show as a mere change).
    named |= window.named(TARGET_BACK.get(kind.parent or "", ()), start)
    gone = window.named([a for k in kind.links_to for a in TARGET_GONE.get(k, ())], start)
    known = set(ctx.catalog.current_blobs(ctx.tenant, kind.name, sorted(named | removed)))
    wanted = sorted(((named & known) | added) - removed)
    checked: set[str] = set()
    if check is not None:
        # Only the objects an event names can have come or gone: check those (a request
        # each, in $batch) where that is fewer than re-reading the whole relationship.
        related = window.related(kind.changed_by, start, set(wanted) - added)
        few = {p: ids for p, ids in related.items() if len(ids) <= CHECK_LIMIT}
        checked = set(few) - check(few, gone)
        wanted = [p for p in wanted if p not in checked]
    missing = read(wanted)
    for parent_id in sorted((removed | missing) & (known | added)):
        stager.remove(parent_id)
    # A deleted object leaves every relationship that showed it, and nothing else changes
    # there: drop it from the stored objects of the parents not re-read anyway.
    dropped = 0
    if gone:
        skip = set(wanted) | removed | checked
        for _, obj in _showing(ctx, kind, gone, skip):
            stager.put(without(kind, obj, gone))
            dropped += 1
    ctx.log(
        "info",
        f"{kind.name}: re-read {len(wanted)} parents ({len(named & known)} named by the audit "
        f"log, {len(added)} new), checked the named objects of {len(checked)}; {dropped} lost "
        "a deleted object; the others carried forward.",
        kind=kind.name,
    )
    newest = window.newest or ((position.mark, position.mark_id) if position.mark else None)
    return Position(
        parents_link,
        newest[0] if newest else None,
        newest[1] if newest else None,
        _now().isoformat(),
        position.full_at,
    ).text()


def _parent_changes(
    ctx: CollectContext, kind: KindSpec, position: Position
) -> tuple[set[str], set[str], str]:
    """Parents new (or restored) and deleted since the position, and the next position.
    From the parent kind's own round of this job when it started where this kind stopped
    (a parent it showed that has no stored relationship is new); else from a round of this
    kind's own, whose position then becomes the parent kind's for the next run."""
    parent = BY_NAME[kind.parent or ""]
    assert parent.delta_path
    shared = ctx.parent_rounds.get(parent.name) if ctx.parent_rounds else None
    if shared is not None and not shared.full and shared.start == position.parents:
        shown = sorted(shared.seen - shared.removed)
        stored = set(ctx.catalog.current_blobs(ctx.tenant, kind.name, shown))
        return set(shown) - stored, set(shared.removed), shared.end
    round_ = ctx.graph.delta(parent.delta_path, delta_link=position.parents)
    added: set[str] = set()
    removed: set[str] = set()
    for page in round_.pages():
        if round_.full:  # the position expired: Graph restarts a whole round
            raise ReadInFull("the parent collection's delta position expired")
        for item in page.items:
            (removed if "@removed" in item else added).add(str(item["id"]).lower())
        ctx.checkpoint()
    if not round_.delta_link:
        raise ReadInFull("the parent collection's delta round ended without a position")
    # This round began after the parent kind's ended: from that position on, nothing is missed.
    link = shared.end if shared is not None and shared.end else round_.delta_link
    return added - removed, removed, link


# Object ids in a stored relationship's text (Graph's ids are GUIDs).
_GUID_TEXT = re.compile(rb"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _showing(
    ctx: CollectContext, kind: KindSpec, gone: set[str], skip: set[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Stored relationships (parent id, object) that show one of ``gone``. Every stored
    relationship of the kind is looked at (a device's owners, an AU of thousands): its text is
    searched for the ids first, and only one that names one of them is decoded."""
    latest = ctx.catalog.latest_snapshot(ctx.tenant)
    if latest is None:
        return
    wanted = {oid.encode() for oid in gone}
    for version in ctx.catalog.state(ctx.tenant, latest.seq, kind.name):
        if version.object_id in skip:
            continue
        text = ctx.repo.get_canonical(version.blob_id)
        if any(m.lower() in wanted for m in _GUID_TEXT.findall(text)):
            obj = ctx.repo.get(version.blob_id)  # decoded as every reader does (a few)
            if gone.intersection(referenced(kind, obj)):
                yield version.object_id, obj
        ctx.heartbeat()


def without(kind: KindSpec, obj: dict[str, Any], gone: set[str]) -> dict[str, Any]:
    """The relationship without the items that show a deleted object."""
    relation = kind.relation or ""
    kept = [i for i in obj.get(relation, ()) if not gone.intersection(_item_ids(kind, i))]
    return {**obj, relation: kept}


def referenced(kind: KindSpec, obj: dict[str, Any]) -> set[str]:
    """Ids of the objects one stored relationship shows."""
    return {oid for item in obj.get(kind.relation or "", ()) for oid in _item_ids(kind, item)}


def _item_ids(kind: KindSpec, item: Any) -> set[str]:
    """A link's id, or the principal of a whole related entity (an app role assignment)."""
    if not isinstance(item, dict):
        return set()
    if kind.relation_full_items:
        return {str(item["principalId"]).lower()} if item.get("principalId") else set()
    return {str(item.get("id")).lower()}


__all__ = [
    "Check",
    "Position",
    "ReadInFull",
    "read_changed",
    "start_position",
    "why_full",
    "window_starts",
]
