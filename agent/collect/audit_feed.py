"""The directory audit log as a job reads it to find changed relationships.

One feed per job, shared by every relationship kind that runs incremental = audit: the log is
read once from the earliest high-water mark any of them asks for (minus an overlap for events
that surface late), 1,000 events a page, newest first, and only what those kinds need is kept
from each event — its time, id, activity and the object ids it names (targets, and
"<Type>.ObjectID" modified properties, where Entra names the parent of a link). The reports
service's own request rate is paced by the client (agent/graph/pacing.py).

When the directory audit archive (kind directoryAudit) is in the same job, that one read is
the archive's: the job starts the archive's collector first, it reads from the earliest start
either needs (``archive_pages``), stores its own part whole, and the relationship kinds wait
for the window it leaves here instead of reading the log a second time. Should the archive
read fail, the relationship kinds read the log themselves.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.collect.window import OVERLAP, PAGE, format_time, parse_time
from agent.errors import AgentError
from agent.graph.client import GraphClient
from agent.kinds.audit_trail import activity_key

PATH = "/auditLogs/directoryAudits"
READ = "AuditLog.Read.All"
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class AuditUnavailable(Exception):
    """The audit log cannot be read now (permission, licence, error): read in full."""


@dataclass(frozen=True)
class AuditEvent:
    at: dt.datetime
    activity: str  # activity_key() of activityDisplayName
    ids: tuple[str, ...]  # every object id the event names


@dataclass
class AuditWindow:
    since: dt.datetime | None  # None: everything Entra still holds
    # The last runs' marks (times of their newest events) this window can answer ``holds``
    # for: only the ids of events at those times are kept, not one per event read — a
    # tenant's audit log holds hundreds of thousands of events a week.
    marks: frozenset[dt.datetime] = frozenset()
    events: list[AuditEvent] = field(default_factory=list)
    at_marks: set[str] = field(default_factory=set)  # ids of the events at one of ``marks``
    newest: tuple[str, str] | None = None  # (activityDateTime, id) of the newest event

    def holds(self, at: dt.datetime, event_id: str) -> bool:
        """Whether the log still holds the event ``event_id`` of time ``at`` (one of
        ``marks``): once retention dropped it, events may be missing from the window."""
        assert at in self.marks, "the window was not read for this mark"
        return event_id in self.at_marks

    def named(self, activities: Iterable[str], after: dt.datetime | None) -> set[str]:
        """Object ids named by events of ``activities`` at or after ``after``."""
        wanted = {activity_key(a) for a in activities}
        return {
            oid
            for e in self.events
            if e.activity in wanted and (after is None or e.at >= after)
            for oid in e.ids
        }

    def related(
        self, activities: Iterable[str], after: dt.datetime | None, parents: set[str]
    ) -> dict[str, set[str]]:
        """For each of ``parents`` some event of ``activities`` names: the other object ids
        those events name (the related objects a link change was about)."""
        wanted = {activity_key(a) for a in activities}
        out: dict[str, set[str]] = {}
        for e in self.events:
            if e.activity in wanted and (after is None or e.at >= after):
                for parent in parents.intersection(e.ids):
                    out.setdefault(parent, set()).update(i for i in e.ids if i != parent)
        return out


class AuditFeed:
    def __init__(
        self,
        graph: GraphClient,
        roles: set[str],
        relevant: Iterable[str],
        starts: list[dt.datetime | None] | None = None,
    ) -> None:
        """``starts``: where the window of each relationship kind that will read one this
        job begins (None in it: the whole log); None when none will."""
        self._graph = graph
        self.readable = READ in roles
        self._relevant = {activity_key(a) for a in relevant}
        self._starts = starts
        # Their marks: a window keeps the ids of the events at these times only (``holds``).
        self._marks = frozenset(s + OVERLAP for s in starts or () if s is not None)
        self._lock = threading.Lock()
        self._window: AuditWindow | None = None
        self._newest: tuple[tuple[str, str] | None] | None = None
        self._archive_read = threading.Event()  # set: no archive read to wait for
        self._archive_read.set()

    def expect_archive(self) -> None:
        """The archive's collector will read the log for everyone (the job starts it first)."""
        self._archive_read.clear()

    def archive_done(self) -> None:
        """The archive's collector ended, however it ended: stop waiting for it."""
        self._archive_read.set()

    def archive_pages(self, own: dt.datetime | None) -> Iterator[list[dict[str, Any]]]:
        """The archive's read (events from ``own`` on, None: all), widened to the earliest
        window a relationship kind needs; that window is kept for them once read whole.
        Errors reach the archive as Graph raised them (it knows "not licensed")."""
        starts = [own, *(self._starts or ())]
        start = None if None in starts else min(s for s in starts if s is not None)
        window = AuditWindow(since=start, marks=self._marks)
        params = {"$top": PAGE}
        if start is not None:
            params["$filter"] = f"activityDateTime ge {format_time(start)}"
        for page in self._graph.pages(PATH, params=params):
            mine = []
            for item in page.items:
                at = self._note(window, item)
                if own is None or at >= own:
                    mine.append(item)
            yield mine
        with self._lock:
            self._window = window

    def newest(self) -> tuple[str, str] | None:
        """(time, id) of the newest event now: where the next incremental run starts."""
        with self._lock:
            if self._newest is None:
                page = next(iter(self._read({"$top": "1"})), [])
                self._newest = (_stamp(page[0]) if page else None,)
            return self._newest[0]

    def since(self, mark: dt.datetime | None) -> AuditWindow:
        """Events from ``mark`` - overlap on (None: all Entra holds), read once per job; the
        window answers ``holds`` for ``mark``."""
        start = mark - OVERLAP if mark is not None else None
        self._archive_read.wait()
        with self._lock:
            held = self._window
            covers = held is not None and (held.since is None or (start and held.since <= start))
            if held is not None and covers and (mark is None or mark in held.marks):
                return held
            marks = self._marks | ({mark} if mark is not None else set())
            window = AuditWindow(since=start, marks=marks)
            params = {"$top": PAGE}
            if start is not None:
                params["$filter"] = f"activityDateTime ge {format_time(start)}"
            for page in self._read(params):
                for item in page:
                    self._note(window, item)
            self._window = window
            return window

    def _note(self, window: AuditWindow, item: dict[str, Any]) -> dt.datetime:
        """Keep what the relationship kinds need of one event; its time."""
        stamp = _stamp(item)
        at = parse_time(stamp[0])
        if at in window.marks:
            window.at_marks.add(stamp[1])
        if window.newest is None or at > parse_time(window.newest[0]):
            window.newest = stamp
        activity = activity_key(str(item.get("activityDisplayName") or ""))
        if activity in self._relevant:
            window.events.append(AuditEvent(at, activity, tuple(_named_ids(item))))
        return at

    def _read(self, params: dict[str, str]) -> Iterable[list[dict[str, Any]]]:
        if not self.readable:
            raise AuditUnavailable(f"missing {READ}")
        try:
            for page in self._graph.pages(PATH, params=params):
                yield page.items
        except AgentError as exc:
            raise AuditUnavailable(f"the directory audit log could not be read: {exc}") from exc


def _stamp(item: dict[str, Any]) -> tuple[str, str]:
    return str(item.get("activityDateTime")), str(item.get("id"))


def _named_ids(item: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    for target in item.get("targetResources") or ():
        if isinstance(target, dict):
            if target.get("id"):
                ids.append(str(target["id"]).lower())
            for prop in target.get("modifiedProperties") or ():
                name = str(prop.get("displayName") or "") if isinstance(prop, dict) else ""
                if name.endswith(".ObjectID"):  # e.g. "Group.ObjectID" on the member target
                    ids += [m.lower() for m in _GUID.findall(str(prop.get("newValue") or ""))]
                    ids += [m.lower() for m in _GUID.findall(str(prop.get("oldValue") or ""))]
    return ids
