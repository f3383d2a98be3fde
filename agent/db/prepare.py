"""Preparing a kind: a running job's staged rows of one kind turned into the object versions of
the snapshot the job will commit, while the job's other collectors still read.

Versions are intervals over snapshot sequence numbers (models.py), and one job per tenant runs
at a time (job.running_tenant), so the snapshot a job will commit is known from the start:
one past the tenant's last. A prepared kind's new versions start there and the versions they
replace end there: no committed snapshot contains either change (every reader asks for a
committed sequence number), so they are invisible until ``commit_snapshot`` adds that
snapshot. A job that is discarded instead (failed, cancelled, found dead) has its prepared
versions undone (staging.discard): nothing past the last snapshot is left.

Each kind is prepared in one transaction, with its change lines (chain.changes) and its
snapshot_kind figures, so commit only hashes stored lines and copies counts. Before that, each
batch a backup job stages applies its puts of objects that have no version yet (all of them on
a tenant's first backup) at once (``apply_new``): what is left for the kind's prepare is the
objects that replace, match or remove a version.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, literal, select, update

from agent.db.engine import (
    FULL_LISTING,
    JOB,
    STAGED,
    STAGED_CHANGE,
    STAGED_PREPARED,
    VERSION,
    chunks,
    last_seq,
    typed_str,
)
from agent.db.rows import driver_mark, insert_catalog_rows
from agent.db.views import StagedObject

_SAME = "same"  # prepare-internal: a put identical to the open version
LINES_PER_PART = 5000  # change lines per stored part (~0.5 MB before compression)


@dataclass(frozen=True)
class Applied:
    inserted: int
    closed: int
    changed: int
    objects: int


def prepare(conn: Connection, job_id: int, tenant: str, seq: int, kinds: list[str]) -> None:
    """Turn this job's staged rows of ``kinds`` into versions valid from ``seq``, store their
    change lines and counts, and drop their staged rows."""
    if conn.dialect.name == "postgresql" and kinds:
        # Staging fills faster than autovacuum samples it: planned on stale statistics, the
        # EXISTS joins below over a staging of thousands of rows run as nested scans.
        conn.exec_driver_sql(f"ANALYZE {STAGED.name}")
    for kind in kinds:
        drop_superseded(conn, job_id, kind)
        done = apply_kind(conn, job_id, tenant, seq, kind)
        for part, chunk in enumerate(kind_lines(conn, tenant, seq, kind)):
            conn.execute(
                insert(STAGED_CHANGE).values(
                    job_id=job_id, kind=kind, part=part, lines=zlib.compress(chunk, 1)
                )
            )
        for table in (STAGED, FULL_LISTING):
            conn.execute(delete(table).where(table.c.job_id == job_id, table.c.kind == kind))
        conn.execute(
            insert(STAGED_PREPARED).values(
                job_id=job_id,
                kind=kind,
                seq=seq,
                objects=done.objects,
                added=done.inserted - done.changed,
                changed=done.changed,
                removed=done.closed - done.changed,
            )
        )


def stored_lines(conn: Connection, job_id: int) -> Iterator[bytes]:
    """The prepared kinds' change lines, in the order chain.changes yields them (kinds in
    code-point order: Python's str order; within a kind as stored)."""
    kinds = conn.execute(
        select(STAGED_CHANGE.c.kind).where(STAGED_CHANGE.c.job_id == job_id).distinct()
    ).scalars()
    for kind in sorted(kinds):
        for part in range(_count_parts(conn, job_id, kind)):
            yield zlib.decompress(
                conn.execute(
                    select(STAGED_CHANGE.c.lines).where(
                        STAGED_CHANGE.c.job_id == job_id,
                        STAGED_CHANGE.c.kind == kind,
                        STAGED_CHANGE.c.part == part,
                    )
                ).scalar_one()
            )


def _count_parts(conn: Connection, job_id: int, kind: str) -> int:
    return int(
        conn.execute(
            select(func.count()).where(
                STAGED_CHANGE.c.job_id == job_id, STAGED_CHANGE.c.kind == kind
            )
        ).scalar_one()
    )


def kind_lines(conn: Connection, tenant: str, seq: int, kind: str) -> Iterator[bytes]:
    """chain.changes(conn, tenant, seq, kind) as UTF-8 bytes, LINES_PER_PART lines a part.

    The same query in plain SQL on the driver's cursor: a big kind's lines are on the
    critical path when its collector is the last to finish, and SQLAlchemy's rows cost more
    than the query."""
    mark = driver_mark(conn)
    collation = '"C"' if conn.dialect.name == "postgresql" else "BINARY"
    table = VERSION.name
    sql = (
        f"SELECT object_id, blob FROM ("
        f"SELECT object_id, blob_id AS blob FROM {table} "
        f"WHERE tenant = {mark} AND valid_from_seq = {mark} AND kind = {mark} "
        f"UNION ALL SELECT v.object_id, '-' FROM {table} v "
        f"WHERE v.tenant = {mark} AND v.valid_to_seq = {mark} AND v.kind = {mark} "
        f"AND NOT EXISTS (SELECT 1 FROM {table} n WHERE n.tenant = {mark} AND n.kind = v.kind "
        f"AND n.object_id = v.object_id AND n.valid_from_seq = {mark})"
        f") AS c ORDER BY object_id COLLATE {collation}"
    )
    cursor = conn.connection.cursor()
    try:
        _execute(conn, cursor, sql, (tenant, seq, kind, tenant, seq, kind, tenant, seq))
        prefix = f"{kind}\t"
        while rows := cursor.fetchmany(LINES_PER_PART):
            yield "".join(f"{prefix}{oid}\t{blob}\n" for oid, blob in rows).encode("utf-8")
    finally:
        cursor.close()


def _execute(conn: Connection, cursor: Any, sql: str, params: tuple[Any, ...]) -> None:
    # psycopg prepares a statement run 5 times on the server, and PostgreSQL then plans it
    # once for any values: for these it picks scans of the whole tenant (0.5 s a batch).
    if conn.dialect.name == "postgresql":
        cursor.execute(sql, params, prepare=False)
    else:
        cursor.execute(sql, params)


def drop_superseded(conn: Connection, job_id: int, kind: str | None = None) -> None:
    """An object staged more than once in a job (of ``kind``, or of any): the last row wins."""
    later = STAGED.alias("later")
    query = delete(STAGED).where(
        STAGED.c.job_id == job_id,
        exists().where(
            later.c.job_id == job_id,
            later.c.kind == STAGED.c.kind,
            later.c.object_id == STAGED.c.object_id,
            later.c.id > STAGED.c.id,
        ),
    )
    conn.execute(query if kind is None else query.where(STAGED.c.kind == kind))


def apply_new(conn: Connection, job_id: int, rows: list[StagedObject]) -> list[StagedObject]:
    """A backup job's batch about to be staged: its puts of objects with no open version and
    no row staged yet become versions of the job's snapshot now, written straight to
    object_version; the rows left to stage are returned. A later row for such an object is
    staged, and the kind's prepare replaces the early version with it (the last row wins)."""
    job = conn.execute(
        select(JOB.c.tenant, JOB.c.job_type, JOB.c.status).where(JOB.c.id == job_id)
    ).first()
    if job is None or job.job_type != "backup" or job.status != "running":
        return rows  # a compare job never commits; a job found dead stages for nothing
    known: set[tuple[str, str]] = set()
    puts: dict[str, list[str]] = {}
    for row in rows:
        if row.action == "put":
            puts.setdefault(row.kind, []).append(row.object_id)
    # Plain SQL on the driver's cursor: SQLAlchemy's handling of 500 bound ids costs more
    # than the index lookups themselves.
    mark = driver_mark(conn)
    cursor = conn.connection.cursor()
    try:
        for kind, ids in puts.items():
            for chunk in chunks(ids):
                marks = ", ".join([mark] * len(chunk))
                open_versions = (
                    f"SELECT object_id FROM {VERSION.name} WHERE tenant = {mark} AND "
                    f"kind = {mark} AND valid_to_seq IS NULL AND object_id IN ({marks})"
                )
                staged = (
                    f"SELECT object_id FROM {STAGED.name} WHERE job_id = {mark} AND "
                    f"kind = {mark} AND object_id IN ({marks})"
                )
                for sql, params in (
                    (open_versions, (job.tenant, kind, *chunk)),
                    (staged, (job_id, kind, *chunk)),
                ):
                    _execute(conn, cursor, sql, params)
                    known.update((kind, oid) for (oid,) in cursor.fetchall())
    finally:
        cursor.close()
    new = [r for r in rows if r.action == "put" and (r.kind, r.object_id) not in known]
    if new:
        seq = last_seq(conn, job.tenant) + 1
        insert_catalog_rows(
            conn,
            f"INSERT INTO {VERSION.name} (tenant, kind, object_id, label, blob_id, valid_from_seq) "
            "VALUES",
            [
                (job.tenant, r.kind, r.object_id, r.label, r.blob_id, seq)
                for r in sorted(new, key=lambda r: (r.kind, r.object_id))
            ],
        )
    return [r for r in rows if r.action != "put" or (r.kind, r.object_id) in known]


def apply_kind(conn: Connection, job_id: int, tenant: str, seq: int, kind: str) -> Applied:
    """Turn this job's staged rows of ``kind`` into versions valid from ``seq``."""
    v, s = VERSION, STAGED
    # An early version (apply_new) of an object staged again after it: the later row wins.
    conn.execute(
        delete(v).where(
            v.c.tenant == tenant,
            v.c.valid_from_seq == seq,
            v.c.kind == kind,
            exists().where(s.c.job_id == job_id, s.c.kind == kind, s.c.object_id == v.c.object_id),
        )
    )
    # Open in the last snapshot (an early version is open too, but never replaced or closed:
    # its object is no longer staged).
    is_open = and_(
        v.c.tenant == tenant,
        v.c.kind == kind,
        v.c.valid_to_seq.is_(None),
        v.c.valid_from_seq != seq,  # not "<": the index by object serves these, not by seq
    )

    def staged(*actions: str) -> Any:
        return exists().where(
            s.c.job_id == job_id,
            s.c.kind == kind,
            s.c.object_id == v.c.object_id,
            s.c.action.in_(actions),
        )

    closed = 0
    # Nothing of the kind is open (its first capture): nothing can be the same or closed.
    if conn.execute(select(v.c.id).where(is_open).limit(1)).first() is not None:
        # 1. A put whose content equals the open version changes nothing: mark it "same"
        #    first, so the INSERT below never reads the table it writes (on PostgreSQL such a
        #    self-referencing anti-join scans the growing heap once per row).
        conn.execute(
            update(s)
            .where(
                s.c.job_id == job_id,
                s.c.kind == kind,
                s.c.action == "put",
                exists().where(
                    v.c.tenant == tenant,
                    v.c.kind == kind,
                    v.c.object_id == s.c.object_id,
                    v.c.valid_to_seq.is_(None),
                    v.c.blob_id == s.c.blob_id,
                ),
            )
            .values(action=_SAME)
        )
        # 2. Close what is replaced (a put left), removed, or absent from a full listing.
        close = update(v).values(valid_to_seq=seq)
        closed += conn.execute(close.where(is_open, staged("put", "remove"))).rowcount
        full = conn.execute(
            select(FULL_LISTING.c.kind).where(
                FULL_LISTING.c.job_id == job_id, FULL_LISTING.c.kind == kind
            )
        ).first()
        if full is not None:
            closed += conn.execute(close.where(is_open, ~staged("put", "keep", _SAME))).rowcount
    # 3. Every remaining put is a new version (in index order: the inserts into the version
    #    index by object land next to each other).
    conn.execute(
        insert(v).from_select(
            ["tenant", "kind", "object_id", "label", "blob_id", "valid_from_seq"],
            select(typed_str(tenant), s.c.kind, s.c.object_id, s.c.label, s.c.blob_id, literal(seq))
            .where(s.c.job_id == job_id, s.c.kind == kind, s.c.action == "put")
            .order_by(s.c.object_id),
        )
    )
    inserted = int(
        conn.execute(
            select(func.count()).where(
                v.c.tenant == tenant, v.c.valid_from_seq == seq, v.c.kind == kind
            )
        ).scalar_one()
    )
    changed = 0
    if closed:
        after = v.alias("after")
        changed = int(
            conn.execute(
                select(func.count()).where(
                    v.c.tenant == tenant,
                    v.c.kind == kind,
                    v.c.valid_to_seq == seq,
                    exists().where(
                        after.c.tenant == tenant,
                        after.c.kind == kind,
                        after.c.object_id == v.c.object_id,
                        after.c.valid_from_seq == seq,
                    ),
                )
            ).scalar_one()
        )
    objects = int(
        conn.execute(
            select(func.count()).where(
                v.c.tenant == tenant, v.c.kind == kind, v.c.valid_to_seq.is_(None)
            )
        ).scalar_one()
    )
    return Applied(inserted=inserted, closed=closed, changed=changed, objects=objects)
