"""Deterministic policies of a tenant, generated after every directory object from their own
random stream (a seed keeps giving the same users, groups and apps it gave before).

Proportional to tenant size: conditional access policies max(6, users // 333) (a 100,000-user
tenant has 300), named locations max(3, users // 2000), custom authentication strengths next
to the three built-in ones, cross-tenant partners, claims mapping / token issuance / token
lifetime / HRD policies linked from the enterprise apps that use them. Conditional access
policies point at real users, groups, role templates, named locations, apps and strengths.
"""

from __future__ import annotations

import random
from typing import Any

from agent.simulator.graph import policy_defaults as defaults
from agent.simulator.graph.directory import Directory, iso
from agent.simulator.graph.generator import CITIES, EPOCH, new_id
from agent.simulator.graph.policy_apps import link_service_principals, sts_policies
from agent.simulator.graph.policy_store import PolicyStore
from agent.simulator.world import ROLE_TEMPLATE_IDS

BUILT_IN_STRENGTHS = (
    (
        "00000000-0000-0000-0000-000000000002",
        "Multifactor authentication",
        "Combinations of methods that satisfy strong authentication, such as a password + SMS",
        [
            "windowsHelloForBusiness",
            "fido2",
            "x509CertificateMultiFactor",
            "deviceBasedPush",
            "temporaryAccessPassOneTime",
            "temporaryAccessPassMultiUse",
            "password,microsoftAuthenticatorPush",
            "password,softwareOath",
            "password,hardwareOath",
            "password,sms",
            "password,voice",
            "federatedMultiFactor",
            "microsoftAuthenticatorPush,federatedSingleFactor",
            "softwareOath,federatedSingleFactor",
            "hardwareOath,federatedSingleFactor",
            "sms,federatedSingleFactor",
            "voice,federatedSingleFactor",
        ],
    ),
    (
        "00000000-0000-0000-0000-000000000003",
        "Passwordless MFA",
        (
            "Passwordless methods that satisfy strong authentication, such as Passwordless sign-in "
            "with the Microsoft Authenticator"
        ),
        ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush"],
    ),
    (
        "00000000-0000-0000-0000-000000000004",
        "Phishing-resistant MFA",
        (
            "Phishing-resistant, Passwordless methods for the strongest authentication, such as a "
            "FIDO2 security key"
        ),
        ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"],
    ),
)
COUNTRIES = ("US", "GB", "DE", "FR", "JP", "AU", "CA", "NL", "SE", "IN", "BR", "ES")
BLOCKED = ("KP", "IR", "SY", "CU", "RU", "BY")
OFFICE_365 = "Office365"  # the CA "app" standing for every Microsoft 365 service
ADMIN_ROLES = (
    "Global Administrator",
    "Security Administrator",
    "Exchange Administrator",
    "User Administrator",
    "Privileged Role Administrator",
    "Conditional Access Administrator",
    "Application Administrator",
    "Cloud Application Administrator",
)


def _when(rng: random.Random, days: int = 1400) -> str:
    return iso(EPOCH + rng.randrange(days * 86400))


def _stamped(rng: random.Random) -> dict[str, str]:
    created = EPOCH + rng.randrange(1200 * 86400)
    return {
        "createdDateTime": iso(created),
        "modifiedDateTime": iso(created + rng.randrange(200 * 86400)),
    }


def named_location(rng: random.Random, index: int) -> dict[str, Any]:
    if index == 0 or rng.random() < 0.6:
        city = CITIES[index % len(CITIES)][0]
        ranges = [
            {
                "@odata.type": "#microsoft.graph.iPv4CidrRange",
                "cidrAddress": f"{rng.randint(20, 210)}.{rng.randrange(256)}.{rng.randrange(256)}.0/{rng.choice((24, 26, 28))}",
            }
            for _ in range(rng.randint(1, 3))
        ]
        if rng.random() < 0.3:
            ranges.append(
                {
                    "@odata.type": "#microsoft.graph.iPv6CidrRange",
                    "cidrAddress": f"2a01:{rng.randrange(16**4):x}:{rng.randrange(16**4):x}::/48",
                }
            )
        return {
            "@odata.type": "#microsoft.graph.ipNamedLocation",
            "id": new_id(rng),
            "displayName": f"{city} office egress" if index < len(CITIES) else f"VPN range {index}",
            **_stamped(rng),
            "isTrusted": rng.random() < 0.8,
            "ipRanges": ranges,
        }
    blocked = rng.random() < 0.5
    return {
        "@odata.type": "#microsoft.graph.countryNamedLocation",
        "id": new_id(rng),
        "displayName": f"Blocked countries {index}" if blocked else f"Allowed countries {index}",
        **_stamped(rng),
        "countriesAndRegions": sorted(rng.sample(BLOCKED if blocked else COUNTRIES, 3)),
        "includeUnknownCountriesAndRegions": blocked,
        "countryLookupMethod": "clientIpAddress",
    }


def strengths(rng: random.Random, custom: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {
            "id": sid,
            "displayName": name,
            "description": text,
            "policyType": "builtIn",
            "requirementsSatisfied": "mfa",
            "allowedCombinations": combos,
            "createdDateTime": "2021-12-01T00:00:00Z",
            "modifiedDateTime": "2021-12-01T00:00:00Z",
            "combinationConfigurations": [],
        }
        for sid, name, text, combos in BUILT_IN_STRENGTHS
    ]
    for index in range(custom):
        combos = sorted(rng.sample(BUILT_IN_STRENGTHS[0][3], rng.randint(2, 5)))
        sid = new_id(rng)
        configs: list[dict[str, Any]] = []
        if "fido2" in combos and rng.random() < 0.5:
            configs.append(
                {
                    "@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                    "id": new_id(rng),
                    "appliesToCombinations": ["fido2"],
                    "allowedAAGUIDs": [new_id(rng)],
                }
            )
        rows.append(
            {
                "id": sid,
                "displayName": f"Custom strength {index + 1}",
                "description": "Approved methods for sensitive apps",
                "policyType": "custom",
                "requirementsSatisfied": "mfa",
                "allowedCombinations": combos,
                **_stamped(rng),
                "combinationConfigurations": configs,
            }
        )
    return rows


def _users_block(**parts: Any) -> dict[str, Any]:
    block: dict[str, Any] = {
        "includeUsers": [],
        "excludeUsers": [],
        "includeGroups": [],
        "excludeGroups": [],
        "includeRoles": [],
        "excludeRoles": [],
        "includeGuestsOrExternalUsers": None,
        "excludeGuestsOrExternalUsers": None,
    }
    block.update(parts)
    return block


def ca_policy(rng: random.Random, index: int, refs: dict[str, list[str]]) -> dict[str, Any]:
    """One conditional access policy from a realistic template, pointing at tenant objects."""
    users, groups, apps = refs["users"], refs["groups"], refs["apps"]
    trusted, countries = refs["trusted"], refs["countries"]
    strength_ids = refs["strengths"]
    breakglass = users[:1]
    template = index % 8
    apps_block = {
        "includeApplications": ["All"],
        "excludeApplications": [],
        "includeUserActions": [],
        "includeAuthenticationContextClassReferences": [],
        "applicationFilter": None,
    }
    conditions: dict[str, Any] = {
        "userRiskLevels": [],
        "signInRiskLevels": [],
        "servicePrincipalRiskLevels": [],
        "clientAppTypes": ["all"],
        "platforms": None,
        "locations": None,
        "devices": None,
        "clientApplications": None,
        "authenticationFlows": None,
        "insiderRiskLevels": None,
        "applications": apps_block,
        "users": _users_block(includeUsers=["All"], excludeUsers=breakglass),
    }
    grant: dict[str, Any] | None = {
        "operator": "OR",
        "builtInControls": ["mfa"],
        "customAuthenticationFactors": [],
        "termsOfUse": [],
        "authenticationStrength": None,
    }
    session: dict[str, Any] | None = None
    name = "Require MFA for all users"
    if template == 0:
        name = "Require phishing-resistant MFA for administrators"
        roles = [
            ROLE_TEMPLATE_IDS[r] for r in rng.sample(ADMIN_ROLES, rng.randint(3, len(ADMIN_ROLES)))
        ]
        conditions["users"] = _users_block(includeRoles=roles, excludeUsers=breakglass)
        assert grant is not None
        grant["builtInControls"] = []
        grant["authenticationStrength"] = {"id": rng.choice(strength_ids)}
    elif template == 1:
        name = "Block legacy authentication"
        conditions["clientAppTypes"] = ["exchangeActiveSync", "other"]
        grant = {**(grant or {}), "builtInControls": ["block"]}
    elif template == 2 and countries:
        name = "Block sign-ins from blocked countries"
        conditions["locations"] = {
            "includeLocations": [rng.choice(countries)],
            "excludeLocations": [],
        }
        grant = {**(grant or {}), "builtInControls": ["block"]}
    elif template == 3 and apps:
        name = f"Require compliant device for app {index}"
        conditions["applications"] = {
            **apps_block,
            "includeApplications": rng.sample(apps, min(len(apps), rng.randint(1, 3))),
        }
        conditions["users"] = _users_block(
            includeGroups=rng.sample(groups, min(len(groups), 2)), excludeUsers=breakglass
        )
        conditions["platforms"] = {"includePlatforms": ["windows", "macOS"], "excludePlatforms": []}
        grant = {**(grant or {}), "builtInControls": ["compliantDevice", "domainJoinedDevice"]}
    elif template == 4:
        name = "Guests: MFA and sign-in every 12 hours"
        conditions["users"] = _users_block(
            includeGuestsOrExternalUsers={
                "guestOrExternalUserTypes": "b2bCollaborationGuest,b2bCollaborationMember",
                "externalTenants": {
                    "@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants",
                    "membershipKind": "all",
                },
            }
        )
        session = {
            "signInFrequency": {
                "value": 12,
                "type": "hours",
                "isEnabled": True,
                "authenticationType": "primaryAndSecondaryAuthentication",
                "frequencyInterval": "timeBased",
            },
            "persistentBrowser": None,
            "cloudAppSecurity": None,
            "applicationEnforcedRestrictions": None,
            "disableResilienceDefaults": None,
            "secureSignInSession": None,
        }
    elif template == 5:
        name = "Require MFA for risky sign-ins"
        conditions["signInRiskLevels"] = ["high", "medium"]
    elif template == 6 and trusted:
        name = "Require MFA outside trusted locations"
        conditions["locations"] = {
            "includeLocations": ["All"],
            "excludeLocations": ["AllTrusted", *rng.sample(trusted, min(len(trusted), 2))],
        }
    elif groups:
        name = f"Department access policy {index}"
        conditions["applications"] = {**apps_block, "includeApplications": [OFFICE_365]}
        conditions["users"] = _users_block(
            includeGroups=rng.sample(groups, min(len(groups), rng.randint(1, 3))),
            excludeGroups=rng.sample(groups, min(len(groups), 1)),
            includeUsers=rng.sample(users, min(len(users), 2)),
        )
        session = {
            "persistentBrowser": {"mode": "never", "isEnabled": True},
            "signInFrequency": None,
            "cloudAppSecurity": None,
            "applicationEnforcedRestrictions": None,
            "disableResilienceDefaults": None,
            "secureSignInSession": None,
        }
    if index >= 8:
        name = f"{name} ({index // 8 + 1})"
    return {
        "id": new_id(rng),
        "templateId": None,
        "displayName": name,
        "description": None,
        **_stamped(rng),
        "state": rng.choice(
            ("enabled", "enabled", "enabled", "enabledForReportingButNotEnforced", "disabled")
        ),
        "conditions": conditions,
        "grantControls": grant,
        "sessionControls": session,
    }


def generate_policies(d: Directory, seed: int | str) -> None:
    """Every policy kind; call after users, groups and apps exist. No change-log entries."""
    rng = random.Random(f"{seed}/policies")
    d.policies = store = PolicyStore()
    n_users = d.count("user")
    members = [r["id"] for _, r in d.scan("user", 0) if r.get("userType") == "Member"]
    groups = [r["id"] for _, r in d.scan("group", 0) if r.get("securityEnabled")]
    apps = [r["appId"] for _, r in d.scan("application", 0)]
    for index in range(max(3, n_users // 2000)):
        store.load("namedLocation", named_location(rng, index))
    for row in strengths(rng, min(10, 1 + n_users // 5000)):
        store.load("authenticationStrengthPolicy", row)
    locations = store.rows("namedLocation")
    refs = {
        "users": members,
        "groups": groups,
        "apps": apps,
        "trusted": [r["id"] for r in locations if r.get("isTrusted")],
        "countries": [r["id"] for r in locations if "countriesAndRegions" in r],
        "strengths": store.ids("authenticationStrengthPolicy"),
    }
    for index in range(max(6, n_users // 333)):
        store.load("conditionalAccessPolicy", ca_policy(rng, index, refs))
    for kind, rows in sts_policies(rng, n_users).items():
        for row in rows:
            store.load(kind, row)
    link_service_principals(d, rng)
    when = _when(rng)
    store.load(
        "authenticationMethodsPolicy", defaults.authentication_methods_policy(rng, groups, when)
    )
    store.load("authorizationPolicy", defaults.authorization_policy(rng))
    store.load("securityDefaults", defaults.security_defaults(enabled=False))
    store.load("crossTenantAccessDefault", defaults.cross_tenant_default(rng))
    for index in range(max(2, n_users // 5000)):
        store.load("crossTenantAccessPartner", defaults.cross_tenant_partner(rng, index))
    store.load("adminConsentRequestPolicy", defaults.admin_consent_request_policy(rng, members[:2]))
    for row in defaults.permission_grant_policies(rng, n_users // 20000):
        store.load("permissionGrantPolicy", row)
    if any("Unified" in r.get("groupTypes", ()) for _, r in d.scan("group", 0)):
        store.load("groupLifecyclePolicy", defaults.group_lifecycle_policy(rng, d.domain))
