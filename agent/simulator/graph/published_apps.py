"""Multi-tenant applications other tenants publish, and their service principals here.

A tenant's enterprise app of an application registered in another tenant (Microsoft's
first-party apps, a partner's SaaS app) is a service principal whose application lives in
the publisher's tenant: Graph creates it from the appId alone (POST /servicePrincipals
{"appId"}, "Create an enterprise application from a multitenant application"), copying what
the publisher's app declares (display name, app roles, scopes, identifiers, reply URLs,
appOwnerOrganizationId = the publisher's tenant). That works only for an app whose
signInAudience lets other organisations in (AzureADMultipleOrgs or …AndPersonalMicrosoftAccount);
a single-tenant app of another tenant is as unknown here as an appId nobody registered.

The catalog below stands for "the rest of Entra": Microsoft's first-party apps (gen_apps) and
a few made-up partner tenants' apps. Generated tenants hold service principals of some partner
apps, with users assigned to their roles and an admin consent to Microsoft Graph.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from agent.simulator.graph.directory import Directory, iso
from agent.simulator.graph.gen_apps import (
    FIRST_PARTY,
    GRAPH_APP_ID,
    _assignment,
    _first_party,
    opaque_id,
)
from agent.simulator.graph.generator import EPOCH

MULTI_TENANT = ("AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount")


@dataclass(frozen=True)
class PartnerApp:
    app_id: str
    name: str
    tenant_id: str  # the publisher's tenant (appOwnerOrganizationId)
    publisher: str  # its verified publisher name
    host: str
    roles: tuple[str, ...]
    audience: str = "AzureADMultipleOrgs"


# Made-up publishers and apps (ids fixed so snapshots of different runs agree).
PARTNER_APPS = (
    PartnerApp(
        "5b7a1c2e-3f40-4d6b-9e8a-1c2d3e4f5a60",
        "Fabrikam Expense Cloud",
        "7d3e5f1a-2b4c-4e6d-8f0a-1b2c3d4e5f60",
        "Fabrikam, Inc.",
        "expense.fabrikam.com",
        ("Expense.Submit", "Expense.Approve"),
    ),
    PartnerApp(
        "9c2d4e6f-8a1b-4c3d-a5e7-f9a1b3c5d7e9",
        "Northwind Field Service",
        "3a5c7e9b-1d2f-4a6b-8c0d-2e4f6a8b0c1d",
        "Northwind Traders",
        "field.northwind.com",
        ("Technician", "Dispatcher"),
    ),
    PartnerApp(
        "2e4a6c8d-0f1b-4d3e-b5a7-c9e1f3a5b7d9",
        "Tailspin Learning",
        "8b0d2f4a-6c8e-4a1b-9d3f-5a7c9e1b3d5f",
        "Tailspin Toys",
        "learn.tailspin.com",
        ("Learner", "Instructor"),
    ),
)
# An app another tenant registered for itself only (AzureADMyOrg): no service principal of it
# can be created here; Graph answers as for an appId nobody registered.
SINGLE_TENANT_ELSEWHERE = PartnerApp(
    "4f6b8d0a-2c4e-4f6a-8b1d-3e5a7c9f1b2d", "Woodgrove Internal Payroll",
    "6e8a0c2d-4f6b-4d8e-a0c2-4e6a8c0e2a4b", "Woodgrove Bank", "payroll.woodgrove.com",
    ("Payroll.Admin",), audience="AzureADMyOrg",
)  # fmt: skip
_BY_APP_ID = {p.app_id: p for p in (*PARTNER_APPS, SINGLE_TENANT_ELSEWHERE)}


def _uuid(app: PartnerApp, name: str) -> str:
    return str(uuid.uuid5(uuid.UUID(app.app_id), name))


def _partner_sp(app: PartnerApp) -> dict[str, Any]:
    """What a service principal of ``app`` takes from the publisher's application."""
    roles = [
        {
            "allowedMemberTypes": ["User"],
            "description": f"{value} in {app.name}",
            "displayName": value,
            "id": _uuid(app, f"role:{value}"),
            "isEnabled": True,
            "origin": "Application",
            "value": value,
        }
        for value in app.roles
    ]
    scope = {
        "adminConsentDescription": f"Allows the app to access {app.name} as the signed-in user.",
        "adminConsentDisplayName": f"Access {app.name}",
        "id": _uuid(app, "scope:user_impersonation"),
        "isEnabled": True,
        "origin": "Application",
        "type": "User",
        "userConsentDescription": f"Allows the app to access {app.name} on your behalf.",
        "userConsentDisplayName": f"Access {app.name}",
        "value": "user_impersonation",
    }
    return {
        "appId": app.app_id,
        "appDisplayName": app.name,
        "displayName": app.name,
        "servicePrincipalType": "Application",
        "appOwnerOrganizationId": app.tenant_id,
        "signInAudience": app.audience,
        "servicePrincipalNames": [app.app_id, f"https://{app.host}"],
        "replyUrls": [f"https://{app.host}/signin-oidc"],
        "homepage": f"https://{app.host}/",
        "appRoles": roles,
        "oauth2PermissionScopes": [scope],
        "info": {
            "logoUrl": None,
            "marketingUrl": f"https://{app.host}/about",
            "privacyStatementUrl": f"https://{app.host}/privacy",
            "supportUrl": f"https://{app.host}/support",
            "termsOfServiceUrl": f"https://{app.host}/terms",
        },
        "verifiedPublisher": {
            "addedDateTime": iso(EPOCH),
            "displayName": app.publisher,
            "verifiedPublisherId": str(int(app.tenant_id[:8], 16) % 10**7),
        },
        "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
    }


def published_app(app_id: str) -> dict[str, Any] | None:
    """What a tenant's service principal takes from a multi-tenant app another tenant publishes
    (Microsoft's first-party apps, the partner apps above), or None when no other tenant
    publishes ``app_id`` to other organisations (unknown, or single-tenant elsewhere)."""
    name = dict(FIRST_PARTY).get(app_id)
    if name is not None:
        sp = _first_party(random.Random(app_id), app_id, name)
        return {k: v for k, v in sp.items() if k != "id"}
    partner = _BY_APP_ID.get(app_id)
    if partner is None or partner.audience not in MULTI_TENANT:
        return None
    return _partner_sp(partner)


def generate_partner_apps(d: Directory, rng: random.Random, applications: int) -> None:
    """Service principals of a few partner apps (about one per 15 app registrations), users
    assigned to their roles and an admin consent for them to Microsoft Graph."""
    count = min(len(PARTNER_APPS), 1 + applications // 15) if applications else 0
    users = [r for _, r in d.scan("user", 0) if r.get("userType") == "Member"]
    graph = next((r for _, r in d.scan("servicePrincipal", 0) if r["appId"] == GRAPH_APP_ID), None)
    for app in PARTNER_APPS[:count]:
        sp = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            **_partner_sp(app),
            "accountEnabled": True,
            "appRoleAssignmentRequired": rng.random() < 0.5,
            "alternativeNames": [],
            "notificationEmailAddresses": [],
            "keyCredentials": [],
            "passwordCredentials": [],
            "preferredSingleSignOnMode": "oidc",
        }
        d.load_row("servicePrincipal", sp)
        for user in rng.sample(users, min(len(users), rng.randint(1, 4))):
            role = rng.choice(sp["appRoles"])["id"]
            d.objects.add_assignment(_assignment(rng, user, "User", sp, role))
        if graph is not None:
            d.load_row(
                "oauth2PermissionGrant",
                {"id": opaque_id(rng), "clientId": sp["id"], "consentType": "AllPrincipals",
                 "principalId": None, "resourceId": graph["id"],
                 "scope": "openid profile email User.Read"},
            )  # fmt: skip
