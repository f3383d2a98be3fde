"""The simulated Graph's policies over real HTTPS with msal tokens: generation in proportion to
the tenant and pointing at its objects, CSDL-valid payloads with derived types, paging,
$select, permissions with Graph's 403, the conditional access rate limit, policies linked to
service principals, churn and persistence."""

from __future__ import annotations

import gzip
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.schema.csdl import load_schema
from agent.simulator.graph import Directory, generate
from agent.simulator.graph.persist import load, save
from agent.simulator.graph.policy_store import COLLECTIONS, SINGLETONS
from agent.simulator.graph.routes_policies import PATHS, SINGLETON_PATHS, entity_type
from agent.simulator.service import Simulator, TenantSpec
from agent.simulator.world import ROLE_TEMPLATE_IDS
from tests.test_sim_support import Graph, read_only_tenant

CA = "/identity/conditionalAccess/policies"
LOCATIONS = "/identity/conditionalAccess/namedLocations"


@pytest.fixture(scope="module")
def tenant() -> Iterator[tuple[Simulator, Graph, Directory]]:
    yield from read_only_tenant(users=3000, groups=80)


def problems(kind: str, item: dict[str, Any]) -> list[str]:
    return load_schema().validate(entity_type(kind), item)


def test_generation_is_proportional_and_points_at_tenant_objects(
    tenant: tuple[Simulator, Graph, Directory],
) -> None:
    _, _, d = tenant
    store = d.policies
    assert store.count("conditionalAccessPolicy") == 3000 // 333
    assert store.count("namedLocation") == 3
    strengths = store.rows("authenticationStrengthPolicy")
    assert sum(s["policyType"] == "builtIn" for s in strengths) == 3
    assert any(s["policyType"] == "custom" for s in strengths)
    users = {r["id"] for _, r in d.scan("user", 0)}
    groups = {r["id"] for _, r in d.scan("group", 0)}
    app_ids = {r["appId"] for _, r in d.scan("application", 0)}
    locations = set(store.ids("namedLocation"))
    seen: dict[str, set[str]] = {"users": set(), "groups": set(), "roles": set(), "apps": set()}
    for policy in store.rows("conditionalAccessPolicy"):
        who = policy["conditions"]["users"]
        seen["users"] |= {u for u in who["includeUsers"] + who["excludeUsers"] if u != "All"}
        seen["groups"] |= set(who["includeGroups"] + who["excludeGroups"])
        seen["roles"] |= set(who["includeRoles"])
        seen["apps"] |= set(policy["conditions"]["applications"]["includeApplications"])
        where = policy["conditions"].get("locations") or {}
        named = set(where.get("includeLocations", [])) | set(where.get("excludeLocations", []))
        assert named - {"All", "AllTrusted"} <= locations
        strength = (policy["grantControls"] or {}).get("authenticationStrength")
        if strength:
            assert store.get("authenticationStrengthPolicy", strength["id"])
    assert seen["users"] and seen["users"] <= users
    assert seen["groups"] and seen["groups"] <= groups
    assert seen["roles"] and seen["roles"] <= set(ROLE_TEMPLATE_IDS.values())
    assert seen["apps"] - {"All", "Office365"} and seen["apps"] - {"All", "Office365"} <= app_ids

    a, b = Directory("t", "x.onmicrosoft.com"), Directory("t", "x.onmicrosoft.com")
    generate(a, 9, 700, 30)
    generate(b, 9, 700, 30)
    assert a.policies.to_json() == b.policies.to_json()
    assert a.policies.count("conditionalAccessPolicy") == 6  # max(6, users // 333)


def test_every_policy_validates_against_csdl_with_derived_types(
    tenant: tuple[Simulator, Graph, Directory],
) -> None:
    _, g, d = tenant
    found: list[str] = []
    for kind, path in PATHS.items():
        items = g.all(path)
        assert len(items) == d.policies.count(kind), kind
        found += [p for item in items for p in problems(kind, item)]
    for kind, path in SINGLETON_PATHS.items():
        found += problems(kind, g.get(path).json())
    assert found == []
    locations = g.all(LOCATIONS)
    assert {x["@odata.type"] for x in locations} <= {
        "#microsoft.graph.ipNamedLocation",
        "#microsoft.graph.countryNamedLocation",
    }
    methods = g.get(SINGLETON_PATHS["authenticationMethodsPolicy"]).json()
    configs = methods["authenticationMethodConfigurations"]
    assert {c["id"] for c in configs} >= {"Fido2", "MicrosoftAuthenticator", "Sms", "Email"}
    assert all(c["@odata.type"].endswith("AuthenticationMethodConfiguration") for c in configs)
    alone = g.all(f"{SINGLETON_PATHS['authenticationMethodsPolicy']}/authenticationMethodConfigurations")  # fmt: skip
    assert alone == configs
    fido = g.get(f"{SINGLETON_PATHS['authenticationMethodsPolicy']}/authenticationMethodConfigurations/fido2")  # fmt: skip
    assert fido.json()["@odata.type"] == "#microsoft.graph.fido2AuthenticationMethodConfiguration"
    # A policy requiring a strength shows it inline, as it is now.
    strong = [p for p in g.all(CA) if (p["grantControls"] or {}).get("authenticationStrength")]
    assert strong and all(
        p["grantControls"]["authenticationStrength"]["allowedCombinations"] for p in strong
    )
    grant = g.all(f"{PATHS['permissionGrantPolicy']}/microsoft-user-default-low/includes")
    assert grant and grant[0]["permissionType"] == "delegatedUserConsentable"


def test_paging_select_and_single_reads(tenant: tuple[Simulator, Graph, Directory]) -> None:
    sim, g, d = tenant
    pages = list(g.pages(CA, **{"$top": "4"}))
    got = [p["id"] for page in pages for p in page["value"]]
    assert len(pages) == 3 and got == d.policies.ids("conditionalAccessPolicy")
    assert pages[0]["@odata.nextLink"].startswith(f"{sim.base_url}/v1.0{CA}?$skiptoken=")
    picked = g.all(CA, **{"$select": "id,displayName,state"})
    assert all(set(p) == {"id", "displayName", "state"} for p in picked)
    assert g.get(CA, **{"$select": "id,shoeSize"}).status_code == 400
    one = g.get(f"{CA}/{got[0]}").json()
    assert one["id"] == got[0] and problems("conditionalAccessPolicy", one) == []
    assert g.get(f"{CA}/00000000-0000-0000-0000-000000000000").status_code == 404
    partner = d.policies.rows("crossTenantAccessPartner")[0]["tenantId"]
    assert g.get(f"{PATHS['crossTenantAccessPartner']}/{partner}").json()["tenantId"] == partner


def test_service_principal_policy_links_are_real_policies(
    tenant: tuple[Simulator, Graph, Directory],
) -> None:
    _, g, d = tenant
    links = d.objects.links["servicePrincipal.claimsMappingPolicies"]
    sp, targets = next((s, t) for s, t in sorted(links.items()) if t)
    items = g.get(f"/servicePrincipals/{sp}/claimsMappingPolicies").json()["value"]
    assert [i["id"] for i in items] == sorted(targets)
    assert all(i["@odata.type"] == "#microsoft.graph.claimsMappingPolicy" for i in items)
    assert all(i["definition"] and problems("claimsMappingPolicy", i) == [] for i in items)
    for relation in ("tokenIssuancePolicies", "tokenLifetimePolicies", "homeRealmDiscoveryPolicies"):  # fmt: skip
        kind = relation[0].lower() + relation[1:-3] + "y"
        linked = {t for ts in d.objects.links[f"servicePrincipal.{relation}"].values() for t in ts}
        assert linked and linked <= set(d.policies.ids(kind)), relation


def test_permissions_answer_graphs_403() -> None:
    with Simulator() as sim:
        sim.faults.disable_throttling = True
        ca_only = sim.add_tenant(
            TenantSpec(users=30, groups=4, graph_permissions=["Policy.Read.ConditionalAccess"])
        )
        g = Graph(sim, ca_only)
        assert g.get(CA).status_code == 200 and g.get(LOCATIONS).status_code == 200
        denied = g.get("/policies/authorizationPolicy")
        assert denied.status_code == 403
        error = denied.json()["error"]
        assert error["code"] == "Authorization_RequestDenied"
        assert error["message"] == "Insufficient privileges to complete the operation."
        directory_only = sim.add_tenant(
            TenantSpec(
                name="fabrikam", users=30, groups=4, graph_permissions=["Directory.Read.All"]
            )
        )
        g = Graph(sim, directory_only)
        assert g.get(CA).status_code == 403  # Directory.Read.All does not read policies …
        assert g.get("/groupLifecyclePolicies").status_code == 200  # … except these
        assert g.get("/policies/adminConsentRequestPolicy").status_code == 200
        assert g.get("/policies/permissionGrantPolicies").status_code == 403


def test_conditional_access_allows_one_request_per_second_per_tenant() -> None:
    with Simulator() as sim:
        first = sim.add_tenant(TenantSpec(users=30, groups=4))
        other = sim.add_tenant(TenantSpec(name="fabrikam", users=30, groups=4))
        g, h = Graph(sim, first), Graph(sim, other)
        assert g.get(CA).status_code == 200
        refused = g.get(LOCATIONS)  # the same limit covers named locations
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["code"] == "TooManyRequests"
        assert g.get("/policies/authorizationPolicy").status_code == 200  # other paths: RU only
        assert h.get(CA).status_code == 200  # per tenant
        time.sleep(1.05)
        assert g.get(LOCATIONS).status_code == 200


def test_churn_edits_creates_and_deletes_policies_and_state_persists(tmp_path: Path) -> None:
    d = Directory("t", "x.onmicrosoft.com")
    generate(d, 2, 600, 30)
    before = {k: {str(r.get("id", r.get("tenantId"))): dict(r) for r in d.policies.rows(k)} for k in COLLECTIONS}  # fmt: skip
    summary = d.churn(random.Random(4), 0.5)
    assert summary.policies_added and summary.policies_changed and summary.policies_deleted
    kinds = {k for k, _ in summary.policies_changed + summary.policies_added}
    assert {"conditionalAccessPolicy", "namedLocation"} & kinds
    for kind, key in summary.policies_added:
        assert key not in before[kind] and d.policies.get(kind, key) is not None
    for kind, key in summary.policies_deleted:
        assert key in before[kind] and d.policies.get(kind, key) is None
    for kind, key in summary.policies_changed:
        if kind in SINGLETONS or (kind, key) in summary.policies_added:
            continue  # (one added this round and edited since has no "before")
        row = d.policies.get(kind, key)
        assert row is not None and row != before[kind].get(key, row)
        if kind == "conditionalAccessPolicy":
            assert row["modifiedDateTime"] != before[kind][key]["modifiedDateTime"]
    assert not {key for _, key in summary.policies_deleted} & {
        "00000000-0000-0000-0000-000000000002",  # built-in strengths stay
        "00000000-0000-0000-0000-000000000003",
        "00000000-0000-0000-0000-000000000004",
    }
    save(d, tmp_path / "d.json.gz")
    assert load(tmp_path / "d.json.gz").policies.to_json() == d.policies.to_json()
    # A state saved before policies existed comes back with a tenant's policies.
    with gzip.open(tmp_path / "d.json.gz", "rt") as fh:
        state = json.load(fh)
    del state["policies"]
    with gzip.open(tmp_path / "old.json.gz", "wt") as fh:
        json.dump(state, fh)
    old = load(tmp_path / "old.json.gz")
    assert old.policies.count("conditionalAccessPolicy") >= 6
    assert set(old.policies.singletons) == set(SINGLETONS)
