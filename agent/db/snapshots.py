"""Snapshots: commit a job's staging as one snapshot (set-based SQL, no per-row round trips),
and read snapshots back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)

from agent.db.chain import changes, digest
from agent.db.engine import (
    DELTA_LINK,
    FULL_LISTING,
    JOB,
    JOB_KIND,
    SNAPSHOT,
    SNAPSHOT_KIND,
    STAGED,
    STAGED_LINK,
    VERSION,
    CatalogBase,
    aware,
    chunks,
    job_not_found,
    new_id,
    pairs,
    typed_str,
    utcnow,
)
from agent.db.staging import discard, drop_superseded
from agent.db.views import SnapshotKindView, SnapshotView
from agent.errors import JobConflict, NotFound

_SAME = "same"  # commit-internal: a put identical to the open version


class Snapshots(CatalogBase):
    def commit_snapshot(self, job_id: int) -> SnapshotView:
        with self._write() as conn:
            job = conn.execute(select(JOB).where(JOB.c.id == job_id)).first()
            if job is None:
                raise job_not_found(job_id)
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
            results = pairs(
                conn.execute(
                    select(JOB_KIND.c.kind, JOB_KIND.c.status).where(JOB_KIND.c.job_id == job_id)
                )
            )
            # Failed kinds (and kinds with no result) are not applied: their state carries.
            applied = sorted(k for k, status in results.items() if status != "failed")
            if applied:
                drop_superseded(conn, job_id)
                apply(conn, job_id, tenant, seq, applied)
            lines = changes(conn, tenant, seq)
            prev_digest = prev.digest if prev else ""
            now = utcnow()
            snapshot_id = new_id(
                conn.execute(
                    insert(SNAPSHOT).values(
                        tenant=tenant,
                        seq=seq,
                        job_id=job_id,
                        mode=job.mode,
                        created_at=job.started_at,
                        completed_at=now,
                        digest=digest(prev_digest, seq, lines),
                        prev_digest=prev_digest,
                        object_count=0,
                    )
                )
            )
            total = record_kinds(conn, tenant, seq, snapshot_id, prev.id if prev else None, results)
            conn.execute(
                update(SNAPSHOT).where(SNAPSHOT.c.id == snapshot_id).values(object_count=total)
            )
            conn.execute(update(JOB).where(JOB.c.id == job_id).values(snapshot_id=snapshot_id))
            discard(conn, job_id)
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


def apply(conn: Connection, job_id: int, tenant: str, seq: int, kinds: list[str]) -> None:
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
                typed_str(tenant), s.c.kind, s.c.object_id, s.c.label, s.c.blob_id, literal(seq)
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


def record_kinds(
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
        earlier = pairs(
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
