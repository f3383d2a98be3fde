"""``<repo>/format``: what a repository is (name, version, id) and proof the key opens it."""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import json
import os
import secrets
import tempfile
import uuid
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent.errors import RepositoryError
from agent.store.keys import RepositoryKey
from agent.store.packs import fsync_dir

FORMAT_NAME = "entra-backup-repository"
# 1: a file per blob; 2: packs and an index; 3: blobs may be zstd-compressed (blob version 2),
# which an agent that reads only 1 and 2 would take for damage.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
INIT_FIX = "Run 'entra-backup init' to create it, or correct 'repository' in the config."
_KEY_CHECK = b"entra-backup repository key check"
_NONCE_BYTES = 12


def new_format(key: RepositoryKey) -> dict[str, Any]:
    """The format of a new repository: a fresh id, and the id sealed with the key."""
    repository_id = uuid.uuid4().hex
    nonce = secrets.token_bytes(_NONCE_BYTES)
    check = nonce + AESGCM(key.encryption_key).encrypt(nonce, _KEY_CHECK, repository_id.encode())
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "id": repository_id,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "key_check": base64.b64encode(check).decode("ascii"),
    }


def read_format(path: Path, key: RepositoryKey) -> dict[str, Any]:
    """The format of the repository at ``path``, once the key is known to open it."""
    fmt_file = path / "format"
    if not fmt_file.is_file():
        raise RepositoryError(f"No repository at {path}.", INIT_FIX)
    try:
        fmt = json.loads(fmt_file.read_text(encoding="utf-8"))
        name, version, repository_id = fmt["format"], fmt["version"], str(fmt["id"])
        check = base64.b64decode(fmt["key_check"], validate=True)
    except (OSError, ValueError, KeyError, TypeError, binascii.Error):
        raise RepositoryError(
            f"The repository format file {fmt_file} is unreadable or damaged.",
            "Restore it from a copy of the repository; the blobs cannot be read without it.",
        ) from None
    if name != FORMAT_NAME:
        raise RepositoryError(
            f"{path} is not an entra-backup repository (format '{name}').", INIT_FIX
        )
    if version not in READABLE_VERSIONS:
        raise RepositoryError(
            f"Repository {path} has format version {version}; this agent reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}.",
            "Run the entra-backup release that created it (or a newer one).",
        )
    try:
        AESGCM(key.encryption_key).decrypt(
            check[:_NONCE_BYTES], check[_NONCE_BYTES:], repository_id.encode()
        )
    except (InvalidTag, ValueError):
        raise RepositoryError(
            f"The repository key does not open repository {path}.",
            "Configure the key this repository was created with ('repository_key').",
        ) from None
    return dict(fmt)


def write_format(path: Path, fmt: dict[str, Any]) -> None:
    atomic_write(path / "tmp", path / "format", json.dumps(fmt, indent=2).encode() + b"\n")


def atomic_write(tmp_dir: Path, final: Path, data: bytes) -> None:
    """Write to tmp_dir, fsync, then rename over ``final``: readers see all or nothing."""
    fd, tmp_name = tempfile.mkstemp(prefix=final.name[:16] + ".", suffix=".tmp", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(final.parent)
