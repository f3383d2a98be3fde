"""How one family of kinds is written back. The engine (plan.py, apply.py) knows no kind by
name: it asks the kind's restorer, chosen from the kind's declaration (channel, parent,
restore strategies). Families today: Graph directory objects and Graph relationship links;
bridge kinds and singletons get restorers of their own.
"""

from __future__ import annotations

from typing import Any, Protocol

from agent.errors import ConfigError
from agent.graph import GraphClient
from agent.kinds import ALL_KINDS, BY_NAME, KindSpec

# Kinds whose restore is implemented and proven by the disaster drill; a declared strategy
# alone is not enough (tests/test_restore_e2e.py).
READY = frozenset({
    "user", "group", "groupMember", "groupOwner", "userManager",
    "application", "servicePrincipal", "applicationOwner", "servicePrincipalOwner",
    "appRoleAssignment", "administrativeUnit", "administrativeUnitMember",
    "oauth2PermissionGrant",
})  # fmt: skip
# Links that are whole objects (appRoleAssignedTo): what identifies one across a recreate (its
# own id is new), and what a create sends. Other links are $ref, identified by the target id.
LINK_IDENTITY: dict[str, tuple[str, ...]] = {"appRoleAssignedTo": ("principalId", "appRoleId")}
LINK_CREATE: dict[str, tuple[str, ...]] = {
    "appRoleAssignedTo": ("principalId", "resourceId", "appRoleId")
}
GRAPH_ROOT = "https://graph.microsoft.com/v1.0"
# The role restoring deleted users and groups needs (facts file §3), by its template id.
GLOBAL_ADMIN = ("Global Administrator", "62e90394-69f5-4237-9190-012177145e10")


class Restorer(Protocol):
    def cannot_relink(self, spec: KindSpec, parent: dict[str, Any]) -> str: ...


def deleted_kind_of(spec: KindSpec) -> KindSpec | None:
    """The recycle-bin kind (deletedUser…) that says whether an object can be undeleted."""
    if spec.parent or not spec.entity_type:
        return None
    return next(
        (
            k
            for k in ALL_KINDS
            if k.parent == spec.entity_type and (k.path or "").startswith("/directory/deleted")
        ),
        None,
    )


def link_field(spec: KindSpec) -> str:
    """The property of a relationship object holding its links (members, owners, manager)."""
    if spec.relation:
        return spec.relation
    if spec.unordered:
        return spec.unordered[0]
    return "manager"  # single-valued: userManager


def link_items(spec: KindSpec, value: Any) -> dict[str, dict[str, Any]]:
    """The links a relationship object holds, by what identifies each (see LINK_IDENTITY)."""
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    fields = LINK_IDENTITY.get(link_field(spec))
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        key = "/".join(str(item.get(f)) for f in fields) if fields else str(item.get("id") or "")
        if key:
            out[key] = item
    return out


def ref(object_id: str) -> dict[str, str]:
    return {"@odata.id": f"{GRAPH_ROOT}/directoryObjects/{object_id}"}


class GraphObjects:
    """Directory objects with a Graph collection: PATCH, undelete from deletedItems, POST."""

    def cannot_relink(self, spec: KindSpec, parent: dict[str, Any]) -> str:
        return ""

    def path(self, spec: KindSpec, oid: str) -> str:
        return f"{spec.path}/{oid}"

    def patch(self, g: GraphClient, spec: KindSpec, oid: str, body: dict[str, Any]) -> None:
        g.patch(self.path(spec, oid), body)

    def undelete(self, g: GraphClient, spec: KindSpec, oid: str) -> None:
        g.post(f"/directory/deletedItems/{oid}/restore")

    def read(self, g: GraphClient, spec: KindSpec, oid: str) -> dict[str, Any]:
        params = {"$select": ",".join(spec.select)} if spec.select else None
        return g.get_json(self.path(spec, oid), params)

    def create(self, g: GraphClient, spec: KindSpec, body: dict[str, Any]) -> dict[str, Any]:
        return g.post(spec.path or "", body)


class GraphLinks:
    """Relationship kinds: $ref links from a parent object (members, owners, manager)."""

    def cannot_relink(self, spec: KindSpec, parent: dict[str, Any]) -> str:
        if link_field(spec) != "members":
            return ""
        if parent.get("onPremisesSyncEnabled"):
            return "synced from on-premises Active Directory: change its members there"
        if parent.get("membershipRule"):
            return "dynamic membership: the rule is restored with the group; Entra computes members"
        if parent.get("mailEnabled") and "Unified" not in (parent.get("groupTypes") or []):
            return (
                "distribution list / mail-enabled security group: Exchange Online manages its "
                "members (restore through the Exchange bridge is not built yet)"
            )
        return ""

    def _base(self, spec: KindSpec, pid: str) -> str:
        parent = BY_NAME[spec.parent or ""]
        return f"{parent.path}/{pid}/{link_field(spec)}"

    def add(self, g: GraphClient, spec: KindSpec, pid: str, item: dict[str, Any]) -> None:
        """``item``: the link as the snapshot holds it, ids already mapped."""
        name = link_field(spec)
        if name in LINK_CREATE:
            g.post(self._base(spec, pid), {k: item.get(k) for k in LINK_CREATE[name]})
        elif name == "manager":
            g.put(f"{self._base(spec, pid)}/$ref", ref(str(item["id"])))
        else:
            g.post(f"{self._base(spec, pid)}/$ref", ref(str(item["id"])))

    def remove(self, g: GraphClient, spec: KindSpec, pid: str, target: str) -> None:
        name = link_field(spec)
        if name == "manager":
            g.delete(f"{self._base(spec, pid)}/$ref")
        elif name in LINK_CREATE:
            g.delete(f"{self._base(spec, pid)}/{target}")
        else:
            g.delete(f"{self._base(spec, pid)}/{target}/$ref")


OBJECTS, LINKS = GraphObjects(), GraphLinks()


def restorer_for(spec: KindSpec) -> Any:
    if spec.name not in READY or spec.channel != "graph":
        raise ConfigError(
            f"Restoring '{spec.name}' is not supported yet.",
            f"Restore one of: {', '.join(sorted(READY))}.",
        )
    return LINKS if spec.parent else OBJECTS


def restorable(kinds: list[KindSpec]) -> list[KindSpec]:
    return [k for k in kinds if k.name in READY and k.channel == "graph"]
