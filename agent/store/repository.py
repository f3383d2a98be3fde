"""Content-addressed, compressed, AES-256-GCM encrypted, write-once blobs on a filesystem.

Layout (format version 3)::

    <repo>/format                 JSON: format name, version, repository id, key check
    <repo>/packs/<name>.pack      sealed blobs appended one after another (agent/store/packs.py)
    <repo>/index.sqlite           blob id -> (pack, offset, length)
    <repo>/tmp/                   the format file while it is rewritten
    <repo>/blobs/<id[:2]>/<id>    version 1: one file per blob, read (never written) after an
                                  upgrade

A sealed blob (agent/store/sealing.py) is magic(4) | version(1) | nonce(12) |
ciphertext+tag, in a pack or in its own file alike. The blob id is HMAC-SHA256(mac key,
canonical JSON) and is also the AEAD associated data, so bytes moved to another id (or an
index row pointing elsewhere) fail authentication instead of returning wrong data.

Older repositories open and read as they are; the first write upgrades one in place.
Version 1 (``format`` then says ``loose_blobs``): new blobs go to packs, the old files stay
where they are and are still read, checked and counted. Version 2: its zlib blobs stay and
are read; new blobs are zstd (format version 3 tells an older agent not to read them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from agent.errors import IntegrityError, RepositoryError
from agent.store.format_file import FORMAT_VERSION, new_format, read_format, write_format
from agent.store.keys import RepositoryKey
from agent.store.packs import PackIndex, PackWriter, fsync_dir, recover_packs
from agent.store.sealing import HEADER_BYTES, TAG_BYTES, Damage, Sealer

# First plaintext byte says what the payload is, so get() never decodes an image as JSON.
_JSON, _BYTES = b"J", b"B"
# Binary ids hash a prefix no JSON text can start with: the two id spaces never collide.
_BYTES_ID_PREFIX = b"\x00bytes\x00"
_ID_LEN = 64
_HEX = frozenset("0123456789abcdef")
_OPEN_PACKS = 32  # read handles kept open
# An object whose canonical JSON is larger is sealed and written in parts (put_canonical_parts),
# one whose sealed blob is larger is read in parts (canonical_parts): memory holds a part of
# it, not the plaintext, compressed and sealed copies whole (a tenant-wide group's member
# list is ~8 MB of text at 100,000 users).
STREAM_BYTES = 1 << 18
READ_BYTES = 1 << 14  # sealed bytes read at a time (~4x that of member list text)


def canonical_json(obj: Any) -> bytes:
    """One byte string per value: sorted keys, no whitespace, UTF-8 (dedupe relies on this):
    ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``'s bytes.

    orjson gives the same bytes five times faster for what Graph objects hold: dicts, lists,
    strings, ints, booleans, null. It writes floats differently (``1e-05`` as ``0.00001``, NaN
    as null), so an object holding a float or any other type goes through json.dumps, as does
    one orjson refuses (an int beyond 64 bits, a key that is not a string, deep nesting)."""
    if type(obj) is dict:
        try:
            if _plain(obj):
                return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        except (TypeError, RecursionError):  # orjson.JSONEncodeError is a TypeError
            pass
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


_LEAF_TYPES = frozenset((str, int, bool, type(None)))
# 19 digits in a row: maybe an integer beyond 64 bits, which orjson would read as a float.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def decode_json(payload: bytes) -> Any:
    """``json.loads(payload)``, by orjson (several times faster) where it reads the same
    value: not for text holding NaN or Infinity (orjson refuses them) nor a run of 19 digits
    (an integer orjson might read as a float; in a string it is only a false alarm)."""
    if _LONG_DIGITS.search(payload) is None:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
    return json.loads(payload)


def _plain(value: dict[Any, Any] | list[Any]) -> bool:
    """Only dicts, lists, str, int, bool and None in ``value`` (exact types, not subclasses)."""
    for item in value.values() if type(value) is dict else value:
        if type(item) not in _LEAF_TYPES:
            kind = type(item)
            if not ((kind is dict or kind is list) and _plain(item)):
                return False
    return True


def _is_blob_id(name: str) -> bool:
    return len(name) == _ID_LEN and set(name) <= _HEX


class Repository:
    def __init__(
        self,
        path: Path,
        key: RepositoryKey,
        repository_id: str,
        *,
        version: int = FORMAT_VERSION,
        loose_blobs: bool = False,
    ) -> None:
        self.path = Path(path)
        self.repository_id = repository_id
        self.version = version
        self._key = key
        self._sealer = Sealer(key.encryption_key)
        self._blobs = self.path / "blobs"
        self._packs = self.path / "packs"
        self._tmp = self.path / "tmp"
        self._marker = self._tmp / "unsynced"  # version 1: loose blobs written since a sync
        self._loose = loose_blobs or version == 1  # blob files of version 1 to read
        self._lock = threading.Lock()
        self._index: PackIndex | None = None
        self._writer: PackWriter | None = None
        self._readers: dict[str, int] = {}  # pack name -> open read handle

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def init(cls, path: Path, key: RepositoryKey) -> Repository:
        path = Path(path)
        if (path / "format").exists():
            raise RepositoryError(
                f"A repository already exists at {path}.",
                "Use it as it is, or choose an empty folder for a new one.",
            )
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        (path / "packs").mkdir(exist_ok=True, mode=0o700)
        (path / "tmp").mkdir(exist_ok=True, mode=0o700)
        fmt = new_format(key)
        write_format(path, fmt)
        repo = cls(path, key, fmt["id"])
        repo._index = PackIndex(path / "index.sqlite")
        return repo

    @classmethod
    def open(cls, path: Path, key: RepositoryKey) -> Repository:
        path = Path(path)
        fmt = read_format(path, key)
        (path / "tmp").mkdir(exist_ok=True, mode=0o700)
        repo = cls(
            path,
            key,
            str(fmt["id"]),
            version=int(fmt["version"]),
            loose_blobs=bool(fmt.get("loose_blobs")),
        )
        if repo.version >= 2:
            repo._index = PackIndex(path / "index.sqlite")
        repo.clean_tmp(older_than_s=24 * 3600)  # leftovers of a crash; never a live writer's
        repo.recover_unsynced()
        return repo

    def close(self) -> None:
        """Write what is buffered and release the pack and the index (not a sync)."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            for fd in self._readers.values():
                os.close(fd)
            self._readers.clear()
            if self._index is not None:
                self._index.close()
                self._index = None

    def _upgrade(self) -> None:
        """On the first write. From version 1: packs and an index beside the blob files.
        From 1 or 2: the format says that blobs may be zstd-compressed."""
        fmt = json.loads((self.path / "format").read_text(encoding="utf-8"))
        self._packs.mkdir(exist_ok=True, mode=0o700)
        if self._index is None:
            self._index = PackIndex(self.path / "index.sqlite")
        fmt["version"] = FORMAT_VERSION
        if self._loose:
            fmt["loose_blobs"] = True
        write_format(self.path, fmt)
        self.version = FORMAT_VERSION

    # -- writing ---------------------------------------------------------------------------

    def blob_id(self, obj: Any) -> str:
        return hmac.new(self._key.mac_key, canonical_json(obj), hashlib.sha256).hexdigest()

    def put(self, obj: Any) -> str:
        return self.put_canonical(canonical_json(obj))

    def put_canonical(self, payload: bytes) -> str:
        """Store an object given as its canonical JSON (``canonical_json``'s exact bytes:
        equal content must give equal ids)."""
        raw = hmac.new(self._key.mac_key, payload, hashlib.sha256).digest()
        return self._store(raw, _JSON, payload)

    def canonical_id(self, payload: bytes) -> str:
        """The blob id ``put_canonical(payload)`` gives, without storing anything."""
        return hmac.new(self._key.mac_key, payload, hashlib.sha256).hexdigest()

    def put_canonical_many(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        """Store (blob id from ``canonical_id``, canonical JSON) pairs: ``put_canonical`` for
        each, the new ones sealed together (``Sealer.seal_many``: one compressor call)."""
        self._store_many([(bytes.fromhex(blob_id), payload) for blob_id, payload in blobs], _JSON)

    def _store_many(self, blobs: list[tuple[bytes, bytes]], type_byte: bytes) -> None:
        new: dict[bytes, tuple[str, bytes, bytes]] = {}
        for raw, payload in blobs:
            blob_id = raw.hex()
            if raw not in new and not self._has(raw, blob_id, for_put=True):
                new[raw] = (blob_id, type_byte, payload)
        if new:
            writer = self._pack_writer()  # first: a write upgrades an older format
            writer.append_many(zip(new, self._sealer.seal_many(list(new.values())), strict=True))

    def put_canonical_parts(
        self,
        parts: Callable[[], Iterable[bytes]],
        later: list[tuple[str, bytes]] | None = None,
    ) -> str:
        """``put_canonical`` for an object whose canonical JSON ``parts()`` gives in parts.
        ``parts`` is called once for the id (and dedupe) and, when the text is larger than
        STREAM_BYTES and new, once more to seal and write it in parts: it must give the same
        bytes each time (checked: a difference fails the put and stores nothing). With
        ``later``, a small object is not stored now but added to it as (blob id, text), for
        the caller's ``put_canonical_many``."""
        mac = hmac.new(self._key.mac_key, digestmod=hashlib.sha256)
        held: list[bytes] | None = []
        size = 0
        for part in parts():
            mac.update(part)
            size += len(part)
            if held is not None:
                held.append(part)
                if size > STREAM_BYTES:
                    held = None  # a large object: read again to be sealed
        raw = mac.digest()
        if held is not None:
            if later is None:
                return self._store(raw, _JSON, b"".join(held))
            later.append((raw.hex(), b"".join(held)))
            return raw.hex()
        blob_id = raw.hex()
        if not self._has(raw, blob_id, for_put=True):
            self._store_parts(raw, _JSON, _same_text(parts(), self._key.mac_key, raw, size), size)
        return blob_id

    def put_bytes(self, data: bytes) -> str:
        raw = hmac.new(self._key.mac_key, _BYTES_ID_PREFIX + data, hashlib.sha256).digest()
        return self._store(raw, _BYTES, data)

    def _store(self, raw: bytes, type_byte: bytes, payload: bytes) -> str:
        blob_id = raw.hex()
        if self._has(raw, blob_id, for_put=True):
            return blob_id  # same content, same id: dedupe
        writer = self._pack_writer()  # first: a write upgrades an older format
        writer.append(raw, self._sealer.seal(blob_id, type_byte, payload))
        return blob_id

    def _store_parts(self, raw: bytes, type_byte: bytes, parts: Iterable[bytes], size: int) -> None:
        writer = self._pack_writer()
        writer.append_parts(raw, self._sealer.seal_parts(raw.hex(), type_byte, parts, size))

    def _pack_writer(self) -> PackWriter:
        writer = self._writer
        if writer is None:
            with self._lock:
                if self._writer is None:
                    if self.version < FORMAT_VERSION:
                        self._upgrade()
                    assert self._index is not None
                    self._writer = PackWriter(self._packs, self._index)
                    # Written out (not synced) when the repository goes or the process
                    # ends, as a blob file was visible once written.
                    weakref.finalize(self, self._writer.close)
                writer = self._writer
        return writer

    def sync(self) -> None:
        """Make every blob written so far durable; call before committing a snapshot."""
        if self._writer is not None:
            self._writer.sync()
            fsync_dir(self._packs)

    def recover_unsynced(self) -> int:
        """After a crash before sync(): drop what did not reach the disk whole.

        Packs: the tail of each pack no live writer holds, past its synced length, is re-read
        and cut at the first record that does not authenticate. Version-1 blob files: those
        newer than the unsynced marker are re-checked. Dropping either is safe because no
        committed snapshot refers to it (commits come after sync()), and the next backup
        writes it again. Returns how many blobs were removed.
        """
        removed = 0
        if self._index is not None:
            removed += recover_packs(self._packs, self._index, self._authentic)
        if self._marker.exists():
            since = self._marker.stat().st_mtime - 2.0
            for blob_id in list(self._loose_ids()):
                path = self._blob_path(blob_id)
                if path.stat().st_mtime >= since and self.check_blob(blob_id) is not None:
                    path.unlink()
                    removed += 1
            if os.name == "posix":
                os.sync()
            self._marker.unlink()
            fsync_dir(self._tmp)
        return removed

    def _authentic(self, raw: bytes, sealed: bytes) -> bool:
        try:
            self._sealer.unseal(raw.hex(), sealed)
        except Damage:
            return False
        return True

    # -- reading ---------------------------------------------------------------------------

    def exists(self, blob_id: str) -> bool:
        return _is_blob_id(blob_id) and self._has(bytes.fromhex(blob_id), blob_id)

    def _has(self, raw: bytes, blob_id: str, *, for_put: bool = False) -> bool:
        # The writer before the index: it indexes its records before letting go of them.
        writer = self._writer
        if writer is not None and writer.holds(raw):
            return True
        index = self._index
        if index is not None and (index.stored(raw) if for_put else index.contains(raw)):
            return True
        return self._loose and os.path.isfile(self._blob_path(blob_id))

    def location(self, blob_id: str) -> tuple[Path, int, int] | None:
        """Where a blob's sealed bytes are: (file, offset, length); None when not stored."""
        if not _is_blob_id(blob_id):
            return None
        if self._writer is not None:
            self._writer.flush()
        found = self._index.locate(bytes.fromhex(blob_id)) if self._index else None
        if found is not None:
            return self._packs / f"{found[0]}.pack", found[1], found[2]
        path = self._blob_path(blob_id)
        if self._loose and path.is_file():
            return path, 0, path.stat().st_size
        return None

    def get(self, blob_id: str) -> Any:
        payload = self._payload(blob_id, _JSON)
        try:
            return decode_json(payload)
        except ValueError:
            raise _damaged(blob_id, "content is not JSON") from None

    def get_canonical(self, blob_id: str) -> bytes:
        """An object blob's canonical JSON text, not decoded (a reader that needs only part
        of a large object need not build it whole)."""
        return self._payload(blob_id, _JSON)

    def canonical_parts(self, blob_id: str) -> Iterator[bytes]:
        """``get_canonical`` in parts: a large blob is read, decrypted and decompressed
        READ_BYTES of it at a time. Whether it authenticates is known only at the end: a
        damaged blob raises IntegrityError after parts were given, and the caller must
        discard what it made of them."""
        source = self._sealed_source(blob_id)
        if source is None:
            yield self.get_canonical(blob_id)
            return
        read, length = source
        try:
            header, tag = read(0, HEADER_BYTES), read(length - TAG_BYTES, TAG_BYTES)
            end = length - TAG_BYTES
            sealed = (
                read(at, min(READ_BYTES, end - at)) for at in range(HEADER_BYTES, end, READ_BYTES)
            )
            type_byte, payload = self._sealer.open_parts(blob_id, header, tag, sealed)
            if type_byte != _JSON:
                raise Damage("holds binary data, not what was asked for")
            yield from payload
        except Damage as exc:
            raise _damaged(blob_id, exc.reason) from None

    def _sealed_source(self, blob_id: str) -> tuple[Callable[[int, int], bytes], int] | None:
        """How to read a large stored blob in parts: (read(offset, length) within the sealed
        blob, its length); None for a small one or one not found (read whole)."""
        if not _is_blob_id(blob_id):
            return None
        raw = bytes.fromhex(blob_id)
        writer = self._writer
        if writer is not None and writer.holds(raw):
            writer.flush()  # written this run: into the pack and the index first
        found = self._index.locate(raw) if self._index is not None else None
        if found is not None:
            name, offset, length = found

            def read(at: int, size: int) -> bytes:
                return _sealed_read(lambda: self._read_pack(name, offset + at, size), size)

        elif self._loose and (path := self._blob_path(blob_id)).is_file():
            length = path.stat().st_size

            def read(at: int, size: int) -> bytes:
                def from_file() -> bytes:
                    with open(path, "rb") as file:
                        file.seek(at)
                        return file.read(size)

                return _sealed_read(from_file, size)

        else:
            return None
        if length <= 4 * READ_BYTES or length < HEADER_BYTES + TAG_BYTES:
            return None
        return read, length

    def get_bytes(self, blob_id: str) -> bytes:
        return self._payload(blob_id, _BYTES)

    def check_blob(self, blob_id: str) -> str | None:
        """None when the blob is intact, else a short reason (missing, truncated, …)."""
        try:
            type_byte, payload = self._open(blob_id)
        except Damage as exc:
            return exc.reason
        prefix = _BYTES_ID_PREFIX if type_byte == _BYTES else b""
        actual = hmac.new(self._key.mac_key, prefix + payload, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(actual, blob_id):
            return "id mismatch"
        return None

    def _payload(self, blob_id: str, expected: bytes) -> bytes:
        try:
            type_byte, payload = self._open(blob_id)
        except Damage as exc:
            raise _damaged(blob_id, exc.reason) from None
        if type_byte != expected:
            what = "binary data" if type_byte == _BYTES else "a JSON object"
            raise _damaged(blob_id, f"holds {what}, not what was asked for")
        return payload

    def _open(self, blob_id: str) -> tuple[bytes, bytes]:
        if not _is_blob_id(blob_id):
            raise Damage("not a blob id")
        return self._sealer.unseal(blob_id, self._read(blob_id))

    def _read(self, blob_id: str) -> bytes:
        """The sealed bytes of one blob, as stored."""
        raw = bytes.fromhex(blob_id)
        writer = self._writer
        if writer is not None and (buffered := writer.pending_blob(raw)) is not None:
            return buffered
        found = self._index.locate(raw) if self._index is not None else None
        try:
            if found is not None:
                return self._read_pack(*found)
            if self._loose:
                return self._blob_path(blob_id).read_bytes()
        except FileNotFoundError:
            raise Damage("missing") from None
        except OSError as exc:
            raise Damage(f"unreadable ({exc.strerror})") from None
        raise Damage("missing")

    def _read_pack(self, name: str, offset: int, length: int) -> bytes:
        # Under the lock: a handle closed to make room is never read by another thread.
        with self._lock:
            fd = self._readers.get(name)
            if fd is None:
                if len(self._readers) >= _OPEN_PACKS:
                    os.close(self._readers.pop(next(iter(self._readers))))
                fd = os.open(self._packs / f"{name}.pack", os.O_RDONLY | _O_BINARY)
                self._readers[name] = fd
            if hasattr(os, "pread"):
                return os.pread(fd, length, offset)
            os.lseek(fd, offset, os.SEEK_SET)  # Windows
            return os.read(fd, length)

    # -- housekeeping ----------------------------------------------------------------------

    def iter_blob_ids(self) -> Iterator[str]:
        if self._writer is not None:
            self._writer.flush()
        if self._index is not None:
            for raw in self._index.iter_ids():
                yield raw.hex()
        yield from self._loose_ids()

    def _loose_ids(self) -> Iterator[str]:
        if not self._loose or not self._blobs.is_dir():
            return
        for shard in sorted(self._blobs.iterdir()):
            if not shard.is_dir():
                continue
            for entry in sorted(shard.iterdir()):
                if _is_blob_id(entry.name) and entry.name[:2] == shard.name:
                    yield entry.name

    def stats(self) -> tuple[int, int]:
        """(blob count, total bytes on disk)."""
        count = total = 0
        if self._writer is not None:
            self._writer.flush()
        if self._index is not None:
            count = self._index.count()
            total = sum(p.stat().st_size for p in self._packs.glob("*.pack"))
        for blob_id in self._loose_ids():
            count += 1
            total += self._blob_path(blob_id).stat().st_size
        return count, total

    def clean_tmp(self, older_than_s: float = 0.0) -> int:
        """Remove temp files a crash left behind; returns how many were removed."""
        removed = 0
        cutoff = time.time() - older_than_s
        for entry in self._tmp.iterdir() if self._tmp.is_dir() else ():
            try:
                stale = entry.is_file() and entry.stat().st_mtime <= cutoff
                if stale and entry != self._marker:
                    entry.unlink()
                    removed += 1
            except (FileNotFoundError, PermissionError):
                pass  # another process finished or removed it meanwhile (or holds it)
        return removed

    def _blob_path(self, blob_id: str) -> Path:
        return self._blobs / blob_id[:2] / blob_id


_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def _sealed_read(read: Callable[[], bytes], size: int) -> bytes:
    try:
        data = read()
    except FileNotFoundError:
        raise Damage("missing") from None
    except OSError as exc:
        raise Damage(f"unreadable ({exc.strerror})") from None
    if len(data) < size:
        raise Damage("truncated")
    return data


def _same_text(parts: Iterable[bytes], mac_key: bytes, raw: bytes, size: int) -> Iterator[bytes]:
    """``parts``, raising once they are over unless they are the text whose id is ``raw``
    (a second reading that differs from the first must not be stored under its id)."""
    mac = hmac.new(mac_key, digestmod=hashlib.sha256)
    seen = 0
    for part in parts:
        mac.update(part)
        seen += len(part)
        yield part
    if seen != size or not hmac.compare_digest(mac.digest(), raw):
        raise RepositoryError(
            "An object changed while it was being stored.",
            "Run the backup again; report it if it happens again.",
        )


def _damaged(blob_id: str, reason: str) -> IntegrityError:
    return IntegrityError(
        f"Blob {blob_id} is damaged: {reason}.",
        "Run 'entra-backup verify' to see what it holds; restore the repository folder from a "
        "copy or take a new full backup.",
    )
