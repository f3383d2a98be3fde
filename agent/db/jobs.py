"""Job records: tenants, jobs, per-kind results, the job log, stale-job interruption."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from agent.db.engine import (
    EVENT,
    JOB,
    JOB_KIND,
    TENANT,
    CatalogBase,
    aware,
    check,
    chunks,
    job_not_found,
    new_id,
    utcnow,
)
from agent.db.staging import discard
from agent.db.views import (
    JOB_STATUSES,
    JOB_TYPES,
    KIND_STATUSES,
    MODES,
    EventView,
    JobView,
    KindResult,
)
from agent.errors import JobConflict, NotFound


class JobRecords(CatalogBase):
    def ensure_tenant(self, name: str, tenant_id: str) -> None:
        with self._write() as conn:
            row = conn.execute(select(TENANT.c.tenant_id).where(TENANT.c.name == name)).first()
            if row is None:
                conn.execute(
                    insert(TENANT).values(name=name, tenant_id=tenant_id, created_at=utcnow())
                )
            elif row.tenant_id != tenant_id:
                conn.execute(
                    update(TENANT).where(TENANT.c.name == name).values(tenant_id=tenant_id)
                )

    def start_job(
        self, tenant: str, *, job_type: str, mode: str, scope: str, host: str, pid: int
    ) -> int:
        check(job_type, JOB_TYPES, "job type")
        check(mode, MODES, "mode")
        now = utcnow()
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
                return new_id(result)
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
                .values(heartbeat_at=utcnow())
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
                    ts=utcnow(),
                    level=level,
                    kind=kind,
                    object_id=object_id,
                    message=message,
                )
            )

    def record_kind(self, job_id: int, result: KindResult) -> None:
        check(result.status, KIND_STATUSES, "kind status")
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
        check(status, JOB_STATUSES[1:], "final job status")
        values: dict[str, Any] = {
            "status": status,
            "running_tenant": None,
            "finished_at": utcnow(),
            "error": error,
        }
        if stats is not None:
            values["stats"] = stats
        with self._write() as conn:
            done = conn.execute(update(JOB).where(JOB.c.id == job_id).values(**values))
            if not done.rowcount:
                raise job_not_found(job_id)

    def interrupt_stale_jobs(
        self, *, host: str, is_alive: Callable[[int], bool], stale_after_s: float
    ) -> list[int]:
        now = utcnow()
        cutoff = now - dt.timedelta(seconds=stale_after_s)
        with self._read() as conn:
            running = conn.execute(
                select(JOB.c.id, JOB.c.host, JOB.c.pid, JOB.c.heartbeat_at, JOB.c.started_at)
                .where(JOB.c.status == "running")
                .order_by(JOB.c.id)
            ).all()
        interrupted: list[int] = []
        for row in running:
            beat = aware(row.heartbeat_at or row.started_at) or now
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
                    discard(conn, row.id)
                    interrupted.append(int(row.id))
        return interrupted

    def job(self, job_id: int) -> JobView:
        with self._read() as conn:
            row = conn.execute(select(JOB).where(JOB.c.id == job_id)).first()
            if row is None:
                raise job_not_found(job_id)
            return self._job_views(conn, [row])[0]

    def jobs(self, tenant: str | None = None, limit: int = 50) -> list[JobView]:
        query = select(JOB).order_by(JOB.c.id.desc()).limit(limit)
        if tenant is not None:
            query = query.where(JOB.c.tenant == tenant)
        with self._read() as conn:
            return self._job_views(conn, list(conn.execute(query)))

    def _job_views(self, conn: Connection, rows: Sequence[Any]) -> list[JobView]:
        by_job: dict[int, list[KindResult]] = {row.id: [] for row in rows}
        for chunk in chunks(list(by_job)):
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
                    started_at=aware(row.started_at),
                    finished_at=aware(row.finished_at),
                    heartbeat_at=aware(row.heartbeat_at),
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
                raise job_not_found(job_id)
            return [
                EventView(
                    id=e.id,
                    job_id=e.job_id,
                    ts=aware(e.ts),
                    level=e.level,
                    kind=e.kind,
                    object_id=e.object_id,
                    message=e.message,
                )
                for e in conn.execute(
                    select(EVENT).where(EVENT.c.job_id == job_id).order_by(EVENT.c.id)
                )
            ]
