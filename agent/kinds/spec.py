"""The shape of a kind declaration.

Each object kind is declared once (agent/kinds/entra.py, later exchange.py …). Backup, export,
permission checks, the support list and (later) restore all read these declarations; nothing
else in the agent hard-codes what a kind is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# Directory.Read.All / ReadWrite.All read every directory object: every kind accepts them.
DIRECTORY_READ = ("Directory.Read.All", "Directory.ReadWrite.All")


class Area(StrEnum):
    ENTRA = "entra"
    EXCHANGE = "exchange"
    DEFENDER = "defender"


class Incremental(StrEnum):
    DELTA = "delta"  # Graph delta query; a stored deltaLink carries the position
    FULL = "full"  # read in full every run; only changed objects become new versions
    # Immutable events read by time window from a stored high-water mark; never removed from
    # the archive when the service's own retention drops them.
    WINDOW = "window"
    # Relationships Graph has no delta for: re-read only for parents the directory audit log
    # names since the last run (and new parents); the others are carried forward.
    AUDIT = "audit"


@dataclass(frozen=True)
class KindSpec:
    name: str  # stable identifier stored in the catalog, e.g. "user"
    title: str  # for people, e.g. "Users"
    area: Area
    collector: str  # name of the collector that produces it (agent/collect)
    describes: str  # what one object of this kind holds (support list, docs)
    source: str  # where it is read from, e.g. "GET /users/delta"
    incremental: Incremental
    # Graph application permissions: any one of ``read_permissions`` lets us read the kind.
    read_permissions: tuple[str, ...]
    write_permissions: tuple[str, ...] = ()
    # And one of these as well for writes (conditional access: Policy.Read.All beside
    # Policy.ReadWrite.ConditionalAccess, as Graph's create/update pages list them).
    write_also: tuple[str, ...] = ()
    # And one of these as well (e.g. sign-in logs need Directory.Read.All on top).
    read_also: tuple[str, ...] = ()
    # Directory roles the service app or service account needs on top of permissions.
    read_roles: tuple[str, ...] = ()
    write_roles: tuple[str, ...] = ()
    # Directory roles restoring a deleted object of this kind from the recycle bin needs.
    undelete_roles: tuple[str, ...] = ()
    entity_type: str | None = None  # CSDL entity type of one object, when it is one entity
    path: str | None = None  # Graph collection (or singleton) the kind is read from
    delta_path: str | None = None  # Graph delta function for incremental reads
    singleton: bool = False  # ``path`` answers one object, not a collection
    pages: bool = True  # ``path`` takes $top (directoryRoles does not page, facts file §2)
    # Time-window kinds (activity logs): the event time the window filters on.
    time_property: str | None = None
    relation: str | None = None  # for relationship kinds: navigation property of the parent
    # Relationship read with $expand on the parent listing (links), or per parent in $batch;
    # full_items keeps each related entity whole (e.g. appRoleAssignments), not just its id.
    # "graph" (the service app), "portal" (the admin portal API through the service account)
    # or "bridge" (Exchange Online PowerShell on the bridge host).
    channel: str = "graph"
    relation_expand: bool = True
    relation_full_items: bool = False
    # incremental = audit: directory audit activities (agent/kinds/audit_trail.py) that name
    # a parent whose relationship changed, and the kinds the related objects can be (deleting
    # or restoring one changes every relationship that shows it, with no event on the parent).
    changed_by: tuple[str, ...] = ()
    links_to: tuple[str, ...] = ()
    # Graph documents GET {path}/{parent}/{relation}/{id} (one related object, 404 when it
    # is not linked): a parent the audit log names is checked for the objects those events
    # name instead of re-reading its whole relationship (AU member lists run to thousands).
    relation_get_one: bool = False
    key: str = "id"
    label: str = "displayName"
    select: tuple[str, ...] = ()
    # Contained navigation properties Graph returns inside each object (e.g. a policy's
    # method configurations); an object answered without one is completed by reading
    # ``{object}/{name}`` so the backup never silently lacks them.
    contained: tuple[str, ...] = ()
    # Properties dropped before storing: they change without any configuration change.
    volatile: tuple[str, ...] = ()
    # List properties whose order carries no meaning, compared as sets by diff and restore:
    # dotted paths from the object root ("proxyAddresses", "api.oauth2PermissionScopes").
    # Items that are objects are matched by their "id", or by the key named in brackets
    # ("requiredResourceAccess[resourceAppId]"); other items by their value.
    unordered: tuple[str, ...] = ()
    # The objects hold secret values (e.g. BitLocker recovery keys): diff and history say
    # which properties changed, never their values.
    secret: bool = False
    restore: tuple[str, ...] = ()  # restore strategies, in order of preference
    after: tuple[str, ...] = ()  # kinds that must be restored first
    # Ids this kind's objects name: (dotted path, kind named; "kind[prop]" when named by another
    # property than the id, e.g. "application[appId]"). Restore writes them through the
    # id map (a recreated group's new id) and skips an object naming one that is gone and not
    # part of the restore, with that reason.
    references: tuple[tuple[str, str], ...] = ()
    parent: str | None = None  # for relationship kinds: the kind whose objects they belong to
    notes: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    # A tenant setting (TenantConfig attribute, false by default) that must be true for the
    # kind to be read, e.g. "backup_bitlocker_keys": secrets worth backing up only on request.
    opt_in: str | None = None

    def unordered_key(self, path: str) -> str | None:
        """For a list at ``path`` (dotted, no indices) compared as a set: the key its object
        items are matched by ("" = by value); None when the list is ordered."""
        for entry in self.unordered:
            name, _, key = entry.partition("[")
            if name == path:
                return key.rstrip("]") or "id"
        return None

    def can_read_with(self, roles: set[str]) -> bool:
        """True if the token's ``roles`` claim grants reading this kind (kinds read through
        another channel need no Graph application permission)."""
        if self.channel == "bridge":
            return True  # Exchange.ManageAsApp is not in a Graph token: the bridge checks it
        return not self.read_permissions or any(p in roles for p in self.read_permissions)

    def missing_read_permission(self, roles: set[str]) -> str | None:
        if not self.can_read_with(roles):
            return self.read_permissions[0]
        if self.read_also and not any(p in roles for p in self.read_also):
            return self.read_also[0]
        return None
