"""Secret references (``env:``, ``file:``, ``keyring:``) and the ``Secret`` that holds a value.

The config never holds a secret, only a reference to where it lives. ``Secret`` keeps the value
out of ``str``/``repr``/f-strings so it cannot slip into a message, log line or traceback.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from agent.errors import SecretError
from agent.logs import register_secret

log = logging.getLogger(__name__)

SCHEMES = ("env:", "file:", "keyring:")
FIX_REF = "Write a secret reference: env:VARIABLE, file:/path/to/file or keyring:service/username."


class Secret:
    """A secret value; only ``reveal()`` returns it."""

    __slots__ = ("_value", "ref")

    def __init__(self, value: str, ref: str) -> None:
        self._value = value
        self.ref = ref

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.ref})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would copy the value somewhere we cannot see; refuse.
        raise TypeError("Secret values cannot be pickled.")


def is_secret_ref(value: str) -> bool:
    """True when ``value`` is a well-formed reference (not a literal secret)."""
    for scheme in SCHEMES:
        if value.startswith(scheme):
            rest = value[len(scheme) :]
            if scheme == "keyring:":
                service, sep, user = rest.partition("/")
                return bool(service and sep and user)
            return bool(rest.strip())
    return False


def resolve_secret(ref: str, what: str) -> Secret:
    """Read the secret ``ref`` points at; ``what`` names its purpose for error messages."""
    if not is_secret_ref(ref):
        # Never echo ``ref``: it may be the secret itself pasted into the config.
        raise SecretError(f"The setting for {what} is not a secret reference.", FIX_REF)
    scheme, _, rest = ref.partition(":")
    if scheme == "env":
        value = _from_env(rest, what)
    elif scheme == "file":
        value = _from_file(Path(rest), ref, what)
    else:
        value = _from_keyring(rest, ref, what)
    register_secret(value)
    return Secret(value, ref)


def _from_env(name: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SecretError(
            f"Environment variable {name} (holding {what}) is not set or empty.",
            f"Set {name} in the agent's environment (service definition), or use a file: or "
            "keyring: reference.",
        )
    return value


def _from_file(path: Path, ref: str, what: str) -> str:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SecretError(
            f"The file {path} (holding {what}, from '{ref}') does not exist.",
            "Create it, or point the reference at the right file.",
        ) from None
    except OSError as exc:
        raise SecretError(
            f"Cannot access {path} (holding {what}): {exc.strerror}.",
            "Give the agent's service account read access to it (and no one else).",
        ) from None
    if os.name == "posix":
        if mode & stat.S_IROTH:
            raise SecretError(
                f"The file {path} (holding {what}) is readable by every user on this machine.",
                f"Restrict it to the agent's account: chmod 600 {path}",
            )
        if mode & stat.S_IRGRP:
            log.warning("Secret file %s (%s) is readable by its group; chmod 600 it.", path, what)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(
            f"Cannot read {path} (holding {what}): {getattr(exc, 'strerror', None) or 'not UTF-8 text'}.",
            "Make it a UTF-8 text file readable by the agent's service account.",
        ) from None
    value = text.rstrip("\r\n")
    if not value.strip():
        raise SecretError(
            f"The file {path} (holding {what}) is empty.", "Write the secret into it."
        )
    return value


def _from_keyring(rest: str, ref: str, what: str) -> str:
    service, _, username = rest.partition("/")
    try:
        import keyring
        import keyring.errors

        value = keyring.get_password(service, username)
    except ImportError:
        raise SecretError(
            f"'{ref}' ({what}) needs the keyring package, which is not installed.",
            "pip install keyring, or use an env: or file: reference.",
        ) from None
    except Exception as exc:  # keyring raises backend-specific errors; none carry the value
        if type(exc).__name__ in ("NoKeyringError", "InitError"):
            raise SecretError(
                f"No OS keyring is available to read '{ref}' ({what}).",
                "Use a file: or env: reference on this machine, or install a keyring backend "
                "(Windows Credential Manager, macOS Keychain, Secret Service).",
            ) from None
        raise SecretError(
            f"The OS keyring failed reading '{ref}' ({what}): {type(exc).__name__}.",
            "Check that the keyring is unlocked for the agent's account.",
        ) from None
    if not value:
        raise SecretError(
            f"The OS keyring has no entry for service '{service}', user '{username}' ({what}).",
            f"Store it: keyring set {service} {username}",
        )
    return value
