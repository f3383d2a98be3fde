"""Secret references: each scheme resolves, each mistake is a SecretError that hides the value."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import pytest

from agent.errors import SecretError
from agent.secrets import Secret, is_secret_ref, resolve_secret

VALUE = "S3cr3t~Value.for-tests-0123456789"


def owner_only(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An OS keyring stand-in (the real ones need a desktop session)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


def test_secret_never_shows_its_value() -> None:
    secret = Secret(VALUE, "env:APP_SECRET")
    assert secret.reveal() == VALUE
    for text in (str(secret), repr(secret), f"{secret}", f"{[secret]}", f"{secret!r}"):
        assert VALUE not in text
        assert "env:APP_SECRET" in text
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_is_secret_ref() -> None:
    assert is_secret_ref("env:X")
    assert is_secret_ref("file:/etc/x.key")
    assert is_secret_ref("keyring:svc/user")
    for not_ref in ("", "env:", "keyring:svc", "hunter2", "file: ", "ENV:X"):
        assert not is_secret_ref(not_ref)


def test_env_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EB_TEST_SECRET", VALUE)
    assert resolve_secret("env:EB_TEST_SECRET", "the client secret").reveal() == VALUE
    monkeypatch.delenv("EB_TEST_SECRET")
    with pytest.raises(SecretError) as info:
        resolve_secret("env:EB_TEST_SECRET", "the client secret")
    assert "EB_TEST_SECRET" in info.value.message and "the client secret" in info.value.message


def test_file_reference_strips_trailing_newline(tmp_path: Path) -> None:
    path = owner_only(tmp_path / "app.secret", VALUE + "\r\n")
    secret = resolve_secret(f"file:{path}", "the client secret")
    assert secret.reveal() == VALUE
    assert str(path) in repr(secret)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(SecretError) as info:
        resolve_secret(f"file:{tmp_path / 'nope.key'}", "the repository key")
    assert "nope.key" in info.value.message and "the repository key" in info.value.message
    empty = owner_only(tmp_path / "empty.key", "\n")
    with pytest.raises(SecretError, match="empty"):
        resolve_secret(f"file:{empty}", "the repository key")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_world_readable_file_is_refused(tmp_path: Path) -> None:
    path = owner_only(tmp_path / "app.secret", VALUE, mode=0o644)
    with pytest.raises(SecretError) as info:
        resolve_secret(f"file:{path}", "the client secret")
    assert "chmod 600" in info.value.fix
    assert VALUE not in str(info.value)


def test_literal_value_is_not_echoed() -> None:
    with pytest.raises(SecretError) as info:
        resolve_secret(VALUE, "the client secret")
    assert VALUE not in str(info.value)
    assert "env:" in info.value.fix


def test_keyring_reference(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password("entra-backup", "contoso-svc", VALUE)
    assert resolve_secret("keyring:entra-backup/contoso-svc", "the password").reveal() == VALUE
    with pytest.raises(SecretError) as info:
        resolve_secret("keyring:entra-backup/other", "the password")
    assert "entra-backup" in info.value.message and "other" in info.value.message


def test_keyring_without_backend_is_a_clear_error() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        with pytest.raises(SecretError) as info:
            resolve_secret("keyring:entra-backup/contoso-svc", "the password")
    finally:
        keyring.set_keyring(previous)
    assert "No OS keyring" in info.value.message
    assert "file:" in info.value.fix
