"""Deterministic applications, service principals, app role assignments and delegated grants.

Every app registration has its service principal (enterprise app) in the tenant; Microsoft's
first-party service principals (Microsoft Graph with its real appId and a part of its real app
roles and scopes, Exchange Online, SharePoint Online) are there too, so app role assignments
and grants point at real resources. Mix: ~55% OIDC web apps, ~15% SAML gallery apps, ~5%
password-SSO apps, ~25% APIs/daemons holding Graph application permissions; a few managed
identities. Secrets and private keys are never stored: credentials are metadata only.
"""

from __future__ import annotations

import base64
import random
from typing import Any

from agent.simulator.graph.directory import Directory, iso
from agent.simulator.graph.generator import DEPARTMENTS, EPOCH, new_id

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"  # Microsoft Services (first party)
DEFAULT_ACCESS = "00000000-0000-0000-0000-000000000000"  # "default access" app role
# Gallery SSO apps here declare no app roles: their users and groups hold default access, which
# Graph accepts only for a resource without app roles (appRoleAssignment: appRoleId).
NO_APP_ROLES = ("saml", "password")
# Microsoft Graph application permissions (appRoles) and delegated scopes, real ids.
GRAPH_ROLES = {
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "Group.Read.All": "5b567255-7703-4780-807c-7be8301ae99b",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "User.ReadWrite.All": "741f803b-c850-494e-b5df-cde7c675a1ca",
    "Mail.Send": "b633e1c5-b582-4048-a93e-9f11b44c7e96",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
    "Device.Read.All": "7438b122-aefc-4978-80ed-43db9fcc7715",
    "Sites.Read.All": "332a536c-c7ef-4017-ab91-336970924f0d",
}
GRAPH_SCOPES = {
    "User.Read": "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
    "openid": "37f7f235-527c-4136-accd-4a02d197296e",
    "profile": "14dad69e-099b-42c9-810b-d002981feec1",
    "offline_access": "7427e0e9-2fba-42fe-b0c0-848c9e6a8182",
    "email": "64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0",
    "Mail.Read": "570282fd-fa5c-430d-a7fd-fc8dc98a9dca",
}
FIRST_PARTY = (
    (GRAPH_APP_ID, "Microsoft Graph"),
    ("00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online"),
    ("00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online"),
    ("00000002-0000-0000-c000-000000000000", "Windows Azure Active Directory"),
)
# (application template id, display name) of SAML gallery apps; the ids are made up here.
GALLERY = (
    ("8adf8e6e-67b2-4cf2-a259-e3dc5476c621", "Salesforce"),
    ("26ea8e57-7f88-48c0-98b1-ad4e64a79ad7", "ServiceNow"),
    ("af8a4bcf-2cd0-4cd2-b2f4-c5bc5d9ad5c8", "Workday"),
    ("7a4e4a47-2f85-4b62-9a2c-4d1c5ea7a6d8", "Slack"),
    ("1a0f2a10-6d28-4f6a-a9a8-04c1e2b6c0f4", "Zoom"),
    ("ba3c3b65-5c7e-4b6c-a2a1-8e2c2c3a9f11", "Atlassian Cloud"),
)
PRODUCTS = ("Portal", "Billing", "Inventory", "Reports", "Timesheets", "Wiki", "CRM", "Payroll")


def opaque_id(rng: random.Random) -> str:
    """Graph's app role assignment and grant ids are 43-character url-safe strings."""
    return base64.urlsafe_b64encode(rng.getrandbits(256).to_bytes(32, "big")).decode()[:43]


def _when(rng: random.Random, days: int = 1200) -> str:
    return iso(EPOCH + rng.randrange(days * 86400))


def _thumbprint(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040X}"


def _key_credential(rng: random.Random, name: str, usage: str) -> dict[str, Any]:
    start = EPOCH + rng.randrange(900 * 86400)
    return {
        "customKeyIdentifier": base64.b64encode(bytes.fromhex(_thumbprint(rng))).decode(),
        "displayName": name,
        "endDateTime": iso(start + 3 * 365 * 86400),
        "key": None,  # the public key is only returned with $select=keyCredentials on one app
        "keyId": new_id(rng),
        "startDateTime": iso(start),
        "type": "AsymmetricX509Cert",
        "usage": usage,
    }


def _password_credential(rng: random.Random, name: str) -> dict[str, Any]:
    start = EPOCH + rng.randrange(1100 * 86400)
    return {
        "customKeyIdentifier": None,
        "displayName": name,
        "endDateTime": iso(start + rng.choice((180, 365, 730)) * 86400),
        "hint": rng.choice("abcdefghjkmnpqrstuvwxyz") + f"{rng.randrange(100):02d}",
        "keyId": new_id(rng),
        "secretText": None,  # never returned after creation
        "startDateTime": iso(start),
    }


def _role(rng: random.Random, value: str, members: list[str]) -> dict[str, Any]:
    return {
        "allowedMemberTypes": members,
        "description": f"{value} of the application",
        "displayName": value,
        "id": new_id(rng),
        "isEnabled": True,
        "origin": "Application",
        "value": value,
    }


def _scope(rng: random.Random, value: str) -> dict[str, Any]:
    return {
        "adminConsentDescription": f"Allows the app to {value} on behalf of the signed-in user.",
        "adminConsentDisplayName": value,
        "id": new_id(rng),
        "isEnabled": True,
        "origin": "Application",
        "type": rng.choice(("User", "Admin")),
        "userConsentDescription": f"Allows the app to {value} on your behalf.",
        "userConsentDisplayName": value,
        "value": value,
    }


def _resource_access(kind: str, rng: random.Random) -> list[dict[str, Any]]:
    scopes = ["User.Read", *rng.sample(sorted(GRAPH_SCOPES), rng.randint(0, 3))]
    access = [{"id": GRAPH_SCOPES[s], "type": "Scope"} for s in dict.fromkeys(scopes)]
    if kind == "daemon":
        roles = rng.sample(sorted(GRAPH_ROLES), rng.randint(1, 3))
        access += [{"id": GRAPH_ROLES[r], "type": "Role"} for r in roles]
    return [{"resourceAppId": GRAPH_APP_ID, "resourceAccess": access}]


def _application(rng: random.Random, index: int, kind: str, domain: str) -> dict[str, Any]:
    app_id = new_id(rng)
    org = domain.split(".")[0]
    template, name = (None, "")
    if kind == "saml":
        template, name = rng.choice(GALLERY)
    else:
        name = f"{rng.choice(DEPARTMENTS)} {rng.choice(PRODUCTS)} {index}"
    host = f"{name.lower().replace(' ', '-')}.{org}.com"
    web = {
        "homePageUrl": f"https://{host}/",
        "logoutUrl": f"https://{host}/signout" if kind == "web" else None,
        "redirectUris": [f"https://{host}/signin-oidc"] if kind in ("web", "saml") else [],
        "implicitGrantSettings": {
            "enableAccessTokenIssuance": False,
            "enableIdTokenIssuance": kind == "web" and rng.random() < 0.3,
        },
        "redirectUriSettings": [],
    }
    roles = [_role(rng, v, ["User"]) for v in rng.sample(("Reader", "Writer", "Admin"), 2)]
    if kind == "daemon":
        roles.append(_role(rng, "Task.Run", ["Application"]))
    row: dict[str, Any] = {
        "id": new_id(rng),
        "appId": app_id,
        "displayName": name,
        "description": f"{name} ({kind})" if rng.random() < 0.5 else None,
        "createdDateTime": _when(rng),
        "signInAudience": "AzureADMultipleOrgs" if rng.random() < 0.1 else "AzureADMyOrg",
        "identifierUris": [f"api://{app_id}"] if kind in ("daemon", "web") else [],
        "publisherDomain": domain,
        "isFallbackPublicClient": False,
        "groupMembershipClaims": rng.choice((None, "SecurityGroup", "All")),
        "tags": ["HideApp"] if kind == "daemon" and rng.random() < 0.5 else [],
        "web": web,
        "spa": {"redirectUris": []},
        "publicClient": {"redirectUris": []},
        "requiredResourceAccess": _resource_access(kind, rng),
        "appRoles": roles,
        "api": {
            "acceptMappedClaims": None,
            "knownClientApplications": [],
            "oauth2PermissionScopes": [_scope(rng, "user_impersonation")] if kind != "saml" else [],
            "preAuthorizedApplications": [],
            "requestedAccessTokenVersion": rng.choice((None, 2)),
        },
        "optionalClaims": {
            "accessToken": [],
            "idToken": [
                {"additionalProperties": [], "essential": False, "name": c, "source": None}
                for c in rng.sample(("email", "upn", "family_name", "groups"), rng.randint(0, 2))
            ],
            "saml2Token": [],
        },
        "keyCredentials": [_key_credential(rng, f"CN={name}", "Verify")]
        if kind == "daemon" and rng.random() < 0.5
        else [],
        "passwordCredentials": [_password_credential(rng, "client secret")]
        if kind in ("web", "daemon")
        else [],
        "info": {
            "logoUrl": None,
            "marketingUrl": None,
            "privacyStatementUrl": None,
            "supportUrl": None,
            "termsOfServiceUrl": None,
        },
    }
    if template:
        row["applicationTemplateId"] = template
    return {k: v for k, v in row.items() if v is not None}


def _service_principal(
    rng: random.Random, app: dict[str, Any], kind: str, tenant_id: str
) -> dict[str, Any]:
    web = app.get("web", {})
    tags = ["WindowsAzureActiveDirectoryIntegratedApp"]
    sso: str | None = {"saml": "saml", "password": "password", "web": "oidc"}.get(kind)
    row: dict[str, Any] = {
        "id": new_id(rng),
        "appId": app["appId"],
        "appDisplayName": app["displayName"],
        "displayName": app["displayName"],
        "appDescription": app.get("description"),
        "servicePrincipalType": "Application",
        "accountEnabled": rng.random() > 0.05,
        "appRoleAssignmentRequired": kind in ("saml", "password") or rng.random() < 0.2,
        "appOwnerOrganizationId": tenant_id,
        "signInAudience": app["signInAudience"],
        "servicePrincipalNames": [app["appId"], *app.get("identifierUris", [])],
        "replyUrls": list(web.get("redirectUris", [])),
        "homepage": web.get("homePageUrl"),
        "logoutUrl": web.get("logoutUrl"),
        "notificationEmailAddresses": [],
        "alternativeNames": [],
        "tags": tags,
        "appRoles": app["appRoles"],
        "oauth2PermissionScopes": app["api"]["oauth2PermissionScopes"],
        "keyCredentials": [],
        "passwordCredentials": [],
        "info": app["info"],
        "verifiedPublisher": {
            "addedDateTime": None,
            "displayName": None,
            "verifiedPublisherId": None,
        },
        "preferredSingleSignOnMode": sso,
    }
    if kind == "saml":
        row["applicationTemplateId"] = app.get("applicationTemplateId")
        tags.append("WindowsAzureActiveDirectoryCustomSingleSignOnApplication")
        row["loginUrl"] = web["homePageUrl"] + "login"
        row["samlSingleSignOnSettings"] = {"relayState": rng.choice((None, "/home", "/app"))}
        row["notificationEmailAddresses"] = [f"it-admins@{app['publisherDomain']}"]
        cert = _key_credential(
            rng, f"CN=Microsoft Azure Federated SSO Certificate {row['id'][:8]}", "Verify"
        )
        signing = {**cert, "keyId": new_id(rng), "usage": "Sign"}
        row["keyCredentials"] = [signing, cert]
        _thumbprint(rng)  # drawn as before, so the rest of the tenant stays the same
        # The active signing key's thumbprint (hex of its customKeyIdentifier).
        thumb = base64.b64decode(signing["customKeyIdentifier"]).hex().upper()
        row["preferredTokenSigningKeyThumbprint"] = thumb
    elif kind == "password":
        row["loginUrl"] = web["homePageUrl"] + "login"
    return {k: v for k, v in row.items() if v is not None}


def _first_party(rng: random.Random, app_id: str, name: str) -> dict[str, Any]:
    graph = app_id == GRAPH_APP_ID
    roles = [
        {
            "allowedMemberTypes": ["Application"],
            "description": f"Allows the app to {value} without a signed-in user.",
            "displayName": value,
            "id": role_id,
            "isEnabled": True,
            "origin": "Application",
            "value": value,
        }
        for value, role_id in (GRAPH_ROLES.items() if graph else ())
    ]
    scopes = [
        {
            "adminConsentDescription": f"Allows {value}.",
            "adminConsentDisplayName": value,
            "id": scope_id,
            "isEnabled": True,
            "origin": "Application",
            "type": "User",
            "userConsentDescription": f"Allows {value}.",
            "userConsentDisplayName": value,
            "value": value,
        }
        for value, scope_id in (GRAPH_SCOPES.items() if graph else ())
    ]
    return {
        "id": new_id(rng),
        "appId": app_id,
        "appDisplayName": name,
        "displayName": name,
        "servicePrincipalType": "Application",
        "accountEnabled": True,
        "appRoleAssignmentRequired": False,
        "appOwnerOrganizationId": MICROSOFT_TENANT,
        "signInAudience": "AzureADMultipleOrgs",
        "servicePrincipalNames": [app_id, "https://graph.microsoft.com"] if graph else [app_id],
        "replyUrls": [],
        "notificationEmailAddresses": [],
        "alternativeNames": [],
        "tags": [],
        "appRoles": roles,
        "oauth2PermissionScopes": scopes,
        "keyCredentials": [],
        "passwordCredentials": [],
    }


def _assignment(
    rng: random.Random,
    principal: dict[str, Any],
    principal_type: str,
    resource: dict[str, Any],
    role_id: str,
) -> dict[str, Any]:
    return {
        "id": opaque_id(rng),
        "appRoleId": role_id,
        "createdDateTime": _when(rng),
        "principalDisplayName": principal.get("displayName"),
        "principalId": principal["id"],
        "principalType": principal_type,
        "resourceDisplayName": resource["displayName"],
        "resourceId": resource["id"],
    }


def _kind(rng: random.Random) -> str:
    roll = rng.random()
    return (
        "web" if roll < 0.55 else "saml" if roll < 0.7 else "password" if roll < 0.75 else "daemon"
    )


def _role_for(app: dict[str, Any], user_roles: list[str], drawn: str) -> str:
    """The role an assignment to ``app`` gets from the one ``drawn`` (drawn as before, so the
    rest of the tenant stays the same): default access only for an app without app roles."""
    if not app["appRoles"]:
        return DEFAULT_ACCESS
    return user_roles[0] if drawn == DEFAULT_ACCESS else drawn


def generate_apps(d: Directory, rng: random.Random, count: int) -> None:
    """Apps, their SPs, first-party SPs, assignments and grants; no change-log entries."""
    store = d.objects
    users = [r for _, r in d.scan("user", 0) if r.get("userType") == "Member"]
    groups = [r for _, r in d.scan("group", 0) if r.get("securityEnabled")]
    first = {}
    for app_id, name in FIRST_PARTY:
        sp = _first_party(rng, app_id, name)
        d.load_row("servicePrincipal", sp)
        first[app_id] = sp
    graph = first[GRAPH_APP_ID]
    for index in range(count):
        kind = _kind(rng)
        app = _application(rng, index, kind, d.domain)
        user_roles = [r["id"] for r in app["appRoles"] if "User" in r["allowedMemberTypes"]]
        if kind in NO_APP_ROLES:
            app["appRoles"] = []  # after the draws, so the rest of the tenant stays the same
        d.load_row("application", app)
        sp = _service_principal(rng, app, kind, d.tenant_id)
        d.load_row("servicePrincipal", sp)
        for owner in rng.sample(users, min(len(users), rng.choice((0, 1, 1, 2)))):
            store.link("application.owners", app["id"], owner["id"])
            store.link("servicePrincipal.owners", sp["id"], owner["id"])
        if rng.random() < 0.05:
            store.add_child(
                "application.federatedIdentityCredentials",
                app["id"],
                {
                    "id": new_id(rng),
                    "name": "github-deploy",
                    "issuer": "https://token.actions.githubusercontent.com",
                    "subject": f"repo:{d.domain.split('.')[0]}/app{index}:ref:refs/heads/main",
                    "audiences": ["api://AzureADTokenExchange"],
                    "description": "GitHub Actions deployment",
                },
            )
        if index == 0 or rng.random() < 0.03:
            for attr in rng.sample(("costCenter", "employeeBadge", "legacyId"), 2):
                store.add_child(
                    "application.extensionProperties",
                    app["id"],
                    {
                        "id": new_id(rng),
                        "appDisplayName": app["displayName"],
                        "dataType": "String",
                        "isMultiValued": False,
                        "isSyncedFromOnPremises": False,
                        "name": f"extension_{app['appId'].replace('-', '')}_{attr}",
                        "targetObjects": ["User"],
                    },
                )
        if kind == "daemon":  # application permissions: the SP holds Graph app roles
            for access in app["requiredResourceAccess"][0]["resourceAccess"]:
                if access["type"] == "Role":
                    store.add_assignment(
                        _assignment(rng, sp, "ServicePrincipal", graph, access["id"])
                    )
        elif users:  # users and groups assigned to the app
            n = min(len(users), int(rng.lognormvariate(1.8, 0.9)))
            for user in rng.sample(users, n):
                role = _role_for(app, user_roles, rng.choice([*user_roles, DEFAULT_ACCESS]))
                store.add_assignment(_assignment(rng, user, "User", sp, role))
            for group in rng.sample(groups, min(len(groups), rng.randint(0, 2))):
                role = _role_for(app, user_roles, rng.choice(user_roles))
                store.add_assignment(_assignment(rng, group, "Group", sp, role))
        if kind == "web":  # delegated consent to Microsoft Graph
            grant = {
                "id": opaque_id(rng),
                "clientId": sp["id"],
                "consentType": "AllPrincipals",
                "principalId": None,
                "resourceId": graph["id"],
                "scope": "email openid profile User.Read",
            }
            if rng.random() < 0.3 and users:
                for user in rng.sample(users, min(len(users), rng.randint(1, 3))):
                    d.load_row(
                        "oauth2PermissionGrant",
                        {**grant, "id": opaque_id(rng), "consentType": "Principal",
                         "principalId": user["id"], "scope": "User.Read offline_access"},
                    )  # fmt: skip
            else:
                d.load_row("oauth2PermissionGrant", grant)
    for index in range(max(1, count // 10) if count else 0):  # managed identities
        name = f"mi-{rng.choice(PRODUCTS).lower()}-{index}"
        app_id = new_id(rng)
        sub = new_id(rng)
        mi = {
            "id": new_id(rng),
            "appId": app_id,
            "displayName": name,
            "servicePrincipalType": "ManagedIdentity",
            "accountEnabled": True,
            "appRoleAssignmentRequired": False,
            "alternativeNames": [
                "isExplicit=True",
                (
                    f"/subscriptions/{sub}/resourcegroups/rg-{index}/providers/"
                    f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
                ),
            ],
            "servicePrincipalNames": [app_id, f"https://identity.azure.net/{opaque_id(rng)}"],
            "replyUrls": [],
            "notificationEmailAddresses": [],
            "tags": [],
            "appRoles": [],
            "oauth2PermissionScopes": [],
            "keyCredentials": [],
            "passwordCredentials": [],
        }
        d.load_row("servicePrincipal", mi)
        role = rng.choice(sorted(GRAPH_ROLES))
        store.add_assignment(_assignment(rng, mi, "ServicePrincipal", graph, GRAPH_ROLES[role]))
