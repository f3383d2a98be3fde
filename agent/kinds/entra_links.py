"""Entra relationships and dependent objects of users, apps, service principals and devices,
and what the directory holds beside its live objects (licences, deleted items, BitLocker
keys): everything read per parent or beside the directory-object kinds of entra_directory.

Relationship reads are one object per parent, batched ($batch of 20) or $expanded, so memory
stays flat in tenant size (agent/collect/graph_generic.py).
"""

from __future__ import annotations

from dataclasses import replace

from agent.kinds import audit_trail as trail
from agent.kinds.entra import GROUP_READ, USER_READ
from agent.kinds.entra_directory import APP_READ, relation_kind
from agent.kinds.spec import DIRECTORY_READ, Area, Incremental, KindSpec

AU_READ = ("AdministrativeUnit.Read.All", "AdministrativeUnit.ReadWrite.All", *DIRECTORY_READ)

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
        after=(policy,),  # a policy recreated by the same restore is linked by its new id
        notes=SP_POLICY_NOTE,
        changed_by=trail.SP_POLICIES,
        links_to=("policy",),
    )
    for name, title, relation, describes, policy in (
        (
            "servicePrincipalClaimsMappingPolicy",
            "Enterprise app claims mapping policies",
            "claimsMappingPolicies",
            (
                "The claims mapping policy assigned to each enterprise application (SAML/OIDC "
                "attributes and claims)."
            ),
            "claimsMappingPolicy",
        ),
        (
            "servicePrincipalTokenIssuancePolicy",
            "Enterprise app token issuance policies",
            "tokenIssuancePolicies",
            "The token issuance policy (SAML signing, token version) of each enterprise app.",
            "tokenIssuancePolicy",
        ),
        (
            "servicePrincipalTokenLifetimePolicy",
            "Enterprise app token lifetime policies",
            "tokenLifetimePolicies",
            "The token lifetime policy assigned to each enterprise application.",
            "tokenLifetimePolicy",
        ),
        (
            "servicePrincipalHomeRealmDiscoveryPolicy",
            "Enterprise app home realm discovery policies",
            "homeRealmDiscoveryPolicies",
            "The home realm discovery policy assigned to each enterprise application.",
            "homeRealmDiscoveryPolicy",
        ),
    )
)


def deleted_kind(
    name: str, title: str, cast: str, read: tuple[str, ...], extra: tuple[str, ...] = ()
) -> KindSpec:
    """What the directory's recycle bin holds of one type at backup time (facts file §3)."""
    return KindSpec(
        name=name,
        title=title,
        area=Area.ENTRA,
        collector="graph.list",
        describes=f"Soft-deleted {title.split(' ', 1)[1]} that can still be restored, with "
        "their deletion time (deletedDateTime; restorable for 30 days after it).",
        source=f"GET /directory/deletedItems/microsoft.graph.{cast}",
        incremental=Incremental.FULL,
        read_permissions=read,
        entity_type=cast,
        path=f"/directory/deletedItems/microsoft.graph.{cast}",
        # Enough to say what can be undeleted and until when; the object's properties are
        # in its live kind's last version (closed when it was deleted).
        select=("id", "displayName", "deletedDateTime", *extra),
        parent=cast,
        notes="Restore reads this to choose between undelete (still in the recycle bin at "
        "the snapshot, within 30 days of deletedDateTime) and recreate.",
    )


DELETED_KINDS: tuple[KindSpec, ...] = (
    deleted_kind("deletedUser", "Deleted users", "user", USER_READ, ("userPrincipalName",)),
    deleted_kind("deletedGroup", "Deleted groups", "group", GROUP_READ, ("mailNickname",)),
    deleted_kind(
        "deletedApplication", "Deleted app registrations", "application", APP_READ, ("appId",)
    ),
    deleted_kind(
        "deletedServicePrincipal",
        "Deleted enterprise applications",
        "servicePrincipal",
        APP_READ,
        ("appId",),
    ),
    deleted_kind(
        "deletedAdministrativeUnit", "Deleted administrative units", "administrativeUnit", AU_READ
    ),
)

SUBSCRIBED_SKU = KindSpec(
    name="subscribedSku",
    title="Licences (subscriptions)",
    area=Area.ENTRA,
    collector="graph.list",
    describes="The tenant's licence subscriptions: SKU, service plans, purchased units and status.",
    source="GET /subscribedSkus",
    incremental=Incremental.FULL,
    read_permissions=("LicenseAssignment.Read.All", "Organization.Read.All", *DIRECTORY_READ),
    entity_type="subscribedSku",
    path="/subscribedSkus",
    label="skuPartNumber",
    # Units in use move with every licensed user: state, not configuration.
    volatile=("consumedUnits",),
    notes="Bought, not configured: kept to show which licences existed (restore does not buy "
    "any). Group-based licence assignments are stored with each group (the group kind "
    "selects assignedLicenses).",
)

BITLOCKER_KEY = KindSpec(
    name="bitlockerRecoveryKey",
    title="BitLocker recovery keys",
    area=Area.ENTRA,
    collector="graph.bitlocker",
    describes="BitLocker recovery keys of the tenant's devices: device, volume type, "
    "creation time and the recovery key itself (stored encrypted).",
    source="GET /informationProtection/bitlocker/recoveryKeys, then "
    "GET …/recoveryKeys/{id}?$select=key in $batch (new keys only)",
    incremental=Incremental.FULL,
    # ReadBasic.All lists the keys but not their values: only Read.All is enough here.
    read_permissions=("BitLockerKey.Read.All",),
    entity_type="bitlockerRecoveryKey",
    path="/informationProtection/bitlocker/recoveryKeys",
    select=("id", "createdDateTime", "deviceId", "volumeType", "key"),
    label="deviceId",
    parent="device",
    opt_in="backup_bitlocker_keys",
    secret=True,  # diff and history name a changed key, never show it
    notes="Entra audits every key read, so each key's value is read once (the first time its "
    "id is listed) and kept from the stored version afterwards; keys cannot be written back "
    "(Graph has no write API for them): the backup is for looking a key up after the device "
    "is gone.",
)

LINK_KINDS: tuple[KindSpec, ...] = (
    USER_MANAGER,
    replace(
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
            notes="Create-only: Graph has no update for an extension property, so restore "
            "recreates a missing one (a recreated app's new appId in its name) and never changes "
            "one that exists; a recreated one has a new id.",
            changed_by=trail.APP_UPDATE,
        ),
        unordered=("extensionProperties[name]",),  # a recreated one has a new id
    ),
    replace(
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
            changed_by=trail.APP_UPDATE,
        ),
        unordered=("federatedIdentityCredentials[name]",),  # names are unique per app
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
        changed_by=trail.DEVICE_USERS,
        links_to=("user",),
    ),
    SUBSCRIBED_SKU,
    *DELETED_KINDS,
    BITLOCKER_KEY,
)


__all__ = ["LINK_KINDS"]
