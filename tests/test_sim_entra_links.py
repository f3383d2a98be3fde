"""The simulated Graph's answers to the reads of the relationship, licence, deleted-item and
BitLocker kinds: CSDL-valid shapes with @odata.type where the type is derived, $expand of
links on the object collections as Graph does it (100 a page, 20 related), and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agent.schema.csdl import load_schema
from agent.simulator.graph import Directory
from agent.simulator.service import READ_PERMISSIONS, TenantSpec
from tests.test_sim_support import Graph, serving


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Graph, Directory]]:
    spec = TenantSpec(
        name="contoso",
        seed=9,
        users=400,
        groups=20,
        applications=40,
        graph_permissions=[*READ_PERMISSIONS, "BitLockerKey.Read.All"],
    )
    with serving(spec, tmp_path_factory.mktemp("sim")) as (sim, handle):
        yield Graph(sim, handle), handle.directory


def _valid(type_name: str, item: dict[str, Any]) -> None:
    assert load_schema().validate(type_name, item) == [], item


def test_expand_of_links_on_object_collections(tenant: tuple[Graph, Directory]) -> None:
    g, d = tenant
    for path, kind, relation in (
        ("/applications", "application", "owners"),
        ("/devices", "device", "registeredUsers"),
        ("/directory/administrativeUnits", "administrativeUnit", "members"),
    ):
        page = g.get(path, **{"$select": "id", "$expand": f"{relation}($select=id)"}).json()
        assert len(page["value"]) <= 100
        for item in page["value"]:
            want = [t for t in d.objects.targets(f"{kind}.{relation}", item["id"])]
            assert [o["id"] for o in item[relation]] == want[:20]
            assert all(o["@odata.type"] == "#microsoft.graph.user" for o in item[relation])
    bad = g.get("/devices", **{"$expand": "memberOf"})
    assert bad.status_code == 400 and bad.json()["error"]["code"]


def test_policy_links_and_children_are_csdl_valid(tenant: tuple[Graph, Directory]) -> None:
    g, d = tenant
    linked = 0
    for sp in sorted(r["id"] for _, r in d.scan("servicePrincipal", 0)):
        for relation in ("claimsMappingPolicies", "tokenLifetimePolicies"):
            for policy in g.get(f"/servicePrincipals/{sp}/{relation}").json()["value"]:
                _valid(policy["@odata.type"].removeprefix("#"), policy)
                linked += 1
    assert linked > 0
    apps = [r["id"] for _, r in d.scan("application", 0)]
    props = [p for a in apps for p in g.all(f"/applications/{a}/extensionProperties")]
    creds = [c for a in apps for c in g.all(f"/applications/{a}/federatedIdentityCredentials")]
    assert props and creds
    for prop in props:
        _valid("extensionProperty", prop)
    for cred in creds:
        _valid("federatedIdentityCredential", cred)


def test_deleted_items_bitlocker_and_skus_are_csdl_valid(tenant: tuple[Graph, Directory]) -> None:
    g, d = tenant
    user = d.users()[-1]["id"]
    d.delete_user(user)
    try:
        binned = g.all("/directory/deletedItems/microsoft.graph.user")
        assert [u["id"] for u in binned] == [user] and binned[0]["deletedDateTime"]
        for item in binned:
            _valid("user", item)
    finally:
        d.restore_deleted(user)
    assert g.all("/directory/deletedItems/microsoft.graph.user") == []
    keys = g.all("/informationProtection/bitlocker/recoveryKeys")
    assert keys and all("key" not in k for k in keys)
    one = g.get(
        f"/informationProtection/bitlocker/recoveryKeys/{keys[0]['id']}", **{"$select": "key"}
    )
    assert one.json()["key"] == d.objects.bitlocker_keys[keys[0]["id"]]["key"]
    for key in keys:
        _valid("bitlockerRecoveryKey", key)
    for sku in g.get("/subscribedSkus").json()["value"]:
        _valid("subscribedSku", sku)
