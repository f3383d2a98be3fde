"""Staging: what a running job read, held back until its snapshot commits."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    Connection,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from agent.db.engine import (
    BLOB_CHILD,
    FULL_LISTING,
    JOB,
    STAGED,
    STAGED_CHANGE,
    STAGED_LINK,
    STAGED_PREPARED,
    VERSION,
    CatalogBase,
    check,
    last_seq,
)
from agent.db.prepare import apply_new
from agent.db.rows import insert_catalog_rows
from agent.db.views import ACTIONS, StagedObject


class Staging(CatalogBase):
    def stage(self, job_id: int, rows: Iterable[StagedObject]) -> None:
        latest: dict[tuple[str, str], StagedObject] = {}
        for row in rows:
            check(row.action, ACTIONS, "staged action")
            if (row.action == "put") != (row.blob_id is not None):
                raise ValueError(f"staged {row.kind} {row.object_id}: put needs a blob id")
            latest[(row.kind, row.object_id)] = row  # the last one wins within a batch
        if not latest:
            return
        # Plain bulk insert, no per-row lookups: a repeat from an earlier batch is resolved at
        # commit (highest id wins), which keeps staging fast on any database. Tuples straight
        # to the driver's executemany: SQLAlchemy's insert() builds and processes a parameter
        # dict per row, several times the cost of the insert itself.
        with self._write() as conn:
            # puts of objects new to the catalog are written as versions at once (prepare.py)
            if rest := apply_new(conn, job_id, list(latest.values())):
                insert_catalog_rows(
                    conn,
                    _INSERT_STAGED,
                    [(job_id, r.kind, r.object_id, r.label, r.action, r.blob_id) for r in rest],
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
            discard(conn, job_id)


_STAGED_COLUMNS = ("job_id", "kind", "object_id", "label", "action", "blob_id")


_INSERT_STAGED = f"INSERT INTO {STAGED.name} ({', '.join(_STAGED_COLUMNS)}) VALUES"


def discard(conn: Connection, job_id: int, *, committed: bool = False) -> None:
    """Drop a job's staging; unless its snapshot was ``committed``, first undo the versions its
    prepared kinds wrote (prepare.py)."""
    if not committed:
        undo_prepared(conn, job_id)
    for table in (STAGED, FULL_LISTING, STAGED_LINK, STAGED_PREPARED, STAGED_CHANGE):
        conn.execute(delete(table).where(table.c.job_id == job_id))


def undo_prepared(conn: Connection, job_id: int) -> None:
    """Undo what preparing this job's kinds did to object versions (before its staging goes).

    Only the tenant's running job (or one just found dead) prepares, so every version past the
    tenant's last snapshot is this job's."""
    job = conn.execute(select(JOB.c.tenant, JOB.c.job_type).where(JOB.c.id == job_id)).first()
    if job is None or job.job_type != "backup":
        return
    tenant = job.tenant
    other = conn.execute(
        select(JOB.c.id).where(JOB.c.running_tenant == tenant, JOB.c.id != job_id)
    ).first()
    if other is not None:
        return  # found dead and undone then; what is past the last snapshot is the new job's
    last = last_seq(conn, tenant)
    v = VERSION
    conn.execute(delete(v).where(v.c.tenant == tenant, v.c.valid_from_seq > last))
    conn.execute(
        update(v).where(v.c.tenant == tenant, v.c.valid_to_seq > last).values(valid_to_seq=None)
    )
