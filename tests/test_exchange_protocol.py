"""The bridge protocol constants: the loader is valid PowerShell, the module travels unchanged,
envelopes parse strictly."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from agent.exchange.contract import syntax_errors
from agent.exchange.protocol import (
    LOADER_SCRIPT,
    MODULE_FILE,
    ProtocolError,
    iso_utc,
    loader_parameters,
    module_sha256,
    parse_envelope,
    retry_after_seconds,
)


def test_loader_parses_and_takes_values_only_as_parameters() -> None:
    assert syntax_errors(LOADER_SCRIPT.encode()) == []
    params = loader_parameters()
    assert set(params) == {"ModuleText", "ModuleName"}
    assert params["ModuleText"].encode("utf-8") == MODULE_FILE.read_bytes()
    assert module_sha256() == hashlib.sha256(params["ModuleText"].encode("utf-8")).hexdigest()
    assert params["ModuleText"] not in LOADER_SCRIPT


def test_iso_utc_is_utc_with_z() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert iso_utc(dt.datetime(2026, 5, 1, 12, 0, tzinfo=plus_two)) == "2026-05-01T10:00:00.000000Z"
    assert iso_utc(dt.datetime(2026, 5, 1, 12, 0)) == "2026-05-01T12:00:00.000000Z"


def _doc(**over: object) -> str:
    base = {
        "schema": 1,
        "op": "exportSettings",
        "ok": False,
        "items": [],
        "errors": [
            {"cmdlet": "Get-X", "category": "Throttled", "message": "Retry after 30 seconds."}
        ],
        "succeeded": [],
        "failed": ["Get-X"],
        "next": None,
    }
    base.update(over)
    return json.dumps(base, separators=(",", ":"))


def test_parse_envelope_strict() -> None:
    envelope = parse_envelope([_doc()])
    assert envelope.op == "exportSettings" and not envelope.ok
    assert envelope.errors[0].category == "Throttled"
    assert retry_after_seconds(envelope.errors[0].message) == 30
    assert retry_after_seconds("no hint") is None
    with pytest.raises(ProtocolError):
        parse_envelope([_doc(), _doc()])
    with pytest.raises(ProtocolError):
        parse_envelope(["not json"])
    with pytest.raises(ProtocolError):
        parse_envelope([_doc(items={})])
    with pytest.raises(ProtocolError):
        parse_envelope([json.dumps({"schema": 1})])
    # A page of a paged export names its continuation; anything but a string or null is refused.
    assert parse_envelope([_doc(next="0" * 32 + ":100")]).next == "0" * 32 + ":100"
    assert parse_envelope([_doc()]).next is None
    with pytest.raises(ProtocolError):
        parse_envelope([_doc(next=100)])
