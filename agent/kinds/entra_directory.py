"""Entra directory-object kinds beyond users and groups: apps, service principals (enterprise
apps and their SSO configuration), administrative units, devices, roles and grants."""

from __future__ import annotations

from agent.kinds import audit_trail as trail
from agent.kinds.spec import DIRECTORY_READ, Area, Incremental, KindSpec

APP_READ = ("Application.Read.All", "Application.ReadWrite.All", *DIRECTORY_READ)
# Role holders are written once, as role assignments (agent/restore/roles.py).
VIA_ASSIGNMENTS = (
    "Restored through roleAssignment (POST /roleManagement/directory/roleAssignments): these "
    "are the same assignments seen from the role or the unit, so they have one write path."
)


def delta_kind(
    name: str,
    title: str,
    path: str,
    delta_path: str,
    describes: str,
    select: tuple[str, ...],
    *,
    read: tuple[str, ...],
    write: tuple[str, ...],
    entity_type: str,
    restore: tuple[str, ...] = ("patch", "undelete", "recreate"),
    after: tuple[str, ...] = (),
    volatile: tuple[str, ...] = (),
    unordered: tuple[str, ...] = (),
    notes: str = "",
    pages: bool = True,
    references: tuple[tuple[str, str], ...] = (),
) -> KindSpec:
    return KindSpec(
        name=name,
        title=title,
        area=Area.ENTRA,
        collector="graph.delta",
        pages=pages,
        describes=describes,
        source=f"GET {delta_path}",
        incremental=Incremental.DELTA,
        read_permissions=read,
        write_permissions=write,
        entity_type=entity_type,
        path=path,
        delta_path=delta_path,
        select=("id", *select),
        restore=restore,
        after=after,
        volatile=volatile,
        unordered=unordered,
        notes=notes,
        references=references,
    )


def relation_kind(
    name: str,
    title: str,
    parent: str,
    path: str,
    relation: str,
    describes: str,
    *,
    read: tuple[str, ...],
    write: tuple[str, ...],
    expand: bool = True,
    full_items: bool = False,
    after: tuple[str, ...] = (),
    notes: str = "",
    changed_by: tuple[str, ...] = (),
    links_to: tuple[str, ...] = (),
    get_one: bool = False,
) -> KindSpec:
    how = f"$expand={relation}($select=id)" if expand else f"{{id}}/{relation} in $batch"
    if changed_by:
        how += "; incremental: parents the directory audit log names"
    return KindSpec(
        name=name,
        title=title,
        area=Area.ENTRA,
        collector="graph.relation",
        describes=describes,
        source=f"GET {path}?{how}",
        incremental=Incremental.AUDIT if changed_by else Incremental.FULL,
        read_permissions=read,
        write_permissions=write,
        key=f"{parent}Id",
        label=f"{parent}Id",
        parent=parent,
        path=path,
        relation=relation,
        relation_expand=expand,
        relation_full_items=full_items,
        changed_by=changed_by,
        links_to=links_to,
        relation_get_one=get_one,
        unordered=(relation,),  # one object per parent: the related set, order meaningless
        restore=("relink",),
        after=(parent, *after),
        notes=notes,
    )


APPLICATION = delta_kind(
    "application",
    "App registrations",
    "/applications",
    "/applications/delta",
    "App registrations: identifiers, redirect URIs, API scopes, app roles, required "
    "permissions, optional claims, certificate and secret metadata (never secret values).",
    (
        "appId",
        "displayName",
        "description",
        "signInAudience",
        "identifierUris",
        "web",
        "spa",
        "publicClient",
        "api",
        "appRoles",
        "requiredResourceAccess",
        "optionalClaims",
        "keyCredentials",
        "passwordCredentials",
        "tags",
        "info",
        "groupMembershipClaims",
        "isFallbackPublicClient",
        "notes",
        "applicationTemplateId",
        "tokenEncryptionKeyId",
        "serviceManagementReference",
        "createdDateTime",
        "publisherDomain",
    ),
    read=APP_READ,
    write=("Application.ReadWrite.All",),
    entity_type="application",
    unordered=(
        "identifierUris",
        "tags",
        "appRoles",
        "appRoles.allowedMemberTypes",
        "api.oauth2PermissionScopes",
        "api.preAuthorizedApplications[appId]",
        "keyCredentials[keyId]",
        "passwordCredentials[keyId]",
        "requiredResourceAccess[resourceAppId]",
        "requiredResourceAccess.resourceAccess",
        "web.redirectUris",
        "spa.redirectUris",
        "publicClient.redirectUris",
    ),
)

SERVICE_PRINCIPAL = delta_kind(
    "servicePrincipal",
    "Enterprise applications",
    "/servicePrincipals",
    "/servicePrincipals/delta",
    "Service principals with their SSO configuration: preferredSingleSignOnMode "
    "(currentSingleSignOnMode), samlSingleSignOnSettings, identifiers, reply URLs, "
    "preferredTokenSigningKeyThumbprint, applicationTemplateId (gallery app / IsCustomApp), "
    "assignment requirement, app roles and scopes.",
    (
        "appId",
        "appDisplayName",
        "displayName",
        "description",
        "servicePrincipalType",
        "accountEnabled",
        "appRoleAssignmentRequired",
        "preferredSingleSignOnMode",
        "samlSingleSignOnSettings",
        "preferredTokenSigningKeyThumbprint",
        "loginUrl",
        "logoutUrl",
        "notificationEmailAddresses",
        "replyUrls",
        "servicePrincipalNames",
        "tags",
        "appRoles",
        "oauth2PermissionScopes",
        "keyCredentials",
        "applicationTemplateId",
        "homepage",
        "notes",
        "appOwnerOrganizationId",
        "alternativeNames",
        "info",
        "tokenEncryptionKeyId",
    ),
    read=APP_READ,
    write=("Application.ReadWrite.All",),
    entity_type="servicePrincipal",
    after=("application",),
    unordered=(
        "servicePrincipalNames",
        "replyUrls",
        "tags",
        "notificationEmailAddresses",
        "alternativeNames",
        "appRoles",
        "appRoles.allowedMemberTypes",
        "oauth2PermissionScopes",
        "keyCredentials[keyId]",
    ),
    notes="The seed's SSO fields map to Graph as: currentSingleSignOnMode → "
    "preferredSingleSignOnMode; Identifier (Entity ID) → servicePrincipalNames / the app's "
    "identifierUris; Attributes and Claims → claimsMappingPolicy assignments + the app's "
    "optionalClaims; ParentAppId → appId/applicationTemplateId; IsCustomApp → no "
    "applicationTemplateId. Restoring a SAML app's SSO properties (and its claims links and "
    "SAML claims) needs the tenant's service account to hold Application Administrator, "
    "checked before any write; a recreated SAML app gets a new signing certificate and the "
    "report says the relying party needs the new IdP metadata.",
)

ADMINISTRATIVE_UNIT = delta_kind(
    "administrativeUnit",
    "Administrative units",
    "/directory/administrativeUnits",
    "/administrativeUnits/delta",
    "Administrative units, including dynamic-membership and restricted-management units.",
    (
        "displayName",
        "description",
        "visibility",
        "membershipType",
        "membershipRule",
        "membershipRuleProcessingState",
        "isMemberManagementRestricted",
    ),
    read=("AdministrativeUnit.Read.All", "AdministrativeUnit.ReadWrite.All", *DIRECTORY_READ),
    write=("AdministrativeUnit.ReadWrite.All",),
    entity_type="administrativeUnit",
)

OAUTH2_GRANT = delta_kind(
    "oauth2PermissionGrant",
    "Delegated permission grants",
    "/oauth2PermissionGrants",
    "/oauth2PermissionGrants/delta",
    "Delegated permissions consented to for clients: admin (all principals) and user consents.",
    ("clientId", "consentType", "principalId", "resourceId", "scope"),
    read=("DelegatedPermissionGrant.Read.All", *DIRECTORY_READ),
    write=("DelegatedPermissionGrant.ReadWrite.All",),
    entity_type="oAuth2PermissionGrant",
    restore=("recreate",),
    after=("servicePrincipal", "user"),
    # Named at creation only: a grant of a recreated service principal is created again.
    references=(
        ("clientId", "servicePrincipal"),
        ("resourceId", "servicePrincipal"),
        ("principalId", "user"),
    ),
)

DEVICE = delta_kind(
    "device",
    "Devices",
    "/devices",
    "/devices/delta",
    "Registered and joined devices with their trust type, OS and management state.",
    (
        "deviceId",
        "displayName",
        "accountEnabled",
        "operatingSystem",
        "operatingSystemVersion",
        "trustType",
        "isCompliant",
        "isManaged",
        "managementType",
        "manufacturer",
        "model",
        "deviceOwnership",
        "enrollmentType",
        "profileType",
        "physicalIds",
        "systemLabels",
        "registrationDateTime",
        "onPremisesSyncEnabled",
    ),
    read=("Device.Read.All", "Device.ReadWrite.All", *DIRECTORY_READ),
    write=("Device.ReadWrite.All",),
    entity_type="device",
    restore=("patch",),
    unordered=("physicalIds", "systemLabels"),
    volatile=("approximateLastSignInDateTime",),
    notes="Restore patches what an administrator sets (accountEnabled, displayName); a deleted "
    "device cannot be recreated by an app — it re-registers itself (Entra join, registration "
    "or Intune enrolment) and its owners and users are then restored as links.",
)

DIRECTORY_ROLE = delta_kind(
    "directoryRole",
    "Activated directory roles",
    "/directoryRoles",
    "/directoryRoles/delta",
    "Directory roles activated in the tenant (built-in role instances).",
    ("displayName", "description", "roleTemplateId"),
    read=("RoleManagement.Read.Directory", *DIRECTORY_READ),
    write=("RoleManagement.ReadWrite.Directory",),
    entity_type="directoryRole",
    restore=("recreate",),
    pages=False,
)

DIRECTORY_KINDS: tuple[KindSpec, ...] = (
    APPLICATION,
    SERVICE_PRINCIPAL,
    ADMINISTRATIVE_UNIT,
    OAUTH2_GRANT,
    DEVICE,
    DIRECTORY_ROLE,
    relation_kind(
        "applicationOwner",
        "App registration owners",
        "application",
        "/applications",
        "owners",
        "Owners of each app registration.",
        read=APP_READ,
        write=("Application.ReadWrite.All",),
        after=("user",),
        changed_by=trail.APP_OWNERS,
        links_to=("user", "servicePrincipal"),
    ),
    relation_kind(
        "servicePrincipalOwner",
        "Enterprise application owners",
        "servicePrincipal",
        "/servicePrincipals",
        "owners",
        "Owners of each enterprise application.",
        read=APP_READ,
        write=("Application.ReadWrite.All",),
        after=("user",),
        changed_by=trail.SP_OWNERS,
        links_to=("user", "servicePrincipal"),
    ),
    relation_kind(
        "appRoleAssignment",
        "App role assignments",
        "servicePrincipal",
        "/servicePrincipals",
        "appRoleAssignedTo",
        "Users, groups and service principals assigned to each enterprise app's roles.",
        read=APP_READ,
        write=("AppRoleAssignment.ReadWrite.All",),
        expand=False,
        full_items=True,
        after=("user", "group"),
        changed_by=trail.APP_ROLE_ASSIGNMENTS,
        links_to=("user", "group", "servicePrincipal"),
        notes="Read from the resource side only: an assignment is one object with one "
        "resource (always a service principal of the tenant, Microsoft's first-party ones "
        "included) and one principal, and a user's, group's or service principal's "
        "appRoleAssignments return the same objects as the resources' appRoleAssignedTo. "
        "Reading every service principal's appRoleAssignedTo therefore stores each "
        "assignment exactly once — those granted to users, groups and service principals "
        "(application permissions) alike; a second kind for the principal side would store "
        "them twice.",
    ),
    relation_kind(
        "administrativeUnitMember",
        "Administrative unit members",
        "administrativeUnit",
        "/directory/administrativeUnits",
        "members",
        "Members of each administrative unit.",
        read=("AdministrativeUnit.Read.All", "AdministrativeUnit.ReadWrite.All", *DIRECTORY_READ),
        write=("AdministrativeUnit.ReadWrite.All",),
        after=("user", "group", "device"),
        changed_by=trail.AU_MEMBERS,
        links_to=("user", "group", "device"),
        get_one=True,  # "Get a member": GET /directory/administrativeUnits/{id}/members/{id}
    ),
    relation_kind(
        "administrativeUnitScopedRoleMember",
        "Administrative unit scoped role members",
        "administrativeUnit",
        "/directory/administrativeUnits",
        "scopedRoleMembers",
        "Role holders scoped to each administrative unit.",
        read=("AdministrativeUnit.Read.All", "RoleManagement.Read.Directory", *DIRECTORY_READ),
        write=("RoleManagement.ReadWrite.Directory",),
        expand=False,
        full_items=True,
        after=("user",),
        notes=VIA_ASSIGNMENTS,
        # A scoped role member's entity stays when the user is deleted (not a hidden link).
        changed_by=trail.AU_SCOPED_ROLE_MEMBERS,
    ),
    relation_kind(
        "directoryRoleMember",
        "Activated directory role members",
        "directoryRole",
        "/directoryRoles",
        "members",
        "Members of each activated directory role.",
        read=("RoleManagement.Read.Directory", *DIRECTORY_READ),
        write=("RoleManagement.ReadWrite.Directory",),
        expand=False,
        after=("user", "group"),
        notes=VIA_ASSIGNMENTS,
        changed_by=trail.ROLE_MEMBERS,
        links_to=("user", "group", "servicePrincipal"),
    ),
    relation_kind(
        "deviceRegisteredOwner",
        "Device owners",
        "device",
        "/devices",
        "registeredOwners",
        "Registered owners of each device.",
        read=("Device.Read.All", *DIRECTORY_READ),
        write=("Device.ReadWrite.All",),
        after=("user",),
        changed_by=trail.DEVICE_OWNERS,
        links_to=("user",),
    ),
)
