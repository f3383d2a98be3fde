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
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.compare.differ import diff_objects
from agent.compare.live import LiveRead
from agent.compare.sides import SnapshotSide, label_of
from agent.errors import ConfigError
from agent.kinds import ALL_KINDS, BY_NAME, KindSpec
from agent.kinds.links import LINK_IDENTITY
from agent.restore.idmap import IdMap
from agent.restore.restorers import (
    comparable,
    deleted_kind_of,
    link_field,
    link_items,
    restorer_for,
)

if TYPE_CHECKING:
    from agent.restore.session import RestoreSession

MODES = ("overwrite", "merge", "skip")
# The actions build_plan has planned so far, by (kind, snapshot id): read by target_gone(),
# also from families that plan their kinds themselves (the bridge's group members).
_PLANNED: ContextVar[dict[tuple[str, str], Action] | None] = ContextVar("planned", default=None)
PLAN_SCHEMA = "entra-backup/restore-plan/1"


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


def ordered(kinds: Sequence[KindSpec]) -> list[KindSpec]:
    """``kinds`` with every kind after the kinds its ``after`` names (registry order else)."""
    chosen = {k.name: k for k in kinds}
    done: list[KindSpec] = []
    seen: set[str] = set()

    def visit(spec: KindSpec) -> None:
        if spec.name in seen:
            return
        seen.add(spec.name)
        for name in spec.after:
            if name in chosen:
                visit(chosen[name])
        done.append(spec)

    for spec in kinds:
        visit(spec)
    return done


def live_kinds(kinds: Sequence[KindSpec]) -> list[KindSpec]:
    """What to read live to plan ``kinds``: them, and the recycle bin of their object kinds."""
    extra = [d for k in kinds if (d := deleted_kind_of(k)) is not None]
    names = {k.name for k in kinds}
    return [*kinds, *(d for d in extra if d.name not in names)]


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
    _PLANNED.set(done)
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
        added = {} if spec.parent else _added_since(spec, snap, live)
        seen: set[str] = set()
        fresh: list[str] = []  # created since the snapshot (pruned in overwrite mode)
        for pair in live.differences(snap.seq, [spec.name]):
            if request.ids is not None and pair.object_id not in request.ids:
                continue
            then = snap.load(pair.old_blob) if pair.old_blob else None
            now = live.load(pair.new_blob) if pair.new_blob else None
            if spec.parent:
                if pair.object_id in ids.ids:
                    now = live.find(spec.name, ids.get(pair.object_id))
                action = _link_action(spec, pair.object_id, then, now, snap, request, ids)
                gone = _parent_gone(spec, pair.object_id, live, ids, actions)
                if action is not None and action.action == "relink" and gone:
                    action.action, action.reason, action.add, action.remove = "skip", gone, [], []
                elif action is not None and action.action == "relink":
                    _hold_gone_targets(spec, action, snap, live)
            else:
                if then is None:
                    fresh.append(pair.object_id)
                # One still in the recycle bin is itself: an object that took its name since is
                # another one (users: undeleted under a new name, agent/restore/users.py).
                twin = (
                    added.get(_match_key(spec, ids.rewrite(then)))
                    if then and now is None and not _in_recycle_bin(spec, pair.object_id, live)
                    else None
                )
                if twin is not None and then is not None:  # recreated by an earlier restore
                    ids.add(spec.name, pair.object_id, twin)
                    now = live.find(spec.name, twin)
                    old_app, new_app = then.get("appId"), (now or {}).get("appId")
                    if old_app and new_app and old_app != new_app:
                        ids.add("appId", str(old_app), str(new_app))
                if then is not None:
                    then = ids.rewrite(then)  # compare references as they are named now
                action = _object_action(spec, pair.object_id, then, now, live, request)
                if then is not None and spec.references:
                    action = _references(spec, pair.object_id, then, action, done, keyed, live)
            if action is not None:
                action.label = label_of(spec.name, pair.object_id, then or now or {}, (snap, live))
                actions.append(action)
                done[(spec.name, pair.object_id)] = action
            seen.add(pair.object_id)
        for oid, then in _naming_recreated(spec, snap, done, seen, request):
            action = _references(spec, oid, ids.rewrite(then), None, done, keyed, live)
            if action is not None:
                action.label = label_of(spec.name, oid, then, (snap, live))
                actions.append(action)
                done[(spec.name, oid)] = action
        if getattr(restorer, "prunes_added", False) and request.mode == "overwrite":
            twins = set(ids.ids.values())
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
        refusals = getattr(restorer, "check", None)  # e.g. the service account's roles
        mine = [a for a in actions[start:] if a.action != "skip"]
        if refusals is not None and session is not None and mine:
            refusals(mine, session)
    return Plan(live.tenant, snapshot_id, request.mode, actions, ids)


def _missing_write_permission(restorer: Any, spec: KindSpec, request: Request) -> str:
    """Why the token cannot write ``spec`` ("" = it can, or the token is not known)."""
    granted = request.granted
    needs = restorer.write_permissions(spec)
    if granted is None:
        return ""
    if needs and not granted & set(needs):
        return f"missing {needs[0]}"
    if needs and spec.write_also and not granted & set(spec.write_also):
        return (
            f"missing {spec.write_also[0]}: Graph writes {spec.title.lower()} only with it "
            f"(or {', '.join(spec.write_also[1:])}) beside {needs[0]}"
        )
    return ""


# What identifies an object across a recreate (its id changes): a recreated user has the same
# userPrincipalName; a group the same mailNickname and displayName; an app its displayName. Also what a restore into
# another tenant will match objects by.
MATCH_BY: dict[str, tuple[str, ...]] = {
    "user": ("userPrincipalName",),
    "group": ("mailNickname", "displayName"),
    "application": ("displayName",),  # a recreated app has a new appId too
    # One service principal per app in a tenant (the app's appId mapped when it was recreated;
    # a first-party or other tenant's app keeps its appId).
    "servicePrincipal": ("appId",),
    "administrativeUnit": ("displayName",),
    "groupSetting": ("templateId",),  # one tenant-wide setting per template
    # A grant is recreated with a new id; principalId is empty for admin consent.
    "oAuth2PermissionGrant": ("clientId", "consentType", "resourceId", "principalId"),
    "unifiedRoleDefinition": ("displayName",),
    # Assignments and eligibility: who holds which role where (ids through the id map).
    "unifiedRoleAssignment": ("principalId", "roleDefinitionId", "directoryScopeId"),
    "unifiedRoleEligibilitySchedule": ("principalId", "roleDefinitionId", "directoryScopeId"),
    # Policies recreated with a new id (agent/restore/policies.py); partners and permission
    # grant policies keep theirs (the creator names it).
    **dict.fromkeys(
        (
            "conditionalAccessPolicy",
            "namedLocation",
            "authenticationStrengthPolicy",
            "tokenLifetimePolicy",
            "homeRealmDiscoveryPolicy",
            "activityBasedTimeoutPolicy",
            "claimsMappingPolicy",
            "tokenIssuancePolicy",
        ),
        ("displayName",),
    ),
}


def _match_key(spec: KindSpec, obj: dict[str, Any] | None) -> tuple[Any, ...] | None:
    names = MATCH_BY.get(spec.entity_type or "")
    if not names or obj is None or obj.get(names[0]) in (None, ""):
        return None
    return tuple(str(obj.get(n) or "").lower() for n in names)


def _added_since(spec: KindSpec, snap: SnapshotSide, live: LiveRead) -> dict[Any, str]:
    """Objects created since the snapshot, by match key (only those: memory stays small)."""
    found: dict[Any, str] = {}
    for pair in live.differences(snap.seq, [spec.name]):
        if pair.old_blob is None and pair.new_blob:
            key = _match_key(spec, live.load(pair.new_blob))
            if key is not None:
                found[key] = pair.object_id
    return found


def _in_recycle_bin(spec: KindSpec, oid: str, live: LiveRead) -> bool:
    deleted = deleted_kind_of(spec)
    return deleted is not None and live.find(deleted.name, oid) is not None


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _object_action(
    spec: KindSpec,
    oid: str,
    then: dict[str, Any] | None,
    now: dict[str, Any] | None,
    live: LiveRead,
    request: Request,
) -> Action | None:
    if then is None:
        return None  # created since the snapshot: only pruning restorers delete (above)
    cannot = restorer_for(spec).cannot_restore(spec, then, now)
    if cannot:
        return Action(spec.name, oid, "skip", snapshot=then, reason=cannot)
    if now is None and then.get("onPremisesSyncEnabled"):
        return Action(
            spec.name, oid, "skip", snapshot=then,
            reason="synced from on-premises Active Directory: restore it there; Entra Connect "
            "syncs it back",
        )  # fmt: skip
    if now is None:
        if _in_recycle_bin(spec, oid, live):
            return Action(spec.name, oid, "undelete", snapshot=then)
        if request.properties is not None:
            return Action(
                spec.name, oid, "skip", snapshot=then,
                reason="gone for good: restoring single properties cannot recreate it; "
                "run without --properties",
            )  # fmt: skip
        return Action(spec.name, oid, "recreate", snapshot=then)
    if request.mode == "skip":
        return Action(spec.name, oid, "skip", reason="exists; --mode skip leaves it as it is")
    restorer = restorer_for(spec)
    diff = diff_objects(
        spec.name,
        oid,
        comparable(restorer, spec, now),
        comparable(restorer, spec, then),
        reveal=True,
    )
    action = Action(spec.name, oid, "patch", snapshot=then)
    writable = restorer.writable(spec)
    for prop in diff.properties if diff else []:
        if prop == spec.key or (_empty(now.get(prop)) and _empty(then.get(prop))):
            continue  # a recreated object's new id (in the id map); absent vs null
        if request.properties is not None and prop not in request.properties:
            continue
        if request.mode == "merge" and not (_empty(now.get(prop)) and not _empty(then.get(prop))):
            continue
        if prop in writable:
            action.patch[prop] = then.get(prop)
        else:
            action.notes[prop] = restorer.why_not(spec, prop)
    if not action.patch and not action.notes:
        return None
    synced = "synced from on-premises Active Directory: restore it there"
    if action.patch and now.get("onPremisesSyncEnabled"):
        cloud: frozenset[str] = getattr(restorer, "cloud_writable", lambda _spec: frozenset())(spec)
        for prop in [p for p in action.patch if p not in cloud]:  # mastered on-premises
            del action.patch[prop]
            action.notes[prop] = synced
        if not action.patch:
            action.action, action.reason = "skip", synced
    elif not action.patch:
        action.action = "skip"
        action.reason = "only properties Graph does not let a client write differ"
    return action


def _parent_gone(
    spec: KindSpec, pid: str, live: LiveRead, ids: IdMap, actions: list[Action]
) -> str:
    """Why links cannot be written because their parent object is gone and this restore does
    not bring it back ("" when it exists, comes back, or was not read live)."""
    parent = spec.parent or ""
    if parent not in live.kinds_read or live.find(parent, ids.get(pid)) is not None:
        return ""
    done = next((a for a in actions if a.kind == parent and a.object_id == pid), None)
    if done is not None and done.action in ("recreate", "undelete"):
        return ""
    return f"its {parent} is gone" + (f" and {done.reason}" if done and done.reason else "")


# Kinds a link may point at when the link does not say (no @odata.type, no links_to).
_TARGET_KINDS = ("user", "group", "servicePrincipal", "device")


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


def coming_back(done: dict[tuple[str, str], Action], oid: str) -> Action | None:
    """The action that undeletes or recreates ``oid`` in this restore, under whichever kind
    (a mail-enabled group is a group Graph skips and the bridge recreates)."""
    for kind in BY_NAME:
        action = done.get((kind, oid))
        if action is not None and action.action in ("recreate", "undelete"):
            return action
    return None


def target_gone(target: str, kinds: Sequence[str], snap: SnapshotSide, live: LiveRead) -> str:
    """Why the object ``target`` (one of ``kinds``) will not exist when something naming it is
    written: "target X was not restored: <why>"; "" when it exists, this restore brings it
    back (under any kind: a DL is a group Graph skips and the bridge recreates), or none of
    ``kinds`` was read live (then nobody knows)."""
    planned = _PLANNED.get() or {}
    if coming_back(planned, target) is not None:
        return ""
    why = ""
    for kind in kinds:
        if kind not in live.kinds_read:
            continue
        if live.find(kind, target) is not None:
            return ""
        if not why and snap.find(kind, target) is not None:
            a = planned.get((kind, target))
            why = a.reason if a is not None and a.reason else f"the {kind} is gone and not part of this restore"  # fmt: skip
    return f"target {target} was not restored: {why}" if why else ""


def _hold_gone_targets(spec: KindSpec, action: Action, snap: SnapshotSide, live: LiveRead) -> None:
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


def _link_action(
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


def _naming_recreated(
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


def _references(
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
            elif (
                kind in live.kinds_read
                and live.find(kind, value) is None
                and (gone := snap.find(kind, value)) is not None
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
    for prop in sorted(again):
        action.patch[prop] = then.get(prop)
    action.action, action.reason = "patch", ""
    return action
