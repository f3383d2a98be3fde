"""Snapshots: commit a job's staging as one snapshot (set-based SQL, no per-row round trips;
kinds whose collectors finished early are already prepared, prepare.py), and read snapshots
back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    delete,
    func,
    insert,
    select,
    update,
)

from agent.db.chain import digest_parts
from agent.db.engine import (
    DELTA_LINK,
    JOB,
    JOB_KIND,
    SNAPSHOT,
    SNAPSHOT_KIND,
    STAGED_LINK,
    STAGED_PREPARED,
    VERSION,
    CatalogBase,
    aware,
    chunks,
    job_not_found,
    last_seq,
    new_id,
    pairs,
    utcnow,
)
from agent.db.prepare import prepare, stored_lines
from agent.db.staging import discard
from agent.db.views import SnapshotKindView, SnapshotView
from agent.errors import JobConflict, NotFound


class Snapshots(CatalogBase):
    def prepare_kinds(self, job_id: int, kinds: list[str]) -> None:
        """Apply a running job's staged rows of ``kinds`` (their collectors are done, their
        results recorded) ahead of its commit, invisibly until then (prepare.py)."""
        if not kinds:
            return
        with self._write() as conn:
            job = _running(conn, job_id, "prepare its kinds")
            seq = last_seq(conn, job.tenant) + 1
            done = set(
                conn.execute(
                    select(STAGED_PREPARED.c.kind).where(STAGED_PREPARED.c.job_id == job_id)
                ).scalars()
            )
            prepare(conn, job_id, job.tenant, seq, sorted(set(kinds) - done))

    def commit_snapshot(self, job_id: int) -> SnapshotView:
        with self._write() as conn:
            job = _running(conn, job_id, "commit a snapshot")
            tenant: str = job.tenant
            prev = conn.execute(
                select(SNAPSHOT.c.id, SNAPSHOT.c.seq, SNAPSHOT.c.digest)
                .where(SNAPSHOT.c.tenant == tenant)
                .order_by(SNAPSHOT.c.seq.desc())
                .limit(1)
            ).first()
            seq = prev.seq + 1 if prev else 1
            results = pairs(
                conn.execute(
                    select(JOB_KIND.c.kind, JOB_KIND.c.status).where(JOB_KIND.c.job_id == job_id)
                )
            )
            prepared = {
                row.kind: row
                for row in conn.execute(
                    select(STAGED_PREPARED).where(STAGED_PREPARED.c.job_id == job_id)
                )
            }
            if any(row.seq != seq for row in prepared.values()):
                raise JobConflict(
                    f"Job {job_id} prepared its kinds for a snapshot other than #{seq}; "
                    "it cannot commit a snapshot.",
                    "Start a new backup job.",
                )
            # Failed kinds (and kinds with no result) are not applied: their state carries.
            applied = sorted(k for k, status in results.items() if status != "failed")
            prepare(conn, job_id, tenant, seq, [k for k in applied if k not in prepared])
            # A failed kind's batches applied early (prepare.apply_new) are not part of it.
            conn.execute(
                delete(VERSION).where(
                    VERSION.c.tenant == tenant,
                    VERSION.c.valid_from_seq == seq,
                    VERSION.c.kind.not_in(applied),
                )
            )
            apply_links(conn, job_id, tenant, seq, applied)
            prev_digest = prev.digest if prev else ""
            snapshot_id = new_id(
                conn.execute(
                    insert(SNAPSHOT).values(
                        tenant=tenant,
                        seq=seq,
                        job_id=job_id,
                        mode=job.mode,
                        created_at=job.started_at,
                        completed_at=utcnow(),
                        digest=digest_parts(prev_digest, seq, stored_lines(conn, job_id)),
                        prev_digest=prev_digest,
                        object_count=0,
                    )
                )
            )
            total = record_kinds(conn, job_id, seq, snapshot_id, prev.id if prev else None, results)
            conn.execute(
                update(SNAPSHOT).where(SNAPSHOT.c.id == snapshot_id).values(object_count=total)
            )
            conn.execute(update(JOB).where(JOB.c.id == job_id).values(snapshot_id=snapshot_id))
            discard(conn, job_id, committed=True)
            return snapshot_views(conn, [snapshot_id])[0]

    # -- reading snapshots --------------------------------------------------------------------

    def snapshots(self, tenant: str | None = None, limit: int = 100) -> list[SnapshotView]:
        query = select(SNAPSHOT.c.id).order_by(SNAPSHOT.c.id.desc()).limit(limit)
        if tenant is not None:
            query = query.where(SNAPSHOT.c.tenant == tenant)
        with self._read() as conn:
            return snapshot_views(conn, list(conn.execute(query).scalars()))

    def snapshot(self, ref: int) -> SnapshotView:
        with self._read() as conn:
            views = snapshot_views(conn, [ref])
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
            return snapshot_views(conn, [ref])[0] if ref is not None else None

    def snapshots_at(self, tenant: str, seqs: Iterable[int]) -> dict[int, SnapshotView]:
        """A tenant's snapshots by sequence number (unknown numbers are left out)."""
        wanted = sorted(set(seqs))
        with self._read() as conn:
            ids: list[int] = []
            for chunk in chunks(wanted):
                ids += conn.execute(
                    select(SNAPSHOT.c.id).where(
                        SNAPSHOT.c.tenant == tenant, SNAPSHOT.c.seq.in_(chunk)
                    )
                ).scalars()
            return {view.seq: view for view in snapshot_views(conn, ids)}


def _running(conn: Connection, job_id: int, what: str) -> Any:
    job = conn.execute(select(JOB).where(JOB.c.id == job_id)).first()
    if job is None:
        raise job_not_found(job_id)
    if job.status != "running" or job.snapshot_id is not None:
        raise JobConflict(
            f"Job {job_id} is {job.status}"
            + (f" and already made snapshot {job.snapshot_id}" if job.snapshot_id else "")
            + f"; it cannot {what}.",
            "Start a new backup job.",
        )
    return job


def apply_links(conn: Connection, job_id: int, tenant: str, seq: int, kinds: list[str]) -> None:
    """The delta positions staged for ``kinds`` replace the stored ones."""
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


def record_kinds(
    conn: Connection,
    job_id: int,
    seq: int,
    snapshot_id: int,
    prev_snapshot_id: int | None,
    results: dict[str, str],
) -> int:
    """snapshot_kind rows: prepared kinds' figures as prepare counted them; every other kind
    with versions is carried unchanged (its open versions counted)."""
    prepared = {
        row.kind: row
        for row in conn.execute(select(STAGED_PREPARED).where(STAGED_PREPARED.c.job_id == job_id))
    }
    v = VERSION
    snapshot = conn.execute(select(SNAPSHOT.c.tenant).where(SNAPSHOT.c.id == snapshot_id))
    tenant = snapshot.scalar_one()
    earlier: dict[str, int | None] = {}
    if prev_snapshot_id is not None:
        earlier = pairs(
            conn.execute(
                select(SNAPSHOT_KIND.c.kind, SNAPSHOT_KIND.c.captured_seq).where(
                    SNAPSHOT_KIND.c.snapshot_id == prev_snapshot_id
                )
            )
        )
    # Every kind with versions is in the previous snapshot's list (this function lists them
    # all): the carried ones are counted there only, not over the whole tenant.
    carried = sorted((set(earlier) | set(results)) - set(prepared))
    objects: dict[str, int] = {}
    for chunk in chunks(carried):
        objects.update(
            (k, int(n))
            for k, n in conn.execute(
                select(v.c.kind, func.count())
                .where(v.c.tenant == tenant, v.c.valid_to_seq.is_(None), v.c.kind.in_(chunk))
                .group_by(v.c.kind)
            )
        )
    objects.update({k: row.objects for k, row in prepared.items()})
    rows = []
    for kind in sorted({k for k, n in objects.items() if n} | set(results)):
        captured = results.get(kind) in ("succeeded", "partial")
        done = prepared.get(kind)
        rows.append(
            {
                "snapshot_id": snapshot_id,
                "kind": kind,
                "status": "captured" if captured else "carried",
                "captured_seq": seq if captured else earlier.get(kind),
                "objects": objects.get(kind, 0),
                "added": done.added if done else 0,
                "changed": done.changed if done else 0,
                "removed": done.removed if done else 0,
            }
        )
    if rows:
        conn.execute(insert(SNAPSHOT_KIND), rows)
    return sum(objects.values())


def snapshot_views(conn: Connection, ids: Sequence[int]) -> list[SnapshotView]:
    """Views in the order of ``ids``; unknown ids are left out."""
    if not ids:
        return []
    kinds: dict[int, list[SnapshotKindView]] = {i: [] for i in ids}
    rows: dict[int, Any] = {}
    for chunk in chunks(list(ids)):
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
            created_at=aware(r.created_at),
            completed_at=aware(r.completed_at),
            digest=r.digest,
            object_count=r.object_count,
            kinds=kinds[r.id],
        )
        for r in (rows.get(i) for i in ids)
        if r is not None
    ]
