"""Users: written with their licences (licences.py), and undeleted under a new name when
theirs was taken.

A deleted user keeps its userPrincipalName; when another account took the name meanwhile,
Graph refuses the restore (a conflict on userPrincipalName). The restore action's optional
``newUserPrincipalName`` (v1.0 CSDL: directoryObject.restore) brings the user back under a
free name: the report names both, and the operator decides which account keeps the name.
"""

from __future__ import annotations

from agent.errors import WriteRejected
from agent.graph import GraphClient
from agent.kinds import KindSpec
from agent.restore.licences import LicensedObjects
from agent.restore.restorers import register

RENAMED = ".restored"  # appended to the name's local part: alice → alice.restored, …2, …3
TRIES = 3


class UserObjects(LicensedObjects):
    def undelete(self, g: GraphClient, spec: KindSpec, oid: str) -> dict[str, str]:
        try:
            return super().undelete(g, spec, oid)
        except WriteRejected as exc:
            if (exc.reason, exc.target) != ("conflict", "userPrincipalName"):
                raise
            refused = exc
        upn = deleted_upn(g, oid)
        local, _, domain = upn.partition("@")
        for n in range(1, TRIES + 1):
            new = f"{local}{RENAMED}{n if n > 1 else ''}@{domain}"
            try:
                g.post(f"/directory/deletedItems/{oid}/restore", {"newUserPrincipalName": new})
            except WriteRejected as exc:
                if (exc.reason, exc.target) != ("conflict", "userPrincipalName"):
                    raise
                continue
            return {
                "userPrincipalName": f"restored as {new}: another user now holds {upn}; "
                "rename one of the two"
            }
        raise refused


def deleted_upn(g: GraphClient, oid: str) -> str:
    """The deleted user's own name. Entra may show a deleted user's name prefixed with its
    object id (hyphens removed) to free it; the prefix is not part of the name."""
    item = g.get_json(f"/directory/deletedItems/{oid}", {"$select": "id,userPrincipalName"})
    upn = str(item.get("userPrincipalName") or "")
    prefix = oid.replace("-", "")
    return upn[len(prefix) :] if upn.lower().startswith(prefix.lower()) else upn


# Proven by tests/test_restore_users.py (and the objects drill, test_restore_e2e.py).
register(UserObjects(), "user")
