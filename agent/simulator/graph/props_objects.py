"""Properties of the directory-object kinds beyond users and groups (applications, service
principals, devices, administrative units, delegated grants, directory roles) and of the
entities hanging off them, read from the shipped Graph v1.0 CSDL.

props.py merges these tables into its own, so $select checking, projection (unset scalars
null, collections []) and delta work for every kind the same way.
"""

from __future__ import annotations

from agent.schema.csdl import load_schema

# Simulator kind -> CSDL entity type (short name in the microsoft.graph namespace).
ENTITY_TYPES: dict[str, str] = {
    "application": "application",
    "servicePrincipal": "servicePrincipal",
    "device": "device",
    "administrativeUnit": "administrativeUnit",
    "oauth2PermissionGrant": "oAuth2PermissionGrant",
    "directoryRole": "directoryRole",
    "appRoleAssignment": "appRoleAssignment",
    "extensionProperty": "extensionProperty",
    "federatedIdentityCredential": "federatedIdentityCredential",
    "scopedRoleMembership": "scopedRoleMembership",
    "bitlockerRecoveryKey": "bitlockerRecoveryKey",
    "subscribedSku": "subscribedSku",
}

# Directory objects kept as rows of the Directory (change log, delta, deleted items).
OBJECT_KINDS = (
    "application",
    "servicePrincipal",
    "device",
    "administrativeUnit",
    "oauth2PermissionGrant",
    "directoryRole",
)

# Facts file §3: these casts of deletedItems exist (besides user and group).
RESTORABLE = ("application", "servicePrincipal", "administrativeUnit")

DEFAULT_SELECT: dict[str, tuple[str, ...]] = {
    "application": (
        "id", "deletedDateTime", "appId", "applicationTemplateId", "createdDateTime",
        "description", "displayName", "groupMembershipClaims", "identifierUris",
        "isFallbackPublicClient", "notes", "publisherDomain", "signInAudience", "tags",
        "api", "appRoles", "info", "keyCredentials", "optionalClaims", "passwordCredentials",
        "publicClient", "requiredResourceAccess", "spa", "web",
    ),
    "servicePrincipal": (
        "id", "deletedDateTime", "accountEnabled", "alternativeNames", "appDisplayName",
        "appDescription", "appId", "applicationTemplateId", "appOwnerOrganizationId",
        "appRoleAssignmentRequired", "description", "displayName", "homepage", "loginUrl",
        "logoutUrl", "notes", "notificationEmailAddresses", "preferredSingleSignOnMode",
        "preferredTokenSigningKeyThumbprint", "replyUrls", "samlSingleSignOnSettings",
        "servicePrincipalNames", "servicePrincipalType", "signInAudience", "tags",
        "appRoles", "info", "keyCredentials", "oauth2PermissionScopes", "passwordCredentials",
        "verifiedPublisher",
    ),
    "device": (
        "id", "deletedDateTime", "accountEnabled", "approximateLastSignInDateTime",
        "deviceId", "deviceOwnership", "displayName", "enrollmentType", "isCompliant",
        "isManaged", "manufacturer", "mdmAppId", "model", "onPremisesSyncEnabled",
        "operatingSystem", "operatingSystemVersion", "physicalIds", "profileType",
        "registrationDateTime", "systemLabels", "trustType",
    ),
    "administrativeUnit": (
        "id", "deletedDateTime", "description", "displayName", "isMemberManagementRestricted",
        "membershipRule", "membershipRuleProcessingState", "membershipType", "visibility",
    ),
    "oauth2PermissionGrant": (
        "id", "clientId", "consentType", "principalId", "resourceId", "scope",
    ),
    "directoryRole": ("id", "deletedDateTime", "description", "displayName", "roleTemplateId"),
    "appRoleAssignment": (
        "id", "deletedDateTime", "appRoleId", "createdDateTime", "principalDisplayName",
        "principalId", "principalType", "resourceDisplayName", "resourceId",
    ),
    "extensionProperty": (
        "id", "deletedDateTime", "appDisplayName", "dataType", "isMultiValued",
        "isSyncedFromOnPremises", "name", "targetObjects",
    ),
    "federatedIdentityCredential": ("id", "audiences", "description", "issuer", "name", "subject"),
    "scopedRoleMembership": ("id", "administrativeUnitId", "roleId", "roleMemberInfo"),
    # The key itself only with $select=key (BitLocker recovery key docs).
    "bitlockerRecoveryKey": ("id", "createdDateTime", "deviceId", "volumeType"),
    "subscribedSku": (
        "id", "accountId", "accountName", "appliesTo", "capabilityStatus", "consumedUnits",
        "prepaidUnits", "servicePlans", "skuId", "skuPartNumber", "subscriptionIds",
    ),
}  # fmt: skip


def _tables() -> tuple[
    dict[str, frozenset[str]], dict[str, frozenset[str]], dict[str, frozenset[str]]
]:
    schema = load_schema()
    scalars: dict[str, frozenset[str]] = {}
    collections: dict[str, frozenset[str]] = {}
    navigation: dict[str, frozenset[str]] = {}
    for kind, entity in ENTITY_TYPES.items():
        props = schema.properties(entity)
        scalars[kind] = frozenset(
            n for n, p in props.items() if not p.navigation and not p.collection
        )
        collections[kind] = frozenset(
            n for n, p in props.items() if not p.navigation and p.collection
        )
        navigation[kind] = frozenset(n for n, p in props.items() if p.navigation)
    return scalars, collections, navigation


SCALARS, COLLECTIONS, NAVIGATION = _tables()
ODATA_TYPE = {kind: f"#microsoft.graph.{entity}" for kind, entity in ENTITY_TYPES.items()}
TYPE_NAMES = {
    kind: f"Microsoft.DirectoryServices.{entity[0].upper()}{entity[1:]}"
    for kind, entity in ENTITY_TYPES.items()
}
