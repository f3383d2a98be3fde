"""Relationships and dependent entities of the directory-object kinds beyond users and groups.

The objects themselves (applications, service principals, devices, administrative units,
delegated grants, directory roles) are rows of the ``Directory`` like users and groups, so
they share the change log, delta and deleted items. What hangs off them lives here:

- ``links[relation][source]`` — sets of object ids (owners, AU members, registered owners and
  users of devices, directory role members, policies linked to a service principal);
- ``children[relation][parent]`` — entities owned by one object (extension properties and
  federated credentials of an app, scoped role members of an AU);
- app role assignments (indexed by resource and by principal), BitLocker keys, licences.

Links to an object that is deleted stay stored and are hidden on read (reads show only live
targets), so a soft-deleted user leaves its AUs and roles and comes back with them when it is
restored, as in Entra.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RELATIONS = (
    "application.owners",
    "servicePrincipal.owners",
    "administrativeUnit.members",
    "device.registeredOwners",
    "device.registeredUsers",
    "directoryRole.members",
    "servicePrincipal.claimsMappingPolicies",
    "servicePrincipal.tokenIssuancePolicies",
    "servicePrincipal.tokenLifetimePolicies",
    "servicePrincipal.homeRealmDiscoveryPolicies",
)
CHILDREN = (
    "application.extensionProperties",
    "application.federatedIdentityCredentials",
    "administrativeUnit.scopedRoleMembers",
)


@dataclass
class ObjectStore:
    links: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: {r: {} for r in RELATIONS}
    )
    children: dict[str, dict[str, list[dict[str, Any]]]] = field(
        default_factory=lambda: {c: {} for c in CHILDREN}
    )
    assignments: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> row
    by_resource: dict[str, set[str]] = field(default_factory=dict)  # SP id -> assignment ids
    by_principal: dict[str, set[str]] = field(default_factory=dict)  # principal -> ids
    bitlocker_keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> row
    skus: list[dict[str, Any]] = field(default_factory=list)
    # (relation, source) -> its targets sorted, dropped by link/unlink (the only writers).
    _sorted: dict[tuple[str, str], list[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # -- writes (callers hold the directory lock) ------------------------------------------

    def link(self, relation: str, source: str, target: str) -> None:
        self.links[relation].setdefault(source, set()).add(target)
        self._sorted.pop((relation, source), None)

    def unlink(self, relation: str, source: str, target: str) -> None:
        self.links[relation].get(source, set()).discard(target)
        self._sorted.pop((relation, source), None)

    def add_child(self, relation: str, parent: str, row: dict[str, Any]) -> None:
        self.children[relation].setdefault(parent, []).append(row)

    def add_assignment(self, row: dict[str, Any]) -> None:
        self.assignments[row["id"]] = row
        self.by_resource.setdefault(row["resourceId"], set()).add(row["id"])
        self.by_principal.setdefault(row["principalId"], set()).add(row["id"])

    def remove_assignment(self, assignment_id: str) -> None:
        row = self.assignments.pop(assignment_id)
        self.by_resource.get(row["resourceId"], set()).discard(assignment_id)
        self.by_principal.get(row["principalId"], set()).discard(assignment_id)

    # -- reads ---------------------------------------------------------------------------

    def targets(self, relation: str, source: str) -> list[str]:
        return list(self.sorted_targets(relation, source))

    def sorted_targets(self, relation: str, source: str) -> list[str]:
        """The targets in id order, kept until they change (callers hold the directory lock
        and must not change the list): paging a big AU bisects it instead of sorting it."""
        key = (relation, source)
        ids = self._sorted.get(key)
        if ids is None:
            ids = self._sorted[key] = sorted(self.links[relation].get(source, ()))
        return ids

    def of(self, relation: str, parent: str) -> list[dict[str, Any]]:
        return list(self.children[relation].get(parent, ()))

    # -- persistence ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "links": {r: {s: sorted(t) for s, t in m.items() if t} for r, m in self.links.items()},
            "children": self.children,
            "assignments": list(self.assignments.values()),
            "bitlocker_keys": list(self.bitlocker_keys.values()),
            "skus": self.skus,
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> ObjectStore:
        store = cls()
        for relation, mapping in state.get("links", {}).items():
            store.links[relation] = {s: set(t) for s, t in mapping.items()}
        for relation, mapping in state.get("children", {}).items():
            store.children[relation] = mapping
        for row in state.get("assignments", []):
            store.add_assignment(row)
        store.bitlocker_keys = {r["id"]: r for r in state.get("bitlocker_keys", [])}
        store.skus = list(state.get("skus", []))
        return store
