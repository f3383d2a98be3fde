"""A tenant's policies: conditional access, named locations, authentication methods and
strengths, authorization, security defaults, cross-tenant access, admin consent requests,
token/claims/HRD/timeout policies, permission grant and group lifecycle policies.

Policies are not directory objects with delta, so they live beside the ``Directory`` rows
(``directory.policies``) and are read in full. Each row is kept exactly as Graph serialises
it (derived types carry ``@odata.type``); writes stamp the modified time the way Graph does.
Callers hold the directory lock.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

# Kinds served as collections, and how each one is keyed.
COLLECTIONS = (
    "namedLocation",
    "conditionalAccessPolicy",
    "authenticationStrengthPolicy",
    "crossTenantAccessPartner",
    "tokenLifetimePolicy",
    "homeRealmDiscoveryPolicy",
    "activityBasedTimeoutPolicy",
    "claimsMappingPolicy",
    "tokenIssuancePolicy",
    "permissionGrantPolicy",
    "groupLifecyclePolicy",
)
SINGLETONS = (
    "authenticationMethodsPolicy",
    "authorizationPolicy",
    "securityDefaults",
    "crossTenantAccessDefault",
    "adminConsentRequestPolicy",
)
KEYS = {"crossTenantAccessPartner": "tenantId"}
# Where Graph records the time of the last change (only these types have one).
MODIFIED = {
    "namedLocation": "modifiedDateTime",
    "conditionalAccessPolicy": "modifiedDateTime",
    "authenticationStrengthPolicy": "modifiedDateTime",
    "authenticationMethodsPolicy": "lastModifiedDateTime",
}
CREATED = ("namedLocation", "conditionalAccessPolicy", "authenticationStrengthPolicy")
# servicePrincipal navigation property -> the policy kind it links to (objects.py RELATIONS).
SP_RELATIONS = {
    "claimsMappingPolicies": "claimsMappingPolicy",
    "tokenIssuancePolicies": "tokenIssuancePolicy",
    "tokenLifetimePolicies": "tokenLifetimePolicy",
    "homeRealmDiscoveryPolicies": "homeRealmDiscoveryPolicy",
}


class PolicyError(Exception):
    """A policy write Graph would refuse (unknown policy, built-in policy, duplicate)."""


def key_of(kind: str, row: dict[str, Any]) -> str:
    return str(row[KEYS.get(kind, "id")])


@dataclass
class PolicyStore:
    items: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {k: {} for k in COLLECTIONS}
    )  # kind -> key -> row, in creation order
    singletons: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- reads ---------------------------------------------------------------------------

    def rows(self, kind: str) -> list[dict[str, Any]]:
        return list(self.items[kind].values())

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.items[kind].get(key)

    def singleton(self, kind: str) -> dict[str, Any]:
        return self.singletons[kind]

    def count(self, kind: str) -> int:
        return 1 if kind in SINGLETONS else len(self.items[kind])

    def ids(self, kind: str) -> list[str]:
        return list(self.items[kind])

    # -- writes --------------------------------------------------------------------------

    def load(self, kind: str, row: dict[str, Any]) -> None:
        """Bulk load (generator, persistence): stored as given."""
        if kind in SINGLETONS:
            self.singletons[kind] = row
        else:
            self.items[kind][key_of(kind, row)] = row

    def create(self, kind: str, row: dict[str, Any], now: str) -> dict[str, Any]:
        key = key_of(kind, row)
        if key in self.items[kind]:
            raise PolicyError(f"{kind} {key} already exists")
        if kind in CREATED:
            row.setdefault("createdDateTime", now)
        if kind in MODIFIED:
            row[MODIFIED[kind]] = now
        self.items[kind][key] = row
        return row

    def update(self, kind: str, key: str | None, changes: dict[str, Any], now: str) -> None:
        """PATCH semantics: the given properties replace the stored ones."""
        row = self.singletons.get(kind) if key is None else self.items[kind].get(key)
        if row is None:
            raise PolicyError(f"no {kind} {key}")
        if row.get("policyType") == "builtIn":
            raise PolicyError("built-in authentication strengths cannot be changed")
        row.update(copy.deepcopy(changes))
        if kind in MODIFIED:
            row[MODIFIED[kind]] = now

    def delete(self, kind: str, key: str) -> dict[str, Any]:
        row = self.items[kind].get(key)
        if row is None:
            raise PolicyError(f"no {kind} {key}")
        if row.get("policyType") == "builtIn":
            raise PolicyError("built-in authentication strengths cannot be deleted")
        return self.items[kind].pop(key)

    # -- persistence ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"items": {k: list(v.values()) for k, v in self.items.items()}, **self.singletons}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> PolicyStore:
        store = cls()
        for kind, rows in state.get("items", {}).items():
            for row in rows:
                store.load(kind, row)
        for kind in SINGLETONS:
            if kind in state:
                store.singletons[kind] = state[kind]
        return store
