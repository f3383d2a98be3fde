"""What a restore plan is made of: the request, one action per object, the plan, and the
actions planned so far (families that plan their kinds themselves look there too)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from agent.kinds import BY_NAME, KindSpec
from agent.restore.idmap import IdMap

MODES = ("overwrite", "merge", "skip")
PLAN_SCHEMA = "entra-backup/restore-plan/1"
# The actions build_plan has planned so far, by (kind, snapshot id): read by target_gone(),
# also from families that plan their kinds themselves (the bridge's group members).
PLANNED: ContextVar[dict[tuple[str, str], Action] | None] = ContextVar("planned", default=None)


@dataclass
class Action:
    kind: str
    object_id: str  # the id in the snapshot
    action: str  # patch | undelete | recreate | relink | delete | skip
    label: str = ""
    patch: dict[str, Any] = field(default_factory=dict)  # property → snapshot value
    add: list[dict[str, Any]] = field(default_factory=list)  # links to add ({"id", …})
    remove: list[str] = field(default_factory=list)  # ids of links to remove
    notes: dict[str, str] = field(default_factory=dict)  # property → why it is not written
    reason: str = ""  # for skip
    snapshot: dict[str, Any] = field(default_factory=dict)  # the object as the snapshot holds it
    # Links left out because their target is gone and not restored: link key → why.
    held: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.object_id,
            "label": self.label,
            "action": self.action,
            "properties": sorted(self.patch),
            "add": [link["id"] for link in self.add],
            "remove": list(self.remove),
            "not_written": dict(sorted(self.notes.items())),
            "reason": self.reason,
        }


@dataclass
class Request:
    kinds: list[KindSpec]
    ids: set[str] | None = None
    properties: set[str] | None = None
    mode: str = "overwrite"
    granted: set[str] | None = None  # the token's application permissions (None: unknown)
    app_roles: set[str] | None = None  # its directory roles, template ids (wids; None: unknown)
    caller: str | None = None  # the service app's own object id (token oid): never pruned
    prune: bool = False  # remove settings objects created after the snapshot (families that can)


@dataclass
class Plan:
    tenant: str
    snapshot_id: int
    mode: str
    actions: list[Action]
    id_map: IdMap

    def writes(self) -> list[Action]:
        return [a for a in self.actions if a.action != "skip"]

    def needs(self, kind: str, action: str) -> list[Action]:
        return [a for a in self.actions if a.kind == kind and a.action == action]

    def json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for a in self.actions:
            counts[a.action] = counts.get(a.action, 0) + 1
        return {
            "schema": PLAN_SCHEMA,
            "tenant": self.tenant,
            "snapshot": self.snapshot_id,
            "mode": self.mode,
            "summary": counts,
            "actions": [a.json() for a in self.actions],
            "id_map": self.id_map.json(),
        }


def coming_back(done: dict[tuple[str, str], Action], oid: str) -> Action | None:
    """The action that undeletes or recreates ``oid`` in this restore, under whichever kind
    (a mail-enabled group is a group Graph skips and the bridge recreates)."""
    for kind in BY_NAME:
        action = done.get((kind, oid))
        if action is not None and action.action in ("recreate", "undelete"):
            return action
    return None
