"""Catalog: jobs, job log, per-kind results, staging, snapshot commit, state queries, verify.

A job stages rows as it reads; ``commit_snapshot`` turns them into object versions, delta links
and a visible snapshot in one transaction (set-based SQL, no per-row round trips). Until then
nothing of the job is visible, so a job that dies leaves only staging rows.

Portable core SQL only (SQLite and PostgreSQL): ``INSERT … SELECT``, ``UPDATE … WHERE EXISTS``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    Engine,
    String,
    Table,
    and_,
    collate,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from agent.db import comparison
from agent.db import models as m
from agent.errors import AgentError, ConnectionFailed, JobConflict, NotFound

JOB_TYPES = ("backup", "restore", "compare")
MODES = ("full", "incremental")
JOB_STATUSES = ("running", "succeeded", "partial", "failed", "interrupted")
KIND_STATUSES = ("succeeded", "partial", "failed", "skipped")
ACTIONS = ("put", "remove", "keep")
_SAME = "same"  # commit-internal: a put identical to the open version
T = TypeVar("T")
IN_CHUNK = 500  # bound parameters per IN list (SQLite's limit is far above; keeps plans sane)


def _table(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


TENANT = _table(m.Tenant)
JOB = _table(m.Job)
EVENT = _table(m.JobEvent)
JOB_KIND = _table(m.JobKind)
STAGED = _table(m.StagedObject)
FULL_LISTING = _table(m.StagedFullListing)
STAGED_LINK = _table(m.StagedDeltaLink)
SNAPSHOT = _table(m.Snapshot)
SNAPSHOT_KIND = _table(m.SnapshotKind)
VERSION = _table(m.ObjectVersion)
DELTA_LINK = _table(m.DeltaLink)
BLOB_CHILD = _table(m.BlobChild)


# -- views: what crosses the boundary ---------------------------------------------------------


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


# -- engine -----------------------------------------------------------------------------------


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite returns naive datetimes; everything stored is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, future=True)
    database = parsed.database or ""
    if database in ("", ":memory:"):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below): pysqlite's implicit transactions defer locking
        # and make a read-then-write transaction fail with "database is locked".
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front, so two agents serialise instead of deadlocking.
        write = conn.get_execution_options().get("catalog_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _str(value: str) -> Any:
    # A typed literal in a SELECT list: PostgreSQL cannot infer an untyped parameter's type.
    return sql_cast(literal(value), String)


# -- digest -----------------------------------------------------------------------------------


def _changes(conn: Connection, tenant: str, seq: int) -> Iterator[str]:
    """The change lines of snapshot ``seq`` in code-point order, derived from object_version
    rows only, streamed from the database (memory does not grow with the snapshot).

    A row starting at ``seq`` is a put; a row ending at ``seq`` with no successor starting at
    ``seq`` is a removal ("-"). The same function serves commit and verify. Ordering uses a
    byte-wise collation (SQLite BINARY, PostgreSQL "C"): for UTF-8 that is code-point order,
    so every database yields the same digest.
    """
    collation = "C" if conn.dialect.name == "postgresql" else "BINARY"
    puts = select(
        VERSION.c.kind.label("kind"),
        VERSION.c.object_id.label("object_id"),
        VERSION.c.blob_id.label("blob"),
    ).where(VERSION.c.tenant == tenant, VERSION.c.valid_from_seq == seq)
    successor = VERSION.alias("successor")
    removed = select(
        VERSION.c.kind.label("kind"),
        VERSION.c.object_id.label("object_id"),
        _str("-").label("blob"),
    ).where(
        VERSION.c.tenant == tenant,
        VERSION.c.valid_to_seq == seq,
        ~exists().where(
            successor.c.tenant == tenant,
            successor.c.kind == VERSION.c.kind,
            successor.c.object_id == VERSION.c.object_id,
            successor.c.valid_from_seq == seq,
        ),
    )
    both = union_all(puts, removed).subquery()
    ordered = select(both.c.kind, both.c.object_id, both.c.blob).order_by(
        collate(both.c.kind, collation), collate(both.c.object_id, collation)
    )
    for kind, object_id, blob in conn.execution_options(yield_per=5000).execute(ordered):
        yield f"{kind}\t{object_id}\t{blob}"


def _digest(prev_digest: str, seq: int, lines: Iterable[str]) -> str:
    h = hashlib.sha256()
    h.update(prev_digest.encode("ascii") + b"\n" + str(seq).encode("ascii") + b"\n")
    for line in lines:
        h.update(line.encode("utf-8") + b"\n")
    return h.hexdigest()


# -- the catalog ------------------------------------------------------------------------------


class Catalog:
    def __init__(self, url: str) -> None:
        self._url = url
        self._engine = _make_engine(url)
        try:
            SQLModel.metadata.create_all(self._engine, tables=list(_TABLES))
        except OperationalError as exc:
            self._engine.dispose()
            safe = make_url(url).render_as_string(hide_password=True)
            raise ConnectionFailed(
                f"Cannot open the catalog database {safe}: {exc.orig}.",
                "Check 'database_url' in the config, that the server is reachable and the "
                "account may create tables.",
            ) from None

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(catalog_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    # -- tenants and jobs ---------------------------------------------------------------------

    def ensure_tenant(self, name: str, tenant_id: str) -> None:
        with self._write() as conn:
            row = conn.execute(select(TENANT.c.tenant_id).where(TENANT.c.name == name)).first()
            if row is None:
                conn.execute(
                    insert(TENANT).values(name=name, tenant_id=tenant_id, created_at=_utcnow())
                )
            elif row.tenant_id != tenant_id:
                conn.execute(
                    update(TENANT).where(TENANT.c.name == name).values(tenant_id=tenant_id)
                )

    def start_job(
        self, tenant: str, *, job_type: str, mode: str, scope: str, host: str, pid: int
    ) -> int:
        _check(job_type, JOB_TYPES, "job type")
        _check(mode, MODES, "mode")
        now = _utcnow()
        try:
            with self._write() as conn:
                if conn.execute(select(TENANT.c.id).where(TENANT.c.name == tenant)).first() is None:
                    raise NotFound(
                        f"Tenant '{tenant}' is not in the catalog.",
                        "Check the tenant name in the config; a backup registers it.",
                    )
                result = conn.execute(
                    insert(JOB).values(
                        tenant=tenant,
                        job_type=job_type,
                        mode=mode,
                        scope=scope,
                        status="running",
                        running_tenant=tenant,
                        started_at=now,
                        heartbeat_at=now,
                        host=host,
                        pid=pid,
                    )
                )
                return _new_id(result)
        except DbIntegrityError:
            pass  # the unique running_tenant: another job of this tenant is running
        running = self._running_job(tenant)
        who = (
            f"job {running.id} ({running.job_type}, started {running.started_at:%Y-%m-%d %H:%M} "
            f"UTC on {running.host}, pid {running.pid})"
            if running and running.started_at
            else "another job"
        )
        raise JobConflict(
            f"Tenant '{tenant}' already has a running job: {who}.",
            "Wait for it to finish. If its agent died, the next run marks it interrupted once "
            "its heartbeat is stale.",
        )

    def _running_job(self, tenant: str) -> JobView | None:
        with self._read() as conn:
            row = conn.execute(select(JOB).where(JOB.c.running_tenant == tenant)).first()
            return self._job_views(conn, [row])[0] if row else None

    def heartbeat(self, job_id: int) -> None:
        with self._write() as conn:
            conn.execute(
                update(JOB)
                .where(JOB.c.id == job_id, JOB.c.status == "running")
                .values(heartbeat_at=_utcnow())
            )

    def log(
        self,
        job_id: int,
        level: str,
        message: str,
        *,
        kind: str | None = None,
        object_id: str | None = None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                insert(EVENT).values(
                    job_id=job_id,
                    ts=_utcnow(),
                    level=level,
                    kind=kind,
                    object_id=object_id,
                    message=message,
                )
            )

    def record_kind(self, job_id: int, result: KindResult) -> None:
        _check(result.status, KIND_STATUSES, "kind status")
        values = {
            "status": result.status,
            "mode": result.mode,
            "succeeded": result.succeeded,
            "failed": result.failed,
            "skipped": result.skipped,
            "added": result.added,
            "changed": result.changed,
            "removed": result.removed,
            "unchanged": result.unchanged,
            "reason": result.reason,
            "duration_s": result.duration_s,
        }
        with self._write() as conn:
            done = conn.execute(
                update(JOB_KIND)
                .where(JOB_KIND.c.job_id == job_id, JOB_KIND.c.kind == result.kind)
                .values(**values)
            )
            if not done.rowcount:
                conn.execute(insert(JOB_KIND).values(job_id=job_id, kind=result.kind, **values))

    def finish_job(
        self,
        job_id: int,
        status: str,
        *,
        error: str | None = None,
        stats: dict[str, Any] | None = None,
    ) -> None:
        _check(status, JOB_STATUSES[1:], "final job status")
        values: dict[str, Any] = {
            "status": status,
            "running_tenant": None,
            "finished_at": _utcnow(),
            "error": error,
        }
        if stats is not None:
            values["stats"] = stats
        with self._write() as conn:
            done = conn.execute(update(JOB).where(JOB.c.id == job_id).values(**values))
            if not done.rowcount:
                raise _job_not_found(job_id)

    def interrupt_stale_jobs(
        self, *, host: str, is_alive: Callable[[int], bool], stale_after_s: float
    ) -> list[int]:
        now = _utcnow()
        cutoff = now - dt.timedelta(seconds=stale_after_s)
        with self._read() as conn:
            running = conn.execute(
                select(JOB.c.id, JOB.c.host, JOB.c.pid, JOB.c.heartbeat_at, JOB.c.started_at)
                .where(JOB.c.status == "running")
                .order_by(JOB.c.id)
            ).all()
        interrupted: list[int] = []
        for row in running:
            beat = _aware(row.heartbeat_at or row.started_at) or now
            if row.host == host and not is_alive(row.pid):
                why = f"its agent process (pid {row.pid} on {row.host}) is no longer running"
            elif beat < cutoff:
                why = f"no heartbeat from {row.host} (pid {row.pid}) since {beat:%Y-%m-%d %H:%M:%S} UTC"
            else:
                continue
            with self._write() as conn:
                # status guard: another agent may have finished or interrupted it meanwhile
                done = conn.execute(
                    update(JOB)
                    .where(JOB.c.id == row.id, JOB.c.status == "running")
                    .values(
                        status="interrupted",
                        running_tenant=None,
                        finished_at=now,
                        error=f"Interrupted: {why}. No snapshot was written; earlier "
                        "snapshots are unchanged.",
                    )
                )
                if done.rowcount:
                    self._discard(conn, row.id)
                    interrupted.append(int(row.id))
        return interrupted

    def job(self, job_id: int) -> JobView:
        with self._read() as conn:
            row = conn.execute(select(JOB).where(JOB.c.id == job_id)).first()
            if row is None:
                raise _job_not_found(job_id)
            return self._job_views(conn, [row])[0]

    def jobs(self, tenant: str | None = None, limit: int = 50) -> list[JobView]:
        query = select(JOB).order_by(JOB.c.id.desc()).limit(limit)
        if tenant is not None:
            query = query.where(JOB.c.tenant == tenant)
        with self._read() as conn:
            return self._job_views(conn, list(conn.execute(query)))

    def _job_views(self, conn: Connection, rows: Sequence[Any]) -> list[JobView]:
        by_job: dict[int, list[KindResult]] = {row.id: [] for row in rows}
        for chunk in _chunks(list(by_job)):
            for k in conn.execute(
                select(JOB_KIND).where(JOB_KIND.c.job_id.in_(chunk)).order_by(JOB_KIND.c.id)
            ):
                by_job[k.job_id].append(
                    KindResult(
                        kind=k.kind,
                        status=k.status,
                        mode=k.mode,
                        succeeded=k.succeeded,
                        failed=k.failed,
                        skipped=k.skipped,
                        added=k.added,
                        changed=k.changed,
                        removed=k.removed,
                        unchanged=k.unchanged,
                        reason=k.reason,
                        duration_s=k.duration_s,
                    )
                )
        views = []
        for row in rows:
            kinds = by_job[row.id]
            views.append(
                JobView(
                    id=row.id,
                    tenant=row.tenant,
                    job_type=row.job_type,
                    mode=row.mode,
                    scope=row.scope,
                    status=row.status,
                    started_at=_aware(row.started_at),
                    finished_at=_aware(row.finished_at),
                    heartbeat_at=_aware(row.heartbeat_at),
                    host=row.host,
                    pid=row.pid,
                    snapshot_id=row.snapshot_id,
                    error=row.error,
                    stats=row.stats,
                    kinds=kinds,
                    succeeded=sum(k.succeeded for k in kinds),
                    failed=sum(k.failed for k in kinds),
                    skipped=sum(k.skipped for k in kinds),
                )
            )
        return views

    def events(self, job_id: int) -> list[EventView]:
        with self._read() as conn:
            if conn.execute(select(JOB.c.id).where(JOB.c.id == job_id)).first() is None:
                raise _job_not_found(job_id)
            return [
                EventView(
                    id=e.id,
                    job_id=e.job_id,
                    ts=_aware(e.ts),
                    level=e.level,
                    kind=e.kind,
                    object_id=e.object_id,
                    message=e.message,
                )
                for e in conn.execute(
                    select(EVENT).where(EVENT.c.job_id == job_id).order_by(EVENT.c.id)
                )
            ]

    # -- staging ------------------------------------------------------------------------------

    def stage(self, job_id: int, rows: Iterable[StagedObject]) -> None:
        latest: dict[tuple[str, str], StagedObject] = {}
        for row in rows:
            _check(row.action, ACTIONS, "staged action")
            if (row.action == "put") != (row.blob_id is not None):
                raise ValueError(f"staged {row.kind} {row.object_id}: put needs a blob id")
            latest[(row.kind, row.object_id)] = row  # the last one wins within a batch
        if not latest:
            return
        # Plain bulk insert, no per-row lookups: a repeat from an earlier batch is resolved at
        # commit (highest id wins), which keeps staging fast on any database.
        with self._write() as conn:
            conn.execute(
                insert(STAGED),
                [
                    {
                        "job_id": job_id,
                        "kind": r.kind,
                        "object_id": r.object_id,
                        "label": r.label,
                        "action": r.action,
                        "blob_id": r.blob_id,
                    }
                    for r in latest.values()
                ],
            )

    def record_blob_children(self, parent: str, children: Iterable[str]) -> None:
        """Remember that blob ``parent`` refers to ``children`` (verify and export follow it).

        Written when the parent is staged; a pair of a job that never commits is harmless
        (its parent is simply unreferenced)."""
        wanted = set(children) - {parent}
        if not wanted:
            return
        try:
            with self._write() as conn:
                known = set(
                    conn.execute(
                        select(BLOB_CHILD.c.child).where(BLOB_CHILD.c.parent == parent)
                    ).scalars()
                )
                if missing := sorted(wanted - known):
                    conn.execute(
                        insert(BLOB_CHILD), [{"parent": parent, "child": c} for c in missing]
                    )
        except DbIntegrityError:
            pass  # another job stored the same content at the same moment: already recorded

    def blob_children(self, parent: str) -> list[str]:
        with self._read() as conn:
            return sorted(
                conn.execute(
                    select(BLOB_CHILD.c.child).where(BLOB_CHILD.c.parent == parent)
                ).scalars()
            )

    def mark_full_listing(self, job_id: int, kind: str) -> None:
        with self._write() as conn:
            marked = conn.execute(
                select(FULL_LISTING.c.kind).where(
                    FULL_LISTING.c.job_id == job_id, FULL_LISTING.c.kind == kind
                )
            ).first()
            if marked is None:
                conn.execute(insert(FULL_LISTING).values(job_id=job_id, kind=kind))

    def stage_delta_link(self, job_id: int, kind: str, link: str) -> None:
        with self._write() as conn:
            conn.execute(
                delete(STAGED_LINK).where(
                    STAGED_LINK.c.job_id == job_id, STAGED_LINK.c.kind == kind
                )
            )
            conn.execute(insert(STAGED_LINK).values(job_id=job_id, kind=kind, link=link))

    def staged_count(self, job_id: int, kind: str) -> int:
        with self._read() as conn:
            return int(
                conn.execute(
                    select(func.count(STAGED.c.object_id.distinct())).where(
                        STAGED.c.job_id == job_id, STAGED.c.kind == kind
                    )
                ).scalar_one()
            )

    def discard_staging(self, job_id: int) -> None:
        with self._write() as conn:
            self._discard(conn, job_id)

    @staticmethod
    def _discard(conn: Connection, job_id: int) -> None:
        for table in (STAGED, FULL_LISTING, STAGED_LINK):
            conn.execute(delete(table).where(table.c.job_id == job_id))

    # -- commit -------------------------------------------------------------------------------

    def commit_snapshot(self, job_id: int) -> SnapshotView:
        with self._write() as conn:
            job = conn.execute(select(JOB).where(JOB.c.id == job_id)).first()
            if job is None:
                raise _job_not_found(job_id)
            if job.status != "running" or job.snapshot_id is not None:
                raise JobConflict(
                    f"Job {job_id} is {job.status}"
                    + (f" and already made snapshot {job.snapshot_id}" if job.snapshot_id else "")
                    + "; it cannot commit a snapshot.",
                    "Start a new backup job.",
                )
            tenant: str = job.tenant
            prev = conn.execute(
                select(SNAPSHOT.c.id, SNAPSHOT.c.seq, SNAPSHOT.c.digest)
                .where(SNAPSHOT.c.tenant == tenant)
                .order_by(SNAPSHOT.c.seq.desc())
                .limit(1)
            ).first()
            seq = prev.seq + 1 if prev else 1
            results = _pairs(
                conn.execute(
                    select(JOB_KIND.c.kind, JOB_KIND.c.status).where(JOB_KIND.c.job_id == job_id)
                )
            )
            # Failed kinds (and kinds with no result) are not applied: their state carries.
            applied = sorted(k for k, status in results.items() if status != "failed")
            if applied:
                self._drop_superseded(conn, job_id)
                self._apply(conn, job_id, tenant, seq, applied)
            lines = _changes(conn, tenant, seq)
            prev_digest = prev.digest if prev else ""
            now = _utcnow()
            snapshot_id = _new_id(
                conn.execute(
                    insert(SNAPSHOT).values(
                        tenant=tenant,
                        seq=seq,
                        job_id=job_id,
                        mode=job.mode,
                        created_at=job.started_at,
                        completed_at=now,
                        digest=_digest(prev_digest, seq, lines),
                        prev_digest=prev_digest,
                        object_count=0,
                    )
                )
            )
            total = self._record_kinds(
                conn, tenant, seq, snapshot_id, prev.id if prev else None, results
            )
            conn.execute(
                update(SNAPSHOT).where(SNAPSHOT.c.id == snapshot_id).values(object_count=total)
            )
            conn.execute(update(JOB).where(JOB.c.id == job_id).values(snapshot_id=snapshot_id))
            self._discard(conn, job_id)
            return self._snapshot_views(conn, [snapshot_id])[0]

    @staticmethod
    def _drop_superseded(conn: Connection, job_id: int) -> None:
        """An object staged more than once in a job: the last row wins."""
        later = STAGED.alias("later")
        conn.execute(
            delete(STAGED).where(
                STAGED.c.job_id == job_id,
                exists().where(
                    later.c.job_id == job_id,
                    later.c.kind == STAGED.c.kind,
                    later.c.object_id == STAGED.c.object_id,
                    later.c.id > STAGED.c.id,
                ),
            )
        )

    @staticmethod
    def _apply(conn: Connection, job_id: int, tenant: str, seq: int, kinds: list[str]) -> None:
        """Turn this job's staged rows of ``kinds`` into versions valid from ``seq``."""
        v, s = VERSION, STAGED
        is_open = and_(v.c.tenant == tenant, v.c.valid_to_seq.is_(None), v.c.kind.in_(kinds))

        def staged(*actions: str) -> Any:
            return exists().where(
                s.c.job_id == job_id,
                s.c.kind == v.c.kind,
                s.c.object_id == v.c.object_id,
                s.c.action.in_(actions),
            )

        # 1. A put whose content equals the open version changes nothing: mark it "same"
        #    first, so the INSERT below never reads the table it writes (on PostgreSQL such a
        #    self-referencing anti-join scans the growing heap once per row).
        conn.execute(
            update(s)
            .where(
                s.c.job_id == job_id,
                s.c.kind.in_(kinds),
                s.c.action == "put",
                exists().where(
                    v.c.tenant == tenant,
                    v.c.kind == s.c.kind,
                    v.c.object_id == s.c.object_id,
                    v.c.valid_to_seq.is_(None),
                    v.c.blob_id == s.c.blob_id,
                ),
            )
            .values(action=_SAME)
        )
        # 2. Close what is replaced (a put left), removed, or absent from a full listing.
        close = update(v).values(valid_to_seq=seq)
        conn.execute(close.where(is_open, staged("put", "remove")))
        full = list(
            conn.execute(
                select(FULL_LISTING.c.kind).where(
                    FULL_LISTING.c.job_id == job_id, FULL_LISTING.c.kind.in_(kinds)
                )
            ).scalars()
        )
        if full:
            conn.execute(
                close.where(
                    and_(v.c.tenant == tenant, v.c.valid_to_seq.is_(None), v.c.kind.in_(full)),
                    ~staged("put", "keep", _SAME),
                )
            )
        # 3. Every remaining put is a new version.
        conn.execute(
            insert(v).from_select(
                ["tenant", "kind", "object_id", "label", "blob_id", "valid_from_seq"],
                select(
                    _str(tenant), s.c.kind, s.c.object_id, s.c.label, s.c.blob_id, literal(seq)
                ).where(s.c.job_id == job_id, s.c.kind.in_(kinds), s.c.action == "put"),
            )
        )
        links = conn.execute(
            select(STAGED_LINK.c.kind, STAGED_LINK.c.link).where(
                STAGED_LINK.c.job_id == job_id, STAGED_LINK.c.kind.in_(kinds)
            )
        ).all()
        if links:
            conn.execute(
                delete(DELTA_LINK).where(
                    DELTA_LINK.c.tenant == tenant, DELTA_LINK.c.kind.in_([k for k, _ in links])
                )
            )
            conn.execute(
                insert(DELTA_LINK),
                [{"tenant": tenant, "kind": k, "link": link, "seq": seq} for k, link in links],
            )

    @staticmethod
    def _record_kinds(
        conn: Connection,
        tenant: str,
        seq: int,
        snapshot_id: int,
        prev_snapshot_id: int | None,
        results: dict[str, str],
    ) -> int:
        v = VERSION

        def per_kind(query: Any) -> dict[str, int]:
            return {k: int(n) for k, n in conn.execute(query.group_by(v.c.kind))}

        base = select(v.c.kind, func.count()).where(v.c.tenant == tenant)
        objects = per_kind(base.where(v.c.valid_to_seq.is_(None)))
        inserted = per_kind(base.where(v.c.valid_from_seq == seq))
        closed = per_kind(base.where(v.c.valid_to_seq == seq))
        before = v.alias("before")
        changed = per_kind(
            base.where(
                v.c.valid_from_seq == seq,
                exists().where(
                    before.c.tenant == tenant,
                    before.c.kind == v.c.kind,
                    before.c.object_id == v.c.object_id,
                    before.c.valid_to_seq == seq,
                ),
            )
        )
        earlier: dict[str, int | None] = {}
        if prev_snapshot_id is not None:
            earlier = _pairs(
                conn.execute(
                    select(SNAPSHOT_KIND.c.kind, SNAPSHOT_KIND.c.captured_seq).where(
                        SNAPSHOT_KIND.c.snapshot_id == prev_snapshot_id
                    )
                )
            )
        rows = []
        for kind in sorted(set(objects) | set(results)):
            captured = results.get(kind) in ("succeeded", "partial")
            rows.append(
                {
                    "snapshot_id": snapshot_id,
                    "kind": kind,
                    "status": "captured" if captured else "carried",
                    "captured_seq": seq if captured else earlier.get(kind),
                    "objects": objects.get(kind, 0),
                    "added": inserted.get(kind, 0) - changed.get(kind, 0),
                    "changed": changed.get(kind, 0),
                    "removed": closed.get(kind, 0) - changed.get(kind, 0),
                }
            )
        if rows:
            conn.execute(insert(SNAPSHOT_KIND), rows)
        return sum(objects.values())

    # -- snapshots and state ------------------------------------------------------------------

    def snapshots(self, tenant: str | None = None, limit: int = 100) -> list[SnapshotView]:
        query = select(SNAPSHOT.c.id).order_by(SNAPSHOT.c.id.desc()).limit(limit)
        if tenant is not None:
            query = query.where(SNAPSHOT.c.tenant == tenant)
        with self._read() as conn:
            return self._snapshot_views(conn, list(conn.execute(query).scalars()))

    def snapshot(self, ref: int) -> SnapshotView:
        with self._read() as conn:
            views = self._snapshot_views(conn, [ref])
        if not views:
            raise NotFound(
                f"There is no snapshot {ref}.", "List them with 'entra-backup snapshots list'."
            )
        return views[0]

    def latest_snapshot(self, tenant: str) -> SnapshotView | None:
        with self._read() as conn:
            ref = conn.execute(
                select(SNAPSHOT.c.id)
                .where(SNAPSHOT.c.tenant == tenant)
                .order_by(SNAPSHOT.c.seq.desc())
                .limit(1)
            ).scalar()
            return self._snapshot_views(conn, [ref])[0] if ref is not None else None

    @staticmethod
    def _snapshot_views(conn: Connection, ids: Sequence[int]) -> list[SnapshotView]:
        """Views in the order of ``ids``; unknown ids are left out."""
        if not ids:
            return []
        kinds: dict[int, list[SnapshotKindView]] = {i: [] for i in ids}
        rows: dict[int, Any] = {}
        for chunk in _chunks(list(ids)):
            rows.update(
                (r.id, r) for r in conn.execute(select(SNAPSHOT).where(SNAPSHOT.c.id.in_(chunk)))
            )
            for k in conn.execute(
                select(SNAPSHOT_KIND)
                .where(SNAPSHOT_KIND.c.snapshot_id.in_(chunk))
                .order_by(SNAPSHOT_KIND.c.kind)
            ):
                kinds[k.snapshot_id].append(
                    SnapshotKindView(
                        kind=k.kind,
                        status=k.status,
                        captured_seq=k.captured_seq,
                        objects=k.objects,
                        added=k.added,
                        changed=k.changed,
                        removed=k.removed,
                    )
                )
        return [
            SnapshotView(
                id=r.id,
                tenant=r.tenant,
                seq=r.seq,
                job_id=r.job_id,
                mode=r.mode,
                created_at=_aware(r.created_at),
                completed_at=_aware(r.completed_at),
                digest=r.digest,
                object_count=r.object_count,
                kinds=kinds[r.id],
            )
            for r in (rows.get(i) for i in ids)
            if r is not None
        ]

    def state(self, tenant: str, seq: int, kind: str | None = None) -> Iterator[VersionView]:
        v = VERSION
        query = (
            select(
                v.c.kind,
                v.c.object_id,
                v.c.label,
                v.c.blob_id,
                v.c.valid_from_seq,
                v.c.valid_to_seq,
            )
            .where(
                v.c.tenant == tenant,
                v.c.valid_from_seq <= seq,
                or_(v.c.valid_to_seq.is_(None), v.c.valid_to_seq > seq),
            )
            .order_by(v.c.kind, v.c.object_id)
        )
        if kind is not None:
            query = query.where(v.c.kind == kind)
        with self._engine.connect() as conn:
            for row in conn.execution_options(yield_per=2000).execute(query):
                yield VersionView(*row)

    def current_blobs(self, tenant: str, kind: str, object_ids: Sequence[str]) -> dict[str, str]:
        v = VERSION
        found: dict[str, str] = {}
        with self._read() as conn:
            for chunk in _chunks(list(dict.fromkeys(object_ids))):
                found.update(
                    _pairs(
                        conn.execute(
                            select(v.c.object_id, v.c.blob_id).where(
                                v.c.tenant == tenant,
                                v.c.kind == kind,
                                v.c.object_id.in_(chunk),
                                v.c.valid_to_seq.is_(None),
                            )
                        )
                    )
                )
        return found

    def delta_link(self, tenant: str, kind: str) -> str | None:
        with self._read() as conn:
            return conn.execute(
                select(DELTA_LINK.c.link).where(
                    DELTA_LINK.c.tenant == tenant, DELTA_LINK.c.kind == kind
                )
            ).scalar()

    def history(self, tenant: str, kind: str, object_id: str) -> list[VersionView]:
        v = VERSION
        with self._read() as conn:
            return [
                VersionView(*row)
                for row in conn.execute(
                    select(
                        v.c.kind,
                        v.c.object_id,
                        v.c.label,
                        v.c.blob_id,
                        v.c.valid_from_seq,
                        v.c.valid_to_seq,
                    )
                    .where(v.c.tenant == tenant, v.c.kind == kind, v.c.object_id == object_id)
                    .order_by(v.c.valid_from_seq)
                )
            ]

    # -- comparison ---------------------------------------------------------------------------

    def differences(
        self, tenant: str, from_seq: int, to_seq: int, kinds: Sequence[str] | None = None
    ) -> Iterator[VersionPair]:
        """Objects that differ between two snapshots of a tenant (seq 0 = before the first),
        streamed in (kind, object_id) order; "old" is always ``from_seq``'s side."""
        lo, hi = sorted((from_seq, to_seq))
        query = comparison.snapshot_differences(VERSION, tenant, lo, hi, kinds)
        with self._engine.connect() as conn:
            for kind, object_id, a, b in conn.execution_options(yield_per=2000).execute(query):
                old, new = (a, b) if from_seq <= to_seq else (b, a)
                yield VersionPair(kind, object_id, old, new)

    def staging_differences(
        self, job_id: int, tenant: str, seq: int, kinds: Sequence[str]
    ) -> Iterator[VersionPair]:
        """Objects that differ between snapshot ``seq`` and the full listings job ``job_id``
        staged for ``kinds`` (a live read that is never committed)."""
        if not kinds:
            return
        with self._write() as conn:
            self._drop_superseded(conn, job_id)
        query = comparison.staging_differences(VERSION, STAGED, tenant, seq, job_id, kinds)
        with self._engine.connect() as conn:
            for kind, object_id, a, b in conn.execution_options(yield_per=2000).execute(query):
                yield VersionPair(kind, object_id, a, b)

    def blob_at(self, tenant: str, kind: str, object_id: str, seq: int) -> str | None:
        v = VERSION
        with self._read() as conn:
            return conn.execute(
                select(v.c.blob_id).where(
                    comparison.lookup_valid_at(v, tenant, seq),
                    v.c.kind == kind,
                    v.c.object_id == object_id,
                )
            ).scalar()

    def staged_blob(self, job_id: int, kind: str, object_id: str) -> str | None:
        """The blob of the last put staged by a job for an object (None: not staged)."""
        s = STAGED
        with self._read() as conn:
            row = conn.execute(
                select(s.c.action, s.c.blob_id)
                .where(s.c.job_id == job_id, s.c.kind == kind, s.c.object_id == object_id)
                .order_by(s.c.id.desc())
                .limit(1)
            ).first()
        return row.blob_id if row is not None and row.action == "put" else None

    def snapshots_at(self, tenant: str, seqs: Iterable[int]) -> dict[int, SnapshotView]:
        """A tenant's snapshots by sequence number (unknown numbers are left out)."""
        wanted = sorted(set(seqs))
        with self._read() as conn:
            ids: list[int] = []
            for chunk in _chunks(wanted):
                ids += conn.execute(
                    select(SNAPSHOT.c.id).where(
                        SNAPSHOT.c.tenant == tenant, SNAPSHOT.c.seq.in_(chunk)
                    )
                ).scalars()
            return {view.seq: view for view in self._snapshot_views(conn, ids)}

    def blob_references(self) -> Iterator[tuple[str, str, str, str, int]]:
        """(blob, tenant, kind, object id, from seq) for every blob a version needs: its own
        and the blobs it refers to (blob_child)."""
        v, c = VERSION, BLOB_CHILD
        own = select(v.c.blob_id, v.c.tenant, v.c.kind, v.c.object_id, v.c.valid_from_seq)
        children = select(
            c.c.child, v.c.tenant, v.c.kind, v.c.object_id, v.c.valid_from_seq
        ).select_from(v.join(c, c.c.parent == v.c.blob_id))
        query = union_all(own, children)
        with self._engine.connect() as conn:
            for row in conn.execution_options(yield_per=5000).execute(query):
                yield (row[0], row[1], row[2], row[3], row[4])

    # -- verify -------------------------------------------------------------------------------

    def verify_chain(self, tenant: str | None = None) -> list[str]:
        """Re-compute every snapshot digest from the object versions; readable problems."""
        problems: list[str] = []
        with self._read() as conn:
            tenants = set(conn.execute(select(SNAPSHOT.c.tenant).distinct()).scalars())
            tenants |= set(conn.execute(select(VERSION.c.tenant).distinct()).scalars())
            if tenant is not None:
                tenants &= {tenant}
            for name in sorted(tenants):
                problems += self._verify_tenant(conn, name)
        return problems

    @staticmethod
    def _verify_tenant(conn: Connection, tenant: str) -> list[str]:
        problems: list[str] = []
        snaps = conn.execute(
            select(SNAPSHOT.c.seq, SNAPSHOT.c.digest, SNAPSHOT.c.prev_digest)
            .where(SNAPSHOT.c.tenant == tenant)
            .order_by(SNAPSHOT.c.seq)
        ).all()
        previous = ""
        expected_seq = 1
        for snap in snaps:
            where = f"tenant '{tenant}' snapshot #{snap.seq}"
            if snap.seq != expected_seq:
                gap = f"#{expected_seq}" + (
                    f" to #{snap.seq - 1}" if snap.seq - 1 > expected_seq else ""
                )
                problems.append(f"tenant '{tenant}': snapshot {gap} is missing from the chain")
            if snap.prev_digest != previous:
                problems.append(f"{where}: does not chain to the previous snapshot's digest")
            if _digest(previous, snap.seq, _changes(conn, tenant, snap.seq)) != snap.digest:
                problems.append(
                    f"{where}: its object versions do not match its digest "
                    "(version rows were changed or deleted)"
                )
            previous = snap.digest
            expected_seq = snap.seq + 1
        last = snaps[-1].seq if snaps else 0
        v = VERSION
        beyond = conn.execute(
            select(func.count())
            .select_from(v)
            .where(v.c.tenant == tenant, or_(v.c.valid_from_seq > last, v.c.valid_to_seq > last))
        ).scalar_one()
        if beyond:
            problems.append(
                f"tenant '{tenant}': {beyond} object versions refer to snapshots after the last "
                f"one (#{last})"
            )
        return problems


_TABLES = (
    TENANT,
    JOB,
    EVENT,
    JOB_KIND,
    STAGED,
    FULL_LISTING,
    STAGED_LINK,
    SNAPSHOT,
    SNAPSHOT_KIND,
    VERSION,
    DELTA_LINK,
    BLOB_CHILD,
)


def _check(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise AgentError(f"Unknown {what} '{value}' (expected one of {', '.join(allowed)}).")


def _job_not_found(job_id: int) -> NotFound:
    return NotFound(f"There is no job {job_id}.", "List jobs with 'entra-backup jobs list'.")


def _new_id(result: Any) -> int:
    return int(result.inserted_primary_key[0])


def _pairs(result: Any) -> dict[Any, Any]:
    # not dict(result): a Result has .keys() (column names), so dict() would misread it
    return {row[0]: row[1] for row in result}
