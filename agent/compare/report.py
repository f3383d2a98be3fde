"""A diff between two points in time as one report, and its stable ``--json`` schema.

Schema ``entra-backup/diff/1`` (documented in docs/ARCHITECTURE.md, "Compare")::

    {"schema": "entra-backup/diff/1", "tenant": "contoso",
     "from": POINT, "to": POINT,
     "kinds": [{"kind", "status": "compared"|"skipped"|"failed", "reason",
                "added", "removed", "changed"}],
     "objects": [{"kind", "id", "label", "status": "added"|"removed"|"changed",
                  "secret", "properties": [top-level names],
                  "changes": [{"path", "op", "old"?, "new"?, "hidden"?}]}],
     "summary": {"added", "removed", "changed"}}

    POINT = {"snapshot": id|null, "seq": n, "completed_at": iso|null}       (a snapshot;
            seq 0 / snapshot null = before the first snapshot)
          | {"live": true, "job": id, "read_at": iso}                       (the live tenant)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.compare.differ import ObjectDiff, change_json
from agent.compare.live import LiveRead
from agent.compare.sides import SnapshotSide, compare
from agent.db.catalog import Catalog, SnapshotView
from agent.store.repository import Repository

SCHEMA = "entra-backup/diff/1"
STATUSES = ("added", "removed", "changed")


@dataclass(frozen=True)
class Point:
    seq: int = 0
    snapshot_id: int | None = None
    completed_at: dt.datetime | None = None
    live_job: int | None = None  # set for the live tenant
    read_at: dt.datetime | None = None

    @classmethod
    def of(cls, snap: SnapshotView | None) -> Point:
        return cls(snap.seq, snap.id, snap.completed_at) if snap else cls()

    def describe(self) -> str:
        if self.live_job is not None:
            return f"the live tenant (read by job {self.live_job})"
        if self.snapshot_id is None:
            return "nothing (before the first snapshot)"
        when = f", {self.completed_at:%Y-%m-%d %H:%M:%S} UTC" if self.completed_at else ""
        return f"snapshot {self.snapshot_id} (#{self.seq}{when})"

    def json(self) -> dict[str, Any]:
        if self.live_job is not None:
            return {"live": True, "job": self.live_job, "read_at": _iso(self.read_at)}
        return {
            "snapshot": self.snapshot_id,
            "seq": self.seq,
            "completed_at": _iso(self.completed_at),
        }


@dataclass
class KindSummary:
    kind: str
    status: str = "compared"  # compared | skipped | failed (live reads only)
    reason: str = ""
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))


@dataclass
class DiffReport:
    tenant: str
    old: Point
    new: Point
    kinds: dict[str, KindSummary]
    objects: list[ObjectDiff]

    @property
    def incomplete(self) -> list[KindSummary]:
        return [k for k in self.kinds.values() if k.status == "failed"]

    def json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "tenant": self.tenant,
            "from": self.old.json(),
            "to": self.new.json(),
            "kinds": [
                {"kind": k.kind, "status": k.status, "reason": k.reason, **k.counts}
                for k in self.kinds.values()
            ],
            "objects": [object_json(o) for o in self.objects],
            "summary": {s: sum(k.counts[s] for k in self.kinds.values()) for s in STATUSES},
        }


def object_json(diff: ObjectDiff) -> dict[str, Any]:
    return {
        "kind": diff.kind,
        "id": diff.object_id,
        "label": diff.label,
        "status": diff.status,
        "secret": diff.secret,
        "properties": diff.properties,
        "changes": [change_json(c) for c in diff.changes],
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _collect(
    kinds: dict[str, KindSummary], diffs: Iterable[ObjectDiff]
) -> tuple[dict[str, KindSummary], list[ObjectDiff]]:
    objects = []
    for diff in diffs:
        summary = kinds.setdefault(diff.kind, KindSummary(diff.kind))
        summary.counts[diff.status] += 1
        objects.append(diff)
    return dict(sorted(kinds.items())), objects


def diff_snapshots(
    catalog: Catalog,
    repo: Repository,
    old: SnapshotView | None,
    new: SnapshotView,
    kinds: list[str] | None = None,
) -> DiffReport:
    """What changed from snapshot ``old`` (None: before the first) to snapshot ``new``."""
    tenant = new.tenant
    old_seq = old.seq if old else 0
    present = {k.kind for s in (old, new) if s for k in s.kinds}
    wanted = kinds if kinds is not None else sorted(present)
    pairs = catalog.differences(tenant, old_seq, new.seq, kinds)
    diffs = compare(
        pairs,
        SnapshotSide(catalog, repo, tenant, old_seq),
        SnapshotSide(catalog, repo, tenant, new.seq),
    )
    summaries, objects = _collect({k: KindSummary(k) for k in wanted}, diffs)
    return DiffReport(tenant, Point.of(old), Point.of(new), summaries, objects)


def diff_live(catalog: Catalog, repo: Repository, snap: SnapshotView, live: LiveRead) -> DiffReport:
    """What changed from snapshot ``snap`` to the live tenant read by ``live``; kinds the
    live read could not read are listed with the reason and not compared."""
    summaries = {
        r.kind: KindSummary(
            r.kind,
            "compared" if r.kind in live.kinds_read else r.status,
            r.reason
            or (f"{r.failed} objects could not be read and are not compared" if r.failed else "")
            or live.archive_note(r.kind),
        )
        for r in live.results
    }
    diffs = compare(
        live.differences(snap.seq),
        SnapshotSide(catalog, repo, snap.tenant, snap.seq),
        live,
    )
    summaries, objects = _collect(summaries, diffs)
    new = Point(live_job=live.job_id, read_at=live.read_at)
    return DiffReport(snap.tenant, Point.of(snap), new, summaries, objects)
