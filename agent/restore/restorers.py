"""How one family of kinds is written back, and the registry of restorable kinds.

The engine (plan.py, apply.py) knows no kind by name: it asks the kind's restorer. A family
module (agent/restore/<family>.py) defines its restorer, usually a subclass of GraphObjects or
GraphLinks, and calls ``register(restorer, *kind_names)`` at import; FAMILIES below lists the
family modules (one line each). A kind is registered only once the disaster drill of its
family proves it (tests/test_restore_*.py): a declared strategy alone is not enough.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from agent.errors import ConfigError
from agent.graph import GraphClient
from agent.kinds import ALL_KINDS, BY_NAME, KindSpec
from agent.kinds.links import link_key
from agent.restore import properties

# Family modules that register restorers when imported (each a module of agent/restore/).
FAMILIES: tuple[str, ...] = (
    "agent.restore.licences",  # users and groups with their licences
    "agent.restore.users",  # users: licences, and undelete under a new name
    "agent.restore.roles",
    "agent.restore.app_links",
    "agent.restore.exchange_groups",  # DLs, mail-enabled security groups, members (bridge)
    "agent.restore.exchange_settings",  # Exchange and Defender settings (bridge)
    "agent.restore.exchange_roles",  # Exchange role assignments (bridge)
    "agent.restore.tenant",  # group settings, organization, domains
    "agent.restore.branding",  # company branding: text and images
    "agent.restore.portal_settings",  # Groups general settings (admin portal)
    "agent.restore.sso",  # enterprise apps' SSO: SPs, apps, claims / token issuance links
    "agent.restore.policies",
)
# Links that are whole objects (appRoleAssignedTo): what a create sends. What identifies one
# across a recreate (its own id is new) is declared once, for diff too: agent/kinds/links.py.
LINK_CREATE: dict[str, tuple[str, ...]] = {
    "appRoleAssignedTo": ("principalId", "resourceId", "appRoleId")
}
GRAPH_ROOT = "https://graph.microsoft.com/v1.0"


class Restorer(Protocol):
    """What the engine asks of every family (objects add patch/undelete/create, links
    add/remove: see GraphObjects and GraphLinks)."""

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
    """The links a relationship object holds, by what identifies each (kinds/links.py)."""
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    name = link_field(spec)
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        key = link_key(name, item)
        if key:
            out[key] = item
    return out


EXCHANGE_MANAGED = (
    "distribution list / mail-enabled security group: Graph cannot write it; restored through "
    "the Exchange bridge (kinds distributionGroup, mailEnabledSecurityGroup and their members)"
)


def exchange_managed(group: dict[str, Any]) -> bool:
    """A Graph group Exchange Online manages (facts file §5: Graph reads, never writes it)."""
    return bool(group.get("mailEnabled")) and "Unified" not in (group.get("groupTypes") or [])


def comparable(restorer: Any, spec: KindSpec, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as plan and verify compare it (the restorer's ``comparable``, if it has one)."""
    shape = getattr(restorer, "comparable", None)
    return shape(spec, obj) if shape is not None else obj


def ref(object_id: str) -> dict[str, str]:
    return {"@odata.id": f"{GRAPH_ROOT}/directoryObjects/{object_id}"}


# Accepted by every directory write the kinds declare, except role management and PIM.
DIRECTORY_WRITE = "Directory.ReadWrite.All"


class GraphObjects:
    """Directory objects with a Graph collection: PATCH, undelete from deletedItems, POST.
    Families subclass it to change a write path or which properties a write may carry."""

    prunes_added = False  # True: objects created since the snapshot are deleted (overwrite)

    def cannot_relink(self, spec: KindSpec, parent: dict[str, Any]) -> str:
        return ""

    def cannot_restore(
        self, spec: KindSpec, then: dict[str, Any], now: dict[str, Any] | None
    ) -> str:
        """Why this object of the snapshot cannot be written back ("" = it can); ``now`` is
        the object as read live (None: gone)."""
        if spec.entity_type == "group" and exchange_managed(then):
            return EXCHANGE_MANAGED
        return ""

    def write_permissions(self, spec: KindSpec) -> tuple[str, ...]:
        """Any one of these lets the app write the kind (the plan skips it otherwise)."""
        return (*spec.write_permissions, DIRECTORY_WRITE) if spec.write_permissions else ()

    def comparable(self, spec: KindSpec, obj: dict[str, Any]) -> dict[str, Any]:
        """``obj`` as plan and verify compare it (e.g. contained items whose ids Graph assigns
        anew when they are written again)."""
        return obj

    def writable(self, spec: KindSpec) -> frozenset[str]:
        """Properties a PATCH may carry."""
        return properties.writable(spec.entity_type or spec.name)

    def creatable(self, spec: KindSpec) -> frozenset[str]:
        """Properties a create may carry."""
        return properties.creatable(spec.entity_type or spec.name)

    def why_not(self, spec: KindSpec, prop: str) -> str:
        """Why ``prop`` is not written."""
        return properties.why_not(spec.entity_type or spec.name, prop)

    def path(self, spec: KindSpec, oid: str) -> str:
        return f"{spec.path}/{oid}"

    def patch(self, g: GraphClient, spec: KindSpec, oid: str, body: dict[str, Any]) -> None:
        g.patch(self.path(spec, oid), body)

    def update(
        self, g: GraphClient, spec: KindSpec, oid: str, body: dict[str, Any], then: dict[str, Any]
    ) -> None:
        """A patch action: ``body`` the properties that differ, ``then`` the whole object as
        restored (for writes that need more than the changes, e.g. a PUT)."""
        self.patch(g, spec, oid, body)

    def undelete(self, g: GraphClient, spec: KindSpec, oid: str) -> dict[str, str]:
        """Bring ``oid`` back from the recycle bin; what came back other than it was
        (property → why) is left out of the patch that follows and reported."""
        g.post(f"/directory/deletedItems/{oid}/restore")
        return {}

    def read(self, g: GraphClient, spec: KindSpec, oid: str) -> dict[str, Any]:
        params = {"$select": ",".join(spec.select)} if spec.select else None
        return g.get_json(self.path(spec, oid), params)

    def create(self, g: GraphClient, spec: KindSpec, body: dict[str, Any]) -> dict[str, Any]:
        return g.post(spec.path or "", body)

    def delete(self, g: GraphClient, spec: KindSpec, oid: str, now: dict[str, Any]) -> None:
        """Remove an object created since the snapshot (``now``: it as read live)."""
        g.delete(self.path(spec, oid))


class GraphLinks:
    """Relationship kinds: $ref links from a parent object (members, owners, manager)."""

    prunes_added = False
    removes_first = False  # True: a relationship holding one link (SP policies) is freed first
    content: tuple[str, ...] = ()  # fields of a link an update writes (same key, changed)

    def write_permissions(self, spec: KindSpec) -> tuple[str, ...]:
        return (*spec.write_permissions, DIRECTORY_WRITE) if spec.write_permissions else ()

    def cannot_relink(self, spec: KindSpec, parent: dict[str, Any]) -> str:
        if link_field(spec) == "manager" and parent.get("onPremisesSyncEnabled"):
            return "synced from on-premises Active Directory: change its manager there"
        if link_field(spec) == "owners" and exchange_managed(parent):
            return f"{EXCHANGE_MANAGED}: its owners are its ManagedBy, restored with the group"
        if link_field(spec) != "members":
            return ""
        if parent.get("onPremisesSyncEnabled"):
            return "synced from on-premises Active Directory: change its members there"
        if parent.get("membershipRule"):
            return "dynamic membership: the rule is restored with the group; Entra computes members"
        if exchange_managed(parent):
            return f"{EXCHANGE_MANAGED}: members are restored with the group's member kind"
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

# kind name → its restorer; filled by register() (here and in the FAMILIES modules).
_REGISTRY: dict[str, Any] = {}
_loaded = False


def register(restorer: Any, *kinds: str) -> None:
    """Make ``kinds`` restorable through ``restorer`` (call at import of a family module)."""
    for name in kinds:
        if name not in BY_NAME:
            raise ValueError(f"register: unknown kind {name!r}")
        if _REGISTRY.get(name, restorer) is not restorer:
            raise ValueError(f"register: {name!r} already has a restorer")
        _REGISTRY[name] = restorer


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in FAMILIES:
            importlib.import_module(module)


def ready() -> frozenset[str]:
    """Kinds restore can write back (proven by a drill)."""
    _load()
    return frozenset(_REGISTRY)


def restorer_for(spec: KindSpec) -> Any:
    _load()
    restorer = _REGISTRY.get(spec.name)
    if restorer is None:
        raise ConfigError(
            f"Restoring '{spec.name}' is not supported yet.",
            f"Restore one of: {', '.join(sorted(_REGISTRY))}.",
        )
    return restorer


def restorable(kinds: list[KindSpec]) -> list[KindSpec]:
    return [k for k in kinds if k.name in ready()]


# Proven by tests/test_restore_e2e.py.
register(OBJECTS, "administrativeUnit", "oauth2PermissionGrant")
register(LINKS, "groupMember", "groupOwner", "userManager", "applicationOwner",
         "servicePrincipalOwner", "appRoleAssignment", "administrativeUnitMember")  # fmt: skip
