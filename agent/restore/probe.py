"""Whether objects exist in the tenant now, asked of Graph for kinds the plan did not read.

A narrow restore (``--kind groupMember``) reads only its own kinds live, so the live read
cannot say whether a member it would add, or the group it would add it to, still exists: the
write would be tried and fail with 404. The plan asks Graph for just those objects instead —
a GET by id with ``$select=id`` (the kind's own read permission), 20 to a ``$batch`` when the
plan knows them in advance (``check``), one GET otherwise. 404 means gone; any other answer
(403: the app may not read that kind) counts as present, so the write is tried and its own
error reported, as without the probe. Each answer is kept for the rest of the plan.

``build_plan`` makes a probe current for its run (``start_probe``); planning code asks
``check`` (many at once) and ``exists``, which says "present" when no probe is current.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from urllib.parse import quote

from agent.errors import AgentError
from agent.graph import BatchRequest, GraphClient
from agent.kinds import BY_NAME


@dataclass
class ExistenceProbe:
    graph: GraphClient
    known: dict[tuple[str, str], bool] = field(default_factory=dict)  # (kind, id) → exists
    asked: int = 0  # objects asked of Graph (a plan's cost, for tests and the log)

    def check(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Ask for every (kind, id) not known yet, 20 to a $batch."""
        todo = sorted({w for w in wanted if w not in self.known and _path(*w)})
        requests = [BatchRequest(str(i), "GET", _path(*w)) for i, w in enumerate(todo)]
        for request, result in zip(requests, self.graph.batch(requests), strict=True):
            self.known[todo[int(request.id)]] = result.status != 404
        self.asked += len(todo)

    def exists(self, kind: str, oid: str) -> bool:
        if (kind, oid) not in self.known:
            path = _path(kind, oid)
            if not path:
                return True
            try:
                self.graph.get_json(path)
                self.known[(kind, oid)] = True
            except AgentError as exc:  # 403 and others: present (the write tells)
                self.known[(kind, oid)] = getattr(exc, "status", None) != 404
            self.asked += 1
        return self.known[(kind, oid)]


def _path(kind: str, oid: str) -> str:
    """The object's own URL ("" when the kind has no collection to GET it from)."""
    spec = BY_NAME.get(kind)
    if spec is None or spec.parent or spec.singleton or not spec.path or not oid:
        return ""
    return f"{spec.path}/{quote(oid, safe='')}?$select=id"


_CURRENT: ContextVar[ExistenceProbe | None] = ContextVar("existence_probe", default=None)


def start_probe(graph: GraphClient | None) -> ExistenceProbe | None:
    """Make a probe over ``graph`` current for the plan being built (none without a client)."""
    probe = ExistenceProbe(graph) if graph is not None else None
    _CURRENT.set(probe)
    return probe


def check(wanted: Iterable[tuple[str, str]]) -> None:
    """Ask for these objects together (the current probe's $batch); nothing without one."""
    probe = _CURRENT.get()
    if probe is not None:
        probe.check(wanted)


def exists(kind: str, oid: str) -> bool:
    """Whether the ``kind`` object ``oid`` exists now (True when no probe is current)."""
    probe = _CURRENT.get()
    return probe is None or probe.exists(kind, oid)
