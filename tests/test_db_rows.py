"""Many rows in few statements (agent/db/rows.py): every row lands, in order, whatever the
count, and the statements come in few sizes (each size is a statement SQLite keeps)."""

from __future__ import annotations

import sqlite3

import pytest

from agent.db.rows import MAX_PARAMETERS, insert_rows, statement_sizes


@pytest.mark.parametrize("count", [0, 1, 3, 165, 166, 167, 2000, 2011])
def test_every_row_lands_in_order(count: int) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, c TEXT, d, e, f)")
    rows = [(f"a{i}", i, "é\u2028'\"", None, b"\x00", 1.5) for i in range(count)]
    statements: list[str] = []

    def execute(sql: str, params: list[object]) -> object:
        statements.append(sql)
        return db.execute(sql, params)

    insert_rows(execute, "INSERT INTO t(a, b, c, d, e, f) VALUES", rows)
    assert db.execute("SELECT a, b, c, d, e, f FROM t ORDER BY id").fetchall() == rows
    most = MAX_PARAMETERS // 6
    assert len(statements) <= count // most + 11  # the rest: two of 64, three of 16, 4 and 1
    assert len(set(statements)) <= 1 + 4  # 166 a statement, then 64, 16, 4 or 1


def test_an_on_conflict_clause_applies_to_every_row() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER)")
    insert_rows(db.execute, "INSERT INTO t VALUES", [("x", 1), ("y", 1)])
    insert_rows(
        db.execute,
        "INSERT INTO t VALUES",
        [("x", 5), ("z", 1), ("x", 2)],
        tail=" ON CONFLICT(k) DO UPDATE SET n = n + excluded.n",
    )
    assert dict(db.execute("SELECT k, n FROM t").fetchall()) == {"x": 8, "y": 1, "z": 1}


def test_statement_sizes_cover_the_rows_exactly() -> None:
    for total in range(0, 700):
        sizes = list(statement_sizes(total, 166))
        assert sum(sizes) == total
        assert set(sizes) <= {166, 64, 16, 4, 1}
