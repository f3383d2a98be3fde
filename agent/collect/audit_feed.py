"""The directory audit log as a job reads it to find changed relationships.

One feed per job, shared by every relationship kind that runs incremental = audit: the log is
read once from the earliest high-water mark any of them asks for (minus an overlap for events
that surface late), 1,000 events a page, newest first, and only what those kinds need is kept
from each event — its time, id, activity and the object ids it names (targets, and
"<Type>.ObjectID" modified properties, where Entra names the parent of a link). The reports
service's own request rate is paced by the client (agent/graph/pacing.py).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterable
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
    events: list[AuditEvent] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # ids of every event read (mark check)
    newest: tuple[str, str] | None = None  # (activityDateTime, id) of the newest event

    def named(self, activities: Iterable[str], after: dt.datetime | None) -> set[str]:
        """Object ids named by events of ``activities`` at or after ``after``."""
        wanted = {activity_key(a) for a in activities}
        return {
            oid
            for e in self.events
            if e.activity in wanted and (after is None or e.at >= after)
            for oid in e.ids
        }


class AuditFeed:
    def __init__(self, graph: GraphClient, roles: set[str], relevant: Iterable[str]) -> None:
        self._graph = graph
        self.readable = READ in roles
        self._relevant = {activity_key(a) for a in relevant}
        self._lock = threading.Lock()
        self._window: AuditWindow | None = None
        self._newest: tuple[tuple[str, str] | None] | None = None

    def newest(self) -> tuple[str, str] | None:
        """(time, id) of the newest event now: where the next incremental run starts."""
        with self._lock:
            if self._newest is None:
                page = next(iter(self._read({"$top": "1"})), [])
                self._newest = (_stamp(page[0]) if page else None,)
            return self._newest[0]

    def since(self, mark: dt.datetime | None) -> AuditWindow:
        """Events from ``mark`` - overlap on (None: all Entra holds), read once per job."""
        start = mark - OVERLAP if mark is not None else None
        with self._lock:
            held = self._window
            if held is not None and (held.since is None or (start and held.since <= start)):
                return held
            window = AuditWindow(since=start)
            params = {"$top": PAGE}
            if start is not None:
                params["$filter"] = f"activityDateTime ge {format_time(start)}"
            for page in self._read(params):
                for item in page:
                    stamp = _stamp(item)
                    window.seen.add(stamp[1])
                    if window.newest is None or parse_time(stamp[0]) > parse_time(window.newest[0]):
                        window.newest = stamp
                    activity = activity_key(str(item.get("activityDisplayName") or ""))
                    if activity in self._relevant:
                        window.events.append(
                            AuditEvent(parse_time(stamp[0]), activity, tuple(_named_ids(item)))
                        )
            self._window = window
            return window

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
