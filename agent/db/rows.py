"""Inserting many rows as multi-row ``INSERT … VALUES (…),(…)`` statements.

Not ``executemany``: SQLite's module lets go of the GIL around every row's step, and taking it
back waits behind the agent's other threads, once per row — for a backup that stages half a
million objects, half a million waits (and as many context switches). One statement per up to
999 parameters (SQLite's oldest limit) lets go of it once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
    start = 0
    for count in statement_sizes(len(rows), max(MAX_PARAMETERS // width, 1)):
        chunk = rows[start : start + count]
        start += count
        execute(values_sql(head, width, count, mark) + tail, list(chain.from_iterable(chunk)))


def statement_sizes(total: int, most: int) -> Iterator[int]:
    """Rows per statement for ``total`` rows: ``most`` while they last, then the rest in
    powers of 4. Few sizes, so few statement texts: the driver keeps each text it ran
    prepared (128 per connection), and one for 160 rows holds a few hundred KB of SQLite's
    memory — one per row count would fill SQLite's heap with them."""
    while total >= most:
        yield most
        total -= most
    size = 1
    while size * 4 <= total:
        size *= 4
    while total:
        while size > total:
            size //= 4
        yield size
        total -= size


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
