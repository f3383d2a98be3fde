"""A throwaway repository in one SQLite file, for objects read but never kept (live reads).

Same key, same blob ids and the same sealed format as the real repository (so equal content
compares equal and nothing lands on disk in plaintext), but one file instead of a file per
blob: a live read of a large tenant writes and deletes one file, not hundreds of thousands.
Blobs it does not hold are read from ``fallback`` (the real repository): collectors that
merge with the last stored version (``CollectContext.previous``) work unchanged. Nothing is
durable; ``close`` deletes the file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from agent.store.keys import RepositoryKey
from agent.store.repository import Repository
from agent.store.sealing import Damage


class ScratchRepository(Repository):
    def __init__(
        self, directory: Path, key: RepositoryKey, fallback: Repository | None = None
    ) -> None:
        fd, name = tempfile.mkstemp(prefix="live-", suffix=".sqlite", dir=directory)
        os.close(fd)
        super().__init__(Path(name), key, repository_id="scratch")
        self._fallback = fallback
        self._db_lock = threading.Lock()  # collectors of one read run in parallel threads
        self._db = sqlite3.connect(name, check_same_thread=False, isolation_level=None)
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE blob (id TEXT PRIMARY KEY, data BLOB NOT NULL);"
        )

    def _store(self, raw: bytes, type_byte: bytes, payload: bytes) -> str:
        blob_id = raw.hex()
        if self.exists(blob_id):
            return blob_id
        data = self._sealer.seal(blob_id, type_byte, payload)
        with self._db_lock:
            self._db.execute("INSERT OR IGNORE INTO blob(id, data) VALUES(?, ?)", (blob_id, data))
        return blob_id

    def _store_many(self, blobs: list[tuple[bytes, bytes]], type_byte: bytes) -> None:
        for raw, payload in blobs:
            self._store(raw, type_byte, payload)

    def _store_parts(self, raw: bytes, type_byte: bytes, parts: Iterable[bytes], size: int) -> None:
        # Live reads only: a row holds a whole blob, so a large one is sealed whole here.
        self._store(raw, type_byte, b"".join(parts))

    def _read(self, blob_id: str) -> bytes:
        with self._db_lock:
            row = self._db.execute("SELECT data FROM blob WHERE id=?", (blob_id,)).fetchone()
        if row is not None:
            return bytes(row[0])
        if self._fallback is not None:
            return self._fallback._read(blob_id)
        raise Damage("missing")

    def exists(self, blob_id: str) -> bool:
        with self._db_lock:
            return (
                self._db.execute("SELECT 1 FROM blob WHERE id=?", (blob_id,)).fetchone() is not None
            )

    def sync(self) -> None:
        """Nothing is kept: nothing to make durable."""

    def close(self) -> None:
        with self._db_lock:
            self._db.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
