"""What the restorers of bridge kinds (Exchange Online through the bridge host) share.

A bridge family plans, applies and verifies its kinds itself (the engine's ``plan_kind`` /
``apply_action`` / ``verify_action`` hooks): Exchange objects are keyed by names and
ExternalDirectoryObjectId, written by cmdlets with one property table per cmdlet (read from the
ps_scripts module's own tables), and have no recycle bin. The client the engine passes is the
restore's one ``ExchangeBridge`` session; every value reaches PowerShell as a typed parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from agent.compare.live import LiveRead
from agent.compare.sides import SnapshotSide, label_of
from agent.errors import ExchangeError
from agent.exchange import protocol
from agent.exchange.contract import parse_module
from agent.exchange.outcomes import skip_reason
from agent.kinds import BY_NAME, KindSpec
from agent.restore.actions import Action, Request
from agent.restore.idmap import IdMap

READ_ONLY = "set by Exchange Online; no cmdlet writes it"


@cache
def module_tables() -> dict[str, Any]:
    """The ps_scripts module's tables (settable properties per cmdlet, policy families…),
    read from its parse tree: restore writes exactly what the module lets through."""
    return dict(parse_module(protocol.PS_DIR).tables)


@dataclass
class BridgeAction(Action):
    """An action of a bridge family, with what its apply needs beyond the generic fields."""

    target: list[str] = field(default_factory=list)  # members after a sync (ids as planned)
    extra: dict[str, Any] = field(default_factory=dict)


def empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def same(a: Any, b: Any) -> bool:
    """Equal as Exchange means it: absent = empty, multi-valued properties are sets."""
    if empty(a) and empty(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(str, a)) == sorted(map(str, b))
    return bool(a == b)


def differing(then: dict[str, Any], now: dict[str, Any], ignore: set[str]) -> list[str]:
    return sorted(
        p for p in set(then) | set(now) if p not in ignore and not same(then.get(p), now.get(p))
    )


def pairs_of(spec: KindSpec, snap: SnapshotSide, live: LiveRead, ids: set[str] | None) -> list[
    tuple[str, dict[str, Any] | None, dict[str, Any] | None]
]:  # fmt: skip
    """(id, snapshot object, live object) of every object of ``spec`` that differs."""
    out = []
    for pair in live.differences(snap.seq, [spec.name]):
        if ids is not None and pair.object_id not in ids:
            continue
        then = snap.load(pair.old_blob) if pair.old_blob else None
        now = live.load(pair.new_blob) if pair.new_blob else None
        out.append((pair.object_id, then, now))
    return out


def not_in_snapshot(spec: KindSpec, snap: SnapshotSide, request: Request) -> list[Action] | None:
    """For a kind the snapshot never captured (not in its scope then): one skip, or nothing
    when single objects were asked for; otherwise every live object would look "created
    since". None when the snapshot has the kind."""
    view = snap.catalog.snapshots_at(snap.tenant, [snap.seq]).get(snap.seq)
    if view is None or any(k.kind == spec.name for k in view.kinds):
        return None
    if request.ids is not None:
        return []
    return [Action(spec.name, "*", "skip", reason="not in the snapshot (not backed up then)")]


Pair = tuple[str, dict[str, Any] | None, dict[str, Any] | None]


def plan_pairs(
    label_kind: str,
    snap: SnapshotSide,
    live: LiveRead,
    pairs: Iterable[Pair],
    decide: Callable[[str, dict[str, Any] | None, dict[str, Any] | None], Action | None],
) -> list[Action]:
    """The planning loop every bridge family shares: one decision per (id, snapshot object,
    live object), each action labelled from the object of ``label_kind`` it concerns."""
    actions: list[Action] = []
    for oid, then, now in pairs:
        action = decide(oid, then, now)
        if action is not None:
            action.label = label_of(label_kind, oid, then or now or {}, (snap, live))
            actions.append(action)
    return actions


class BridgeRestorer:
    """Base of the bridge families: the hooks the Graph-shaped engine asks every restorer."""

    # Why a property the family does not write stays as it is; READ_ONLY when not listed.
    why: dict[str, str] = {}

    def cannot_relink(self, spec: KindSpec, parent: dict[str, Any]) -> str:
        return ""

    def why_not(self, spec: KindSpec, prop: str) -> str:
        return self.why.get(prop, READ_ONLY)

    def verify_ignored(self, spec: KindSpec) -> set[str]:
        """Properties verify does not compare (identities, timestamps, links other kinds own)."""
        return set()

    def still_differs(
        self, spec: KindSpec, action: Action, now: dict[str, Any], prop: str
    ) -> str | None:
        """Why ``prop`` still differs after the restore, or None when that is expected."""
        return "still differs after the write"

    def verify_action(self, outcome: Any, live: LiveRead, ids: IdMap, request: Request) -> None:
        """Re-read the object and name each property that is not as in the snapshot."""
        action = outcome.action
        spec = BY_NAME[action.kind]
        now = live.find(spec.name, ids.get(action.object_id))
        if action.action == "remove":
            if now is not None:
                outcome.status, outcome.reason = "failed", "still in the tenant after the restore"
            return
        if now is None:
            outcome.status, outcome.reason = "failed", "not found in the tenant after the restore"
            return
        for prop in differing(action.snapshot, now, self.verify_ignored(spec)):
            if request.properties is not None and prop not in request.properties:
                continue
            why = action.notes.get(prop) or self.still_differs(spec, action, now, prop)
            if why:
                outcome.properties[prop] = why
        if outcome.properties and outcome.status == "restored":
            outcome.status = "partial"

    def write_permissions(self, spec: KindSpec) -> tuple[str, ...]:
        # Exchange.ManageAsApp is not in a Graph token: the bridge host's sign-in checks it,
        # and a missing Exchange role skips the kind with that reason at its first call.
        return ()


def run_write(outcome: Any, write: Callable[[], object]) -> bool:
    """Run one bridge write. An error that means "skip" (not licensed, missing Exchange role,
    MFA) makes the object skipped with that reason; others propagate (the object fails).
    False when skipped."""
    try:
        write()
    except ExchangeError as exc:
        reason = skip_reason(exc)
        if reason is None:
            raise
        outcome.status, outcome.reason = "skipped", f"{reason}: {exc.message}"
        return False
    return True
