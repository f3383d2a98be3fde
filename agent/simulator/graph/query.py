"""OData query options as Graph's directory endpoints take them: $select, $top, $filter,
$expand, and opaque signed skip/delta tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from agent.simulator.graph.errors import GraphError, bad_request
from agent.simulator.graph.props import COLLECTIONS, DEFAULT_SELECT, NAVIGATION, is_property
from agent.simulator.graph.props_objects import TYPE_NAMES as OBJECT_TYPE_NAMES
from agent.simulator.graph.props_tenant import TYPE_NAMES as TENANT_TYPE_NAMES

TYPE_NAMES = {
    "user": "Microsoft.DirectoryServices.User",
    "group": "Microsoft.DirectoryServices.Group",
    **OBJECT_TYPE_NAMES,
    **TENANT_TYPE_NAMES,
}


def parse_select(
    kind: str, raw: str | None, *, allow_nav: tuple[str, ...] = ()
) -> list[str] | None:
    """Selected names (None = the default set); unknown names are a 400 as in Graph."""
    if raw is None or not raw.strip():
        return None
    names: list[str] = []
    for name in (n.strip() for n in raw.split(",")):
        if not name:
            continue
        if not (is_property(kind, name) or name in allow_nav):
            if name in NAVIGATION[kind]:
                continue  # Graph ignores navigation properties in $select on plain reads
            raise bad_request(
                f"Could not find a property named '{name}' on type '{TYPE_NAMES[kind]}'."
            )
        if name not in names:
            names.append(name)
    return names


# (kind, selected names) -> what project() writes after id: (name, is a collection).
_PLANS: dict[tuple[str, tuple[str, ...] | None], tuple[tuple[str, bool], ...]] = {}


# The last plan used, by the identity of its select list (a page projects every row with the
# same list; holding the list keeps its identity from being reused).
_LAST: tuple[str, list[str] | None, tuple[tuple[str, bool], ...]] = ("", None, ())


def _plan(kind: str, select: list[str] | None) -> tuple[tuple[str, bool], ...]:
    global _LAST
    last = _LAST
    if last[1] is select and last[0] == kind:
        return last[2]
    key = (kind, tuple(select) if select is not None else None)
    plan = _PLANS.get(key)
    if plan is None:
        names = select if select is not None else DEFAULT_SELECT[kind]
        navigation, collections = NAVIGATION[kind], COLLECTIONS[kind]
        plan = tuple((n, n in collections) for n in names if n != "id" and n not in navigation)
        if len(_PLANS) > 4096:  # selects come from clients: keep the cache bounded
            _PLANS.clear()
        _PLANS[key] = plan
    _LAST = (kind, select, plan)
    return plan


def project(
    kind: str, row: dict[str, Any], select: list[str] | None, *, omit_unset: bool = False
) -> dict[str, Any]:
    """The row as Graph serialises it: id first, unset scalars null and collections []."""
    out: dict[str, Any] = {"id": row["id"]}
    for name, collection in _plan(kind, select):
        if name in row:
            out[name] = row[name]
        elif not omit_unset:
            out[name] = [] if collection else None
    return out


def parse_top(raw: str | None, default: int = 100, maximum: int = 999) -> int:
    if raw is None:
        return default
    try:
        top = int(raw)
    except ValueError:
        raise bad_request(
            f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive.",
            "Request_UnsupportedQuery",
        ) from None
    if not 1 <= top <= maximum:
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive.",
        )
    return top


@dataclass
class Expand:
    name: str  # a link relationship: owners, members, manager, registeredOwners, …
    select: list[str] = field(default_factory=lambda: ["id"])


_EXPAND = re.compile(r"^\s*(\w+)\s*(?:\(\s*\$select\s*=\s*([\w,\s]+)\))?\s*$")
# Link relationships a collection read may $expand (directory-object links in the CSDL).
EXPANDABLE: dict[str, tuple[str, ...]] = {
    "group": ("owners", "members"),
    "user": ("manager",),
    "application": ("owners",),
    "servicePrincipal": ("owners",),
    "device": ("registeredOwners", "registeredUsers"),
    "administrativeUnit": ("members",),
    "directoryRole": ("members",),
}


def parse_expand(kind: str, raw: str | None) -> Expand | None:
    if not raw:
        return None
    match = _EXPAND.match(raw)
    allowed = EXPANDABLE.get(kind, ())
    if not match or match.group(1) not in allowed:
        raise bad_request(
            f"Parsing OData Select and Expand failed: Could not find a property named '{raw}' on type '{TYPE_NAMES[kind]}'."
        )
    names = [n.strip() for n in (match.group(2) or "id").split(",") if n.strip()]
    return Expand(match.group(1), names)


# -- $filter: the few forms directory clients actually use ----------------------------------

_EQ = re.compile(r"^\s*(\w+)\s+eq\s+('(?:[^']|'')*'|true|false|null)\s*$", re.I)
_STARTSWITH = re.compile(r"^\s*startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)\s*$", re.I)
_ANY = re.compile(r"^\s*(\w+)/any\(\s*(\w+)\s*:\s*\2\s+eq\s+'((?:[^']|'')*)'\s*\)\s*$", re.I)


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    return {"true": True, "false": False, "null": None}[text.lower()]


def parse_filter(kind: str, raw: str | None) -> Callable[[dict[str, Any]], bool] | None:
    """Clauses joined by ``and``: ``p eq v``, ``startswith(p,'v')``, ``p/any(c:c eq 'v')``."""
    if not raw:
        return None
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.I):
        if m := _EQ.match(clause):
            _check_name(kind, m.group(1))
            tests.append(_equals(m.group(1), _literal(m.group(2))))
        elif m := _STARTSWITH.match(clause):
            _check_name(kind, m.group(1))
            tests.append(_starts(m.group(1), str(_literal(f"'{m.group(2)}'"))))
        elif m := _ANY.match(clause):
            _check_name(kind, m.group(1))
            tests.append(_any(m.group(1), str(_literal(f"'{m.group(3)}'"))))
        else:
            raise bad_request(
                f"Unsupported or invalid query filter clause specified: '{clause}'.",
                "Request_UnsupportedQuery",
            )
    return lambda row: all(test(row) for test in tests)


def _equals(name: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda row: row.get(name) == value


def _starts(name: str, prefix: str) -> Callable[[dict[str, Any]], bool]:
    low = prefix.lower()
    return lambda row: str(row.get(name) or "").lower().startswith(low)


def _any(name: str, value: str) -> Callable[[dict[str, Any]], bool]:
    low = value.lower()
    return lambda row: low in (str(x).lower() for x in row.get(name) or ())


def _check_name(kind: str, name: str) -> None:
    if not is_property(kind, name):
        raise bad_request(f"Could not find a property named '{name}' on type '{TYPE_NAMES[kind]}'.")


# -- opaque tokens -------------------------------------------------------------------------


def seal(key: bytes, payload: dict[str, Any]) -> str:
    """An opaque, tamper-evident token: clients cannot build or edit one (Graph's aren't
    documented either; facts file §2: query parameters are encoded in the token)."""
    try:
        body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what orjson refuses (an int beyond 64 bits): the stdlib's bytes
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(key, body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac + body).rstrip(b"=").decode("ascii")


def unseal(key: bytes, token: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        return None
    mac, body = raw[:16], raw[16:]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()[:16]):
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
