"""Content-addressed, compressed, AES-256-GCM encrypted, write-once blobs on a filesystem.

Layout::

    <repo>/format                 JSON: format name, version, repository id, key check
    <repo>/blobs/<id[:2]>/<id>    magic(4) | version(1) | nonce(12) | ciphertext+tag
    <repo>/tmp/                   blobs being written; renamed into blobs/ when complete
    <repo>/tmp/unsynced           present while blobs written since the last sync() may not
                                  be on disk yet (see sync() and recover_unsynced())

The blob id is HMAC-SHA256(mac key, canonical JSON) and is also the AEAD associated data, so a
file renamed or copied over another id fails authentication instead of returning wrong data.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import itertools
import json
import os
import secrets
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent.errors import IntegrityError, RepositoryError
from agent.store.keys import RepositoryKey

FORMAT_NAME = "entra-backup-repository"
FORMAT_VERSION = 1
MAGIC = b"EBRB"
BLOB_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = len(MAGIC) + 1 + NONCE_BYTES
_KEY_CHECK = b"entra-backup repository key check"
# First plaintext byte says what the payload is, so get() never decodes an image as JSON.
_JSON, _BYTES = b"J", b"B"
# Binary ids hash a prefix no JSON text can start with: the two id spaces never collide.
_BYTES_ID_PREFIX = b"\x00bytes\x00"
_ID_LEN = 64
_HEX = frozenset("0123456789abcdef")
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_INIT_FIX = "Run 'entra-backup init' to create it, or correct 'repository' in the config."


def canonical_json(obj: Any) -> bytes:
    """One byte string per value: sorted keys, no whitespace, UTF-8 (dedupe relies on this)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def _is_blob_id(name: str) -> bool:
    return len(name) == _ID_LEN and set(name) <= _HEX


class Repository:
    def __init__(self, path: Path, key: RepositoryKey, repository_id: str) -> None:
        self.path = Path(path)
        self.repository_id = repository_id
        self._key = key
        self._aead = AESGCM(key.encryption_key)
        self._blobs = self.path / "blobs"
        self._tmp = self.path / "tmp"
        self._marker = self._tmp / "unsynced"
        self._tmp_str, self._marker_str = str(self._tmp), str(self._marker)
        self._blobs_str = str(self._blobs)
        self._lock = threading.Lock()
        self._unsynced: list[Path] = []

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
        (path / "blobs").mkdir(exist_ok=True, mode=0o700)
        (path / "tmp").mkdir(exist_ok=True, mode=0o700)
        repository_id = uuid.uuid4().hex
        nonce = secrets.token_bytes(NONCE_BYTES)
        check = nonce + AESGCM(key.encryption_key).encrypt(
            nonce, _KEY_CHECK, repository_id.encode()
        )
        fmt = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "id": repository_id,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "key_check": base64.b64encode(check).decode("ascii"),
        }
        _atomic_write(path / "tmp", path / "format", json.dumps(fmt, indent=2).encode() + b"\n")
        return cls(path, key, repository_id)

    @classmethod
    def open(cls, path: Path, key: RepositoryKey) -> Repository:
        path = Path(path)
        fmt_file = path / "format"
        if not fmt_file.is_file():
            raise RepositoryError(f"No repository at {path}.", _INIT_FIX)
        try:
            fmt = json.loads(fmt_file.read_text(encoding="utf-8"))
            name, version, repository_id = fmt["format"], fmt["version"], fmt["id"]
            check = base64.b64decode(fmt["key_check"], validate=True)
        except (OSError, ValueError, KeyError, TypeError, binascii.Error):
            raise RepositoryError(
                f"The repository format file {fmt_file} is unreadable or damaged.",
                "Restore it from a copy of the repository; the blobs cannot be read without it.",
            ) from None
        if name != FORMAT_NAME:
            raise RepositoryError(
                f"{path} is not an entra-backup repository (format '{name}').", _INIT_FIX
            )
        if version != FORMAT_VERSION:
            raise RepositoryError(
                f"Repository {path} has format version {version}; this agent reads version "
                f"{FORMAT_VERSION}.",
                "Run the entra-backup release that created it (or a newer one).",
            )
        try:
            AESGCM(key.encryption_key).decrypt(
                check[:NONCE_BYTES], check[NONCE_BYTES:], str(repository_id).encode()
            )
        except (InvalidTag, ValueError):
            raise RepositoryError(
                f"The repository key does not open repository {path}.",
                "Configure the key this repository was created with ('repository_key').",
            ) from None
        (path / "tmp").mkdir(exist_ok=True, mode=0o700)
        repo = cls(path, key, str(repository_id))
        repo.clean_tmp(older_than_s=24 * 3600)  # leftovers of a crash; never a live writer's
        repo.recover_unsynced()
        return repo

    # -- writing ---------------------------------------------------------------------------

    def blob_id(self, obj: Any) -> str:
        return hmac.new(self._key.mac_key, canonical_json(obj), hashlib.sha256).hexdigest()

    def put(self, obj: Any) -> str:
        return self.put_canonical(canonical_json(obj))

    def put_canonical(self, payload: bytes) -> str:
        """Store an object given as its canonical JSON (``canonical_json``'s exact bytes:
        equal content must give equal ids)."""
        blob_id = hmac.new(self._key.mac_key, payload, hashlib.sha256).hexdigest()
        self._store(blob_id, _JSON, payload)
        return blob_id

    def put_bytes(self, data: bytes) -> str:
        blob_id = hmac.new(self._key.mac_key, _BYTES_ID_PREFIX + data, hashlib.sha256).hexdigest()
        self._store(blob_id, _BYTES, data)
        return blob_id

    def _store(self, blob_id: str, type_byte: bytes, payload: bytes) -> None:
        # Plain os calls on strings: this runs once per object of a backup, and pathlib's
        # overhead (and tempfile's name search) cost more than the encryption.
        final = os.path.join(self._blobs_str, blob_id[:2], blob_id)
        if os.path.exists(final):
            return  # same content, same id: dedupe
        data = self._seal(blob_id, type_byte, payload)
        self._mark_unsynced()
        # Concurrent puts of the same content race harmlessly: both files are valid, and
        # os.replace makes whichever lands last appear whole. No fsync per blob (it costs more
        # than the encryption): the job calls sync() once before it commits a snapshot.
        _write_blob(self._tmp_str, final, data)
        if os.name != "posix":
            with self._lock:
                self._unsynced.append(Path(final))

    def _seal(self, blob_id: str, type_byte: bytes, payload: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, type_byte + _compress(payload), blob_id.encode())
        return MAGIC + bytes([BLOB_VERSION]) + nonce + sealed

    def _mark_unsynced(self) -> None:
        with self._lock:
            if not os.path.exists(self._marker_str):
                # Durable before any unsynced blob: after a power loss, every blob that may be
                # torn is newer than this file (recover_unsynced relies on it).
                _atomic_write(self._tmp, self._marker, b"blobs written since this file\n")

    def sync(self) -> None:
        """Make every blob written so far durable; call before committing a snapshot."""
        with self._lock:
            if not self._marker.exists():
                return
            if os.name == "posix":
                os.sync()
            else:  # no global sync on Windows: flush each file written
                for path in self._unsynced:
                    with contextlib.suppress(FileNotFoundError), open(path, "rb+") as fh:
                        os.fsync(fh.fileno())
            self._unsynced.clear()
            self._marker.unlink()
            _fsync_dir(self._tmp)

    def recover_unsynced(self) -> int:
        """After a crash before sync(): drop blobs that did not reach the disk whole.

        Only blobs newer than the marker can be torn; dropping one is safe because no
        committed snapshot refers to it (commits come after sync()), and the next backup
        writes it again. Returns how many were removed.
        """
        if not self._marker.exists():
            return 0
        since = self._marker.stat().st_mtime - 2.0
        removed = 0
        for blob_id in list(self.iter_blob_ids()):
            path = self._blob_path(blob_id)
            if path.stat().st_mtime >= since and self.check_blob(blob_id) is not None:
                path.unlink()
                removed += 1
        self.sync()
        return removed

    # -- reading ---------------------------------------------------------------------------

    def exists(self, blob_id: str) -> bool:
        return _is_blob_id(blob_id) and self._blob_path(blob_id).is_file()

    def get(self, blob_id: str) -> Any:
        payload = self._payload(blob_id, _JSON)
        try:
            return json.loads(payload)
        except ValueError:
            raise _damaged(blob_id, "content is not JSON") from None

    def get_canonical(self, blob_id: str) -> bytes:
        """An object blob's canonical JSON text, not decoded (a reader that needs only part
        of a large object need not build it whole)."""
        return self._payload(blob_id, _JSON)

    def get_bytes(self, blob_id: str) -> bytes:
        return self._payload(blob_id, _BYTES)

    def check_blob(self, blob_id: str) -> str | None:
        """None when the blob is intact, else a short reason (missing, truncated, …)."""
        try:
            type_byte, payload = self._open(blob_id)
        except _Damage as exc:
            return exc.reason
        prefix = _BYTES_ID_PREFIX if type_byte == _BYTES else b""
        actual = hmac.new(self._key.mac_key, prefix + payload, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(actual, blob_id):
            return "id mismatch"
        return None

    def _payload(self, blob_id: str, expected: bytes) -> bytes:
        try:
            type_byte, payload = self._open(blob_id)
        except _Damage as exc:
            raise _damaged(blob_id, exc.reason) from None
        if type_byte != expected:
            what = "binary data" if type_byte == _BYTES else "a JSON object"
            raise _damaged(blob_id, f"holds {what}, not what was asked for")
        return payload

    def _open(self, blob_id: str) -> tuple[bytes, bytes]:
        if not _is_blob_id(blob_id):
            raise _Damage("not a blob id")
        data = self._read(blob_id)
        if len(data) < HEADER_BYTES + TAG_BYTES + 1:
            raise _Damage("truncated")
        if data[: len(MAGIC)] != MAGIC:
            raise _Damage("not a blob file (bad header)")
        if data[len(MAGIC)] != BLOB_VERSION:
            raise _Damage(f"unknown blob version {data[len(MAGIC)]}")
        nonce = data[len(MAGIC) + 1 : HEADER_BYTES]
        try:
            plain = self._aead.decrypt(nonce, data[HEADER_BYTES:], blob_id.encode())
        except InvalidTag:
            raise _Damage("authentication failed") from None
        try:
            return plain[:1], zlib.decompress(plain[1:])
        except zlib.error:
            raise _Damage("content does not decompress") from None

    def _read(self, blob_id: str) -> bytes:
        """The sealed bytes of one blob, as stored."""
        try:
            return self._blob_path(blob_id).read_bytes()
        except FileNotFoundError:
            raise _Damage("missing") from None
        except OSError as exc:
            raise _Damage(f"unreadable ({exc.strerror})") from None

    # -- housekeeping ----------------------------------------------------------------------

    def iter_blob_ids(self) -> Iterator[str]:
        if not self._blobs.is_dir():
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
        for blob_id in self.iter_blob_ids():
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
            except FileNotFoundError:
                pass  # another process finished or removed it meanwhile
        return removed

    def _blob_path(self, blob_id: str) -> Path:
        return self._blobs / blob_id[:2] / blob_id


class _Damage(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _damaged(blob_id: str, reason: str) -> IntegrityError:
    return IntegrityError(
        f"Blob {blob_id} is damaged: {reason}.",
        "Run 'entra-backup verify' to see what it holds; restore the repository folder from a "
        "copy or take a new full backup.",
    )


def _atomic_write(tmp_dir: Path, final: Path, data: bytes, *, durable: bool = True) -> None:
    """Write to tmp_dir, fsync (when durable), then rename over ``final``: readers see all or
    nothing."""
    fd, tmp_name = tempfile.mkstemp(prefix=final.name[:16] + ".", suffix=".tmp", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp_name, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    if durable:
        _fsync_dir(final.parent)


def _compress(payload: bytes) -> bytes:
    """zlib at level 6 with a window no larger than the payload: zlib.compress's default
    32 KiB window and 128 KiB state cost ten times the compression of a small object.
    zlib.decompress reads any window size, so old and new blobs read alike."""
    wbits = min(15, max(9, len(payload).bit_length()))
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits, min(8, wbits - 7))
    return packer.compress(payload) + packer.flush()


_tmp_names = itertools.count()


def _write_blob(tmp_dir: str, final: str, data: bytes) -> None:
    """_atomic_write without fsync for blobs: a temp name unique to this process (no search),
    the blob's folder made on first use."""
    tmp_name = os.path.join(
        tmp_dir, f"{os.path.basename(final)[:16]}.{os.getpid()}.{next(_tmp_names)}.tmp"
    )
    try:
        fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o600)
    except FileExistsError:  # a leftover of an earlier process with our pid
        os.unlink(tmp_name)
        fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o600)
    try:
        try:  # plain os.write: a file object per blob costs more than the write
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        try:
            os.replace(tmp_name, final)
        except FileNotFoundError:  # the first blob of its folder
            os.makedirs(os.path.dirname(final), mode=0o700, exist_ok=True)
            os.replace(tmp_name, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _fsync_dir(path: Path) -> None:
    # The rename is durable only once the directory entry is; not possible on Windows.
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
