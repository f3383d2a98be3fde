"""Policies of enterprise apps: claims mapping, token issuance, token lifetime, home realm
discovery and activity-based timeout policies (definitions as Graph stores them: one JSON
string), and the links from the service principals that use them (objects.py RELATIONS).
"""

from __future__ import annotations

import json
import random
from typing import Any

from agent.simulator.graph.directory import Directory
from agent.simulator.graph.generator import new_id


def _sts(
    rng: random.Random, kind: str, name: str, body: dict[str, Any], default: bool = False
) -> dict[str, Any]:
    return {
        "id": new_id(rng),
        "deletedDateTime": None,
        "displayName": name,
        "description": None,
        "isOrganizationDefault": default,
        "definition": [
            json.dumps({kind[0].upper() + kind[1:]: {"Version": 1, **body}}, separators=(",", ":"))
        ],
    }


def claims_mapping(rng: random.Random, index: int) -> dict[str, Any]:
    claim = rng.choice(
        ("employeeid", "department", "extensionattribute1", "onpremisessamaccountname")
    )
    body = {
        "IncludeBasicClaimSet": "true",
        "ClaimsSchema": [
            {
                "Source": "user",
                "ID": claim,
                "SamlClaimType": f"http://schemas.contoso.com/claims/{claim}",
            },
            {
                "Source": "user",
                "ID": "userprincipalname",
                "SamlClaimType": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
            },
        ],
    }
    return _sts(rng, "claimsMappingPolicy", f"SAML claims {index}: {claim}", body)


def sts_policies(rng: random.Random, users: int) -> dict[str, list[dict[str, Any]]]:
    return {
        "claimsMappingPolicy": [claims_mapping(rng, i) for i in range(max(2, users // 2000))],
        "tokenIssuancePolicy": [
            _sts(
                rng,
                "tokenIssuancePolicy",
                f"SAML signing {i}",
                {
                    "SigningAlgorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                    "TokenResponseSigningPolicy": rng.choice(("ResponseAndToken", "TokenOnly")),
                    "SamlTokenVersion": "2.0",
                },
            )
            for i in range(max(1, users // 10000))
        ],
        "tokenLifetimePolicy": [
            _sts(
                rng,
                "tokenLifetimePolicy",
                f"Access token lifetime {h}h",
                {"AccessTokenLifetime": f"{h:02d}:00:00"},
            )
            for h in (2, 4, 8, 12)[: 1 + users // 20000]
        ],
        "homeRealmDiscoveryPolicy": [
            _sts(
                rng,
                "homeRealmDiscoveryPolicy",
                "Accelerate to on-premises ADFS",
                {"AccelerateToFederatedDomain": True, "PreferredDomain": "corp.example.com"},
            )
            for _ in range(1 + users // 50000)
        ],
        "activityBasedTimeoutPolicy": [
            _sts(
                rng,
                "activityBasedTimeoutPolicy",
                "Idle session timeout",
                {
                    "ApplicationPolicies": [
                        {"ApplicationId": "default", "WebSessionIdleTimeout": "04:00:00"}
                    ]
                },
                True,
            )
        ],
    }


def link_service_principals(d: Directory, rng: random.Random) -> None:
    """Enterprise apps that use SAML get claims mapping / token issuance policies; some apps
    carry a token lifetime or HRD policy (every policy type is in use by at least one app when
    the tenant has such apps). Each app has at most one of each (Graph's rule)."""
    store, policies = d.objects, d.policies
    # Daemons and managed identities sign no users in: only apps with single sign-on.
    sso = [
        sp
        for _, sp in d.scan("servicePrincipal", 0)
        if sp.get("appOwnerOrganizationId") == d.tenant_id and sp.get("preferredSingleSignOnMode")
    ]
    saml = [sp for sp in sso if sp["preferredSingleSignOnMode"] == "saml"]
    for relation, kind, pool, share in (
        ("claimsMappingPolicies", "claimsMappingPolicy", saml, 0.6),
        ("tokenIssuancePolicies", "tokenIssuancePolicy", saml, 0.3),
        ("tokenLifetimePolicies", "tokenLifetimePolicy", sso, 0.1),
        ("homeRealmDiscoveryPolicies", "homeRealmDiscoveryPolicy", sso, 0.05),
    ):
        ids = policies.ids(kind)
        if not ids or not pool:
            continue
        chosen = [sp for sp in pool if rng.random() < share] or [rng.choice(pool)]
        for sp in chosen:
            store.link(f"servicePrincipal.{relation}", sp["id"], rng.choice(ids))
