"""On-disk scratch space for one delta round of groups.

A groups delta round can carry a million membership edges and repeats a big group across
pages. Holding that in memory would make memory grow with the tenant, so edges and group
properties go to a throwaway SQLite file and are read back one group at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import Any


class GroupScratch:
    def __init__(self, directory: str | None = None) -> None:
        fd, self.path = tempfile.mkstemp(prefix="groups-", suffix=".sqlite", dir=directory)
        os.close(fd)
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.executescript(
            """
            PRAGMA journal_mode=OFF;
            PRAGMA synchronous=OFF;
            CREATE TABLE grp (id TEXT PRIMARY KEY, seq INTEGER, props TEXT, removed TEXT,
                              has_members INTEGER DEFAULT 0);
            CREATE TABLE edge (group_id TEXT, member_id TEXT, member_type TEXT, removed INTEGER,
                               seq INTEGER);
            """
        )
        self._seq = 0

    def add_group(self, item: dict[str, Any]) -> None:
        """Record one delta item for a group; later occurrences merge into earlier ones."""
        self._seq += 1
        group_id = item["id"]
        removed = item.get("@removed")
        props = {k: v for k, v in item.items() if "@" not in k or k == "@odata.type"}
        members = item.get("members@delta")
        row = self._db.execute("SELECT props FROM grp WHERE id=?", (group_id,)).fetchone()
        merged = {**json.loads(row[0]), **props} if row else props
        self._db.execute(
            "INSERT INTO grp(id, seq, props, removed, has_members) VALUES(?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET props=excluded.props, removed=excluded.removed, "
            "has_members=MAX(has_members, excluded.has_members)",
            (
                group_id,
                self._seq,
                json.dumps(merged),
                json.dumps(removed) if removed else None,
                1 if members is not None else 0,
            ),
        )
        if members:
            self._db.executemany(
                "INSERT INTO edge VALUES(?,?,?,?,?)",
                [
                    (
                        group_id,
                        m["id"],
                        m.get("@odata.type", "#microsoft.graph.directoryObject"),
                        1 if "@removed" in m else 0,
                        self._seq,
                    )
                    for m in members
                ],
            )

    def groups(self) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None, bool]]:
        """(group id, merged properties, @removed or None, whether members@delta was seen)."""
        cursor = self._db.execute("SELECT id, props, removed, has_members FROM grp ORDER BY id")
        for group_id, props, removed, has_members in cursor:
            yield (
                group_id,
                json.loads(props),
                json.loads(removed) if removed else None,
                bool(has_members),
            )

    def member_changes(self, group_id: str) -> Iterator[tuple[str, str, bool]]:
        """(member id, @odata.type, removed) in arrival order; the last word per member wins."""
        cursor = self._db.execute(
            "SELECT member_id, member_type, removed FROM edge WHERE group_id=? ORDER BY seq, rowid",
            (group_id,),
        )
        for member_id, member_type, removed in cursor:
            yield member_id, member_type, bool(removed)

    def index(self) -> None:
        self._db.execute("CREATE INDEX IF NOT EXISTS edge_group ON edge(group_id, seq)")

    def close(self) -> None:
        self._db.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def __enter__(self) -> GroupScratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
