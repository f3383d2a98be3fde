"""Which properties of a directory object a write may carry.

The v1.0 CSDL marks almost no directory-object property Computed, so the read-only and
create-only sets come from the Graph v1.0 resource pages ("Read-only.", "can only be set at
creation") and are unioned with what the CSDL marks (``writable_properties``).
"""

from __future__ import annotations

from functools import cache

from agent.schema.csdl import load_schema

_ON_PREM = (
    "onPremisesDistinguishedName", "onPremisesDomainName", "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName", "onPremisesProvisioningErrors", "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "onPremisesUserPrincipalName",
)  # fmt: skip

READ_ONLY: dict[str, frozenset[str]] = {
    "user": frozenset({
        "createdDateTime", "creationType", "deletedDateTime", "externalUserState",
        "externalUserStateChangeDateTime", "lastPasswordChangeDateTime", "proxyAddresses",
        "securityIdentifier", "signInSessionsValidFromDateTime", "assignedLicenses",
        "assignedPlans", "provisionedPlans", "licenseAssignmentStates", *_ON_PREM,
    }),
    "group": frozenset({
        "createdDateTime", "deletedDateTime", "expirationDateTime", "renewedDateTime", "mail",
        "proxyAddresses", "securityIdentifier", "assignedLicenses", "isArchived", *_ON_PREM,
    }),
    "application": frozenset({
        "appId", "applicationTemplateId", "createdDateTime", "deletedDateTime",
        "publisherDomain", "disabledByMicrosoftStatus", "certification", "passwordCredentials",
        "keyCredentials",
    }),
    "servicePrincipal": frozenset({
        "appDisplayName", "appDescription", "appOwnerOrganizationId", "applicationTemplateId",
        "deletedDateTime", "servicePrincipalType", "signInAudience", "passwordCredentials",
        "verifiedPublisher", "keyCredentials",
    }),
    "administrativeUnit": frozenset({"deletedDateTime"}),
}  # fmt: skip

# Tenant configuration: the API pages list every property an update takes; the rest of the
# entity is read-only (organization-update, domain-update, groupsetting-update).
ONLY_WRITABLE: dict[str, frozenset[str]] = {
    "organization": frozenset({
        "marketingNotificationEmails", "privacyProfile", "securityComplianceNotificationMails",
        "securityComplianceNotificationPhones", "technicalNotificationMails",
    }),
    "domain": frozenset({
        "authenticationType", "isDefault", "passwordNotificationWindowInDays",
        "passwordValidityPeriodInDays", "supportedServices",
    }),
    "groupSetting": frozenset({"values"}),
}  # fmt: skip
_BRANDING_URLS = frozenset(
    f"{s}RelativeUrl"
    for s in ("backgroundImage", "bannerLogo", "customCSS", "favicon", "headerLogo",
              "squareLogo", "squareLogoDark")
)  # fmt: skip
READ_ONLY["organizationalBrandingLocalization"] = _BRANDING_URLS | {"cdnList"}
# Why a property is not written, where "read-only" would not say enough.
REASONS: dict[tuple[str, str], str] = {
    ("organization", "onPremisesSyncEnabled"): "turns directory synchronization on or off: an "
    "administrator's decision, never made by a restore",
    ("domain", "isVerified"): "proved by a DNS TXT record: restore re-adds the domain and "
    "verifies it once the record exists",
    **{
        ("organizationalBrandingLocalization", url): "Graph sets it when the image is uploaded"
        for url in (*_BRANDING_URLS, "cdnList")
    },
}

CREATE_ONLY: dict[str, frozenset[str]] = {
    "group": frozenset({"isAssignableToRole"}),
    "servicePrincipal": frozenset({"appId"}),
    "oAuth2PermissionGrant": frozenset({"clientId", "consentType", "principalId", "resourceId"}),
    "groupSetting": frozenset({"templateId"}),
}

# Read-only for restore because the backup holds no secret material.
NOT_IN_BACKUP: dict[str, str] = {
    "keyCredentials": "certificate metadata only (no key material is backed up): upload the "
    "certificate again",
    "passwordCredentials": "client secrets are never backed up: add a new secret (addPassword)",
}

WHY_READ_ONLY = "read-only: Graph computes it or sets it through another API"
WHY_CREATE_ONLY = "create-only: Graph sets it only when the object is created"


@cache
def writable(entity: str) -> frozenset[str]:
    """Properties a PATCH of ``entity`` may carry."""
    csdl = load_schema().writable_properties(entity)
    if entity in ONLY_WRITABLE:
        csdl = csdl & ONLY_WRITABLE[entity]
    return frozenset(csdl - READ_ONLY.get(entity, frozenset()) - CREATE_ONLY.get(entity, set()))


def creatable(entity: str) -> frozenset[str]:
    """Properties a create (POST) of ``entity`` may carry."""
    return writable(entity) | CREATE_ONLY.get(entity, frozenset())


def why_not(entity: str, prop: str) -> str:
    if prop in NOT_IN_BACKUP:
        return NOT_IN_BACKUP[prop]
    if (entity, prop) in REASONS:
        return REASONS[(entity, prop)]
    return WHY_CREATE_ONLY if prop in CREATE_ONLY.get(entity, ()) else WHY_READ_ONLY
