"""Old id → new id of objects restore recreated, and every reference rewritten through it.

Keyed by (source tenant, old id) so a later tenant-to-tenant copy can map objects of one
tenant onto another; a same-tenant restore maps only what it recreated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class IdMap:
    source_tenant: str
    target_tenant: str
    ids: dict[str, str] = field(default_factory=dict)  # old id → new id
    kinds: dict[str, str] = field(default_factory=dict)  # old id → kind

    def add(self, kind: str, old: str, new: str) -> None:
        self.ids[old] = new
        self.kinds[old] = kind

    def get(self, old: str) -> str:
        """The id the object has in the target tenant now (itself when not recreated)."""
        return self.ids.get(old, old)

    def rewrite(self, value: Any) -> Any:
        """``value`` with every id of a recreated object replaced: references ({"id": …}),
        @odata.id links and plain id strings inside lists and objects."""
        if isinstance(value, str):
            if value in self.ids:
                return self.ids[value]
            for old, new in self.ids.items():
                if value.endswith("/" + old):
                    return value[: -len(old)] + new
            return value
        if isinstance(value, list):
            return [self.rewrite(v) for v in value]
        if isinstance(value, dict):
            return {k: self.rewrite(v) for k, v in value.items()}
        return value

    def json(self) -> dict[str, Any]:
        return {
            "source_tenant": self.source_tenant,
            "target_tenant": self.target_tenant,
            "objects": [
                {"kind": self.kinds.get(old, ""), "old": old, "new": new}
                for old, new in sorted(self.ids.items())
            ],
        }
