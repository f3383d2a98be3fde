"""Object state: versions valid at a snapshot, an object's history, delta links, and the
objects that differ between two points in time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import (
    or_,
    select,
    union_all,
)

from agent.db import comparison
from agent.db.engine import (
    BLOB_CHILD,
    DELTA_LINK,
    STAGED,
    VERSION,
    CatalogBase,
    chunks,
    last_seq,
    pairs,
)
from agent.db.prepare import drop_superseded
from agent.db.views import VersionPair, VersionView

# The version columns in VersionView's field order.
_VERSION_VIEW = (
    VERSION.c.kind,
    VERSION.c.object_id,
    VERSION.c.label,
    VERSION.c.blob_id,
    VERSION.c.valid_from_seq,
    VERSION.c.valid_to_seq,
)


class ObjectState(CatalogBase):
    def state(self, tenant: str, seq: int, kind: str | None = None) -> Iterator[VersionView]:
        v = VERSION
        query = (
            select(*_VERSION_VIEW)
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
        """The blobs of these objects in the last snapshot (a running job's early versions,
        prepare.py, are past it)."""
        v = VERSION
        found: dict[str, str] = {}
        with self._read() as conn:
            last = last_seq(conn, tenant)
            for chunk in chunks(list(dict.fromkeys(object_ids))):
                found.update(
                    pairs(
                        conn.execute(
                            select(v.c.object_id, v.c.blob_id).where(
                                v.c.tenant == tenant,
                                v.c.kind == kind,
                                v.c.object_id.in_(chunk),
                                v.c.valid_from_seq <= last,
                                or_(v.c.valid_to_seq.is_(None), v.c.valid_to_seq > last),
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
        """An object's versions in committed snapshots (a running job's prepared kinds,
        prepare.py, are past the last snapshot: left out, their closing not yet true)."""
        v = VERSION
        with self._read() as conn:
            last = last_seq(conn, tenant)
            rows = conn.execute(
                select(*_VERSION_VIEW)
                .where(
                    v.c.tenant == tenant,
                    v.c.kind == kind,
                    v.c.object_id == object_id,
                    v.c.valid_from_seq <= last,
                )
                .order_by(v.c.valid_from_seq)
            ).all()
        return [
            VersionView(*row[:5], row[5] if row[5] is None or row[5] <= last else None)
            for row in rows
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
            drop_superseded(conn, job_id)
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
