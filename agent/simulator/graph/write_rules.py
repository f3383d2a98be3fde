"""What the real Graph enforces on writes to directory objects, as tables.

The v1.0 CSDL marks almost no directory-object property ``Computed``, so the read-only and
create-only sets below come from the Graph v1.0 resource pages ("Read-only.", "can only be set
at creation") and are unioned with whatever the CSDL does mark. Required properties are the
"Required" rows of each create API's request body table; permissions follow facts file §4.
"""

from __future__ import annotations

from functools import cache

from agent.schema.csdl import load_schema
from agent.simulator.graph.props_objects import ENTITY_TYPES

_ON_PREM_GROUP = (
    "onPremisesDomainName", "onPremisesLastSyncDateTime", "onPremisesNetBiosName",
    "onPremisesProvisioningErrors", "onPremisesSamAccountName", "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
)  # fmt: skip

_READ_ONLY: dict[str, frozenset[str]] = {
    "user": frozenset({
        "id", "createdDateTime", "creationType", "deletedDateTime", "externalUserState",
        "externalUserStateChangeDateTime", "identityParentId", "isManagementRestricted",
        "lastPasswordChangeDateTime", "legalAgeGroupClassification",
        "onPremisesDistinguishedName", "onPremisesDomainName", "onPremisesLastSyncDateTime",
        "onPremisesProvisioningErrors", "onPremisesSamAccountName",
        "onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "onPremisesUserPrincipalName",
        "proxyAddresses", "securityIdentifier", "signInActivity",
        "signInSessionsValidFromDateTime", "assignedLicenses", "assignedPlans",
        "provisionedPlans", "licenseAssignmentStates", "serviceProvisioningErrors",
    }),
    "group": frozenset({
        "id", "createdDateTime", "deletedDateTime", "expirationDateTime", "renewedDateTime",
        "mail", "proxyAddresses", "securityIdentifier", "hasMembersWithLicenseErrors",
        "licenseProcessingState", "assignedLicenses", "serviceProvisioningErrors", "isArchived",
        *_ON_PREM_GROUP,
    }),
    # passwordCredentials: secrets are added with addPassword, never written by PATCH.
    "application": frozenset({
        "id", "appId", "applicationTemplateId", "createdDateTime", "deletedDateTime",
        "publisherDomain", "disabledByMicrosoftStatus", "certification", "passwordCredentials",
    }),
    "servicePrincipal": frozenset({
        "id", "appDisplayName", "appDescription", "appOwnerOrganizationId",
        "applicationTemplateId", "deletedDateTime", "servicePrincipalType", "signInAudience",
        "passwordCredentials", "verifiedPublisher",
    }),
    "administrativeUnit": frozenset({"id", "deletedDateTime"}),
    "oauth2PermissionGrant": frozenset({"id"}),
    "appRoleAssignment": frozenset({
        "id", "createdDateTime", "deletedDateTime", "principalDisplayName", "principalType",
        "resourceDisplayName",
    }),
    "device": frozenset({
        "id", "deletedDateTime", "approximateLastSignInDateTime", "complianceExpirationDateTime",
        "isCompliant", "isManaged", "mdmAppId", "onPremisesLastSyncDateTime",
        "onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "registrationDateTime",
        "trustType",
    }),
}  # fmt: skip

# Settable when the object is created, refused by PATCH afterwards.
CREATE_ONLY: dict[str, frozenset[str]] = {
    "group": frozenset({"isAssignableToRole"}),
    "servicePrincipal": frozenset({"appId"}),
    "oauth2PermissionGrant": frozenset({"clientId", "consentType", "principalId", "resourceId"}),
    "appRoleAssignment": frozenset({"appRoleId", "principalId", "resourceId"}),
    "device": frozenset({"deviceId"}),
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "user": ("accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile"),
    "group": ("displayName", "mailEnabled", "mailNickname", "securityEnabled"),
    "application": ("displayName",),
    "servicePrincipal": ("appId",),
    "administrativeUnit": ("displayName",),
    "oauth2PermissionGrant": ("clientId", "consentType", "resourceId"),
    "appRoleAssignment": ("principalId", "resourceId", "appRoleId"),
    "device": (
        "accountEnabled", "alternativeSecurityIds", "deviceId", "displayName",
        "operatingSystem", "operatingSystemVersion",
    ),
}  # fmt: skip

# Synced (on-premises mastered) users: only cloud-mastered properties may change.
SYNCED_USER_WRITABLE = frozenset({"usageLocation", "accountEnabled", "passwordProfile"})

# Application permissions that allow each write (any one is enough; facts file §4).
_DIR = "Directory.ReadWrite.All"
WRITE_USERS = frozenset({"User.ReadWrite.All", _DIR})
WRITE_GROUPS = frozenset({"Group.ReadWrite.All", _DIR})
WRITE_MEMBERS = frozenset({"GroupMember.ReadWrite.All", "Group.ReadWrite.All", _DIR})
WRITE_APPS = frozenset({"Application.ReadWrite.All", _DIR})
WRITE_ASSIGNMENTS = frozenset({"AppRoleAssignment.ReadWrite.All", _DIR})
WRITE_GRANTS = frozenset({"DelegatedPermissionGrant.ReadWrite.All", _DIR})
WRITE_AUS = frozenset({"AdministrativeUnit.ReadWrite.All", _DIR})
WRITE_DEVICES = frozenset({"Device.ReadWrite.All", _DIR})
WRITES = {
    "user": WRITE_USERS,
    "group": WRITE_GROUPS,
    "application": WRITE_APPS,
    "servicePrincipal": WRITE_APPS,
    "administrativeUnit": WRITE_AUS,
    "oauth2PermissionGrant": WRITE_GRANTS,
    "device": WRITE_DEVICES,
}

# Facts file §3: restoring a soft-deleted user or group needs this role on the caller
# (the product documentation this project follows), on top of the write permission.
RESTORE_ROLE = "Global Administrator"
RESTORE_ROLE_KINDS = frozenset({"user", "group"})

# POSTs that read (directoryObject actions): not writes for the write quota.
READ_ACTIONS = frozenset(
    {"getByIds", "getMemberObjects", "getMemberGroups", "checkMemberGroups", "checkMemberObjects"}
)


# Policy and tenant-configuration kinds checked by the same rules (policy_writes.py,
# tenant_writes.py): CSDL type of each kind whose name is not its type. A named location is
# checked as the type its @odata.type names (ipNamedLocation / countryNamedLocation).
CONFIG_TYPES = {
    "securityDefaults": "identitySecurityDefaultsEnforcementPolicy",
    "crossTenantAccessDefault": "crossTenantAccessPolicyConfigurationDefault",
    "crossTenantAccessPartner": "crossTenantAccessPolicyConfigurationPartner",
    "roleDefinition": "unifiedRoleDefinition",
    "roleAssignment": "unifiedRoleAssignment",
    "roleEligibilityScheduleRequest": "unifiedRoleEligibilityScheduleRequest",
    "brandingLocalization": "organizationalBrandingLocalization",
}
_STAMPS = frozenset({"id", "createdDateTime", "modifiedDateTime", "deletedDateTime"})
# Read-only per the v1.0 resource pages ("Read-only.", "can't be updated").
_READ_ONLY.update({
    "conditionalAccessPolicy": _STAMPS,
    "ipNamedLocation": _STAMPS,
    "countryNamedLocation": _STAMPS,
    "authenticationStrengthPolicy": _STAMPS | {"policyType", "requirementsSatisfied"},
    "authenticationMethodsPolicy": frozenset({"id", "lastModifiedDateTime", "policyVersion"}),
    "crossTenantAccessPartner": frozenset({"isInMultiTenantOrganization"}),
    "crossTenantAccessDefault": frozenset({"isServiceDefault"}),
    "adminConsentRequestPolicy": frozenset({"id", "version"}),
    # a permission grant policy's id is chosen by its creator
    "permissionGrantPolicy": frozenset({"deletedDateTime"}),
    "roleDefinition": frozenset({"id", "isBuiltIn", "version"}),
    "roleEligibilityScheduleRequest": frozenset({
        "id", "approvalId", "completedDateTime", "createdBy", "createdDateTime", "status",
        "targetScheduleId",
    }),
    "groupSetting": frozenset({"id", "displayName"}),
    "organization": frozenset({
        "id", "deletedDateTime", "assignedPlans", "provisionedPlans", "createdDateTime",
        "displayName", "city", "country", "countryLetterCode", "postalCode", "state", "street",
        "preferredLanguage", "onPremisesLastSyncDateTime", "onPremisesSyncEnabled",
        "tenantType", "verifiedDomains", "partnerTenantType", "businessPhones",
        "defaultUsageLocation", "mobileDeviceManagementAuthority",
    }),
    # isDefault is written by PATCH (domain-update); verification is its own action.
    "domain": frozenset({"id", "isAdminManaged", "isInitial", "isRoot", "isVerified",
                         "manufacturer", "model", "state", "availabilityStatus"}),
    # The relative URLs and CDN list follow the uploaded images (organizationalBranding page).
    "brandingLocalization": frozenset({
        "id", "cdnList", "backgroundImageRelativeUrl", "bannerLogoRelativeUrl",
        "customCSSRelativeUrl", "faviconRelativeUrl", "headerLogoRelativeUrl",
        "squareLogoRelativeUrl", "squareLogoDarkRelativeUrl",
    }),
})  # fmt: skip
CREATE_ONLY.update(
    {
        # allowedCombinations change through updateAllowedCombinations, not PATCH
        "authenticationStrengthPolicy": frozenset({"allowedCombinations"}),
        "crossTenantAccessPartner": frozenset({"tenantId"}),
        "permissionGrantPolicy": frozenset({"id"}),
        "groupSetting": frozenset({"templateId"}),
    }
)
REQUIRED.update({
    "conditionalAccessPolicy": ("displayName", "state", "conditions"),
    "ipNamedLocation": ("displayName", "ipRanges"),
    "countryNamedLocation": ("displayName", "countriesAndRegions"),
    "authenticationStrengthPolicy": ("displayName", "allowedCombinations"),
    "crossTenantAccessPartner": ("tenantId",),
    "tokenLifetimePolicy": ("displayName", "definition"),
    "homeRealmDiscoveryPolicy": ("displayName", "definition"),
    "activityBasedTimeoutPolicy": ("displayName", "definition"),
    "claimsMappingPolicy": ("displayName", "definition"),
    "tokenIssuancePolicy": ("displayName", "definition"),
    "permissionGrantPolicy": ("id", "displayName"),
    "groupLifecyclePolicy": ("groupLifetimeInDays", "managedGroupTypes"),
    "roleDefinition": ("displayName", "isEnabled", "rolePermissions"),
    "roleAssignment": ("principalId", "roleDefinitionId", "directoryScopeId"),
    "roleEligibilityScheduleRequest": ("action", "principalId", "roleDefinitionId",
                                       "directoryScopeId"),
    "groupSetting": ("templateId",),
})  # fmt: skip


def entity_type(kind: str) -> str:
    return ENTITY_TYPES.get(kind) or CONFIG_TYPES.get(kind, kind)


@cache
def read_only(kind: str) -> frozenset[str]:
    """Properties Graph refuses in a create or update body ("… is read-only …")."""
    props = load_schema().properties(entity_type(kind))
    computed = {n for n, p in props.items() if p.computed}
    return _READ_ONLY.get(kind, frozenset({"id"})) | computed


@cache
def structural(kind: str) -> frozenset[str]:
    """Properties that exist on the type (navigation properties are not set by value)."""
    props = load_schema().properties(entity_type(kind))
    return frozenset(n for n, p in props.items() if not p.navigation)
