"""Service principals follow their application.

A service principal is the tenant's instance of an application: its appId names the app.
Deleting an app deletes its service principal in the tenant; purging the app leaves that
service principal in deleted items, where Graph will not restore it: "the service principal
can't be restored without having an active corresponding application" (Entra, "Restore or
remove a recently deleted application"). So, for a service principal of an app of this
tenant (the snapshot holds an application with its appId):

- the app is recreated by this restore (or was by an earlier one): it comes back under a new
  appId, and the service principal an admin expects is the one of that app. The deleted one is
  not undeleted (Graph would refuse; and it would name the old appId): a new one is created for
  the new appId (apply maps the appId through the id map) with the snapshot's writable
  properties and SSO settings, and its old id goes into the id map, so owners, app role
  assignments to it and held by it, delegated grants, claims / token policy links and
  conditional access policies naming it follow (they run after it: ``after``);
- the app is gone and this restore does not bring it back: the service principal is skipped,
  saying so — neither an undelete nor a create of it can succeed.

A service principal of an app another tenant publishes (Microsoft's first-party apps, a
partner's multi-tenant app: appOwnerOrganizationId is the publisher's tenant) keeps its appId:
undeleted from deleted items, or created again from the appId alone when gone for good.
"""

from __future__ import annotations

from typing import Any

from agent.compare.live import LiveRead
from agent.kinds import KindSpec
from agent.restore.actions import Action
from agent.restore.idmap import IdMap
from agent.restore.probe import exists
from agent.restore.references import KeyedObjects
from agent.restore.restorers import GraphObjects

NOT_UNDELETED = (
    "not undeleted: its application {app} was recreated under a new appId; a service "
    "principal comes back only with its application (Graph refuses to restore it otherwise) "
    "and the deleted one names the old appId, so a new one is created for the new appId with "
    "the snapshot's settings, owners, assignments, grants and policy links"
)
APP_GONE = (
    "its application {app} (appId {app_id}) is gone and will not be restored ({why}): a "
    "service principal cannot be restored or created without its application; restore the "
    "application too"
)


def _source_app_id(ids: IdMap, app_id: str) -> str:
    """The snapshot's appId of an app now known under ``app_id`` (itself if not recreated)."""
    return next((old for old, new in ids.ids.items() if new == app_id and ids.kinds.get(old) == "appId"), app_id)  # fmt: skip


class AppServicePrincipals(GraphObjects):
    """Service principals: undelete or recreate planned against what happens to their app."""

    def revise(
        self,
        spec: KindSpec,
        action: Action,
        ids: IdMap,
        planned: dict[tuple[str, str], Action],
        keyed: KeyedObjects,
        live: LiveRead,
    ) -> Action:
        """``action`` for a service principal given its application's fate in this restore."""
        if action.action not in ("undelete", "recreate"):
            return action
        then = action.snapshot
        app_id = str(then.get("appId") or "")
        source = _source_app_id(ids, app_id)
        app_oid = keyed.object_id("application", "appId", source) if source else None
        if app_oid is None:  # another tenant's app: Graph knows it by its appId
            return action
        app: dict[str, Any] = keyed.snap.find("application", app_oid) or {}
        name = f"'{app.get('displayName') or app_oid}'"
        fate = planned.get(("application", app_oid))
        if (fate is not None and fate.action == "recreate") or source != app_id:
            if action.action == "undelete":
                action.action, action.reason = "recreate", NOT_UNDELETED.format(app=name)
            return action
        if fate is not None and fate.action == "undelete":
            return action  # back first (applications run before service principals)
        gone = (
            live.find("application", app_oid) is None
            if "application" in live.kinds_read
            else not exists("application", app_oid)  # not read: Graph is asked (probe.py)
        )
        if gone:
            why = fate.reason if fate is not None and fate.reason else "not part of this restore"
            reason = APP_GONE.format(app=name, app_id=source, why=why)
            return Action(spec.name, action.object_id, "skip", snapshot=then, reason=reason)
        return action
