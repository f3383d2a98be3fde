"""What an object names by id (``KindSpec.references``: a policy's users, groups, apps): a
name of an object this restore recreates is written again through the id map; a name of an
object that stays gone skips the object."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.compare.live import LiveRead
from agent.compare.sides import SnapshotSide
from agent.kinds import KindSpec
from agent.restore.actions import Action, Request, coming_back
from agent.restore.probe import exists
from agent.restore.restorers import restorer_for


def reference_target(ref: str) -> tuple[str, str]:
    """A reference's kind and the property it names objects by: "group" → (group, id),
    "application[appId]" → (application, appId)."""
    kind, _, key = ref.partition("[")
    return kind, key.rstrip("]") or "id"


@dataclass
class KeyedObjects:
    """Snapshot objects found by a property other than their id (an application by appId),
    indexed once per plan and only for what a reference names so."""

    snap: SnapshotSide
    index: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def object_id(self, kind: str, key: str, value: str) -> str | None:
        if key == "id":
            return value
        found = self.index.get((kind, key))
        if found is None:
            found = self.index[(kind, key)] = {}
            for version in self.snap.catalog.state(self.snap.tenant, self.snap.seq, kind):
                named = self.snap.load(version.blob_id).get(key)
                if named:
                    found[str(named)] = version.object_id
        return found.get(value)


def values_at(obj: Any, path: str) -> list[str]:
    """The strings at a dotted path (lists are walked into)."""
    head, _, rest = path.partition(".")
    if isinstance(obj, list):
        return [v for item in obj for v in values_at(item, path)]
    if not isinstance(obj, dict):
        return []
    value = obj.get(head)
    if rest:
        return values_at(value, rest)
    items = value if isinstance(value, list) else [value]
    return [str(v) for v in items if isinstance(v, str) and v]


def naming_recreated(
    spec: KindSpec,
    snap: SnapshotSide,
    done: dict[tuple[str, str], Action],
    seen: set[str],
    request: Request,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Objects that did not change but name an object this restore recreates: they must be
    written again with its new id. Read only when something they can name is recreated."""
    named = {reference_target(ref)[0] for _, ref in spec.references}
    if not any(a.action == "recreate" and k in named for (k, _), a in done.items()):
        return
    for version in snap.catalog.state(snap.tenant, snap.seq, spec.name):
        oid = version.object_id
        if oid in seen or (request.ids is not None and oid not in request.ids):
            continue
        yield oid, snap.load(version.blob_id)


def check_references(
    spec: KindSpec,
    oid: str,
    then: dict[str, Any],
    action: Action | None,
    done: dict[tuple[str, str], Action],
    keyed: KeyedObjects,
    live: LiveRead,
) -> Action | None:
    """Check what the object names (``spec.references``). A name of an object this restore
    recreates makes the property be written again (through the id map, at apply); a name of an
    object that is gone and not restored skips the object: writing it without that name would
    change whom the policy covers. A name that is no object of the snapshot's (All, Office365,
    a Microsoft first-party or another tenant's app) is left as it is."""
    if action is not None and action.action == "skip" and not action.notes:
        return action  # skipped for a reason of its own (only read-only differences go on)
    again: set[str] = set()
    snap = keyed.snap
    for path, ref in spec.references:
        kind, key = reference_target(ref)
        for named in values_at(then, path):
            value = keyed.object_id(kind, key, named)
            if value is None:
                continue
            target = done.get((kind, value))
            back = coming_back(done, value)  # under any kind (a mail-enabled group: bridge)
            if back is not None and back.action == "recreate":
                again.add(path.split(".")[0])
            elif back is not None:
                continue
            elif (gone := snap.find(kind, value)) is not None and (
                live.find(kind, value) is None
                if kind in live.kinds_read
                else not exists(kind, value)  # not read: Graph is asked (probe.py)
            ):
                name = gone.get("displayName") or gone.get("userPrincipalName") or ""
                why = target.reason if target is not None else "not part of this restore"
                return Action(
                    spec.name, oid, "skip", snapshot=then,
                    reason=f"names {kind} {named}{f' ({name})' if name else ''}, which is gone "
                    f"and will not be restored ({why}): restore it too, or edit the {spec.name}",
                )  # fmt: skip
    if not again or (action is not None and action.action == "recreate"):
        return action
    if action is None:
        action = Action(spec.name, oid, "patch", snapshot=then)
    if not again <= restorer_for(spec).writable(spec):
        # Named only at creation (a delegated grant's clientId): one naming the new object
        # is created; the old one names an object that is gone.
        action.action, action.patch, action.notes = "recreate", {}, {}
        action.reason = f"names a recreated object in {', '.join(sorted(again))}, which Graph sets only when creating it: created again"  # fmt: skip
        return action
    for prop in sorted(again):
        action.patch[prop] = then.get(prop)
    action.action, action.reason = "patch", ""
    return action
