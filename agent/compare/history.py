"""Every version of one object across a tenant's snapshots, and what changed each time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from agent import kinds as registry
from agent.compare.differ import PropertyChange, diff_objects
from agent.compare.sides import SnapshotSide, label_of
from agent.db.catalog import Catalog, VersionView
from agent.errors import NotFound
from agent.store.repository import Repository

ADDED, CHANGED, REMOVED = "added", "changed", "removed"


@dataclass(frozen=True)
class HistoryEvent:
    event: str  # added (first seen, or back after a removal) | changed | removed
    seq: int  # the snapshot sequence number where it happened
    snapshot_id: int | None
    at: dt.datetime | None  # when that snapshot completed
    version: int | None = None  # 1, 2, … for added/changed
    blob_id: str | None = None
    label: str = ""
    # Against the version before (for "added" after a removal: the version that was removed).
    changes: tuple[PropertyChange, ...] = ()


def object_history(
    catalog: Catalog, repo: Repository, tenant: str, kind: str, object_id: str
) -> list[HistoryEvent]:
    registry.get(kind)  # an unknown kind is named as such, not as a missing object
    versions = catalog.history(tenant, kind, object_id)
    if not versions:
        raise NotFound(
            f"Tenant '{tenant}' has no {kind} with id '{object_id}' in any snapshot.",
            "Check the kind and the object id ('entra-backup diff --json' and "
            "'entra-backup export' show ids).",
        )
    seqs = {v.valid_from_seq for v in versions} | {
        v.valid_to_seq for v in versions if v.valid_to_seq is not None
    }
    snaps = catalog.snapshots_at(tenant, seqs)

    def at(seq: int) -> tuple[int | None, dt.datetime | None]:
        snap = snaps.get(seq)
        return (snap.id, snap.completed_at) if snap else (None, None)

    events: list[HistoryEvent] = []
    previous: VersionView | None = None
    for number, version in enumerate(versions, 1):
        content = repo.get(version.blob_id)
        ended = previous.valid_to_seq if previous is not None else None
        if ended is not None and ended != version.valid_from_seq:
            events.append(HistoryEvent(REMOVED, ended, *at(ended)))  # gone, then back
        before = repo.get(previous.blob_id) if previous is not None else None
        diff = diff_objects(kind, object_id, before, content) if before is not None else None
        side = SnapshotSide(catalog, repo, tenant, version.valid_from_seq)
        events.append(
            HistoryEvent(
                CHANGED if ended == version.valid_from_seq else ADDED,
                version.valid_from_seq,
                *at(version.valid_from_seq),
                version=number,
                blob_id=version.blob_id,
                label=label_of(kind, object_id, content, (side,)),
                changes=diff.changes if diff else (),
            )
        )
        previous = version
    if previous is not None and (ended := previous.valid_to_seq) is not None:
        events.append(HistoryEvent(REMOVED, ended, *at(ended)))
    return events
