"""The repository key: 32 random bytes the operator holds, and the sub-keys derived from it.

One secret, two purposes: HKDF gives an encryption key and a separate MAC key for blob names,
so a blob id (an HMAC) reveals nothing about the content and never reuses the cipher key.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from agent.errors import RepositoryError

KEY_BYTES = 32
TEXT_PREFIX = "entra-backup-key-v1:"
_FIX = (
    "Use the key printed by 'entra-backup key generate' or the key file 'entra-backup init' wrote."
)


def _derive(material: bytes, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"entra-backup/v1/" + purpose
    ).derive(material)


@dataclass(frozen=True, repr=False)
class RepositoryKey:
    material: bytes
    encryption_key: bytes = field(init=False, compare=False)
    mac_key: bytes = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.material) != KEY_BYTES:
            raise RepositoryError(f"A repository key is {KEY_BYTES} bytes.", _FIX)
        # frozen dataclass: derived once here rather than on every blob
        object.__setattr__(self, "encryption_key", _derive(self.material, b"encryption"))
        object.__setattr__(self, "mac_key", _derive(self.material, b"blob-id"))

    def __repr__(self) -> str:  # never show key material in logs or tracebacks
        return "RepositoryKey(<redacted>)"

    @classmethod
    def generate(cls) -> RepositoryKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    def to_text(self) -> str:
        return TEXT_PREFIX + base64.b64encode(self.material).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> RepositoryKey:
        text = text.strip()
        if not text.startswith(TEXT_PREFIX):
            raise RepositoryError(
                f"The repository key is not in the expected form ('{TEXT_PREFIX}…').", _FIX
            )
        try:
            material = base64.b64decode(text[len(TEXT_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise RepositoryError("The repository key is not valid base64.", _FIX) from None
        if len(material) != KEY_BYTES:
            raise RepositoryError(
                f"The repository key has {len(material)} bytes instead of {KEY_BYTES}.", _FIX
            )
        return cls(material)

    def write_key_file(self, path: Path) -> None:
        """Create ``path`` holding the key, owner-only from the first byte; never overwrite."""
        path = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            # O_EXCL + mode at creation: no moment where the file exists with wider permissions
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            raise RepositoryError(
                f"Key file {path} already exists; it was not overwritten.",
                "Keep the existing key (backups need it) or choose another path.",
            ) from None
        except OSError as exc:
            raise RepositoryError(
                f"Cannot create key file {path}: {exc.strerror}.",
                "Check that the folder exists and is writable by the agent's account.",
            ) from None
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(self.to_text() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
