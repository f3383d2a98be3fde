"""What identifies one link of a relationship kind, declared once for restore and diff.

A link that is a whole object (an app role assignment, an app's extension property or
federated credential) gets a new id — and a new creation time — when restore writes it again.
Restore (``restore.restorers.link_items``) and diff (``compare.differ``) therefore both pair
such links by what they are, not by their id: an assignment by principal and role, an
extension property by its name without the app's appId, a federated credential by its name.
Other links are $ref links, identified by the target's id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# Links identified by some of their fields (joined with "/").
LINK_IDENTITY: dict[str, tuple[str, ...]] = {"appRoleAssignedTo": ("principalId", "appRoleId")}

_EXT_PREFIX = re.compile(r"^extension_[0-9a-fA-F]{32}_")


def short_name(item: dict[str, Any]) -> str:
    """An extension property's name without ``extension_{appId}_``: a recreated app has a new
    appId, so the full name changes while the property is the same."""
    return _EXT_PREFIX.sub("", str(item.get("name") or ""))


# Links identified by a value computed from the item.
LINK_KEY: dict[str, Callable[[dict[str, Any]], str]] = {
    "extensionProperties": short_name,
    "federatedIdentityCredentials": lambda item: str(item.get("name") or ""),
}
# What Graph gives a link written again: not a difference between two links of one identity.
ASSIGNED = frozenset({"id", "createdDateTime"})


def identified(relation: str) -> bool:
    """True if links of ``relation`` are paired by identity rather than by their id."""
    return relation in LINK_IDENTITY or relation in LINK_KEY


def link_key(relation: str, item: Any) -> str:
    """The identity of one link of ``relation`` ("" when it has none)."""
    if not isinstance(item, dict):
        return str(item) if isinstance(item, str) else ""
    keyed = LINK_KEY.get(relation)
    if keyed is not None:
        return keyed(item)
    fields = LINK_IDENTITY.get(relation)
    if fields:
        return "/".join(str(item.get(f)) for f in fields)
    return str(item.get("id") or "")


def without_assigned(item: Any) -> Any:
    """A link as compared once paired by identity: without what Graph assigns anew."""
    return {k: v for k, v in item.items() if k not in ASSIGNED} if isinstance(item, dict) else item
