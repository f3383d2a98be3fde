"""The tenant-wide policies every tenant has (singletons and built-ins), as Graph v1.0 shows
them: authentication methods policy with every method configuration, authorization policy,
security defaults, cross-tenant access default and partners, admin consent requests,
permission grant policies, group lifecycle policy. Values follow the documented defaults with
the changes a mid-size organisation typically makes.
"""

from __future__ import annotations

import random
from typing import Any

from agent.simulator.graph.generator import PARTNER_DOMAINS, new_id

GUEST_USER_ROLE = "10dae51f-b6af-4016-8d66-8c2a99b929b3"  # "Guest user" (restricted) role
ALL_USERS = "all_users"
# Built-in permission grant policies every tenant has (ids as Graph lists them).
BUILT_IN_GRANT_POLICIES = (
    (
        "microsoft-all-application-permissions",
        "All application permissions, for any client app",
        "application",
        None,
    ),
    ("microsoft-application-admin", "Application administrator consent", "delegated", None),
    ("microsoft-company-admin", "Global administrator consent", "delegated", None),
    (
        "microsoft-user-default-legacy",
        "All user consentable permissions",
        "delegatedUserConsentable",
        None,
    ),
    (
        "microsoft-user-default-low",
        "Low impact permissions for verified publishers",
        "delegatedUserConsentable",
        "low",
    ),
    (
        "microsoft-user-default-recommended",
        "Microsoft recommended user consent",
        "delegatedUserConsentable",
        "low",
    ),
)


def _target(group: str, **extra: Any) -> dict[str, Any]:
    return {"targetType": "group", "id": group, "isRegistrationRequired": False, **extra}


def _method(
    odata: str, mid: str, state: str, targets: list[dict[str, Any]], **props: Any
) -> dict[str, Any]:
    return {
        "@odata.type": f"#microsoft.graph.{odata}AuthenticationMethodConfiguration",
        "id": mid,
        "state": state,
        "excludeTargets": [],
        **props,
        "includeTargets": targets,
    }


def method_configurations(rng: random.Random, groups: list[str]) -> list[dict[str, Any]]:
    """Every method of the policy; some scoped to groups of the tenant instead of all users."""
    scoped = [rng.choice(groups)] if groups and rng.random() < 0.5 else [ALL_USERS]
    tap_group = rng.choice(groups) if groups else ALL_USERS
    return [
        _method(
            "fido2",
            "Fido2",
            "enabled",
            [_target(g) for g in scoped],
            isSelfServiceRegistrationAllowed=True,
            isAttestationEnforced=rng.random() < 0.5,
            keyRestrictions={"isEnforced": False, "enforcementType": "block", "aaGuids": []},
        ),
        _method(
            "microsoftAuthenticator",
            "MicrosoftAuthenticator",
            "enabled",
            [_target(ALL_USERS, authenticationMode="any")],
            isSoftwareOathEnabled=False,
            featureSettings={
                "displayAppInformationRequiredState": {
                    "state": "enabled",
                    "includeTarget": {"targetType": "group", "id": ALL_USERS},
                    "excludeTarget": {
                        "targetType": "group",
                        "id": "00000000-0000-0000-0000-000000000000",
                    },
                },
                "displayLocationInformationRequiredState": {
                    "state": rng.choice(("default", "enabled")),
                    "includeTarget": {"targetType": "group", "id": ALL_USERS},
                    "excludeTarget": {
                        "targetType": "group",
                        "id": "00000000-0000-0000-0000-000000000000",
                    },
                },
            },
        ),
        _method(
            "sms",
            "Sms",
            rng.choice(("enabled", "disabled")),
            [_target(ALL_USERS, isUsableForSignIn=False)],
        ),
        _method("voice", "Voice", "disabled", [_target(ALL_USERS)], isOfficePhoneAllowed=False),
        _method("email", "Email", "enabled", [], allowExternalIdToUseEmailOtp="default"),
        _method(
            "softwareOath",
            "SoftwareOath",
            rng.choice(("enabled", "disabled")),
            [_target(ALL_USERS)],
        ),
        _method(
            "temporaryAccessPass",
            "TemporaryAccessPass",
            "enabled",
            [_target(tap_group)],
            defaultLifetimeInMinutes=60,
            defaultLength=8,
            minimumLifetimeInMinutes=60,
            maximumLifetimeInMinutes=480,
            isUsableOnce=rng.random() < 0.5,
        ),
        _method(
            "x509Certificate",
            "X509Certificate",
            "disabled",
            [_target(ALL_USERS)],
            certificateUserBindings=[
                {
                    "x509CertificateField": "PrincipalName",
                    "userProperty": "userPrincipalName",
                    "priority": 1,
                },
            ],
            authenticationModeConfiguration={
                "x509CertificateAuthenticationDefaultMode": "x509CertificateSingleFactor",
                "rules": [],
            },
        ),
    ]


def authentication_methods_policy(
    rng: random.Random, groups: list[str], when: str
) -> dict[str, Any]:
    return {
        "id": "authenticationMethodsPolicy",
        "displayName": "Authentication Methods Policy",
        "description": "The tenant-wide policy that controls which authentication methods are "
        "allowed in the tenant, authentication method registration requirements, and "
        "self-service password reset settings",
        "lastModifiedDateTime": when,
        "policyVersion": "1.5",
        "policyMigrationState": rng.choice(("migrationComplete", "migrationInProgress")),
        "reconfirmationInDays": 180,
        "registrationEnforcement": {
            "authenticationMethodsRegistrationCampaign": {
                "snoozeDurationInDays": 1,
                "state": "default",
                "excludeTargets": [],
                "includeTargets": [
                    {
                        "id": ALL_USERS,
                        "targetType": "group",
                        "targetedAuthenticationMethod": "microsoftAuthenticator",
                    },
                ],
            }
        },
        "authenticationMethodConfigurations": method_configurations(rng, groups),
    }


def authorization_policy(rng: random.Random) -> dict[str, Any]:
    restrictive = rng.random() < 0.6
    return {
        "id": "authorizationPolicy",
        "displayName": "Authorization Policy",
        "description": "Used to manage authorization related settings across the company.",
        "deletedDateTime": None,
        "allowInvitesFrom": "adminsAndGuestInviters" if restrictive else "everyone",
        "allowedToSignUpEmailBasedSubscriptions": not restrictive,
        "allowedToUseSSPR": True,
        "allowEmailVerifiedUsersToJoinOrganization": False,
        "allowUserConsentForRiskyApps": None,
        "blockMsolPowerShell": restrictive,
        "guestUserRoleId": GUEST_USER_ROLE,
        "defaultUserRolePermissions": {
            "allowedToCreateApps": not restrictive,
            "allowedToCreateSecurityGroups": not restrictive,
            "allowedToCreateTenants": not restrictive,
            "allowedToReadBitlockerKeysForOwnedDevice": True,
            "allowedToReadOtherUsers": True,
            "permissionGrantPoliciesAssigned": [
                "ManagePermissionGrantsForSelf.microsoft-user-default-low"
                if restrictive
                else "ManagePermissionGrantsForSelf.microsoft-user-default-legacy"
            ],
        },
    }


def security_defaults(enabled: bool) -> dict[str, Any]:
    # A tenant with conditional access policies has security defaults turned off.
    return {
        "id": "00000000-0000-0000-0000-000000000005",
        "displayName": "Security Defaults",
        "description": "Security defaults is a set of basic identity security mechanisms "
        "recommended by Microsoft. When enabled, these recommendations will be automatically "
        "enforced in your organization. Administrators and users will be better protected "
        "from common identity related attacks.",
        "isEnabled": enabled,
    }


def _access(access: str, target: str, kind: str) -> dict[str, Any]:
    return {"accessType": access, "targets": [{"target": target, "targetType": kind}]}


def _b2b(access: str = "allowed") -> dict[str, Any]:
    return {
        "usersAndGroups": _access(access, "AllUsers", "user"),
        "applications": _access(access, "AllApplications", "application"),
    }


def cross_tenant_default(rng: random.Random) -> dict[str, Any]:
    # Graph answers the default configuration without an id.
    return {
        "isServiceDefault": rng.random() < 0.5,
        "inboundTrust": {
            "isMfaAccepted": False,
            "isCompliantDeviceAccepted": False,
            "isHybridAzureADJoinedDeviceAccepted": False,
        },
        "b2bCollaborationOutbound": _b2b(),
        "b2bCollaborationInbound": _b2b(),
        "b2bDirectConnectOutbound": _b2b("blocked"),
        "b2bDirectConnectInbound": _b2b("blocked"),
        "automaticUserConsentSettings": {"inboundAllowed": False, "outboundAllowed": False},
        "invitationRedemptionIdentityProviderConfiguration": {
            "primaryIdentityProviderPrecedenceOrder": [
                "externalFederation",
                "azureActiveDirectory",
                "socialIdentityProviders",
            ],
            "fallbackIdentityProvider": "defaultConfiguredIdp",
        },
    }


def cross_tenant_partner(rng: random.Random, index: int) -> dict[str, Any]:
    trusted = rng.random() < 0.6
    return {
        "tenantId": new_id(rng),
        "isServiceProvider": index == 0 and rng.random() < 0.3,
        "isInMultiTenantOrganization": False,
        "inboundTrust": {
            "isMfaAccepted": trusted,
            "isCompliantDeviceAccepted": trusted and rng.random() < 0.5,
            "isHybridAzureADJoinedDeviceAccepted": False,
        },
        "b2bCollaborationOutbound": None,
        "b2bCollaborationInbound": _b2b() if rng.random() < 0.3 else None,
        "b2bDirectConnectOutbound": _b2b() if trusted else None,
        "b2bDirectConnectInbound": _b2b() if trusted else None,
        "tenantRestrictions": None,
        "automaticUserConsentSettings": {"inboundAllowed": trusted, "outboundAllowed": trusted},
        # Settings a partner configuration leaves unset come back as null, as in a new one.
        "appServiceConnectInbound": None,
        "m365CollaborationInbound": None,
        "m365CollaborationOutbound": None,
    }


def partner_name(index: int) -> str:
    return PARTNER_DOMAINS[index % len(PARTNER_DOMAINS)]


def admin_consent_request_policy(rng: random.Random, reviewers: list[str]) -> dict[str, Any]:
    enabled = bool(reviewers) and rng.random() < 0.7
    return {  # answered without an id, as in Graph's documentation
        "isEnabled": enabled,
        "notifyReviewers": enabled,
        "remindersEnabled": enabled,
        "requestDurationInDays": 30 if enabled else 0,
        "version": 1 if enabled else 0,
        "reviewers": [
            {"query": f"/users/{r}", "queryType": "MicrosoftGraph", "queryRoot": None}
            for r in (reviewers if enabled else [])
        ],
    }


def _condition(rng: random.Random, ptype: str, classification: str | None) -> dict[str, Any]:
    return {
        "id": new_id(rng),
        "permissionClassification": classification or "all",
        "permissionType": ptype,
        "resourceApplication": "any",
        "permissions": ["all"],
        "clientApplicationIds": ["all"],
        "clientApplicationTenantIds": ["all"],
        "clientApplicationPublisherIds": ["all"],
        "clientApplicationsFromVerifiedPublisherOnly": classification == "low",
    }


def permission_grant_policies(rng: random.Random, custom: int) -> list[dict[str, Any]]:
    policies = [
        {
            "id": pid,
            "displayName": name,
            "description": f"Includes {name.lower()}.",
            "deletedDateTime": None,
            "includes": [_condition(rng, ptype, classification)],
            "excludes": [],
        }
        for pid, name, ptype, classification in BUILT_IN_GRANT_POLICIES
    ]
    for index in range(custom):
        policies.append(
            {
                "id": f"custom-consent-policy-{index + 1}",
                "displayName": f"Low-risk delegated permissions {index + 1}",
                "description": "Users may consent to low-impact permissions of verified apps.",
                "deletedDateTime": None,
                "includes": [_condition(rng, "delegated", "low")],
                "excludes": [_condition(rng, "delegated", "high")],
            }
        )
    return policies


def group_lifecycle_policy(rng: random.Random, domain: str) -> dict[str, Any]:
    return {
        "id": new_id(rng),
        "groupLifetimeInDays": rng.choice((180, 365, 365, 730)),
        "managedGroupTypes": rng.choice(("All", "Selected")),
        "alternateNotificationEmails": f"it-admins@{domain}",
    }
