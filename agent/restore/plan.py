"""Decide, object by object, what restoring a snapshot into the live tenant takes.

Input: the snapshot side, the live read (``agent.compare.live.read_live``) and the chosen
kinds, ids and properties. The catalog lists only the objects that differ; each is compared
with ``diff_objects`` and becomes one action:

- ``patch``     the object exists: the writable properties that differ (create-only and
                read-only differences are kept as notes, never dropped silently);
- ``undelete``  gone but in the recycle bin: restore it, then patch what differs;
- ``recreate``  gone for good: create it again (new id, recorded in the id map);
- ``relink``    a relationship kind: links to add and to remove;
- ``delete``    created since the snapshot, for kinds whose restorer prunes (role
                assignments, PIM eligibility) and only in overwrite mode;
- ``skip``      nothing will be written, with the reason (a kind whose write permission
                the app lacks is one skip: "missing X").

Mode, for objects that exist: overwrite (make it equal to the snapshot), merge (only
properties and links missing or emptied since) or skip. Kinds are ordered by their ``after``
dependencies, so recreated objects exist (and are in the id map) before links name them.

This module walks the kinds and objects; the decisions live beside it: actions.py (the plan's
data), ordering.py, object_actions.py, link_actions.py, references.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.compare.live import LiveRead
from agent.compare.sides import SnapshotSide, label_of
from agent.errors import ConfigError
from agent.kinds import KindSpec
from agent.restore.actions import MODES, PLANNED, Action, Plan, Request
from agent.restore.idmap import IdMap
from agent.restore.link_actions import link_action, settle_links
from agent.restore.object_actions import added_since, object_action, recreated_twin
from agent.restore.ordering import ordered
from agent.restore.probe import start_probe
from agent.restore.references import KeyedObjects, check_references, naming_recreated
from agent.restore.restorers import restorer_for

if TYPE_CHECKING:
    from agent.restore.session import RestoreSession


def build_plan(
    snap: SnapshotSide,
    live: LiveRead,
    request: Request,
    snapshot_id: int,
    session: RestoreSession | None = None,
) -> Plan:
    """The plan; with ``session``, each family's refusals (the service account's roles) are
    planned as skips, so a dry run shows what the real run will refuse."""
    if request.mode not in MODES:
        raise ConfigError(f"Unknown mode '{request.mode}'.", f"Use one of {', '.join(MODES)}.")
    actions: list[Action] = []
    done: dict[tuple[str, str], Action] = {}  # (kind, snapshot id) → its action
    PLANNED.set(done)
    start_probe(session.graph if session is not None else None)  # kinds not read (probe.py)
    ids = IdMap(live.tenant, live.tenant)
    keyed = KeyedObjects(snap)
    for spec in ordered(request.kinds):
        restorer = restorer_for(spec)  # a kind without one fails here, before any read
        start = len(actions)
        if spec.name not in live.kinds_read:
            # Not listed when only chosen objects (--id) are restored.
            why = next((r.reason for r in live.results if r.kind == spec.name and r.reason), "")
            if request.ids is None:
                actions.append(Action(spec.name, "*", "skip", reason=why or "the live read failed"))
            continue
        missing = _missing_write_permission(restorer, spec, request)
        if missing:
            if any(
                request.ids is None or p.object_id in request.ids
                for p in live.differences(snap.seq, [spec.name])
            ):  # only when there is something to restore
                actions.append(Action(spec.name, "*", "skip", reason=missing))
            continue
        planner = getattr(restorer, "plan_kind", None)
        if planner is not None:  # a family that plans its kinds itself (the bridge kinds)
            for action in planner(spec, snap, live, request, ids):
                actions.append(action)
                done[(action.kind, action.object_id)] = action
            continue
        added = {} if spec.parent else added_since(spec, snap, live)
        seen: set[str] = set()
        fresh: list[str] = []  # created since the snapshot (pruned in overwrite mode)
        relinks: list[Action] = []
        for pair in live.differences(snap.seq, [spec.name]):
            if request.ids is not None and pair.object_id not in request.ids:
                continue
            then = snap.load(pair.old_blob) if pair.old_blob else None
            now = live.load(pair.new_blob) if pair.new_blob else None
            if spec.parent:
                if pair.object_id in ids.ids:
                    now = live.find(spec.name, ids.get(pair.object_id))
                action = link_action(spec, pair.object_id, then, now, snap, request, ids)
                if action is not None and action.action == "relink":
                    relinks.append(action)  # parents and targets checked together, below
            else:
                if then is None:
                    fresh.append(pair.object_id)
                elif now is None:
                    now = recreated_twin(spec, pair.object_id, then, added, ids, live)
                if then is not None:
                    then = ids.rewrite(then)  # compare references as they are named now
                action = object_action(spec, pair.object_id, then, now, live, request)
                revise = getattr(restorer, "revise", None)  # a service principal: its app's fate
                if action is not None and revise is not None:
                    action = revise(spec, action, ids, done, keyed, live)
                if then is not None and spec.references:
                    action = check_references(spec, pair.object_id, then, action, done, keyed, live)
            if action is not None:
                action.label = label_of(spec.name, pair.object_id, then or now or {}, (snap, live))
                actions.append(action)
                done[(spec.name, pair.object_id)] = action
            seen.add(pair.object_id)
        settle_links(spec, relinks, snap, live, ids, actions)
        for oid, then in naming_recreated(spec, snap, done, seen, request):
            action = check_references(spec, oid, ids.rewrite(then), None, done, keyed, live)
            if action is not None:
                action.label = label_of(spec.name, oid, then, (snap, live))
                actions.append(action)
                done[(spec.name, oid)] = action
        if getattr(restorer, "prunes_added", False) and request.mode == "overwrite":
            actions += _prune(spec, fresh, snap, live, request, ids)
        refusals = getattr(restorer, "check", None)  # e.g. the service account's roles
        mine = [a for a in actions[start:] if a.action != "skip"]
        if refusals is not None and session is not None and mine:
            refusals(mine, session)
    return Plan(live.tenant, snapshot_id, request.mode, actions, ids)


def _prune(
    spec: KindSpec,
    fresh: list[str],
    snap: SnapshotSide,
    live: LiveRead,
    request: Request,
    ids: IdMap,
) -> list[Action]:
    """Deletes of the objects created since the snapshot (``fresh``), but not of those an
    earlier restore recreated nor the restore's own service principal."""
    twins = set(ids.ids.values())
    actions = []
    for oid in fresh:
        if oid in twins or (request.ids is not None and oid not in request.ids):
            continue
        now = live.find(spec.name, oid) or {}
        action = Action(spec.name, oid, "delete", snapshot=now)
        if request.caller and request.caller in (now.get("principalId"), oid):
            action.action = "skip"
            action.reason = "the restore's own service principal: never removed"
        action.label = label_of(spec.name, oid, now, (snap, live))
        actions.append(action)
    return actions


def _missing_write_permission(restorer: Any, spec: KindSpec, request: Request) -> str:
    """Why the token cannot write ``spec`` ("" = it can, or the token is not known)."""
    granted = request.granted
    needs = restorer.write_permissions(spec)
    if granted is None:
        return ""
    if needs and not granted & set(needs):
        return f"missing {needs[0]}"
    if needs and spec.write_also and not granted & set(spec.write_also):
        first, *rest = spec.write_also
        instead = f" (or {', '.join(rest)})" if rest else ""
        return (
            f"missing {first}: Graph writes {spec.title.lower()} only with it{instead} "
            f"beside {needs[0]}"
        )
    return ""
