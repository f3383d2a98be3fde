"""The catalog's engine, tables and small SQL helpers shared by its modules.

Portable core SQL only (SQLite and PostgreSQL): ``INSERT … SELECT``, ``UPDATE … WHERE EXISTS``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    Engine,
    String,
    Table,
    create_engine,
    event,
    func,
    literal,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from agent.db import models as m
from agent.errors import AgentError, ConnectionFailed, NotFound

T = TypeVar("T")
IN_CHUNK = 500  # bound parameters per IN list (SQLite's limit is far above; keeps plans sane)


def table_of(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


TENANT = table_of(m.Tenant)
JOB = table_of(m.Job)
EVENT = table_of(m.JobEvent)
JOB_KIND = table_of(m.JobKind)
STAGED = table_of(m.StagedObject)
FULL_LISTING = table_of(m.StagedFullListing)
STAGED_LINK = table_of(m.StagedDeltaLink)
STAGED_PREPARED = table_of(m.StagedPrepared)
STAGED_CHANGE = table_of(m.StagedChange)
SNAPSHOT = table_of(m.Snapshot)
SNAPSHOT_KIND = table_of(m.SnapshotKind)
VERSION = table_of(m.ObjectVersion)
DELTA_LINK = table_of(m.DeltaLink)
BLOB_CHILD = table_of(m.BlobChild)

TABLES = (
    TENANT,
    JOB,
    EVENT,
    JOB_KIND,
    STAGED,
    FULL_LISTING,
    STAGED_LINK,
    STAGED_PREPARED,
    STAGED_CHANGE,
    SNAPSHOT,
    SNAPSHOT_KIND,
    VERSION,
    DELTA_LINK,
    BLOB_CHILD,
)


# -- engine -----------------------------------------------------------------------------------


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite returns naive datetimes; everything stored is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def make_engine(url: str) -> Engine:
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


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def typed_str(value: str) -> Any:
    # A typed literal in a SELECT list: PostgreSQL cannot infer an untyped parameter's type.
    return sql_cast(literal(value), String)


def last_seq(conn: Connection, tenant: str) -> int:
    """The sequence number of the tenant's last snapshot (0: none yet)."""
    return int(
        conn.execute(
            select(func.coalesce(func.max(SNAPSHOT.c.seq), 0)).where(SNAPSHOT.c.tenant == tenant)
        ).scalar_one()
    )


def check(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise AgentError(f"Unknown {what} '{value}' (expected one of {', '.join(allowed)}).")


def job_not_found(job_id: int) -> NotFound:
    return NotFound(f"There is no job {job_id}.", "List jobs with 'entra-backup jobs list'.")


def new_id(result: Any) -> int:
    return int(result.inserted_primary_key[0])


def pairs(result: Any) -> dict[Any, Any]:
    # not dict(result): a Result has .keys() (column names), so dict() would misread it
    return {row[0]: row[1] for row in result}


def _upgrade(engine: Engine) -> None:
    """Indexes added to existing tables since their catalog was created (create_all makes
    missing tables only), and the ones they replace dropped."""
    with engine.connect() as conn:
        conn.execution_options(catalog_write=True)
        with conn.begin():
            for index in VERSION.indexes:
                index.create(conn, checkfirst=True)
            conn.exec_driver_sql("DROP INDEX IF EXISTS ix_ov_from")


class CatalogBase:
    """Opens the database; the catalog's modules read and write through it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._engine = make_engine(url)
        try:
            SQLModel.metadata.create_all(self._engine, tables=list(TABLES))
            _upgrade(self._engine)
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
