"""What crosses the catalog's boundary: views of jobs, snapshots and versions, and the
values their fields may take."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

JOB_TYPES = ("backup", "restore", "compare")
MODES = ("full", "incremental")
JOB_STATUSES = ("running", "succeeded", "partial", "failed", "interrupted")
KIND_STATUSES = ("succeeded", "partial", "failed", "skipped")
ACTIONS = ("put", "remove", "keep")


@dataclass(frozen=True)
class StagedObject:
    kind: str
    object_id: str
    label: str
    action: str  # "put" (blob_id set) | "remove" | "keep" (present; keep its current version)
    blob_id: str | None


@dataclass
class KindResult:
    kind: str
    status: str
    mode: str
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    reason: str = ""
    duration_s: float = 0.0
    # Time-window kinds: the oldest event time this read returned (ISO 8601), i.e. where the
    # service's retention window began; a live compare does not count older events as removed.
    window_start: str = ""


@dataclass(frozen=True)
class JobView:
    id: int
    tenant: str
    job_type: str
    mode: str
    scope: str
    status: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    host: str
    pid: int
    snapshot_id: int | None
    error: str | None
    stats: dict[str, Any] | None
    kinds: list[KindResult] = field(default_factory=list)
    # totals over kinds, for lists
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class EventView:
    id: int
    job_id: int
    ts: dt.datetime | None
    level: str
    kind: str | None
    object_id: str | None
    message: str


@dataclass(frozen=True)
class SnapshotKindView:
    kind: str
    status: str  # captured | carried
    captured_seq: int | None
    objects: int
    added: int
    changed: int
    removed: int


@dataclass(frozen=True)
class SnapshotView:
    id: int
    tenant: str
    seq: int
    job_id: int
    mode: str
    created_at: dt.datetime | None
    completed_at: dt.datetime | None
    digest: str
    object_count: int
    kinds: list[SnapshotKindView] = field(default_factory=list)


@dataclass(frozen=True)
class VersionView:
    kind: str
    object_id: str
    label: str
    blob_id: str
    valid_from_seq: int
    valid_to_seq: int | None


@dataclass(frozen=True)
class VersionPair:
    """One object that differs between two points in time; None = absent on that side."""

    kind: str
    object_id: str
    old_blob: str | None
    new_blob: str | None
