"""Inserting many rows as multi-row ``INSERT … VALUES (…),(…)`` statements.

Not ``executemany``: SQLite's module lets go of the GIL around every row's step, and taking it
back waits behind the agent's other threads, once per row — for a backup that stages half a
million objects, half a million waits (and as many context switches). One statement per up to
999 parameters (SQLite's oldest limit) lets go of it once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection

MAX_PARAMETERS = 999


def insert_rows(
    execute: Callable[[str, list[Any]], object],
    head: str,
    rows: Sequence[tuple[Any, ...]],
    mark: str = "?",
    tail: str = "",
) -> None:
    """``execute(head + "(?,…),(?,…)" + tail, params)`` for ``rows`` in order, in as few
    statements as the parameter limit allows (a later row gets a higher rowid, as with
    executemany; ``tail`` is e.g. an ON CONFLICT clause). ``mark`` is the driver's
    placeholder: "?" (sqlite3) or "%s" (psycopg)."""
    if not rows:
        return
    width = len(rows[0])
    per = max(MAX_PARAMETERS // width, 1)
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        sql = values_sql(head, width, len(chunk), mark) + tail
        execute(sql, list(chain.from_iterable(chunk)))


@lru_cache(maxsize=64)
def values_sql(head: str, width: int, count: int, mark: str = "?") -> str:
    row = "(" + ",".join([mark] * width) + ")"
    return head + ",".join([row] * count)


def driver_mark(conn: Connection) -> str:
    """The catalog driver's placeholder: sqlite3 ("qmark") or psycopg (positional "%s");
    config/model.py accepts no other database_url."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def insert_catalog_rows(conn: Connection, head: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``insert_rows`` on a catalog connection (plain SQL on the driver, no SQLAlchemy
    processing per row)."""
    insert_rows(
        lambda sql, params: conn.exec_driver_sql(sql, tuple(params)), head, rows, driver_mark(conn)
    )
