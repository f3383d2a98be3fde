"""Logging: readable console lines, JSON lines in a file, secrets scrubbed from every record.

The scrubber runs as a handler filter, so it also covers records from libraries (msal, urllib3)
that propagate to the root logger.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import threading
from pathlib import Path
from typing import Any

REDACTED = "[redacted]"

_registered: set[str] = set()
_registered_lock = threading.Lock()

# Shapes that are secret whatever their value.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # JWTs (access/id tokens, client assertions): header.payload.signature, base64url.
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    # Authorization headers, in HTTP dumps, dict reprs and JSON.
    (
        re.compile(r"""(?i)(authorization['"]?\s*[:=]\s*['"]?)[^'"\r\n,}]+"""),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    # Form/query fields and key=value or "key": "value" pairs.
    (
        re.compile(
            r"""(?i)\b(client_secret|password|passwd|client_assertion|access_token"""
            r"""|refresh_token|id_token|secret)(['"]?\s*[:=]\s*['"]?)([^&'"\s,}]+)"""
        ),
        r"\1\2" + REDACTED,
    ),
]

# LogRecord attributes that are not ``extra`` fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def register_secret(value: str) -> None:
    """Scrub this exact value from every log record from now on."""
    if value and len(value) >= 4:  # shorter values would redact ordinary words
        with _registered_lock:
            _registered.add(value)


def scrub(text: str) -> str:
    """``text`` with registered secrets and secret-shaped strings replaced."""
    with _registered_lock:
        values = sorted(_registered, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ScrubFilter(logging.Filter):
    """Rewrites a record's message, exception text and string extras with ``scrub``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what we can
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, scrub(value))
        return True


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields a caller attached (tenant, job_id, kind, …)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extras(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        # Extras may be nested (dicts, lists) where the filter does not look: scrub the line.
        return scrub(json.dumps(entry, default=str, ensure_ascii=False))


class ConsoleFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL logger: message  key=value …`` for people watching a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = " ".join(f"{k}={v}" for k, v in extras(record).items())
        line = f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if fields:
            line += f"  {fields}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


_OURS = "_entra_backup_handler"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (it may be redirected later)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ assigns it; ignore
        pass


def setup_logging(level: str, log_file: Path | None, console: bool = True) -> None:
    """(Re)configure the root logger; safe to call again (replaces our earlier handlers)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = []
    if console:
        stream = _StderrHandler()
        stream.setFormatter(ConsoleFormatter())
        handlers.append(stream)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(JsonFormatter())
        handlers.append(file_handler)
    for handler in handlers:
        handler.addFilter(ScrubFilter())
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    root.setLevel(logging.getLevelName(level.upper()) if isinstance(level, str) else level)
    # Libraries chatter at DEBUG with request details; keep them at WARNING unless asked.
    for noisy in ("urllib3", "msal"):
        logging.getLogger(noisy).setLevel(
            logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
        )
