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
snapshot_kind figures, so commit only hashes stored lines and copies counts.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, literal, select, update

from agent.db.chain import changes
from agent.db.engine import (
    FULL_LISTING,
    STAGED,
    STAGED_CHANGE,
    STAGED_PREPARED,
    VERSION,
    typed_str,
)
from agent.db.staging import drop_superseded

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
    for kind in kinds:
        drop_superseded(conn, job_id, kind)
        done = apply_kind(conn, job_id, tenant, seq, kind)
        for part, chunk in enumerate(_parts(changes(conn, tenant, seq, kind))):
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


def _parts(lines: Iterator[str]) -> Iterator[bytes]:
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= LINES_PER_PART:
            yield ("\n".join(chunk) + "\n").encode("utf-8")
            chunk = []
    if chunk:
        yield ("\n".join(chunk) + "\n").encode("utf-8")


def apply_kind(conn: Connection, job_id: int, tenant: str, seq: int, kind: str) -> Applied:
    """Turn this job's staged rows of ``kind`` into versions valid from ``seq``."""
    v, s = VERSION, STAGED
    is_open = and_(v.c.tenant == tenant, v.c.kind == kind, v.c.valid_to_seq.is_(None))

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
    inserted = conn.execute(
        insert(v).from_select(
            ["tenant", "kind", "object_id", "label", "blob_id", "valid_from_seq"],
            select(typed_str(tenant), s.c.kind, s.c.object_id, s.c.label, s.c.blob_id, literal(seq))
            .where(s.c.job_id == job_id, s.c.kind == kind, s.c.action == "put")
            .order_by(s.c.object_id),
        )
    ).rowcount
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
    objects = int(conn.execute(select(func.count()).where(is_open)).scalar_one())
    return Applied(inserted=inserted, closed=closed, changed=changed, objects=objects)
