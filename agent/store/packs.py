"""Pack files and their index (repository format version 2): many sealed blobs per file.

Layout::

    <repo>/packs/<name>.pack   PACK_HEADER, then records: blob id (32 bytes) | length (4 bytes,
                               big-endian) | sealed blob (the same bytes a version-1 blob file
                               holds: magic, version, nonce, AES-GCM ciphertext and tag)
    <repo>/index.sqlite        blob id -> (pack, offset, length); per pack the length written
                               and the length known durable ("synced")

One writer (a Repository object) appends to one pack at a time, under an exclusive lock on
that file, so other processes never append to it nor repair it while it lives. Records are
buffered and written a MiB at a time, their index rows inserted (in id order) in one
transaction per INDEX_ROWS: a put costs a seal and an index lookup, not five file system calls,
and an insert into a large index dirties fewer pages per row. The index lives in the repository
(the repository stays usable without the catalog), is read through SQLite's bounded page cache
(memory does not grow with the number of blobs), and can be rebuilt from the packs: each
record names its blob, and the blob id is the AEAD's associated data. A put that keeps meeting
new content asks a Bloom filter of the ids first (agent/store/id_filter.py), not SQLite.

Crash safety: ``sync()`` writes the buffer, fsyncs the pack and then records its synced
length. On open, every pack no live writer holds whose written or file length differs from its
synced length is re-read from the synced length on: records that authenticate are (re)indexed,
the first one that does not (a torn tail) and everything after it is cut off. Nothing a
committed snapshot refers to lies beyond a synced length, because commits follow ``sync()``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from agent.db.rows import insert_rows
from agent.store.id_filter import IdFilter

PACK_MAGIC = b"EBRP"
PACK_VERSION = 2
PACK_HEADER = PACK_MAGIC + bytes([PACK_VERSION]) + b"\0\0\0"
RECORD = struct.Struct(">32sI")  # blob id (raw HMAC), length of the sealed blob
BUFFER_BYTES = 1 << 20  # records written a MiB at a time
# Index rows inserted per transaction: random ids each dirty a page of a large index, so rows
# come cheaper in bulk (300,000 ids indexed: 14 µs of CPU per row 1,600 at a time, 5 µs per
# row 16,000 at a time). Rows waiting take ~200 bytes each.
INDEX_ROWS = 16_384
PACK_BYTES = 64 << 20  # a pack this large is closed and the next put starts a new one
MAX_BLOB_BYTES = (1 << 32) - 1
# Puts looked up in the index before deciding on a filter: one is loaded (a read of every id)
# only when most of them were new content, as in a first backup; a backup of mostly stored
# content, or a small one, never pays for it.
FILTER_WINDOW = 20_000
# Index rows per INSERT statement (3 parameters each: under SQLite's historical limit of 999).
_O_BINARY = getattr(os, "O_BINARY", 0)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS pack (
    num INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    written INTEGER NOT NULL, synced INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blob (
    id BLOB PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL,
    length INTEGER NOT NULL) WITHOUT ROWID;
"""


def try_lock(fd: int, *, wait: bool = False) -> bool:
    """An exclusive lock on an open pack; released when the fd closes. ``wait``: block until
    it is free (a recovery in another process holds a new, empty pack only for a moment)."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def fsync_dir(path: Path | str) -> None:
    # A new file's directory entry is durable only once the directory is; not on Windows.
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PackIndex:
    """The blob index in ``<repo>/index.sqlite``; one connection shared by a process's
    threads (a lock around each use), WAL so other processes read while one writes."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        # Owner-only like the packs (SQLite gives its -wal and -shm files the same mode).
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | _O_BINARY, 0o600))
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # FULL for the commit in set_synced
        self._db.executescript(_SCHEMA)
        self._names: dict[int, str] = {}  # pack number -> name: one entry per pack, not blob
        self._filter: IdFilter | None = None
        self._lookups = self._misses = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def register(self, name: str) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO pack(name, written, synced) VALUES(?, 0, 0)", (name,)
            )
            num = int(cur.lastrowid or 0)
            self._names[num] = name
            return num

    def pack(self, name: str) -> tuple[int, int, int] | None:
        """(number, written, synced) of a pack, None when the index does not know it."""
        with self._lock:
            row = self._db.execute(
                "SELECT num, written, synced FROM pack WHERE name=?", (name,)
            ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))

    def contains(self, raw_id: bytes) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM blob WHERE id=?", (raw_id,)).fetchone() is not None
            )

    def stored(self, raw_id: bytes) -> bool:
        """``contains`` for a put, through the filter once it is loaded. It does not know
        ids another process indexed since it was loaded: a put then stores a second copy,
        which the index ignores (a copy indexed elsewhere keeps its first location)."""
        id_filter = self._filter
        if id_filter is not None:
            return raw_id in id_filter and self.contains(raw_id)
        found = self.contains(raw_id)
        with self._lock:
            self._lookups += 1
            self._misses += not found
            if self._lookups >= FILTER_WINDOW:
                if self._misses * 2 > self._lookups:
                    self._load_filter()
                self._lookups = self._misses = 0
        return found

    def _load_filter(self) -> None:
        # Under the lock: add() waits, so no id is indexed between the read and the swap.
        count = int(self._db.execute("SELECT count(*) FROM blob").fetchone()[0])
        id_filter = IdFilter(count)
        id_filter.update(bytes(raw) for (raw,) in self._db.execute("SELECT id FROM blob"))
        self._filter = id_filter

    def locate(self, raw_id: bytes) -> tuple[str, int, int] | None:
        """(pack name, offset of the sealed blob, its length)."""
        with self._lock:
            row = self._db.execute(
                "SELECT pack, offset, length FROM blob WHERE id=?", (raw_id,)
            ).fetchone()
            if row is None:
                return None
            num = int(row[0])
            name = self._names.get(num)
            if name is None:
                found = self._db.execute("SELECT name FROM pack WHERE num=?", (num,)).fetchone()
                if found is None:
                    return None
                name = self._names[num] = str(found[0])
        return name, int(row[1]), int(row[2])

    def add(self, pack: int, rows: list[tuple[bytes, int, int]], written: int) -> None:
        """Index records appended to ``pack`` (a copy already indexed elsewhere keeps its
        first location) and note how far the pack is written, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                insert_rows(  # not executemany: see agent/db/rows.py
                    self._db.execute,
                    "INSERT OR IGNORE INTO blob(id, pack, offset, length) VALUES",
                    [(raw, pack, offset, length) for raw, offset, length in rows],
                )
                self._db.execute("UPDATE pack SET written=? WHERE num=?", (written, pack))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if self._filter is not None:  # before the writer's buffer lets go of the ids
                self._filter.update(row[0] for row in rows)
                if self._filter.full:
                    self._load_filter()  # twice the size: false positives stay rare

    def set_synced(self, pack: int, length: int) -> None:
        """Record that ``pack`` is durable up to ``length``; durable itself on return."""
        with self._lock:
            self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute(
                    "UPDATE pack SET written=max(written, ?), synced=? WHERE num=?",
                    (length, length, pack),
                )
            finally:
                self._db.execute("PRAGMA synchronous=NORMAL")

    def cut(self, pack: int, length: int) -> int:
        """Forget the records of ``pack`` at or beyond ``length``; returns how many."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute("DELETE FROM blob WHERE pack=? AND offset>=?", (pack, length))
            self._db.execute(
                "UPDATE pack SET written=?, synced=? WHERE num=?", (length, length, pack)
            )
            self._db.execute("COMMIT")
            return max(cur.rowcount, 0)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM blob").fetchone()[0])

    def iter_ids(self, chunk: int = 2000) -> Iterator[bytes]:
        """Every indexed id in order, read a chunk at a time (the lock is not held between)."""
        last = b""
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id FROM blob WHERE id>? ORDER BY id LIMIT ?", (last, chunk)
                ).fetchall()
            if not rows:
                return
            for (raw,) in rows:
                yield bytes(raw)
            last = bytes(rows[-1][0])


class PackWriter:
    """Appends sealed blobs to this writer's current pack; thread-safe."""

    def __init__(self, packs_dir: Path, index: PackIndex) -> None:
        self._packs, self._index = packs_dir, index
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._num = 0
        self._end = 0  # bytes in the pack file (the buffer comes after)
        self._buffer = bytearray()
        # Records in the buffer: raw id -> its index row (raw id, offset in pack, length); the
        # buffer is written at ``_end``, so the offset is known when the record is appended.
        self._buffered: dict[bytes, tuple[bytes, int, int]] = {}
        # Records in the pack file, not yet in the index: raw id -> index row. A record moves
        # buffer -> pack -> index, each step adding before the last removes. Rows, not
        # (offset, length) pairs: the moves are dict merges and a sort, no loop per record.
        self._unindexed: dict[bytes, tuple[bytes, int, int]] = {}
        self._dirty = False  # written since the last sync

    def holds(self, raw_id: bytes) -> bool:
        """Appended and not yet in the index (a lookup without the lock: in this order, a
        record is always in one of the two maps or in the index)."""
        return raw_id in self._buffered or raw_id in self._unindexed

    def append(self, raw_id: bytes, sealed: bytes) -> None:
        self.append_many(((raw_id, sealed),))

    def append_many(self, records: Iterable[tuple[bytes, bytes]]) -> None:
        """Append (raw id, sealed bytes) records, taking the lock once for all of them."""
        with self._lock:
            for raw_id, sealed in records:
                if raw_id in self._buffered or raw_id in self._unindexed:
                    continue  # another thread stored the same content meanwhile
                if self._fd is None:
                    self._open_pack()
                start = self._end + len(self._buffer) + RECORD.size
                self._buffer += RECORD.pack(raw_id, len(sealed))
                self._buffer += sealed
                self._buffered[raw_id] = (raw_id, start, len(sealed))
                self._dirty = True
                if len(self._buffer) >= BUFFER_BYTES:
                    self._write()
                    if self._end >= PACK_BYTES:
                        self._index_rows()
                        self._close_pack()
                    elif len(self._unindexed) >= INDEX_ROWS:
                        self._index_rows()

    def append_parts(self, raw_id: bytes, sealed: Iterable[bytes]) -> None:
        """``append`` for a large blob given in parts: written straight to the pack, after
        the buffer, its length filled in once the last part is written (a crash before that
        leaves a record of length 0, which recovery cuts off). An error from ``sealed`` cuts
        the pack back to where the record began and reaches the caller."""
        with self._lock:
            if raw_id in self._buffered or raw_id in self._unindexed:
                return
            if self._fd is None:
                self._open_pack()
            self._write()
            fd, start = self._fd, self._end
            assert fd is not None
            length = 0
            try:
                os.lseek(fd, start, os.SEEK_SET)
                _write_all(fd, RECORD.pack(raw_id, 0))
                for part in sealed:
                    _write_all(fd, part)
                    length += len(part)
                if length > MAX_BLOB_BYTES:
                    raise OSError(f"a blob of {length} bytes is larger than a pack record holds")
                os.lseek(fd, start, os.SEEK_SET)
                _write_all(fd, RECORD.pack(raw_id, length))
            except BaseException:
                os.ftruncate(fd, start)
                raise
            self._unindexed[raw_id] = (raw_id, start + RECORD.size, length)
            self._end = start + RECORD.size + length
            self._dirty = True
            if self._end >= PACK_BYTES:
                self._index_rows()
                self._close_pack()
            elif len(self._unindexed) >= INDEX_ROWS:
                self._index_rows()

    def pending_blob(self, raw_id: bytes) -> bytes | None:
        """A blob appended and not yet in the index (read before the index knows it)."""
        with self._lock:
            row = self._buffered.get(raw_id)
            if row is not None:
                start = row[1] - self._end
                return bytes(self._buffer[start : start + row[2]])
            row = self._unindexed.get(raw_id)
            if row is None or self._fd is None:
                return None
            if hasattr(os, "pread"):
                return os.pread(self._fd, row[2], row[1])
            os.lseek(self._fd, row[1], os.SEEK_SET)  # Windows (_write seeks before writing)
            return os.read(self._fd, row[2])

    def flush(self) -> None:
        """Everything appended in the pack file and in the index (not a sync)."""
        with self._lock:
            self._flush()

    def sync(self) -> None:
        """Everything appended so far durable, and its index rows with it."""
        with self._lock:
            if not self._dirty:
                return
            self._flush()
            if self._fd is not None:
                os.fsync(self._fd)
                self._index.set_synced(self._num, self._end)
            self._dirty = False

    def close(self) -> None:
        with self._lock:
            self._flush()
            self._close_pack()

    def _open_pack(self) -> None:
        # Created, locked and then registered in place (an open file cannot be renamed on
        # Windows): recovery leaves a pack shorter than its header alone, so it never takes
        # this one for a crashed writer's in the moment before the lock.
        self._packs.mkdir(exist_ok=True, mode=0o700)
        name = uuid.uuid4().hex
        path = self._packs / f"{name}.pack"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o600)
        try:
            if not try_lock(fd, wait=True):
                raise OSError(f"cannot lock new pack {path}")
            self._num = self._index.register(name)
            _write_all(fd, PACK_HEADER)
            fsync_dir(self._packs)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise
        self._fd, self._end = fd, len(PACK_HEADER)

    def _flush(self) -> None:
        self._write()
        self._index_rows()

    def _write(self) -> None:
        """The buffer into the pack file; its records wait for the index in ``_unindexed``."""
        if not self._buffer or self._fd is None:
            return
        os.lseek(self._fd, self._end, os.SEEK_SET)
        _write_all(self._fd, self._buffer)
        self._unindexed.update(self._buffered)
        self._end += len(self._buffer)
        self._buffer = bytearray()
        self._buffered = {}

    def _index_rows(self) -> None:
        if not self._unindexed or self._fd is None:
            return
        rows = sorted(self._unindexed.values())
        self._index.add(self._num, rows, self._end)
        self._unindexed = {}

    def _close_pack(self) -> None:
        if self._fd is None:
            return
        # A full pack is made durable now: only the current pack can have an unsynced tail.
        os.fsync(self._fd)
        self._index.set_synced(self._num, self._end)
        os.close(self._fd)
        self._fd = None


def recover_packs(
    packs_dir: Path, index: PackIndex, authentic: Callable[[bytes, bytes], bool]
) -> int:
    """Repair the packs of crashed writers (see the module docstring); returns how many
    records were dropped. ``authentic(raw_id, sealed)`` says whether a record decrypts."""
    dropped = 0
    for path in sorted(packs_dir.glob("*.pack")) if packs_dir.is_dir() else ():
        try:
            fd = os.open(path, os.O_RDWR | _O_BINARY)
        except FileNotFoundError:
            continue
        try:
            if not try_lock(fd) or os.fstat(fd).st_size < len(PACK_HEADER):
                continue  # a live writer's pack (this or another process), or one just made
            known = index.pack(path.stem)
            num, written, synced = known if known else (index.register(path.stem), 0, 0)
            size = os.fstat(fd).st_size
            if size == synced == written:
                continue
            dropped += _repair(fd, num, max(synced, len(PACK_HEADER)), index, authentic)
        finally:
            os.close(fd)
    return dropped


def _repair(
    fd: int, num: int, start: int, index: PackIndex, authentic: Callable[[bytes, bytes], bool]
) -> int:
    """Re-index the records from ``start`` that authenticate; cut the pack at the first that
    does not."""
    rows: list[tuple[bytes, int, int]] = []
    with open(fd, "rb", closefd=False) as pack:
        header = pack.read(len(PACK_HEADER))
        good = start if header == PACK_HEADER else 0
        pack.seek(good)
        while good:
            head = pack.read(RECORD.size)
            if len(head) < RECORD.size:
                break
            raw_id, length = RECORD.unpack(head)
            sealed = pack.read(length)
            if len(sealed) < length or not authentic(raw_id, sealed):
                break
            rows.append((raw_id, good + RECORD.size, length))
            good += RECORD.size + length
    if rows:
        index.add(num, rows, good)
    size = os.fstat(fd).st_size
    if good < size:
        os.ftruncate(fd, good)
    os.fsync(fd)
    return index.cut(num, good)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
