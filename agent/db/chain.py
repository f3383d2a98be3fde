"""The snapshot chain: each snapshot's digest over its changes and the previous digest, and
its verification."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from sqlalchemy import (
    Connection,
    collate,
    exists,
    func,
    or_,
    select,
    union_all,
)

from agent.db.engine import JOB, SNAPSHOT, VERSION, CatalogBase, typed_str


def changes(conn: Connection, tenant: str, seq: int, kind: str | None = None) -> Iterator[str]:
    """The change lines of snapshot ``seq`` (of one ``kind``: that kind's part of them) in
    code-point order, derived from object_version rows only, streamed from the database
    (memory does not grow with the snapshot).

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
        typed_str("-").label("blob"),
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
    if kind is not None:
        puts = puts.where(VERSION.c.kind == kind)
        removed = removed.where(VERSION.c.kind == kind)
    both = union_all(puts, removed).subquery()
    ordered = select(both.c.kind, both.c.object_id, both.c.blob).order_by(
        collate(both.c.kind, collation), collate(both.c.object_id, collation)
    )
    # yield_per for this statement only: set on the connection (commit's write transaction)
    # it would make PostgreSQL run the INSERTs after it through server-side cursors too.
    rows = conn.execute(ordered, execution_options={"yield_per": 5000})
    for kind, object_id, blob in rows:
        yield f"{kind}\t{object_id}\t{blob}"


def digest(prev_digest: str, seq: int, lines: Iterable[str]) -> str:
    return digest_parts(prev_digest, seq, (line.encode("utf-8") + b"\n" for line in lines))


def digest_parts(prev_digest: str, seq: int, parts: Iterable[bytes]) -> str:
    """``digest`` over the change lines given as UTF-8 bytes, each line ending in "\\n",
    cut anywhere (commit hashes the parts prepare stored)."""
    h = hashlib.sha256()
    h.update(prev_digest.encode("ascii") + b"\n" + str(seq).encode("ascii") + b"\n")
    for part in parts:
        h.update(part)
    return h.hexdigest()


class Chain(CatalogBase):
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
            if digest(previous, snap.seq, changes(conn, tenant, snap.seq)) != snap.digest:
                problems.append(
                    f"{where}: its object versions do not match its digest "
                    "(version rows were changed or deleted)"
                )
            previous = snap.digest
            expected_seq = snap.seq + 1
        last = snaps[-1].seq if snaps else 0
        # A running backup's prepared kinds (prepare.py) are versions of the snapshot it
        # will commit, one past the last: not a problem while it runs.
        preparing = conn.execute(
            select(JOB.c.id)
            .where(JOB.c.tenant == tenant, JOB.c.status == "running", JOB.c.job_type == "backup")
            .limit(1)
        ).first()
        allowed = last + 1 if preparing is not None else last
        v = VERSION
        beyond = conn.execute(
            select(func.count())
            .select_from(v)
            .where(
                v.c.tenant == tenant,
                or_(v.c.valid_from_seq > allowed, v.c.valid_to_seq > allowed),
            )
        ).scalar_one()
        if beyond:
            problems.append(
                f"tenant '{tenant}': {beyond} object versions refer to snapshots after the last "
                f"one (#{last})"
            )
        return problems
