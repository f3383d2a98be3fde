"""Logging: JSON lines with extras in the file, readable console lines, secrets scrubbed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.logs import register_secret, scrub, setup_logging
from agent.secrets import resolve_secret

JWT = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9."
    "eyJhdWQiOiJodHRwczovL2dyYXBoLm1pY3Jvc29mdC5jb20iLCJ0aWQiOiJ4In0."
    "c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
)


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "logs" / "agent.jsonl"
    setup_logging("DEBUG", path, console=True)
    yield path
    setup_logging("WARNING", None, console=False)


def lines(path: Path) -> list[dict[str, object]]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_file_gets_json_lines_with_extras(
    capfd: pytest.CaptureFixture[str], log_file: Path
) -> None:
    logging.getLogger("agent.jobs").info(
        "kind %s done", "users", extra={"tenant": "contoso", "job_id": 7, "kind": "users"}
    )
    entry = lines(log_file)[-1]
    assert entry["message"] == "kind users done"
    assert entry["level"] == "INFO" and entry["logger"] == "agent.jobs"
    assert (entry["tenant"], entry["job_id"], entry["kind"]) == ("contoso", 7, "users")
    assert "ts" in entry
    console = capfd.readouterr().err
    assert "kind users done" in console and "tenant=contoso" in console


def test_tokens_headers_and_form_secrets_are_scrubbed(
    capfd: pytest.CaptureFixture[str], log_file: Path
) -> None:
    log = logging.getLogger("agent.graph")
    log.debug("sending Authorization: Bearer %s", JWT)
    log.debug("body client_secret=abc.DEF~123&scope=x password=Pa55word!")
    log.debug("headers %s", {"Authorization": "Bearer opaque-token-value-123456"})
    log.warning("token %s", JWT, extra={"detail": f"token={JWT}"})
    text = log_file.read_text() + capfd.readouterr().err
    for leaked in (JWT, "abc.DEF~123", "Pa55word!", "opaque-token-value-123456"):
        assert leaked not in text
    assert "scope=x" in text  # the rest of the line is kept
    assert "[redacted]" in text


def test_registered_secret_values_are_scrubbed_everywhere(
    capfd: pytest.CaptureFixture[str], log_file: Path, tmp_path: Path
) -> None:
    value = "plain-looking-value-without-shape"
    path = tmp_path / "x.secret"
    path.write_text(value)
    path.chmod(0o600)
    resolve_secret(f"file:{path}", "a test secret")  # registers the value
    log = logging.getLogger("agent.test")
    log.info("value is %s", value, extra={"note": value})
    try:
        raise RuntimeError(f"failed with {value}")
    except RuntimeError:
        log.exception("boom")
    text = log_file.read_text() + capfd.readouterr().err
    assert value not in text
    assert "RuntimeError" in text  # the traceback is still there, only the value is gone


def test_scrub_leaves_ordinary_text_alone() -> None:
    register_secret("abc")  # too short to register: would redact ordinary words
    text = "Backed up 120 users (abc) in tenant contoso; password policy checked."
    assert scrub(text) == text


def test_setup_logging_again_replaces_handlers(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    setup_logging("INFO", first, console=False)
    setup_logging("INFO", second, console=False)
    try:
        logging.getLogger("agent").info("only in the second file")
        for handler in logging.getLogger().handlers:
            handler.flush()
        assert "only in the second file" not in first.read_text()
        assert "only in the second file" in second.read_text()
    finally:
        setup_logging("WARNING", None, console=False)


def test_nested_extras_are_scrubbed_in_the_file(log_file: Path) -> None:
    logging.getLogger("agent.graph").info(
        "request", extra={"request": {"headers": {"Authorization": f"Bearer {JWT}"}}}
    )
    entry = lines(log_file)[-1]
    assert JWT not in json.dumps(entry)
    assert "request" in entry
