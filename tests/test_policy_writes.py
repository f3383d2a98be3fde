"""Policy writes through the agent's GraphClient against the simulated Graph over real HTTPS:
each write changes what a read returns, and Graph's refusals (read-only or unknown properties,
missing references, a named location still in use, built-in strengths, missing permissions,
the conditional access rate of 1 request/s) reach the caller as clear AgentErrors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agent.errors import PermissionMissing, WriteRejected
from agent.graph import GraphClient, WriteBudget
from agent.simulator.graph import Directory
from agent.simulator.service import READ_PERMISSIONS, Simulator, TenantHandle, TenantSpec
from tests.agent_helpers import POLICY_WRITE_PERMISSIONS
from tests.test_sim_support import session, token

POLICY_WRITES = [*POLICY_WRITE_PERMISSIONS, "Application.ReadWrite.All", "Directory.ReadWrite.All"]
CA = "/identity/conditionalAccess"


def client_for(sim: Simulator, handle: TenantHandle, **kwargs: Any) -> GraphClient:
    bearer = token(sim, handle)
    return GraphClient(sim.base_url, session(sim), lambda: bearer, **kwargs)


@pytest.fixture(scope="module")
def tenant() -> Iterator[tuple[Simulator, GraphClient, Directory]]:
    sim = Simulator()
    spec = TenantSpec(
        name="northwind", seed=21, users=60, groups=12, applications=6, devices=2,
        graph_permissions=[*READ_PERMISSIONS, *POLICY_WRITES],
    )  # fmt: skip
    handle = sim.add_tenant(spec)
    sim.faults.disable_throttling = True
    sim.start()
    try:
        yield sim, client_for(sim, handle, write_budget=WriteBudget()), handle.directory
        assert sim.errors == []
    finally:
        sim.stop()


def ip_location(name: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.ipNamedLocation",
        "displayName": name,
        "isTrusted": True,
        "ipRanges": [
            {"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}
        ],
    }


def ca_policy(d: Directory, **conditions: Any) -> dict[str, Any]:
    user = next(u for u in d.users() if u["userType"] == "Member")
    return {
        "displayName": "Block outside the office",
        "state": "enabledForReportingButNotEnforced",
        "conditions": {
            "users": {"includeUsers": [user["id"]], "excludeUsers": [], "includeGroups": []},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"],
            **conditions,
        },
        "grantControls": {"operator": "OR", "builtInControls": ["block"]},
    }


def test_conditional_access_and_named_location_writes_show_in_reads(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    _, g, d = tenant
    location = g.post(f"{CA}/namedLocations", ip_location("Head office"))
    assert location["@odata.type"] == "#microsoft.graph.ipNamedLocation"
    assert location["createdDateTime"] and location["id"]
    body = ca_policy(d, locations={"includeLocations": ["All"], "excludeLocations": [location["id"]]})  # fmt: skip
    policy = g.post(f"{CA}/policies", body)
    read = g.get_json(f"{CA}/policies/{policy['id']}")
    assert read["conditions"]["locations"]["excludeLocations"] == [location["id"]]
    assert read["state"] == "enabledForReportingButNotEnforced"

    g.patch(f"{CA}/policies/{policy['id']}", {"state": "enabled"})
    assert g.get_json(f"{CA}/policies/{policy['id']}")["state"] == "enabled"
    g.patch(f"{CA}/namedLocations/{location['id']}", {"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "HQ"})  # fmt: skip
    assert g.get_json(f"{CA}/namedLocations/{location['id']}")["displayName"] == "HQ"

    with pytest.raises(WriteRejected) as in_use:  # a policy still uses it
        g.delete(f"{CA}/namedLocations/{location['id']}")
    assert in_use.value.reason == "in_use" and location["id"] in in_use.value.message
    g.delete(f"{CA}/policies/{policy['id']}")
    g.delete(f"{CA}/namedLocations/{location['id']}")
    ids = {p["id"] for page in g.pages(f"{CA}/policies") for p in page.items}
    assert policy["id"] not in ids
    assert d.policies.get("namedLocation", location["id"]) is None


def test_conditional_access_refusals_name_the_problem(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    _, g, d = tenant
    before = len(d.policies.rows("conditionalAccessPolicy"))
    missing = "4b1d0c5e-0000-4000-8000-00000000abcd"
    with pytest.raises(WriteRejected) as no_location:
        g.post(f"{CA}/policies", ca_policy(d, locations={"includeLocations": [missing]}))
    assert no_location.value.reason == "missing" and no_location.value.target == missing
    assert "1040: NamedLocation" in no_location.value.message or no_location.value.status == 400
    body = ca_policy(d)
    body["conditions"]["users"]["includeGroups"] = [missing]
    with pytest.raises(WriteRejected) as no_group:
        g.post(f"{CA}/policies", body)
    assert no_group.value.target == missing
    with pytest.raises(WriteRejected) as bad_state:
        g.post(f"{CA}/policies", {**ca_policy(d), "state": "on"})
    assert bad_state.value.reason == "invalid_value" and bad_state.value.target == "state"
    with pytest.raises(WriteRejected) as read_only:
        g.post(f"{CA}/policies", {**ca_policy(d), "createdDateTime": "2024-01-01T00:00:00Z"})
    assert read_only.value.reason == "read_only" and read_only.value.target == "createdDateTime"
    with pytest.raises(WriteRejected) as unknown:
        g.post(f"{CA}/policies", {**ca_policy(d), "priority": 1})
    assert unknown.value.reason == "unknown_property" and unknown.value.target == "priority"
    untyped = ip_location("No type")
    del untyped["@odata.type"]
    with pytest.raises(WriteRejected):  # the abstract namedLocation cannot be created
        g.post(f"{CA}/namedLocations", untyped)
    assert len(d.policies.rows("conditionalAccessPolicy")) == before


def test_strengths_singletons_partners_and_app_policies(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    _, g, d = tenant
    strengths = "/policies/authenticationStrengthPolicies"
    built_in = "00000000-0000-0000-0000-000000000002"
    with pytest.raises(WriteRejected) as refused:
        g.patch(f"{strengths}/{built_in}", {"description": "mine now"})
    assert refused.value.reason == "built_in"
    with pytest.raises(WriteRejected):
        g.delete(f"{strengths}/{built_in}")
    custom = g.post(strengths, {"displayName": "Keys only", "allowedCombinations": ["fido2"]})
    assert custom["policyType"] == "custom"
    with pytest.raises(WriteRejected) as create_only:  # changed by updateAllowedCombinations
        g.patch(f"{strengths}/{custom['id']}", {"allowedCombinations": ["password,sms"]})
    assert create_only.value.reason == "read_only"
    action = f"{strengths}/{custom['id']}/updateAllowedCombinations"
    result = g.post(action, {"allowedCombinations": ["fido2", "password,sms"]})
    assert result["previousCombinations"] == ["fido2"]
    assert g.get_json(f"{strengths}/{custom['id']}")["allowedCombinations"] == ["fido2", "password,sms"]  # fmt: skip
    with pytest.raises(WriteRejected):  # not a method combination
        g.post(action, {"allowedCombinations": ["carrierPigeon"]})
    with pytest.raises(WriteRejected):
        g.post(f"{strengths}/{built_in}/updateAllowedCombinations", {"allowedCombinations": ["fido2"]})  # fmt: skip
    config = g.post(f"{strengths}/{custom['id']}/combinationConfigurations", {
        "@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
        "appliesToCombinations": ["fido2"], "allowedAAGUIDs": ["cb69481e-8ff7-4039-93ec-0a2729a154a8"],
    })  # fmt: skip
    listed = g.get_json(f"{strengths}/{custom['id']}/combinationConfigurations")["value"]
    assert [c["id"] for c in listed] == [config["id"]]
    g.delete(f"{strengths}/{custom['id']}")

    g.patch("/policies/authorizationPolicy", {"allowedToUseSSPR": False})
    assert g.get_json("/policies/authorizationPolicy")["allowedToUseSSPR"] is False
    g.patch("/policies/identitySecurityDefaultsEnforcementPolicy", {"isEnabled": True})
    assert g.get_json("/policies/identitySecurityDefaultsEnforcementPolicy")["isEnabled"] is True
    methods = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations"
    g.patch(f"{methods}/Fido2", {"@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration", "state": "disabled"})  # fmt: skip
    assert g.get_json(f"{methods}/Fido2")["state"] == "disabled"
    consent = g.get_json("/policies/adminConsentRequestPolicy")
    g.put("/policies/adminConsentRequestPolicy", {"isEnabled": False, "notifyReviewers": False, "remindersEnabled": False, "requestDurationInDays": 14, "reviewers": []})  # fmt: skip
    after = g.get_json("/policies/adminConsentRequestPolicy")
    assert after["isEnabled"] is False and after["version"] == consent["version"] + 1

    partners = "/policies/crossTenantAccessPolicy/partners"
    partner_id = "9f1b6a3c-1111-4222-8333-444455556666"
    g.post(partners, {"tenantId": partner_id, "inboundTrust": {"isMfaAccepted": True}})
    g.patch(f"{partners}/{partner_id}", {"inboundTrust": {"isMfaAccepted": False}})
    assert g.get_json(f"{partners}/{partner_id}")["inboundTrust"]["isMfaAccepted"] is False
    g.delete(f"{partners}/{partner_id}")

    claims = g.post("/policies/claimsMappingPolicies", {"displayName": "Employee id claim", "definition": ['{"ClaimsMappingPolicy":{"Version":1}}']})  # fmt: skip
    sp = next(s for _, s in d.scan("servicePrincipal", 0) if not d.objects.targets("servicePrincipal.claimsMappingPolicies", s["id"]))  # fmt: skip
    url = f"/servicePrincipals/{sp['id']}/claimsMappingPolicies"
    g.post(f"{url}/$ref", {"@odata.id": f"https://graph.microsoft.com/v1.0/policies/claimsMappingPolicies/{claims['id']}"})  # fmt: skip
    assert [p["id"] for p in g.get_json(url)["value"]] == [claims["id"]]
    g.delete(f"{url}/{claims['id']}/$ref")
    assert g.get_json(url)["value"] == []
    g.delete(f"/policies/claimsMappingPolicies/{claims['id']}")

    grant = g.post("/policies/permissionGrantPolicies", {"id": "my-low-risk", "displayName": "Low risk"})  # fmt: skip
    item = g.post(f"/policies/permissionGrantPolicies/{grant['id']}/includes", {"permissionType": "delegated", "permissionClassification": "low"})  # fmt: skip
    assert [i["id"] for i in g.get_json(f"/policies/permissionGrantPolicies/{grant['id']}/includes")["value"]] == [item["id"]]  # fmt: skip
    g.delete(f"/policies/permissionGrantPolicies/{grant['id']}")


def test_created_policies_answer_the_properties_generated_ones_do(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    """Graph answers every property of a policy, null when unset: a partner configuration or a
    claims mapping policy created by POST (as restore does) reads back with the same property
    names as the tenant's own — null-valued partner settings, a directory object's
    deletedDateTime — so a restored one does not differ from the snapshot by its shape."""
    _, g, _ = tenant
    partners = "/policies/crossTenantAccessPolicy/partners"
    claims = "/policies/claimsMappingPolicies"
    mine = g.get_json(partners)["value"][0]
    made = g.post(partners, {"tenantId": "5e2a9c1b-2222-4333-8444-555566667777"})
    try:
        read = g.get_json(f"{partners}/{made['tenantId']}")
        assert set(read) - {"@odata.context"} == set(mine) - {"@odata.context"}
        assert read["m365CollaborationInbound"] is None and mine["appServiceConnectInbound"] is None
    finally:
        g.delete(f"{partners}/{made['tenantId']}")
    mine = g.get_json(claims)["value"][0]
    made = g.post(claims, {"displayName": "Shape", "definition": ['{"ClaimsMappingPolicy":{"Version":1}}']})  # fmt: skip
    try:
        read = g.get_json(f"{claims}/{made['id']}")
        assert set(read) - {"@odata.context"} == set(mine) - {"@odata.context"}
        assert read["deletedDateTime"] is None
    finally:
        g.delete(f"{claims}/{made['id']}")


def test_policy_writes_need_their_permission_and_the_conditional_access_rate() -> None:
    with Simulator() as sim:
        spec = TenantSpec(name="adatum", seed=5, users=30, groups=5, applications=2, devices=2)
        handle = sim.add_tenant(spec)
        g = client_for(sim, handle)
        with pytest.raises(PermissionMissing) as denied:
            g.post(f"{CA}/namedLocations", ip_location("Branch"))
        assert "Policy.ReadWrite.ConditionalAccess" in denied.value.message
        with pytest.raises(PermissionMissing) as denied:
            g.patch("/policies/authorizationPolicy", {"allowedToUseSSPR": False})
        assert "Policy.ReadWrite.Authorization" in denied.value.message

        handle.app.graph_permissions.append("Policy.ReadWrite.ConditionalAccess")
        bearer = token(sim, handle)
        raw = session(sim)
        url = f"{sim.base_url}/v1.0{CA}/namedLocations"
        headers = {"Authorization": f"Bearer {bearer}"}
        first = raw.post(url, json=ip_location("Branch 1"), headers=headers)
        second = raw.post(url, json=ip_location("Branch 2"), headers=headers)
        assert first.status_code == 201 and second.status_code == 429
        assert 0 < float(second.headers["Retry-After"]) <= 1
        paced = client_for(sim, handle)  # another job: its own pacer, so Graph says wait
        for n in range(3):
            paced.post(f"{CA}/namedLocations", ip_location(f"Branch {n + 3}"))
        names = {r["displayName"] for r in handle.directory.policies.rows("namedLocation")}
        assert {"Branch 1", "Branch 3", "Branch 4", "Branch 5"} <= names
        assert "Branch 2" not in names
        assert sim.errors == []
