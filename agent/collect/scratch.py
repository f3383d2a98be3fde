"""On-disk scratch space for one delta round of groups.

A groups delta round can carry a million membership edges and repeats a big group across
pages. Holding that in memory would make memory grow with the tenant, so edges and group
properties go to a throwaway SQLite file and are read back one group at a time. A group's
member list (a tenant-wide group holds every user) is never held as Python objects either: its
previous version is loaded into the file, merged with the round's changes in SQL and written
out as canonical text a few thousand members at a time (``membership_parts``), which the
repository seals and writes in parts (``Repository.put_canonical_parts``): no copy of a
tenant-wide list is whole in memory, neither the stored one read back nor the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from agent.db.rows import MAX_PARAMETERS, insert_rows
from agent.store.repository import canonical_json

# Rows fetched and written out per step when a member list is turned into text.
TEXT_BATCH = 2000
# SQLite's page cache for the scratch file, in KiB (negative = KiB): fixed, not the default
# per-connection one, so memory is what we choose here whatever the round's size.
CACHE_KIB = 2048

# A stored membership's canonical JSON is {"groupId":…,"members":[{"@odata.type":…,"id":…},…]}
# (keys sorted). Neither marker can occur inside a JSON string, where every " is escaped.
_MEMBERS_START = b',"members":['
_NEXT_MEMBER = b'},{"@odata.type":'
SLICE_BYTES = 1 << 18  # of the member list decoded at a time (~2,500 members)

_MERGED = """
    SELECT member_id, member_type FROM (
        SELECT member_id, member_type, removed FROM edge WHERE rowid IN (
            SELECT max(rowid) FROM edge WHERE group_id = ?1 GROUP BY member_id)
        UNION ALL
        SELECT member_id, member_type, 0 FROM prev WHERE group_id = ?1
            AND member_id NOT IN (SELECT member_id FROM edge WHERE group_id = ?1)
    ) WHERE removed = 0 ORDER BY member_id
"""


class GroupScratch:
    def __init__(self, directory: str | None = None) -> None:
        fd, self.path = tempfile.mkstemp(prefix="groups-", suffix=".sqlite", dir=directory)
        os.close(fd)
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.executescript(
            """
            PRAGMA journal_mode=OFF;
            PRAGMA synchronous=OFF;
            PRAGMA temp_store=FILE;
            CREATE TABLE grp (id TEXT PRIMARY KEY, seq INTEGER, props TEXT, removed TEXT,
                              has_members INTEGER DEFAULT 0, staged INTEGER DEFAULT 0);
            CREATE TABLE edge (group_id TEXT, member_id TEXT, member_type TEXT, removed INTEGER,
                               seq INTEGER);
            CREATE TABLE prev (group_id TEXT, member_id TEXT, member_type TEXT,
                               PRIMARY KEY (group_id, member_id)) WITHOUT ROWID;
            """
        )
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._seq = 0
        self.staged_again = 0  # groups shown again after they were staged (``mark_staged``)

    def add_group(self, item: dict[str, Any]) -> None:
        """Record one delta item for a group; later occurrences merge into earlier ones."""
        self.add_groups([item])

    def add_groups(self, items: list[dict[str, Any]]) -> None:
        """``add_group`` for a page's items, in a few statements for the whole page (SQLite's
        module lets go of the GIL once a statement: see agent/db/rows.py)."""
        ids = sorted({item["id"] for item in items})
        known: dict[str, tuple[dict[str, Any], bool]] = {}
        for marks, chunk in _in_lists(ids):
            for group_id, props, staged in self._db.execute(
                f"SELECT id, props, staged FROM grp WHERE id IN ({marks})", chunk
            ):
                known[group_id] = (json.loads(props), bool(staged))
        groups: list[tuple[Any, ...]] = []
        edges: list[tuple[Any, ...]] = []
        for item in items:
            self._seq += 1
            group_id = item["id"]
            removed = item.get("@removed")
            props = {k: v for k, v in item.items() if "@" not in k or k == "@odata.type"}
            members = item.get("members@delta")
            earlier = known.get(group_id)
            merged = {**earlier[0], **props} if earlier else props
            if earlier and earlier[1]:
                self.staged_again += 1
            # A group shown again is no longer staged: what was staged lacks this occurrence.
            known[group_id] = (merged, False)
            groups.append(
                (
                    group_id,
                    self._seq,
                    json.dumps(merged),
                    json.dumps(removed) if removed else None,
                    1 if members is not None else 0,
                )
            )
            edges.extend(
                (
                    group_id,
                    m["id"],
                    m.get("@odata.type", "#microsoft.graph.directoryObject"),
                    1 if "@removed" in m else 0,
                    self._seq,
                )
                for m in members or ()
            )
        _insert_rows(
            self._db,
            "INSERT INTO grp(id, seq, props, removed, has_members) VALUES",
            groups,
            " ON CONFLICT(id) DO UPDATE SET props=excluded.props, removed=excluded.removed, "
            "has_members=MAX(has_members, excluded.has_members), staged=0",
        )
        _insert_rows(self._db, "INSERT INTO edge VALUES", edges)

    def mark_staged(self, *group_ids: str) -> None:
        """The groups were staged from what the round showed so far (``groups`` leaves them
        out until the round shows them again)."""
        for marks, chunk in _in_lists(list(group_ids)):
            self._db.execute(f"UPDATE grp SET staged=1 WHERE id IN ({marks})", chunk)

    def groups(self) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None, bool]]:
        """(group id, merged properties, @removed or None, whether members@delta was seen)
        of every group not staged already."""
        cursor = self._db.execute(
            "SELECT id, props, removed, has_members FROM grp WHERE staged=0 ORDER BY id"
        )
        for group_id, props, removed, has_members in cursor:
            yield (
                group_id,
                json.loads(props),
                json.loads(removed) if removed else None,
                bool(has_members),
            )

    def load_previous(self, group_id: str, read: Callable[[], Iterable[bytes]]) -> None:
        """The group's stored membership object (its canonical JSON, in the parts ``read()``
        gives, e.g. ``Repository.canonical_parts``) as the base the round's changes apply
        to; decoded a slice of the member list at a time, never whole. An error while
        reading leaves no previous members behind."""
        try:
            try:
                for members in _member_slices(read()):
                    self._insert_previous(group_id, members)
            except (ValueError, KeyError, TypeError):  # another shape: decode it whole
                self.forget_previous(group_id)
                self._insert_previous(group_id, orjson.loads(b"".join(read()))["members"])
        except BaseException:
            self.forget_previous(group_id)  # e.g. a stored list that did not authenticate
            raise

    def _insert_previous(self, group_id: str, members: list[dict[str, Any]]) -> None:
        _insert_rows(
            self._db,
            "INSERT OR REPLACE INTO prev VALUES",
            [(group_id, m["id"], m["@odata.type"]) for m in members],
        )

    def membership_parts(self, group_id: str) -> Iterator[bytes]:
        """The group's membership object as canonical JSON (what ``canonical_json`` gives for
        ``{"groupId": …, "members": [{"@odata.type": …, "id": …}, …]}``, members sorted by
        id), TEXT_BATCH members a part: the previous members (``load_previous``) with the
        round's changes applied, the last word per member winning. The same bytes every
        time until ``forget_previous``: a large one is read twice to be stored in parts."""
        yield f'{{"groupId":{_quote(group_id)},"members":['.encode()
        cursor = self._db.execute(_MERGED, (group_id,))
        sep = b""
        while rows := cursor.fetchmany(TEXT_BATCH):
            yield sep + _links_text(rows)
            sep = b","
        yield b"]}"

    def membership_json(self, group_id: str) -> bytes:
        """``membership_parts`` whole, the previous members then forgotten."""
        text = b"".join(self.membership_parts(group_id))
        self.forget_previous(group_id)
        return text

    def forget_previous(self, group_id: str) -> None:
        self._db.execute("DELETE FROM prev WHERE group_id=?", (group_id,))

    def index(self) -> None:
        self._db.execute("CREATE INDEX IF NOT EXISTS edge_member ON edge(group_id, member_id)")

    def close(self) -> None:
        self._db.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def __enter__(self) -> GroupScratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _insert_rows(
    db: sqlite3.Connection, head: str, rows: list[tuple[Any, ...]], tail: str = ""
) -> None:
    insert_rows(db.execute, head, rows, tail=tail)  # not executemany: see agent/db/rows.py


def _in_lists(ids: list[str]) -> Iterator[tuple[str, list[str]]]:
    """(placeholders, ids) for ``… IN (placeholders)``, up to MAX_PARAMETERS ids at a time."""
    for start in range(0, len(ids), MAX_PARAMETERS):
        chunk = ids[start : start + MAX_PARAMETERS]
        yield ",".join("?" * len(chunk)), chunk


def _member_slices(parts: Iterable[bytes]) -> Iterator[list[dict[str, Any]]]:
    """The members of a stored membership object given as its text in parts, a slice of
    about SLICE_BYTES of the text at a time (a tenant-wide group's list is never decoded nor
    held whole); ValueError when the text is not laid out so."""
    text = bytearray()
    started = False
    for part in parts:
        text += part
        if not started:
            start = text.find(_MEMBERS_START)
            if start < 0:
                if len(text) > SLICE_BYTES:  # the group id comes first, and is short
                    raise ValueError("not a canonical membership object")
                continue
            del text[: start + len(_MEMBERS_START)]
            started = True
        while len(text) > SLICE_BYTES:
            cut = text.find(_NEXT_MEMBER, SLICE_BYTES)
            if cut < 0:
                break
            yield orjson.loads(b"[" + text[: cut + 1] + b"]")  # up to the "}" ending a member
            del text[: cut + 2]  # and the "," after it
    if not started or not text.endswith(b"]}"):
        raise ValueError("not a canonical membership object")
    if len(text) > 2:
        yield orjson.loads(b"[" + text[:-2] + b"]")


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # as canonical_json quotes a string


def _links_text(rows: list[tuple[str, str]]) -> bytes:
    """``(id, type)`` rows as canonical_json writes ``{"@odata.type": type, "id": id}`` each,
    comma-separated. orjson quotes strings byte for byte as ``json.dumps(ensure_ascii=False)``
    does, and the keys are given in sorted order: one call for a batch, not two a member."""
    return orjson.dumps([{"@odata.type": t, "id": m} for m, t in rows])[1:-1]


class RelationScratch:
    """One parent's long relationship (more than a page: a department's administrative unit,
    every assignment of an app), gathered page by page in a throwaway SQLite file and written
    out as the canonical JSON of its relationship object a batch at a time, so memory holds a
    page and the text, never the whole list as Python objects.

    Links (``{"@odata.type", "id"}``) keep the last entry per id; whole items (``full_items``)
    keep every entry, in arrival order among equal ids — as ``relation_object`` sorts them."""

    def __init__(self, directory: str | None, full_items: bool) -> None:
        fd, self.path = tempfile.mkstemp(prefix="relation-", suffix=".sqlite", dir=directory)
        os.close(fd)
        self._full = full_items
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.executescript(
            """
            PRAGMA journal_mode=OFF;
            PRAGMA synchronous=OFF;
            PRAGMA temp_store=FILE;
            CREATE TABLE item (sort_key TEXT, seq INTEGER PRIMARY KEY, json TEXT);
            """
        )
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")

    def add(self, items: list[dict[str, Any]]) -> None:
        """One page of the relationship (whole items already cleaned of annotations)."""
        if self._full:
            rows = [(str(item.get("id")), canonical_json(item).decode()) for item in items]
        else:
            rows = [
                (str(i["id"]), _link_text(i.get("@odata.type", _DIRECTORY_OBJECT), i["id"]))
                for i in items
            ]
        _insert_rows(self._db, "INSERT INTO item(sort_key, json) VALUES", rows)

    def object_parts(self, key: str, parent_id: str, relation: str) -> Iterator[bytes]:
        """``canonical_json({key: parent_id, relation: [the items sorted]})`` in parts of
        TEXT_BATCH items (the same bytes each time it is read)."""
        if self._full:
            query = "SELECT json FROM item ORDER BY sort_key, seq"
        else:
            query = (
                "SELECT json FROM item WHERE seq IN (SELECT max(seq) FROM item GROUP BY sort_key) "
                "ORDER BY sort_key"
            )
        parts = sorted(((key, _quote(parent_id)), (relation, None)))
        yield b"{"
        for index, (name, value) in enumerate(parts):
            yield f"{',' if index else ''}{_quote(name)}:".encode()
            if value is not None:
                yield value.encode()
                continue
            yield b"["
            cursor = self._db.execute(query)
            sep = ""
            while rows := cursor.fetchmany(TEXT_BATCH):
                yield (sep + ",".join(r[0] for r in rows)).encode()
                sep = ","
            yield b"]"
        yield b"}"

    def object_json(self, key: str, parent_id: str, relation: str) -> bytes:
        """``object_parts`` whole."""
        return b"".join(self.object_parts(key, parent_id, relation))

    def close(self) -> None:
        self._db.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def __enter__(self) -> RelationScratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_DIRECTORY_OBJECT = "#microsoft.graph.directoryObject"


def _link_text(odata_type: Any, object_id: Any) -> str:
    """canonical_json of one ``{"@odata.type", "id"}`` link (see ``_links_text``)."""
    return orjson.dumps({"@odata.type": odata_type, "id": object_id}).decode()
