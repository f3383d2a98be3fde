"""What a parent kind's own delta read saw in this job, for the relationship kinds of its
objects (agent/collect/audit_relation.py).

A relationship kind kept through the audit log needs the parents that are new, restored or
deleted since its last run. The parent kind's collector (applications, service principals,
groups, devices, administrative units, directory roles) reads that collection's delta anyway:
it publishes where its round started, where it ended, and the ids it showed, and the
relationship kinds of the job take that instead of running a delta round of their own each.
Their stored position is then the parent kind's own, so the next run's parent round starts
where theirs does. The job starts parent collectors before relationship collectors (the pool
takes tasks in order), so waiting here never waits behind a task that has not started; a
parent collector that ends without publishing (failed, skipped) leaves ``get`` answering None
and the relationship kind runs its own round as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.kinds.spec import Incremental, KindSpec


@dataclass
class ParentRound:
    start: str  # the position the parent's read started from
    end: str  # the position after it: changes from here on come with the next run
    full: bool  # a full read (or resync): ``seen`` is not collected
    seen: set[str] = field(default_factory=set)  # parents shown (new, restored, changed)
    removed: set[str] = field(default_factory=set)  # parents deleted

    def note(self, item: dict[str, Any]) -> None:
        """One delta item of the round."""
        (self.removed if "@removed" in item else self.seen).add(str(item["id"]).lower())


class ParentRounds:
    def __init__(self, parents: Iterable[str]) -> None:
        self._published = {name: threading.Event() for name in parents}
        self._rounds: dict[str, ParentRound] = {}

    @classmethod
    def for_job(cls, kinds: Iterable[KindSpec]) -> ParentRounds | None:
        """For the parent kinds of the job's audit relationship kinds that are in the job."""
        kinds = list(kinds)
        names = {k.name for k in kinds}
        parents = {
            k.parent
            for k in kinds
            if k.incremental == Incremental.AUDIT and k.parent and k.parent in names
        }
        return cls(parents) if parents else None

    def wanted(self, kind: str) -> bool:
        return kind in self._published

    def parents(self) -> set[str]:
        return set(self._published)

    def publish(self, kind: str, round_: ParentRound) -> None:
        if kind in self._published:
            self._rounds[kind] = round_
            self._published[kind].set()

    def done(self, kind: str) -> None:
        """The parent kind's collector ended, however it ended."""
        if kind in self._published:
            self._published[kind].set()

    def done_callback(self, kind: str) -> Callable[[object], None]:
        """``done`` for a future's done callback."""
        return lambda _: self.done(kind)

    def get(self, kind: str) -> ParentRound | None:
        """The parent kind's round in this job once published; None when it is not in the job
        or ended without one."""
        event = self._published.get(kind)
        if event is None:
            return None
        event.wait()
        return self._rounds.get(kind)
