"""Catalog queries that find what differs between two points in time, in the database.

Only objects whose blob differs cross into Python, ordered by kind and object id, so a diff of
two large snapshots costs memory in the number of differences, never in tenant size. Both
queries answer rows ``(kind, object_id, old_blob, new_blob)``; a None blob means the object is
absent on that side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, Table, and_, exists, null, or_, select, true, union_all
from sqlalchemy import cast as sql_cast


def valid_at(v: Any, tenant: str, seq: int) -> Any:
    """The version rows of ``v`` that make up snapshot ``seq``."""
    return and_(
        v.c.tenant == tenant,
        v.c.valid_from_seq <= seq,
        or_(v.c.valid_to_seq.is_(None), v.c.valid_to_seq > seq),
    )


def lookup_valid_at(v: Any, tenant: str, seq: int) -> Any:
    """``valid_at`` for looking up one object's version: ``+ 0`` keeps the planner off the
    (tenant, valid_from_seq) index, which SQLite otherwise prefers over the object index and
    then scans every older version per lookup."""
    return and_(
        v.c.tenant == tenant,
        (v.c.valid_from_seq + 0) <= seq,
        or_(v.c.valid_to_seq.is_(None), v.c.valid_to_seq > seq),
    )


def _kinds(column: Any, kinds: Sequence[str] | None) -> Any:
    return column.in_(list(kinds)) if kinds is not None else true()


def _none() -> Any:
    return sql_cast(null(), String)


def snapshot_differences(
    version: Table, tenant: str, lo: int, hi: int, kinds: Sequence[str] | None
) -> Any:
    """Objects that differ between snapshot ``lo`` and snapshot ``hi`` (lo < hi).

    Only versions that end or start between the two can differ, so both halves read the
    version rows by their range indexes instead of both whole states.
    """
    old, new, was = version.alias("old"), version.alias("new"), version.alias("was")
    same_object = and_(new.c.kind == old.c.kind, new.c.object_id == old.c.object_id)
    ended = (
        select(
            old.c.kind,
            old.c.object_id,
            old.c.blob_id.label("old_blob"),
            new.c.blob_id.label("new_blob"),
        )
        .select_from(old.outerjoin(new, and_(same_object, lookup_valid_at(new, tenant, hi))))
        .where(
            old.c.tenant == tenant,
            old.c.valid_from_seq <= lo,
            old.c.valid_to_seq > lo,
            old.c.valid_to_seq <= hi,
            _kinds(old.c.kind, kinds),
            or_(new.c.blob_id.is_(None), new.c.blob_id != old.c.blob_id),
        )
    )
    began = select(
        new.c.kind, new.c.object_id, _none().label("old_blob"), new.c.blob_id.label("new_blob")
    ).where(
        new.c.tenant == tenant,
        new.c.valid_from_seq > lo,
        new.c.valid_from_seq <= hi,
        or_(new.c.valid_to_seq.is_(None), new.c.valid_to_seq > hi),
        _kinds(new.c.kind, kinds),
        ~exists().where(
            was.c.kind == new.c.kind,
            was.c.object_id == new.c.object_id,
            lookup_valid_at(was, tenant, lo),
        ),
    )
    both = union_all(ended, began).subquery()
    return select(both.c.kind, both.c.object_id, both.c.old_blob, both.c.new_blob).order_by(
        both.c.kind, both.c.object_id
    )


def staging_differences(
    version: Table, staged: Table, tenant: str, seq: int, job_id: int, kinds: Sequence[str]
) -> Any:
    """Objects that differ between snapshot ``seq`` and what job ``job_id`` staged for
    ``kinds`` (read in full: an object not staged is gone). One staged row per object
    (superseded rows dropped first). "keep" rows (present, unreadable) compare as equal."""
    v, s, was = version, staged, version.alias("was")
    ended = (
        select(
            v.c.kind,
            v.c.object_id,
            v.c.blob_id.label("old_blob"),
            s.c.blob_id.label("new_blob"),
        )
        .select_from(
            v.outerjoin(
                s, and_(s.c.job_id == job_id, s.c.kind == v.c.kind, s.c.object_id == v.c.object_id)
            )
        )
        .where(
            valid_at(v, tenant, seq),
            v.c.kind.in_(list(kinds)),
            or_(
                s.c.id.is_(None),
                s.c.action == "remove",
                and_(s.c.action == "put", s.c.blob_id != v.c.blob_id),
            ),
        )
    )
    began = select(
        s.c.kind, s.c.object_id, _none().label("old_blob"), s.c.blob_id.label("new_blob")
    ).where(
        s.c.job_id == job_id,
        s.c.kind.in_(list(kinds)),
        s.c.action == "put",
        ~exists().where(
            was.c.kind == s.c.kind,
            was.c.object_id == s.c.object_id,
            lookup_valid_at(was, tenant, seq),
        ),
    )
    both = union_all(ended, began).subquery()
    return select(both.c.kind, both.c.object_id, both.c.old_blob, both.c.new_blob).order_by(
        both.c.kind, both.c.object_id
    )
