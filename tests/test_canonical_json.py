"""Canonical JSON: the bytes blob ids are computed from. A changed byte changes every id, and
an upgraded agent would then see every stored object as changed; so whatever encoder
``canonical_json`` uses, its bytes must be those of the original definition below."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.simulator.graph.directory import Directory
from agent.simulator.graph.generator import generate
from agent.simulator.graph.props_objects import OBJECT_KINDS
from agent.store.keys import RepositoryKey
from agent.store.repository import Repository, canonical_json


def original(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def tenant_objects() -> list[Any]:
    """What a generated tenant holds (users, groups, apps, service principals, devices, AUs,
    grants, roles, settings, branding, policies) and each group's member list."""
    directory = Directory("00000000-0000-4000-8000-0000000000aa", "fabrikam.onmicrosoft.com")
    generate(directory, 7, 300, 60)
    objects: list[Any] = []
    with directory.lock:
        for kind in ("user", "group", *OBJECT_KINDS):
            objects.extend(dict(row) for _, row in directory.scan(kind, 0))
        for store in (directory.objects, directory.tenant_config, directory.policies):
            for table in vars(store).values():
                rows = table.values() if isinstance(table, dict) else table
                objects.extend(r for r in rows if isinstance(r, dict))
        objects += [{"id": g, "members": sorted(m)} for g, m in directory.members_of.items()]
    # As the agent meets them: decoded from Graph's JSON (sets, datetimes as strings).
    return [json.loads(json.dumps(o, default=str)) for o in objects]


EDGES: list[Any] = [
    {"text": '\x00\x01\x1f\x7f "quoted" back\\slash /slash \b\f\n\r\t', "é": 1},
    {"displayName": "Zoë Ångström 🎉 日本語 \u2028\u2029 \ufeff \uffff \U0010ffff"},
    {"b": 1, "a": 2, "B": 3, "é": 4, "\U0001f600": 5, "\uffff": 6, "": 7, "a ": 8, "a\x00": 9},
    {"ints": [0, -1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1]},
    {"nested": {"z": [{"y": {"x": [[], {}, [None, True, False]]}}], "a": {"c": 1, "b": 2}}},
    {"empty": "", "list": [], "dict": {}, "none": None},
    # Not for orjson (it would write these differently or refuse them): json.dumps's bytes.
    {"float": 1e-05, "more": [0.1, 1e16, 1.5, -0.0, 123456789012345678.0, 5e-324]},
    {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")},
    {"big": 2**64, "negative": -(2**63) - 1},
    {"tuple": (1, "two"), "sub": {"deep": ("tuple",)}},
    {1: "int keys", 2: "become strings"},
    {"deep": json.loads("[" * 300 + "]" * 300)},
    ["a top-level list", {"b": 1, "a": 2}],
    "a string",
    17,
]


@pytest.mark.parametrize("obj", EDGES, ids=range(len(EDGES)))
def test_edge_values_keep_their_canonical_bytes(obj: Any) -> None:
    assert canonical_json(obj) == original(obj)


def test_a_tenants_objects_keep_their_canonical_bytes() -> None:
    objects = tenant_objects()
    assert len(objects) > 800
    for obj in objects:
        assert canonical_json(obj) == original(obj)


def test_what_json_dumps_refuses_is_still_refused() -> None:
    with pytest.raises(UnicodeEncodeError):
        canonical_json({"lone surrogate": "\ud800"})
    with pytest.raises(TypeError):
        canonical_json({"set": {1, 2}})


def test_stored_objects_keep_their_ids(tmp_path: Path) -> None:
    """A blob id from before is what the same content gets now: nothing looks changed."""
    key = RepositoryKey.generate()
    repo = Repository.init(tmp_path / "repo", key)
    for obj in [*EDGES, *tenant_objects()[:200]]:
        assert repo.blob_id(obj) == repo.put_canonical(original(obj)) == repo.put(obj)


def test_stored_objects_read_back_exactly(tmp_path: Path) -> None:
    """What get() returns is what json.loads reads from the stored text: an integer beyond
    64 bits stays an integer, a float the same float, NaN and deep nesting still read."""
    repo = Repository.init(tmp_path / "repo", RepositoryKey.generate())
    for obj in [*EDGES, *tenant_objects()[:200]]:
        assert repr(repo.get(repo.put(obj))) == repr(json.loads(canonical_json(obj)))
