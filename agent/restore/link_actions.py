"""What one relationship object needs (links to add and to remove), and the links held back
because the object they name is gone and this restore does not bring it back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from agent.compare.live import LiveRead
from agent.compare.sides import SnapshotSide
from agent.kinds import ALL_KINDS, BY_NAME, KindSpec
from agent.kinds.links import LINK_IDENTITY
from agent.restore.actions import PLANNED, Action, Request, coming_back
from agent.restore.idmap import IdMap
from agent.restore.probe import check, exists
from agent.restore.restorers import link_field, link_items, restorer_for

# Kinds a link may point at when the link does not say (no @odata.type, no links_to).
_TARGET_KINDS = ("user", "group", "servicePrincipal", "device")


def link_action(
    spec: KindSpec,
    pid: str,
    then: dict[str, Any] | None,
    now: dict[str, Any] | None,
    snap: SnapshotSide,
    request: Request,
    ids: IdMap,
) -> Action | None:
    parent = snap.find(spec.parent or "", pid)
    if parent is None:
        return None  # the parent did not exist at the snapshot
    name = link_field(spec)
    then = then or {}
    action = Action(spec.name, pid, "relink", snapshot=then)
    restorer = restorer_for(spec)
    skip = restorer.cannot_relink(spec, parent)
    if skip:
        action.action, action.reason = "skip", skip
        return action
    wanted = link_items(spec, ids.rewrite(then.get(name)))
    present = link_items(spec, (now or {}).get(name))
    action.add = [wanted[i] for i in sorted(wanted.keys() - present.keys())]
    fields = getattr(restorer, "content", ())
    if fields and request.mode == "overwrite":  # links edited since: their add updates them
        action.add += [
            wanted[k]
            for k in sorted(wanted.keys() & present.keys())
            if any(wanted[k].get(f) != present[k].get(f) for f in fields)
        ]
    # A single-valued link (manager) is replaced by the PUT that adds the new one.
    if request.mode == "overwrite" and not (action.add and not isinstance(then.get(name), list)):
        action.remove = sorted(str(present[k].get("id")) for k in present.keys() - wanted.keys())
    elif request.mode == "skip" and now is not None:
        action.action, action.reason = "skip", "exists; --mode skip leaves it as it is"
        return action
    if not action.add and not action.remove:
        return None
    return action


def parent_gone(spec: KindSpec, pid: str, live: LiveRead, ids: IdMap, actions: list[Action]) -> str:
    """Why links cannot be written because their parent object is gone and this restore does
    not bring it back ("" when it exists or comes back)."""
    parent = spec.parent or ""
    done = next((a for a in actions if a.kind == parent and a.object_id == pid), None)
    if done is not None and done.action in ("recreate", "undelete"):
        return ""
    if parent in live.kinds_read:
        if live.find(parent, ids.get(pid)) is not None:
            return ""
    elif exists(parent, ids.get(pid)):  # not read: Graph is asked (probe.py)
        return ""
    return f"its {parent} is gone" + (f" and {done.reason}" if done and done.reason else "")


def _target_kinds(spec: KindSpec, link: dict[str, Any]) -> list[str]:
    entity = str(link.get("@odata.type") or "").removeprefix("#microsoft.graph.")
    if entity:
        return [
            k.name
            for k in ALL_KINDS
            if k.entity_type == entity
            and not k.parent
            and not (k.path or "").startswith("/directory/deleted")
        ]
    return [k for k in spec.links_to if k in BY_NAME] or list(_TARGET_KINDS)


def target_gone(target: str, kinds: Sequence[str], snap: SnapshotSide, live: LiveRead) -> str:
    """Why the object ``target`` (one of ``kinds``) will not exist when something naming it is
    written: "target X was not restored: <why>"; "" when it exists, this restore brings it
    back (under any kind: a DL is a group Graph skips and the bridge recreates), or nobody
    knows (a kind neither read live nor holding it in the snapshot). A kind not read live is
    asked of Graph (probe.py)."""
    planned = PLANNED.get() or {}
    if coming_back(planned, target) is not None:
        return ""
    why = ""
    for kind in kinds:
        read = kind in live.kinds_read
        if read and live.find(kind, target) is not None:
            return ""
        known = snap.find(kind, target) is not None
        if not read and (not known or exists(kind, target)):
            if known:
                return ""  # there now
            continue
        if not why and known:
            a = planned.get((kind, target))
            why = a.reason if a is not None and a.reason else f"the {kind} is gone and not part of this restore"  # fmt: skip
    return f"target {target} was not restored: {why}" if why else ""


def settle_links(
    spec: KindSpec,
    relinks: list[Action],
    snap: SnapshotSide,
    live: LiveRead,
    ids: IdMap,
    actions: list[Action],
) -> None:
    """A kind's relinks: skipped when their parent is gone and not restored, links to a gone
    target held. Parents and targets of kinds not read live are asked of Graph first, in one
    go (a narrow --kind restore)."""
    unread: list[tuple[str, str]] = []
    parent = spec.parent or ""
    fields = LINK_IDENTITY.get(link_field(spec))
    for action in relinks:
        if parent not in live.kinds_read:
            unread.append((parent, ids.get(action.object_id)))
        for link in action.add:
            target = str(link.get(fields[0]) if fields else link.get("id") or "")
            unread += unread_targets([target], _target_kinds(spec, link), snap, live)
    check(unread)
    for action in relinks:
        gone = parent_gone(spec, action.object_id, live, ids, actions)
        if gone:
            action.action, action.reason, action.add, action.remove = "skip", gone, [], []
        else:
            hold_gone_targets(spec, action, snap, live)


def unread_targets(
    targets: Iterable[str], kinds: Sequence[str], snap: SnapshotSide, live: LiveRead
) -> list[tuple[str, str]]:
    """(kind, id) of the ``targets`` that ``target_gone`` will ask Graph about: of a kind not
    read live that holds it in the snapshot, and not brought back by this restore. Passed to
    ``probe.check`` first, they are asked in one go."""
    planned = PLANNED.get() or {}
    return [
        (kind, target)
        for target in targets
        if target and coming_back(planned, target) is None
        for kind in kinds
        if kind not in live.kinds_read and snap.find(kind, target) is not None
    ]


def hold_gone_targets(spec: KindSpec, action: Action, snap: SnapshotSide, live: LiveRead) -> None:
    """Leave out links to an object that is gone and stays gone (Graph would answer 404),
    each with that object's reason; the relink becomes a skip when nothing else is left."""
    kept = []
    fields = LINK_IDENTITY.get(link_field(spec))
    for link in action.add:
        target = str(link.get(fields[0]) if fields else link.get("id") or "")
        why = target_gone(target, _target_kinds(spec, link), snap, live) if target else ""
        if why:
            action.held.update(dict.fromkeys(link_items(spec, [link]), why))
        else:
            kept.append(link)
    if not action.held:
        return
    name = link_field(spec)
    action.add = kept
    action.notes[name] = "; ".join(sorted(set(action.held.values())))
    if not action.add and not action.remove:
        action.action, action.reason = "skip", action.notes[name]
