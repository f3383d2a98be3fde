"""Simulated Graph writes of app extension properties, federated credentials and licences over
real HTTPS through the agent's GraphClient: what a write changes in later reads, and the
service's refusals (read-only and unknown values, names taken, usage location, unknown SKUs,
licences not held, missing permission) as clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agent.errors import PermissionMissing, WriteRejected
from agent.graph import GraphClient, WriteBudget
from agent.simulator.service import READ_PERMISSIONS, Simulator, TenantHandle, TenantSpec
from tests.test_sim_support import session, token

WRITES = ["Application.ReadWrite.All", "LicenseAssignment.ReadWrite.All", "Group.ReadWrite.All",
          "User.ReadWrite.All"]  # fmt: skip


def client_for(sim: Simulator, handle: TenantHandle) -> GraphClient:
    bearer = token(sim, handle)
    return GraphClient(sim.base_url, session(sim), lambda: bearer, write_budget=WriteBudget())


@pytest.fixture(scope="module")
def tenant() -> Iterator[tuple[Simulator, TenantHandle, TenantHandle]]:
    sim = Simulator()
    spec = dict(users=40, groups=16, applications=4)
    writer = sim.add_tenant(
        TenantSpec(name="w", seed=41, graph_permissions=[*READ_PERMISSIONS, *WRITES], **spec)
    )
    reader = sim.add_tenant(
        TenantSpec(name="r", seed=42, graph_permissions=list(READ_PERMISSIONS), **spec)
    )
    sim.faults.disable_throttling = True
    sim.start()
    try:
        yield sim, writer, reader
        assert sim.errors == []
    finally:
        sim.stop()


def app_of(g: GraphClient) -> dict[str, Any]:
    return g.get_json("/applications")["value"][0]


def test_extension_properties_are_created_and_deleted_never_updated(tenant) -> None:
    sim, writer, _ = tenant
    g = client_for(sim, writer)
    app = app_of(g)
    base = f"/applications/{app['id']}/extensionProperties"
    made = g.post(base, {"name": "shoeSize", "dataType": "Integer", "targetObjects": ["User"]})
    assert made["name"] == f"extension_{app['appId'].replace('-', '')}_shoeSize"
    assert made["id"] in {e["id"] for e in g.get_json(base)["value"]}
    with pytest.raises(WriteRejected) as taken:
        g.post(base, {"name": "shoeSize", "dataType": "Integer", "targetObjects": ["User"]})
    assert taken.value.reason == "conflict"
    with pytest.raises(WriteRejected) as bad:
        g.post(base, {"name": "x", "dataType": "Float", "targetObjects": ["User"]})
    assert bad.value.reason == "invalid_value" and bad.value.target == "dataType"
    with pytest.raises(WriteRejected) as computed:
        g.post(base, {"name": "y", "dataType": "String", "targetObjects": ["User"],
                      "isSyncedFromOnPremises": True})  # fmt: skip
    assert computed.value.reason == "read_only"
    g.delete(f"{base}/{made['id']}")
    assert made["id"] not in {e["id"] for e in g.get_json(base)["value"]}


def test_federated_credentials_update_by_name_but_not_the_name(tenant) -> None:
    sim, writer, _ = tenant
    g = client_for(sim, writer)
    base = f"/applications/{app_of(g)['id']}/federatedIdentityCredentials"
    body = {"name": "ci", "issuer": "https://issuer.example", "subject": "repo:a",
            "audiences": ["api://AzureADTokenExchange"]}  # fmt: skip
    g.post(base, body)
    g.patch(f"{base}/ci", {"subject": "repo:b"})
    assert [c["subject"] for c in g.get_json(base)["value"] if c["name"] == "ci"] == ["repo:b"]
    with pytest.raises(WriteRejected) as renamed:
        g.patch(f"{base}/ci", {"name": "other"})
    assert renamed.value.reason == "read_only"
    with pytest.raises(WriteRejected) as twice:
        g.post(base, body)
    assert twice.value.reason == "conflict"
    with pytest.raises(WriteRejected) as missing:
        g.post(base, {**body, "name": "no-subject", "subject": ""})
    assert missing.value.reason == "required"
    g.delete(f"{base}/ci")


def test_licences_need_a_usage_location_a_known_sku_and_to_be_held(tenant) -> None:
    sim, writer, _ = tenant
    g = client_for(sim, writer)
    skus = g.get_json("/subscribedSkus")["value"]
    free = [s["skuId"] for s in skus if s["prepaidUnits"]["enabled"] > s["consumedUnits"]]
    users = g.get_json("/users", {"$select": "id,usageLocation,assignedLicenses"})["value"]
    user = next(u for u in users if u.get("usageLocation"))
    spare = next(s for s in free if s not in {x["skuId"] for x in user["assignedLicenses"]})
    g.post(f"/users/{user['id']}/assignLicense",
           {"addLicenses": [{"skuId": spare, "disabledPlans": []}], "removeLicenses": []})  # fmt: skip
    now = g.get_json(
        f"/users/{user['id']}", {"$select": "assignedLicenses,licenseAssignmentStates"}
    )
    assert spare in {x["skuId"] for x in now["assignedLicenses"]}
    assert any(s["skuId"] == spare and s["assignedByGroup"] is None for s in now["licenseAssignmentStates"])  # fmt: skip
    with pytest.raises(WriteRejected, match="no subscription for licence"):
        g.post(f"/users/{user['id']}/assignLicense", {"addLicenses": [
            {"skuId": "00000000-0000-0000-0000-0000000000aa"}], "removeLicenses": []})  # fmt: skip
    g.patch(f"/users/{user['id']}", {"usageLocation": None})
    with pytest.raises(WriteRejected, match="usage location"):
        g.post(f"/users/{user['id']}/assignLicense",
               {"addLicenses": [{"skuId": spare}], "removeLicenses": []})  # fmt: skip
    g.post(f"/users/{user['id']}/assignLicense", {"addLicenses": [], "removeLicenses": [spare]})
    with pytest.raises(WriteRejected, match="does not hold that licence"):
        g.post(f"/users/{user['id']}/assignLicense", {"addLicenses": [], "removeLicenses": [spare]})


def test_group_licences_reach_members_added_through_graph(tenant) -> None:
    sim, writer, _ = tenant
    g = client_for(sim, writer)
    d = writer.directory
    group = min((x for x in d.groups() if x.get("securityEnabled") and not x.get("mailEnabled")
                 and not x.get("onPremisesSyncEnabled") and not x.get("membershipRule")),
                key=lambda x: len(d.members(x["id"])))  # fmt: skip
    skus = g.get_json("/subscribedSkus")["value"]
    sku = max(skus, key=lambda s: s["prepaidUnits"]["enabled"] - s["consumedUnits"])["skuId"]
    g.post(f"/groups/{group['id']}/assignLicense",
           {"addLicenses": [{"skuId": sku, "disabledPlans": []}], "removeLicenses": []})  # fmt: skip
    newcomer = next(u for u in d.users() if u["id"] not in d.members(group["id"]))
    g.post(f"/groups/{group['id']}/members/$ref",
           {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{newcomer['id']}"})  # fmt: skip

    def inherited() -> set[str]:
        row = g.get_json(f"/users/{newcomer['id']}", {"$select": "licenseAssignmentStates"})
        return {s["skuId"] for s in row["licenseAssignmentStates"] if s["assignedByGroup"] == group["id"]}  # fmt: skip

    assert inherited() == {sku}
    g.delete(f"/groups/{group['id']}/members/{newcomer['id']}/$ref")
    assert inherited() == set()


def test_writes_need_their_permission(tenant) -> None:
    sim, _, reader = tenant
    g = client_for(sim, reader)
    app = app_of(g)
    with pytest.raises(PermissionMissing):
        g.post(f"/applications/{app['id']}/federatedIdentityCredentials", {"name": "x"})
    user = g.get_json("/users")["value"][0]
    with pytest.raises(PermissionMissing):
        g.post(f"/users/{user['id']}/assignLicense", {"addLicenses": [], "removeLicenses": []})


def test_a_refused_licence_write_names_its_permission(tenant) -> None:
    sim, _, reader = tenant
    g = client_for(sim, reader)
    user = g.get_json("/users")["value"][0]
    with pytest.raises(PermissionMissing, match=r"LicenseAssignment\.ReadWrite\.All"):
        g.post(f"/users/{user['id']}/assignLicense", {"addLicenses": [], "removeLicenses": []})
