"""Temporary passwords of recreated users: unique, random, and written only to an owner-only
file the operator names — never to logs, the database or the output."""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

from agent.errors import ConfigError

_CLASSES = (string.ascii_uppercase, string.ascii_lowercase, string.digits, "!#%+-=?@")


def temporary_password(length: int = 20) -> str:
    """Meets Entra's complexity rule: every character class, 20 characters."""
    chars = [secrets.choice(c) for c in _CLASSES]
    alphabet = "".join(_CLASSES)
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


class PasswordFile:
    """Created before the first write (O_EXCL, mode 0600), so a bad path fails early."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ConfigError(
                f"The password file {path} already exists.",
                "Name a new file with --password-file; restore never overwrites one.",
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the password file {path}: {exc.strerror}.",
                "Name a file in a folder you can write to with --password-file.",
            ) from None
        self._file = os.fdopen(fd, "w", encoding="utf-8")
        self._file.write("# userPrincipalName\ttemporary password (change forced at sign-in)\n")
        self._file.flush()

    def add(self, user: str, password: str) -> None:
        self._file.write(f"{user}\t{password}\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
