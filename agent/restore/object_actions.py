"""What one object of the snapshot needs: patch, undelete, recreate or skip (and why); the
recycle bin; objects created since the snapshot, found by what identifies them (match key)."""

from __future__ import annotations

from typing import Any

from agent.compare.differ import diff_objects
from agent.compare.live import LiveRead
from agent.compare.sides import SnapshotSide
from agent.kinds import KindSpec
from agent.restore.actions import Action, Request
from agent.restore.idmap import IdMap
from agent.restore.precheck import undelete_refused
from agent.restore.restorers import comparable, deleted_kind_of, restorer_for

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


def match_key(spec: KindSpec, obj: dict[str, Any] | None) -> tuple[Any, ...] | None:
    names = MATCH_BY.get(spec.entity_type or "")
    if not names or obj is None or obj.get(names[0]) in (None, ""):
        return None
    return tuple(str(obj.get(n) or "").lower() for n in names)


def added_since(spec: KindSpec, snap: SnapshotSide, live: LiveRead) -> dict[Any, str]:
    """Objects created since the snapshot, by match key (only those: memory stays small)."""
    found: dict[Any, str] = {}
    for pair in live.differences(snap.seq, [spec.name]):
        if pair.old_blob is None and pair.new_blob:
            key = match_key(spec, live.load(pair.new_blob))
            if key is not None:
                found[key] = pair.object_id
    return found


def in_recycle_bin(spec: KindSpec, oid: str, live: LiveRead) -> bool:
    deleted = deleted_kind_of(spec)
    return deleted is not None and live.find(deleted.name, oid) is not None


def recreated_twin(
    spec: KindSpec,
    oid: str,
    then: dict[str, Any],
    added: dict[Any, str],
    ids: IdMap,
    live: LiveRead,
) -> dict[str, Any] | None:
    """The live object an earlier restore recreated for ``oid`` (gone, not in the recycle
    bin), found among ``added`` by its match key and recorded in the id map; None if none.
    One still in the recycle bin is itself: an object that took its name since is another one
    (users: undeleted under a new name, agent/restore/users.py) — unless its key changed
    through the id map: a service principal of a recreated app names the new appId, which
    only the one an earlier restore created for it holds (the deleted one cannot come back)."""
    key = match_key(spec, ids.rewrite(then)) if then else None
    rekeyed = key is not None and key != match_key(spec, then)
    twin = added.get(key) if then and (rekeyed or not in_recycle_bin(spec, oid, live)) else None
    if twin is None:
        return None
    ids.add(spec.name, oid, twin)
    now = live.find(spec.name, twin)
    old_app, new_app = then.get("appId"), (now or {}).get("appId")
    if old_app and new_app and old_app != new_app:
        ids.add("appId", str(old_app), str(new_app))
    return now


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def object_action(
    spec: KindSpec,
    oid: str,
    then: dict[str, Any] | None,
    now: dict[str, Any] | None,
    live: LiveRead,
    request: Request,
) -> Action | None:
    if then is None:
        return None  # created since the snapshot: only pruning restorers delete (build_plan)
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
        if in_recycle_bin(spec, oid, live):
            refused = undelete_refused(spec, request)  # a role the app lacks (precheck.py)
            return Action(spec.name, oid, "skip" if refused else "undelete", snapshot=then,
                          reason=refused)  # fmt: skip
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
