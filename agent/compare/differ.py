"""Property-level comparison of two versions of one object.

Pure functions, no I/O: diff, history and restore planning all call ``diff_objects``. The
rules come from the kind's declaration (``KindSpec.unordered``, ``KindSpec.secret``); nothing
here knows a kind by name.

Paths (stable, part of the ``--json`` schema):

- ``a.b``      property ``b`` of the object in property ``a``
- ``a[2]``     item 2 of an ordered list (lists of equal length are compared item by item;
               otherwise the whole list is one change)
- ``a[KEY]``   the item of an unordered list whose key is KEY: its "id" (or the key its
               declaration names), or, for items without a key, the item's value itself
               (JSON for objects). A relationship's whole-object links are keyed by their
               identity (agent/kinds/links.py, as restore pairs them: ``appRoleAssignedTo[
               principalId/appRoleId]``) and compared without the id and creation time Graph
               gives a link written again. An item only in the new version is ``added``, only in the
               old one ``removed``; a keyed item in both is compared property by property.

Each change has an ``op``: ``added`` (absent before), ``removed`` (absent now) or ``changed``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.kinds import BY_NAME
from agent.kinds.links import identified, link_key, without_assigned
from agent.kinds.spec import KindSpec

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
_ABSENT = object()


@dataclass(frozen=True)
class PropertyChange:
    path: str
    op: str  # added | removed | changed
    old: Any = None  # None when op is "added", or when the kind is secret (hidden)
    new: Any = None  # None when op is "removed", or when the kind is secret (hidden)
    hidden: bool = False  # the kind holds secrets: values are never shown

    @property
    def property(self) -> str:
        """The top-level property the change belongs to (what a PATCH would carry)."""
        end = len(self.path)
        for stop in (".", "["):
            at = self.path.find(stop)
            if at != -1:
                end = min(end, at)
        return self.path[:end]


@dataclass(frozen=True)
class ObjectDiff:
    kind: str
    object_id: str
    status: str  # added | removed | changed
    changes: tuple[PropertyChange, ...] = ()  # property changes, for "changed"
    label: str = ""
    secret: bool = False

    @property
    def properties(self) -> list[str]:
        return sorted({c.property for c in self.changes})


@dataclass(frozen=True)
class Rules:
    """How to compare objects of one kind (from its declaration)."""

    unordered: dict[str, str] = field(default_factory=dict)  # path → item key ("" = value)
    secret: bool = False
    links: frozenset[str] = frozenset()  # paths of links paired by identity (kinds/links.py)

    @classmethod
    def of(cls, spec: KindSpec | None) -> Rules:
        if spec is None:
            return cls()
        keys = {}
        for entry in spec.unordered:
            name = entry.partition("[")[0]
            keys[name] = spec.unordered_key(name) or ""
        relation = spec.relation if spec.parent else None
        links = frozenset({relation} if relation and identified(relation) else ())
        return cls({**keys, **dict.fromkeys(links, "")}, spec.secret, links)


def diff_objects(
    kind: str,
    object_id: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    *,
    reveal: bool = False,
    spec: KindSpec | None = None,
) -> ObjectDiff | None:
    """None when both versions are equal (or both absent). Values of a secret kind are hidden
    unless ``reveal`` (restore needs them; nothing that prints does). The rules are those of
    the registered kind (``spec`` overrides); a kind this agent does not declare (an older
    catalog) compares with default rules."""
    rules = Rules.of(spec if spec is not None else BY_NAME.get(kind))
    if old is None and new is None:
        return None
    if old is None:
        return ObjectDiff(kind, object_id, ADDED, secret=rules.secret)
    if new is None:
        return ObjectDiff(kind, object_id, REMOVED, secret=rules.secret)
    changes = list(_diff(old, new, "", "", rules))
    if not changes:
        return None
    if rules.secret and not reveal:
        changes = _hide(changes)
    return ObjectDiff(kind, object_id, CHANGED, tuple(changes), secret=rules.secret)


def _hide(changes: list[PropertyChange]) -> list[PropertyChange]:
    """One value-free change per top-level property: even a set item's path could carry a
    secret value, so nothing below the property is shown."""
    ops: dict[str, set[str]] = {}
    for change in changes:
        whole = change.path == change.property
        ops.setdefault(change.property, set()).add(change.op if whole else CHANGED)
    return [
        PropertyChange(name, next(iter(kinds)) if len(kinds) == 1 else CHANGED, hidden=True)
        for name, kinds in sorted(ops.items())
    ]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _diff(old: Any, new: Any, path: str, shape: str, rules: Rules) -> Iterator[PropertyChange]:
    """``path`` names the value for people; ``shape`` is the same path without list indices
    or keys, as declarations name it."""
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for name in sorted(set(old) | set(new)):
            a, b = old.get(name, _ABSENT), new.get(name, _ABSENT)
            sub, sub_shape = _join(path, name), _join(shape, name)
            if a is _ABSENT:
                yield PropertyChange(sub, ADDED, new=b)
            elif b is _ABSENT:
                yield PropertyChange(sub, REMOVED, old=a)
            else:
                yield from _diff(a, b, sub, sub_shape, rules)
        return
    if isinstance(old, list) and isinstance(new, list):
        key = rules.unordered.get(shape)
        if key is not None:
            yield from _diff_set(old, new, path, shape, key, rules)
            return
        if len(old) == len(new) and old and all(isinstance(i, dict | list) for i in old + new):
            for index, (a, b) in enumerate(zip(old, new, strict=True)):
                yield from _diff(a, b, f"{path}[{index}]", shape, rules)
            return
    yield PropertyChange(path, CHANGED, old=old, new=new)


def _item_key(item: Any, key: str) -> str:
    if key and isinstance(item, dict) and item.get(key) is not None:
        return str(item[key])
    if isinstance(item, str):
        return item
    return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _diff_set(
    old: list[Any], new: list[Any], path: str, shape: str, key: str, rules: Rules
) -> Iterator[PropertyChange]:
    if shape in rules.links:  # a link written again is the same link (kinds/links.py)
        before = {link_key(shape, i): without_assigned(i) for i in old}
        after = {link_key(shape, i): without_assigned(i) for i in new}
    else:
        before = {_item_key(i, key): i for i in old}
        after = {_item_key(i, key): i for i in new}
    for item_key in sorted(set(before) | set(after)):
        sub = f"{path}[{item_key}]"
        if item_key not in before:
            yield PropertyChange(sub, ADDED, new=after[item_key])
        elif item_key not in after:
            yield PropertyChange(sub, REMOVED, old=before[item_key])
        else:
            yield from _diff(before[item_key], after[item_key], sub, shape, rules)


def change_json(change: PropertyChange) -> dict[str, Any]:
    """One property change in the ``--json`` schema."""
    out: dict[str, Any] = {"path": change.path, "op": change.op}
    if change.hidden:
        out["hidden"] = True
        return out
    if change.op != ADDED:
        out["old"] = change.old
    if change.op != REMOVED:
        out["new"] = change.new
    return out
