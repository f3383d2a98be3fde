"""SQLModel tables of the catalog. Only agent.db.catalog touches them; views cross the boundary.

Times are UTC. Object versions are intervals over a tenant's snapshot sequence numbers:
a version is part of snapshot S when ``valid_from_seq <= S`` and (``valid_to_seq`` is NULL or
``> S``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _time(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Tenant(SQLModel, table=True):
    __tablename__ = "tenant"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    tenant_id: str
    created_at: dt.datetime | None = _time()


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (Index("ix_job_tenant_id", "tenant", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(foreign_key="tenant.name")
    job_type: str  # backup | restore
    mode: str  # full | incremental
    scope: str
    status: str = Field(index=True)
    # Set to the tenant while running, NULL otherwise. Its unique index is what makes
    # "one running job per tenant" race-safe across agents on SQLite and PostgreSQL alike
    # (NULLs never collide), without dialect-specific partial indexes.
    running_tenant: str | None = Field(default=None, unique=True)
    started_at: dt.datetime | None = _time()
    finished_at: dt.datetime | None = _time()
    heartbeat_at: dt.datetime | None = _time()
    host: str
    pid: int
    snapshot_id: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    stats: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class JobEvent(SQLModel, table=True):
    __tablename__ = "job_event"
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    ts: dt.datetime | None = _time(nullable=False)
    level: str
    kind: str | None = Field(default=None)
    object_id: str | None = Field(default=None)
    message: str = Field(sa_column=Column(Text, nullable=False))


class JobKind(SQLModel, table=True):
    __tablename__ = "job_kind"
    __table_args__ = (UniqueConstraint("job_id", "kind", name="uq_job_kind"),)
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id")
    kind: str
    status: str  # succeeded | partial | failed | skipped
    mode: str
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    duration_s: float = 0.0


class StagedObject(SQLModel, table=True):
    __tablename__ = "staged_object"
    # Append-only while a job runs (fast bulk inserts); an object staged twice keeps both rows
    # and commit keeps the one with the highest id. The index serves that and commit's joins.
    __table_args__ = (Index("ix_staged_object", "job_id", "kind", "object_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id")
    kind: str
    object_id: str
    label: str = Field(default="")
    action: str  # put | remove | keep
    blob_id: str | None = Field(default=None)


class StagedFullListing(SQLModel, table=True):
    __tablename__ = "staged_full_listing"
    job_id: int = Field(foreign_key="job.id", primary_key=True)
    kind: str = Field(primary_key=True)


class StagedDeltaLink(SQLModel, table=True):
    __tablename__ = "staged_delta_link"
    job_id: int = Field(foreign_key="job.id", primary_key=True)
    kind: str = Field(primary_key=True)
    link: str = Field(sa_column=Column(Text, nullable=False))


class StagedPrepared(SQLModel, table=True):
    """A kind of a running job already turned into object versions of the snapshot the job
    will commit (``seq``, one past the tenant's last): invisible until that snapshot exists,
    undone when the job is discarded. The counts are the kind's snapshot_kind figures."""

    __tablename__ = "staged_prepared"
    job_id: int = Field(foreign_key="job.id", primary_key=True)
    kind: str = Field(primary_key=True)
    seq: int
    objects: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0


class StagedChange(SQLModel, table=True):
    """A prepared kind's change lines (chain.changes), zlib-compressed in parts, so commit
    hashes them without querying and sorting the versions again."""

    __tablename__ = "staged_change"
    job_id: int = Field(foreign_key="job.id", primary_key=True)
    kind: str = Field(primary_key=True)
    part: int = Field(primary_key=True)
    lines: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Snapshot(SQLModel, table=True):
    __tablename__ = "snapshot"
    __table_args__ = (UniqueConstraint("tenant", "seq", name="uq_snapshot_tenant_seq"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(foreign_key="tenant.name")
    seq: int
    job_id: int = Field(foreign_key="job.id")
    mode: str
    created_at: dt.datetime | None = _time()
    completed_at: dt.datetime | None = _time()
    digest: str
    prev_digest: str = Field(default="")
    object_count: int = 0


class SnapshotKind(SQLModel, table=True):
    __tablename__ = "snapshot_kind"
    __table_args__ = (UniqueConstraint("snapshot_id", "kind", name="uq_snapshot_kind"),)
    id: int | None = Field(default=None, primary_key=True)
    snapshot_id: int = Field(foreign_key="snapshot.id")
    kind: str
    status: str  # captured | carried
    captured_seq: int | None = None
    objects: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0


class ObjectVersion(SQLModel, table=True):
    __tablename__ = "object_version"
    __table_args__ = (
        # current version of an object; commit's EXISTS joins and current_blobs()
        Index("ix_ov_object", "tenant", "kind", "object_id", "valid_to_seq"),
        # what a snapshot added, by kind in object order: digests, and a prepared kind's
        # change lines read without a sort (prepare.py); replaces ix_ov_from (tenant, seq)
        Index("ix_ov_from_kind", "tenant", "valid_from_seq", "kind", "object_id"),
        Index("ix_ov_to", "tenant", "valid_to_seq"),
    )
    id: int | None = Field(default=None, primary_key=True)
    tenant: str
    kind: str
    object_id: str
    label: str = Field(default="")
    blob_id: str
    valid_from_seq: int
    valid_to_seq: int | None = None


class BlobChild(SQLModel, table=True):
    """A blob an object blob refers to (e.g. a branding image). Blobs are content-addressed,
    so the pair never changes: it is written once, when the object is first stored."""

    __tablename__ = "blob_child"
    parent: str = Field(primary_key=True)
    child: str = Field(primary_key=True)


class DeltaLink(SQLModel, table=True):
    __tablename__ = "delta_link"
    tenant: str = Field(primary_key=True)
    kind: str = Field(primary_key=True)
    link: str = Field(sa_column=Column(Text, nullable=False))
    seq: int
