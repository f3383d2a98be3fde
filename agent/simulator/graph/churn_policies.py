"""Churn for the policy kinds: conditional access policies and named locations are edited,
created and deleted, custom strengths and app policies change, partners come and go, and one
tenant-wide policy (authentication methods, authorization, …) is edited. Called by
``apply_churn`` last, so it never changes what churn does to the other kinds.

Graph refuses deleting a named location or strength a conditional access policy uses, and
changing a built-in strength; churn keeps to those rules, and deletes no policy an enterprise
app is linked to.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.simulator.graph import policy_apps
from agent.simulator.graph import policy_defaults as defaults
from agent.simulator.graph import policy_generate as gen
from agent.simulator.graph.audit_links import policy_deleted
from agent.simulator.graph.directory import iso
from agent.simulator.graph.policy_store import COLLECTIONS, SP_RELATIONS, key_of

if TYPE_CHECKING:
    from agent.simulator.graph.churn import ChurnSummary
    from agent.simulator.graph.directory import Directory


def _in_use(d: Directory) -> set[str]:
    """Named locations and strengths some conditional access policy refers to, and policies
    an enterprise app uses: churn deletes only policies nothing refers to."""
    used: set[str] = set()
    for relation in SP_RELATIONS:
        for targets in d.objects.links[f"servicePrincipal.{relation}"].values():
            used.update(targets)
    for row in d.policies.rows("conditionalAccessPolicy"):
        locations = row["conditions"].get("locations") or {}
        used.update(locations.get("includeLocations", ()))
        used.update(locations.get("excludeLocations", ()))
        strength = (row.get("grantControls") or {}).get("authenticationStrength")
        if strength:
            used.add(strength["id"])
    return used


def _refs(d: Directory) -> dict[str, list[str]]:
    store = d.policies
    locations = store.rows("namedLocation")
    return {
        "users": sorted(r["id"] for _, r in d.scan("user", 0) if r.get("userType") == "Member"),
        "groups": sorted(r["id"] for _, r in d.scan("group", 0) if r.get("securityEnabled")),
        "apps": sorted(r["appId"] for _, r in d.scan("application", 0)),
        "trusted": [r["id"] for r in locations if r.get("isTrusted")],
        "countries": [r["id"] for r in locations if "countriesAndRegions" in r],
        "strengths": store.ids("authenticationStrengthPolicy"),
    }


def _new(d: Directory, rng: random.Random, kind: str, fresh: Callable[[], str]) -> dict[str, Any] | None:  # fmt: skip
    index = rng.randrange(1000, 10**6)
    row: dict[str, Any] | None
    if kind == "namedLocation":
        row = gen.named_location(rng, index)
    elif kind == "conditionalAccessPolicy":
        row = gen.ca_policy(rng, index, _refs(d))
    elif kind == "authenticationStrengthPolicy":
        row = gen.strengths(rng, 1)[-1]
    elif kind == "crossTenantAccessPartner":
        row = defaults.cross_tenant_partner(rng, index)
    elif kind == "claimsMappingPolicy":
        row = policy_apps.claims_mapping(rng, index)
    else:
        return None  # the other kinds are created rarely; churn edits them instead
    for stamp in ("createdDateTime", "modifiedDateTime"):
        row.pop(stamp, None)
    if kind == "crossTenantAccessPartner":
        row["tenantId"] = fresh()
    else:
        row["id"] = fresh()
    return row


def _edit(d: Directory, rng: random.Random, kind: str, row: dict[str, Any]) -> dict[str, Any]:
    """A PATCH an administrator would make to this kind of policy."""
    tag = rng.randrange(10**6)
    if kind == "conditionalAccessPolicy":
        users = dict(row["conditions"]["users"])
        members = [r["id"] for _, r in d.scan("user", 0) if r.get("userType") == "Member"]
        if members:
            users["excludeUsers"] = sorted({*users["excludeUsers"], rng.choice(members)})
        state = rng.choice(("enabled", "enabledForReportingButNotEnforced", "disabled"))
        return {"state": state, "conditions": {**row["conditions"], "users": users}}
    if kind == "namedLocation":
        if "ipRanges" in row:
            cidr = f"{rng.randint(20, 210)}.{rng.randrange(256)}.{rng.randrange(256)}.0/24"
            ranges = [*row["ipRanges"], {"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": cidr}]  # fmt: skip
            return {"ipRanges": ranges[-4:]}
        return {"includeUnknownCountriesAndRegions": not row["includeUnknownCountriesAndRegions"]}
    if kind == "authenticationStrengthPolicy":
        return {"description": f"Reviewed {tag}"}
    if kind == "crossTenantAccessPartner":
        trust = dict(row.get("inboundTrust") or {})
        trust["isMfaAccepted"] = not trust.get("isMfaAccepted")
        return {"inboundTrust": trust}
    if kind == "groupLifecyclePolicy":
        return {"groupLifetimeInDays": rng.choice((180, 365, 730))}
    if kind == "permissionGrantPolicy":
        return {"description": f"Reviewed {tag}"}
    return {"displayName": f"{row.get('displayName') or kind} (rev {tag})"}


def _edit_singleton(d: Directory, rng: random.Random) -> tuple[str, dict[str, Any]]:
    store = d.policies
    kind = rng.choice(("authenticationMethodsPolicy", "authorizationPolicy", "crossTenantAccessDefault", "adminConsentRequestPolicy"))  # fmt: skip
    row = store.singleton(kind)
    if kind == "authenticationMethodsPolicy":
        methods = [dict(m) for m in row["authenticationMethodConfigurations"]]
        pick = rng.randrange(len(methods))
        methods[pick]["state"] = "disabled" if methods[pick]["state"] == "enabled" else "enabled"
        return kind, {"authenticationMethodConfigurations": methods}
    if kind == "authorizationPolicy":
        return kind, {"blockMsolPowerShell": not row["blockMsolPowerShell"]}
    if kind == "crossTenantAccessDefault":
        trust = dict(row["inboundTrust"])
        trust["isMfaAccepted"] = not trust["isMfaAccepted"]
        return kind, {"inboundTrust": trust}
    return kind, {"remindersEnabled": not row["remindersEnabled"]}


def apply_policy_churn(
    d: Directory, rng: random.Random, fraction: float, s: ChurnSummary, fresh: Callable[[], str]
) -> None:
    """Change about ``fraction`` of each policy kind (at least one change each); the caller
    holds the lock."""
    store = d.policies
    now = iso(d.now())
    for kind in COLLECTIONS:
        rows = store.rows(kind)
        for _ in range(max(1, round(len(rows) * fraction))):
            roll = rng.random()
            editable = [r for r in store.rows(kind) if r.get("policyType") != "builtIn"]
            if roll < 0.25 and (row := _new(d, rng, kind, fresh)) is not None:
                store.create(kind, row, now)
                s.policies_added.append((kind, key_of(kind, row)))
                continue
            if roll < 0.45 and editable and kind != "groupLifecyclePolicy":
                used = _in_use(d)
                free = [r for r in editable if key_of(kind, r) not in used]
                if free:
                    key = key_of(kind, rng.choice(free))
                    gone = store.delete(kind, key)
                    if kind in SP_RELATIONS.values():
                        policy_deleted(d, kind, key, gone.get("displayName"))
                    s.policies_deleted.append((kind, key))
                    continue
            if editable:
                row = rng.choice(editable)
                store.update(kind, key_of(kind, row), _edit(d, rng, kind, row), now)
                s.policies_changed.append((kind, key_of(kind, row)))
    kind, changes = _edit_singleton(d, rng)
    store.update(kind, None, changes, now)
    s.policies_changed.append((kind, kind))
