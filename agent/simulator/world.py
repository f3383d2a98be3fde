"""Who exists in the simulated cloud: tenants, their registered apps and service accounts.

The directory content of a tenant (users, groups, …) lives in ``SimTenant.directory``, owned by
the simulated Graph (agent/simulator/graph). This module only knows identities and credentials,
which the login endpoint checks and the Graph endpoint reads from tokens.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

# Well-known directory role template ids (the ``wids`` claim carries these).
ROLE_TEMPLATE_IDS: dict[str, str] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Exchange Administrator": "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "Cloud Application Administrator": "158c047a-c907-4556-b7ef-446551a6b5f7",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Groups Administrator": "fdd7a751-b60b-444a-984c-02652fe8fa1c",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "Conditional Access Administrator": "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
}


@dataclass
class ClientSecret:
    """A client secret; only its SHA-256 is kept, as a real IdP would not keep the value."""

    key_id: str
    sha256: str
    hint: str  # first three characters, as the Entra portal shows
    expires: dt.datetime

    @classmethod
    def create(cls, value: str, expires: dt.datetime) -> ClientSecret:
        return cls(
            key_id=str(uuid.uuid4()),
            sha256=hashlib.sha256(value.encode()).hexdigest(),
            hint=value[:3],
            expires=expires,
        )

    def matches(self, value: str) -> bool:
        return hashlib.sha256(value.encode()).hexdigest() == self.sha256


@dataclass
class AppRegistration:
    """A service app (confidential client) registered in a tenant, with admin-consented
    application permissions (the ``roles`` claim) and directory roles (the ``wids`` claim)."""

    client_id: str
    display_name: str
    secrets: list[ClientSecret] = field(default_factory=list)
    certificates_pem: list[bytes] = field(default_factory=list)  # public certificates only
    graph_permissions: list[str] = field(default_factory=list)  # e.g. "User.Read.All"
    directory_roles: list[str] = field(default_factory=list)  # role template ids
    public_client: bool = False  # "Allow public client flows" (needed for ROPC)


@dataclass
class ServiceAccount:
    """A user account used as the tenant's service account profile (delegated admin)."""

    username: str
    password_sha256: str
    mfa_required: bool = False
    directory_roles: list[str] = field(default_factory=list)
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def password_matches(self, value: str) -> bool:
        return hashlib.sha256(value.encode()).hexdigest() == self.password_sha256


@dataclass
class SimTenant:
    tenant_id: str  # GUID
    domain: str  # e.g. contoso.onmicrosoft.com
    display_name: str
    apps: dict[str, AppRegistration] = field(default_factory=dict)
    accounts: dict[str, ServiceAccount] = field(default_factory=dict)  # by lower-case UPN
    directory: Any = None  # the simulated Graph state (agent.simulator.graph)
    # Licences that gate features (e.g. "AAD_PREMIUM" for sign-in logs, "ATP" for Defender P1).
    licenses: set[str] = field(default_factory=set)


class World:
    """All simulated tenants, looked up by GUID or by domain (as the login endpoint is)."""

    def __init__(self) -> None:
        self._tenants: dict[str, SimTenant] = {}
        self.lock = threading.RLock()

    def add(self, tenant: SimTenant) -> SimTenant:
        with self.lock:
            self._tenants[tenant.tenant_id.lower()] = tenant
        return tenant

    def find(self, tenant_segment: str) -> SimTenant | None:
        """Resolve the tenant part of an authority URL: a GUID or a verified domain."""
        key = tenant_segment.lower()
        with self.lock:
            if key in self._tenants:
                return self._tenants[key]
            for tenant in self._tenants.values():
                if tenant.domain.lower() == key:
                    return tenant
        return None

    def tenants(self) -> list[SimTenant]:
        with self.lock:
            return list(self._tenants.values())
