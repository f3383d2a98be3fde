"""Entra relationships and dependent objects of users, apps, service principals and devices,
and what the directory holds beside its live objects (licences, deleted items, BitLocker
keys): everything read per parent or beside the directory-object kinds of entra_directory.

Relationship reads are one object per parent, batched ($batch of 20) or $expanded, so memory
stays flat in tenant size (agent/collect/graph_generic.py).
"""

from __future__ import annotations

from agent.kinds.entra import USER_READ
from agent.kinds.entra_directory import APP_READ, relation_kind
from agent.kinds.spec import Area, Incremental, KindSpec

USER_MANAGER = KindSpec(
    name="userManager",
    title="User managers",
    area=Area.ENTRA,
    collector="graph.users",
    describes="The manager of each user who has one (organisation chart).",
    source="GET /users/delta ($select=manager → manager@delta)",
    incremental=Incremental.DELTA,
    read_permissions=USER_READ,
    write_permissions=("User.ReadWrite.All",),
    key="userId",
    label="userId",
    parent="user",
    restore=("relink",),
    after=("user",),
    notes="Read in the same users delta round as the users (no request of its own, "
    "incremental); one object per user with a manager, removed when the manager is.",
)

# Microsoft documents the per-service-principal policy reads with Policy.Read.All (or
# Policy.ReadWrite.ApplicationConfiguration) *and* an Application.ReadWrite permission (a
# "known permissions issue"); the policy permission is the one the app does not already hold
# for the application kinds, so it is the one checked here.
SP_POLICY_READ = ("Policy.Read.All", "Policy.ReadWrite.ApplicationConfiguration")
SP_POLICY_WRITE = ("Policy.ReadWrite.ApplicationConfiguration",)
SP_POLICY_NOTE = (
    "Microsoft documents this read as Policy.Read.All together with Application.ReadWrite.All "
    "(a known permissions issue); a tenant that enforces both needs the pair."
)

SP_POLICY_KINDS: tuple[KindSpec, ...] = tuple(
    relation_kind(
        name,
        title,
        "servicePrincipal",
        "/servicePrincipals",
        relation,
        describes,
        read=SP_POLICY_READ,
        write=SP_POLICY_WRITE,
        expand=False,
        notes=SP_POLICY_NOTE,
    )
    for name, title, relation, describes in (
        (
            "servicePrincipalClaimsMappingPolicy",
            "Enterprise app claims mapping policies",
            "claimsMappingPolicies",
            "The claims mapping policy assigned to each enterprise application (SAML/OIDC "
            "attributes and claims).",
        ),
        (
            "servicePrincipalTokenIssuancePolicy",
            "Enterprise app token issuance policies",
            "tokenIssuancePolicies",
            "The token issuance policy (SAML signing, token version) of each enterprise app.",
        ),
        (
            "servicePrincipalTokenLifetimePolicy",
            "Enterprise app token lifetime policies",
            "tokenLifetimePolicies",
            "The token lifetime policy assigned to each enterprise application.",
        ),
        (
            "servicePrincipalHomeRealmDiscoveryPolicy",
            "Enterprise app home realm discovery policies",
            "homeRealmDiscoveryPolicies",
            "The home realm discovery policy assigned to each enterprise application.",
        ),
    )
)

LINK_KINDS: tuple[KindSpec, ...] = (
    USER_MANAGER,
    relation_kind(
        "applicationExtensionProperty",
        "App registration extension properties",
        "application",
        "/applications",
        "extensionProperties",
        "Directory extension attributes each app registration defines (name, data type, "
        "target object types).",
        read=APP_READ,
        write=("Application.ReadWrite.All",),
        expand=False,
        full_items=True,
    ),
    relation_kind(
        "applicationFederatedCredential",
        "App registration federated credentials",
        "application",
        "/applications",
        "federatedIdentityCredentials",
        "Workload identity federation trusts of each app registration (issuer, subject, "
        "audiences).",
        read=APP_READ,
        write=("Application.ReadWrite.All",),
        expand=False,
        full_items=True,
    ),
    *SP_POLICY_KINDS,
    relation_kind(
        "deviceRegisteredUser",
        "Device users",
        "device",
        "/devices",
        "registeredUsers",
        "Registered users of each device.",
        read=("Device.Read.All", "Device.ReadWrite.All", "Directory.Read.All"),
        write=("Device.ReadWrite.All",),
        after=("user",),
    ),
)

__all__ = ["LINK_KINDS"]
