"""The simulated Graph's other directory objects over real HTTPS with msal tokens:
applications, service principals, app role assignments, delegated grants, administrative
units, devices, BitLocker keys, directory roles, licences — lists, paging, $select, delta,
permissions, deleted items, CSDL shapes, generation and persistence."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.schema.csdl import load_schema
from agent.simulator.graph import Directory, generate
from agent.simulator.graph.churn_objects import delete_application
from agent.simulator.graph.persist import load, save
from agent.simulator.service import Simulator, TenantSpec
from tests.test_sim_support import Graph, logged, read_only_tenant, serving

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
LISTS = {
    "application": "/applications",
    "servicePrincipal": "/servicePrincipals",
    "device": "/devices",
    "administrativeUnit": "/directory/administrativeUnits",
    "oauth2PermissionGrant": "/oauth2PermissionGrants",
    "directoryRole": "/directoryRoles",
}
CSDL_TYPE = {"oauth2PermissionGrant": "oAuth2PermissionGrant"}


@pytest.fixture(scope="module")
def tenant() -> Iterator[tuple[Simulator, Graph, Directory]]:
    """A read-only tenant: 30 apps, 300 devices, 3 AUs (throttling off)."""
    yield from read_only_tenant(users=600, groups=60)


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[Simulator, Graph, Directory]]:
    with serving(
        TenantSpec(name="contoso", seed=5, users=120, groups=20, applications=15, devices=40),
        tmp_path / "sim",
    ) as (sim, handle):
        yield sim, Graph(sim, handle), handle.directory


def problems(kind: str, item: dict[str, Any]) -> list[str]:
    return load_schema().validate(CSDL_TYPE.get(kind, kind), item)


def ids(d: Directory, kind: str) -> set[str]:
    return {r["id"] for _, r in d.scan(kind, 0)}


# -- generation ------------------------------------------------------------------------------


def test_generation_is_proportional_deterministic_and_realistic(
    tenant: tuple[Simulator, Graph, Directory],
) -> None:
    _, _, d = tenant
    assert d.count("application") == 30 and d.count("device") == 300
    assert d.count("administrativeUnit") == 2  # max(2, 600 // 500)
    sps = [r for _, r in d.scan("servicePrincipal", 0)]
    apps = [r for _, r in d.scan("application", 0)]
    assert {a["appId"] for a in apps} <= {s["appId"] for s in sps}  # every app has its SP
    assert any(s["appId"] == GRAPH_APP_ID for s in sps)
    assert {s.get("preferredSingleSignOnMode") for s in sps} >= {"saml", "oidc"}
    saml = [s for s in sps if s.get("preferredSingleSignOnMode") == "saml"]
    assert all(s["applicationTemplateId"] and s["preferredTokenSigningKeyThumbprint"] for s in saml)
    assert all("WindowsAzureActiveDirectoryIntegratedApp" in s["tags"] for s in sps if s.get("appOwnerOrganizationId") == d.tenant_id)  # fmt: skip
    assert all(c["secretText"] is None for a in apps for c in a["passwordCredentials"])
    users = d.users()
    licensed = [u for u in users if u.get("assignedLicenses")]
    assert 0.6 * len(users) < len(licensed) < len(users)
    assert any(g.get("assignedLicenses") for g in d.groups())  # group-based licensing

    a, b = Directory("t", "x.onmicrosoft.com"), Directory("t", "x.onmicrosoft.com")
    generate(a, 9, 300, 30, applications=12, devices=40, administrative_units=3)
    generate(b, 9, 300, 30, applications=12, devices=40, administrative_units=3)
    for kind in LISTS:
        assert [r for _, r in a.scan(kind, 0)] == [r for _, r in b.scan(kind, 0)], kind
    assert a.objects.to_json() == b.objects.to_json()
    assert a.count("application") == 12 and a.count("device") == 40
    c = Directory("t", "x.onmicrosoft.com")
    generate(c, 9, 300, 30)  # users and groups do not depend on the other kinds
    assert [u["id"] for u in c.users()] == [u["id"] for u in a.users()]


# -- lists, paging, $select ------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(LISTS))
def test_each_collection_lists_pages_and_selects(
    tenant: tuple[Simulator, Graph, Directory], kind: str
) -> None:
    sim, g, d = tenant
    path = LISTS[kind]
    pages = list(g.pages(path, **{"$top": "1" if kind == "administrativeUnit" else "7"}))
    got = [x["id"] for p in pages for x in p["value"]]
    assert len(got) == len(set(got)) and set(got) == ids(d, kind)
    if kind == "directoryRole":  # facts file §2: directoryRoles does not page
        assert len(pages) == 1
    else:
        assert len(pages) > 1
        link = pages[0]["@odata.nextLink"]
        assert link.startswith(f"{sim.base_url}/v1.0{path}?$skiptoken=") and "$top" not in link
    name = "scope" if kind == "oauth2PermissionGrant" else "displayName"
    selected = g.all(path, **{"$select": f"id,{name}"})
    assert selected and all(set(x) == {"id", name} for x in selected)
    assert g.get(path, **{"$select": "id,shoeSize"}).status_code == 400
    one = g.get(f"{path}/{got[0]}").json()
    assert one["id"] == got[0] and problems(kind, one) == []
    assert g.get(f"{path}/00000000-0000-0000-0000-000000000000").status_code == 404


def test_filter_and_count(tenant: tuple[Simulator, Graph, Directory]) -> None:
    _, g, d = tenant
    graph = g.all("/servicePrincipals", **{"$filter": f"appId eq '{GRAPH_APP_ID}'"})
    assert [s["displayName"] for s in graph] == ["Microsoft Graph"]
    roles = {r["value"]: r["id"] for r in graph[0]["appRoles"]}
    assert roles["User.Read.All"] == "df021288-bdef-4463-88db-98f22de89214"
    windows = g.all("/devices", **{"$filter": "operatingSystem eq 'Windows'", "$top": "999"})
    assert windows and all(x["operatingSystem"] == "Windows" for x in windows)
    body = g.get(
        "/applications", {"ConsistencyLevel": "eventual"}, **{"$count": "true", "$top": "5"}
    ).json()
    assert body["@odata.count"] == d.count("application")


def test_ru_costs_follow_the_facts_file(tenant: tuple[Simulator, Graph, Directory]) -> None:
    sim, g, d = tenant
    app = next(r for _, r in d.scan("application", 0))
    sp = next(r for _, r in d.scan("servicePrincipal", 0))
    for path, cost in (
        ("/applications", "2"),
        (f"/applications/{app['id']}/extensionProperties", "2"),
        ("/oauth2PermissionGrants", "2"),
        (f"/servicePrincipals/{sp['id']}/appRoleAssignments", "2"),
        ("/subscribedSkus", "3"),
        ("/servicePrincipals", "1"),
        ("/applications/delta", "1"),
    ):
        assert g.get(path).headers["x-ms-resource-unit"] == cost, path
    assert g.get("/applications", **{"$select": "id"}).headers["x-ms-resource-unit"] == "1"


# -- relationships ---------------------------------------------------------------------------


def test_relationships(tenant: tuple[Simulator, Graph, Directory]) -> None:
    _, g, d = tenant
    store = d.objects
    app = next(a for a in ids(d, "application") if store.targets("application.owners", a))
    owners = g.all(f"/applications/{app}/owners", **{"$select": "id,displayName"})
    assert {o["id"] for o in owners} == set(store.targets("application.owners", app))
    assert all(o["@odata.type"] == "#microsoft.graph.user" for o in owners)
    ext = next(a for a in ids(d, "application") if store.of("application.extensionProperties", a))
    props = g.all(f"/applications/{ext}/extensionProperties")
    assert props and all(p["name"].startswith("extension_") for p in props)
    fic = next(a for a in ids(d, "application") if store.of("application.federatedIdentityCredentials", a))  # fmt: skip
    assert g.all(f"/applications/{fic}/federatedIdentityCredentials")[0]["audiences"]

    graph_sp = next(r for _, r in d.scan("servicePrincipal", 0) if r["appId"] == GRAPH_APP_ID)
    assigned = g.all(f"/servicePrincipals/{graph_sp['id']}/appRoleAssignedTo", **{"$top": "5"})
    graph_roles = {r["id"] for r in graph_sp["appRoles"]}
    assert assigned and all(a["appRoleId"] in graph_roles for a in assigned)
    client = assigned[0]["principalId"]
    held = g.all(f"/servicePrincipals/{client}/appRoleAssignments")
    assert assigned[0]["id"] in {a["id"] for a in held}
    user_held = next(
        a for a in store.assignments.values() if a["principalType"] == "User"
    )  # a user assigned to an app
    mine = g.all(f"/users/{user_held['principalId']}/appRoleAssignments")
    assert user_held["id"] in {a["id"] for a in mine}
    for relation in ("claimsMappingPolicies", "tokenIssuancePolicies", "tokenLifetimePolicies", "homeRealmDiscoveryPolicies"):  # fmt: skip
        linked = g.get(f"/servicePrincipals/{client}/{relation}").json()["value"]
        assert [p["id"] for p in linked] == store.targets(f"servicePrincipal.{relation}", client)
        assert all(p["@odata.type"].endswith("Policy") and p["definition"] for p in linked)

    au = next(iter(ids(d, "administrativeUnit")))
    members = g.all(f"/directory/administrativeUnits/{au}/members", **{"$top": "999"})
    assert {m["id"] for m in members} == set(store.targets("administrativeUnit.members", au))
    scoped = g.all(f"/directory/administrativeUnits/{au}/scopedRoleMembers")
    assert scoped and scoped[0]["administrativeUnitId"] == au
    assert scoped[0]["roleId"] in ids(d, "directoryRole")

    device = next(x for x in ids(d, "device") if store.targets("device.registeredOwners", x))
    for relation in ("registeredOwners", "registeredUsers"):
        got = g.all(f"/devices/{device}/{relation}")
        assert [o["id"] for o in got] == store.targets(f"device.{relation}", device)

    kinds: set[str] = set()
    for role in ids(d, "directoryRole"):
        kinds |= {m["@odata.type"] for m in g.all(f"/directoryRoles/{role}/members")}
    assert kinds >= {"#microsoft.graph.user", "#microsoft.graph.servicePrincipal"}

    user = next(u for u in d.users() if d.manager_of(u["id"]))
    assert g.get(f"/users/{user['id']}/manager").json()["id"] == d.manager_of(user["id"])
    page = g.get("/users", **{"$select": "id", "$expand": "manager($select=id)"}).json()
    assert any(u.get("manager") for u in page["value"])


# -- licences, BitLocker -------------------------------------------------------------------


def test_subscribed_skus(tenant: tuple[Simulator, Graph, Directory]) -> None:
    _, g, d = tenant
    skus = g.get("/subscribedSkus").json()["value"]
    by_part = {s["skuPartNumber"]: s for s in skus}
    assert {"ENTERPRISEPACK", "SPE_E5"} <= set(by_part)
    e3 = by_part["ENTERPRISEPACK"]
    holders = [u for u in d.users() if any(x["skuId"] == e3["skuId"] for x in u.get("assignedLicenses", ()))]  # fmt: skip
    assert e3["consumedUnits"] == len(holders) <= e3["prepaidUnits"]["enabled"]
    assert all(problems("subscribedSku", s) == [] for s in skus)
    picked = g.get("/users", **{"$select": "id,assignedLicenses", "$top": "50"}).json()["value"]
    assert any(u["assignedLicenses"] for u in picked)


def test_bitlocker_keys_need_opt_in_permission_and_audit_key_reads(
    small: tuple[Simulator, Graph, Directory],
) -> None:
    sim, g, d = small
    path = "/informationProtection/bitlocker/recoveryKeys"
    assert g.get(path).status_code == 403  # not in the default permissions
    handle = sim.tenants["contoso"]
    handle.app.graph_permissions.append("BitLockerKey.ReadBasic.All")
    basic = Graph(sim, handle)
    keys = basic.all(path, **{"$top": "5"})
    assert {k["id"] for k in keys} == set(d.objects.bitlocker_keys)
    assert all(set(k) == {"id", "createdDateTime", "deviceId", "volumeType"} for k in keys)
    assert all(problems("bitlockerRecoveryKey", k) == [] for k in keys)
    assert basic.get(f"{path}/{keys[0]['id']}", **{"$select": "key"}).status_code == 403
    handle.app.graph_permissions.append("BitLockerKey.Read.All")
    full = Graph(sim, handle)
    assert full.get(path, **{"$select": "id,key"}).status_code == 400  # only one key at a time
    got = full.get(f"{path}/{keys[0]['id']}", **{"$select": "key"}).json()
    assert got["key"] == d.objects.bitlocker_keys[keys[0]["id"]]["key"]
    assert len(got["key"].split("-")) == 8
    device = keys[0]["deviceId"]
    assert device in {r["deviceId"] for _, r in d.scan("device", 0)}
    audit = [i.note.get("audit", "") for i in logged(sim, 2, f"/v1.0{path}/{keys[0]['id']}")]
    assert any(keys[0]["id"] in a for a in audit)


# -- permissions ---------------------------------------------------------------------------


def test_403_without_the_permission() -> None:
    with Simulator() as sim:
        handle = sim.add_tenant(
            TenantSpec(users=30, groups=4, graph_permissions=["Application.Read.All"])
        )
        g = Graph(sim, handle)
        assert g.get("/applications").status_code == 200
        assert g.get("/servicePrincipals").status_code == 200
        for path in ("/devices", "/directoryRoles", "/directory/administrativeUnits",
                     "/oauth2PermissionGrants", "/subscribedSkus", "/devices/delta"):  # fmt: skip
            r = g.get(path)
            assert r.status_code == 403, path
            assert r.json()["error"]["code"] == "Authorization_RequestDenied"
        other = sim.add_tenant(TenantSpec(name="fabrikam", users=30, groups=4, graph_permissions=["User.Read.All"]))  # fmt: skip
        assert Graph(sim, other).get("/applications").status_code == 403


# -- delta ---------------------------------------------------------------------------------


def _mutate(d: Directory, kind: str) -> dict[str, str]:
    """Add, change, soft-delete and hard-delete one object of ``kind``: id per change."""
    live = sorted(ids(d, kind))
    out: dict[str, str] = {}
    if kind == "application":
        out["added"] = d.create(kind, displayName="New app", appId="7d1a2a4e-0000-4000-8000-000000000001")["id"]  # fmt: skip
    elif kind == "servicePrincipal":
        out["added"] = d.create(kind, displayName="New SP", appId="7d1a2a4e-0000-4000-8000-000000000002")["id"]  # fmt: skip
    elif kind == "device":
        out["added"] = d.create(kind, displayName="NEW-PC", deviceId="7d1a2a4e-0000-4000-8000-000000000003")["id"]  # fmt: skip
    elif kind == "administrativeUnit":
        out["added"] = d.create(kind, displayName="New AU")["id"]
    elif kind == "oauth2PermissionGrant":
        grant = d.row(kind, live[0]) or {}
        out["added"] = d.create(kind, id="grant-new-" + "x" * 33, clientId=grant["clientId"],
                                consentType="AllPrincipals", resourceId=grant["resourceId"],
                                scope="openid")["id"]  # fmt: skip
    else:
        out["added"] = d.create(kind, displayName="Fabric Administrator", roleTemplateId="a9ea8996-122f-4c74-9520-8edcd192826c")["id"]  # fmt: skip
    name = "scope" if kind == "oauth2PermissionGrant" else "displayName"
    d.update(kind, live[0], **{name: "Changed"})
    out["changed"] = live[0]
    if kind != "directoryRole":  # roles are activated, never deleted
        d.delete(kind, live[1])
        out["soft"] = live[1]
        d.delete(kind, live[2], permanent=True)
        out["hard"] = live[2]
    return out


@pytest.mark.parametrize("kind", sorted(LISTS))
def test_delta_full_round_then_changes(
    small: tuple[Simulator, Graph, Directory], kind: str
) -> None:
    _, g, d = small
    path = "/administrativeUnits/delta" if kind == "administrativeUnit" else f"{LISTS[kind]}/delta"
    name = "scope" if kind == "oauth2PermissionGrant" else "displayName"
    if kind == "administrativeUnit":
        d.create(kind, displayName="Third AU")  # the mutation needs three
    items, link, _ = g.delta(path, **{"$select": f"id,{name}"})
    assert {i["id"] for i in items} == ids(d, kind) and "$deltatoken=" in link
    if kind == "administrativeUnit":
        assert link.startswith(f"{g.sim.base_url}/v1.0/directory/administrativeUnits/delta?")
    assert all(problems(kind, i) == [] for i in items)
    changes = _mutate(d, kind)
    got, link2, _ = g.delta(link)
    by_id = {i["id"]: i for i in got}
    assert by_id[changes["added"]].get(name) is not None
    assert by_id[changes["changed"]][name] == "Changed"
    if "soft" in changes:
        restorable = kind in ("application", "servicePrincipal", "administrativeUnit")
        reason = "changed" if restorable else "deleted"  # facts file §3: only these restore
        assert by_id[changes["soft"]]["@removed"] == {"reason": reason}
        assert by_id[changes["hard"]]["@removed"] == {"reason": "deleted"}
    assert g.delta(link2)[0] == []


def test_delta_paging_expiry_and_resync(small: tuple[Simulator, Graph, Directory]) -> None:
    sim, g, d = small
    response = g.get("/devices/delta", headers={"Prefer": "odata.maxpagesize=10"})
    body = response.json()
    assert len(body["value"]) == 10 and "/v1.0/devices/delta?$skiptoken=" in body["@odata.nextLink"]
    _, link, _ = g.delta("/applications/delta", **{"$select": "id,displayName"})
    sim.faults.expire_delta_tokens = True
    r = g.get(link)
    assert r.status_code == 410 and r.headers["Location"].endswith("$deltatoken=")
    sim.faults.expire_delta_tokens = False
    d.advance_clock(8 * 24 * 3600)  # facts file §2: tokens live 7 days
    r = g.get(link)
    assert r.status_code == 400 and r.json()["error"]["code"] == "syncStateNotFound"


def test_churn_touches_every_kind_and_delta_sees_it(
    small: tuple[Simulator, Graph, Directory],
) -> None:
    _, g, d = small
    links = {k: g.delta(f"{LISTS[k]}/delta")[1] for k in ("application", "servicePrincipal", "device")}  # fmt: skip
    summary = d.churn(random.Random(11), 0.3)
    counts = summary.counts()
    assert sum(n for k, n in counts.items() if k.startswith("applications_")) >= 3
    assert sum(n for k, n in counts.items() if k.startswith("devices_")) >= 10
    assert counts["service_principals_changed"] and counts["oauth2_grants_changed"]
    assert "applications" in str(summary)
    seen = {k: {i["id"]: i for i in g.delta(link)[0]} for k, link in links.items()}
    for app in summary.applications_added + summary.applications_changed:
        if d.row("application", app):
            assert "@removed" not in seen["application"][app]
    for app in summary.applications_soft_deleted:
        assert seen["application"][app]["@removed"] == {"reason": "changed"}
    for sp in summary.service_principals_soft_deleted:
        assert seen["servicePrincipal"][sp]["@removed"] == {"reason": "changed"}
    for device in summary.devices_deleted:
        assert seen["device"][device]["@removed"] == {"reason": "deleted"}
    for device in summary.devices_added:
        assert device in seen["device"]


# -- deleted items ---------------------------------------------------------------------------


def test_deleted_items_and_restore(small: tuple[Simulator, Graph, Directory]) -> None:
    sim, g, d = small
    app = next(r for _, r in d.scan("application", 0))
    sp_ids = delete_application(d, app["id"])
    assert sp_ids and d.row("servicePrincipal", sp_ids[0]) is None
    au = sorted(ids(d, "administrativeUnit"))[0]
    d.delete("administrativeUnit", au)
    apps = g.all("/directory/deletedItems/microsoft.graph.application")
    assert [a["id"] for a in apps] == [app["id"]] and apps[0]["deletedDateTime"]
    sps = g.all("/directory/deletedItems/microsoft.graph.servicePrincipal")
    assert [s["id"] for s in sps] == sp_ids
    aus = g.all("/directory/deletedItems/microsoft.graph.administrativeUnit")
    assert [a["id"] for a in aus] == [au]
    for kind, items in (("application", apps), ("servicePrincipal", sps), ("administrativeUnit", aus)):  # fmt: skip
        assert all(problems(kind, i) == [] for i in items)
    assert g.post(f"/directory/deletedItems/{app['id']}/restore").status_code == 403
    handle = sim.tenants["contoso"]
    handle.app.graph_permissions += ["Application.ReadWrite.All", "AdministrativeUnit.ReadWrite.All"]  # fmt: skip
    g = Graph(sim, handle)
    r = g.post(f"/directory/deletedItems/{app['id']}/restore")
    assert r.status_code == 200 and r.json()["@odata.type"] == "#microsoft.graph.application"
    assert d.row("application", app["id"]) is not None
    assert d.row("servicePrincipal", sp_ids[0]) is None  # facts file §3: the SP stays deleted
    assert g.post(f"/directory/deletedItems/{au}/restore").status_code == 200
    assert au in {a["id"] for a in g.all("/directory/administrativeUnits")}


# -- CSDL, $batch, persistence -------------------------------------------------------------


def test_every_served_entity_validates_against_csdl(
    tenant: tuple[Simulator, Graph, Directory],
) -> None:
    _, g, d = tenant
    schema = load_schema()
    found: list[str] = []

    def check(kind: str, items: list[dict[str, Any]]) -> None:
        assert items, kind
        for item in items:
            found.extend(problems(kind, item))

    for kind, path in LISTS.items():
        check(kind, g.all(path, **{"$top": "999"}))
        every = sorted(
            n for n, p in schema.properties(CSDL_TYPE.get(kind, kind)).items()
            if not p.navigation and n in {k for _, r in d.scan(kind, 0) for k in r}
        )  # fmt: skip
        check(kind, g.all(path, **{"$select": ",".join(every)}))
        check(kind, [i for i in g.delta(f"{path}/delta")[0] if "@removed" not in i])
    sp = next(r["id"] for _, r in d.scan("servicePrincipal", 0) if r["appId"] == GRAPH_APP_ID)
    check("appRoleAssignment", g.all(f"/servicePrincipals/{sp}/appRoleAssignedTo"))
    for role in ids(d, "directoryRole"):
        found.extend(p for m in g.all(f"/directoryRoles/{role}/members") for p in problems("directoryObject", m))  # fmt: skip
    au = next(iter(ids(d, "administrativeUnit")))
    check("scopedRoleMembership", g.all(f"/directory/administrativeUnits/{au}/scopedRoleMembers"))
    apps = [a for a in ids(d, "application") if d.objects.of("application.extensionProperties", a)]
    check("extensionProperty", g.all(f"/applications/{apps[0]}/extensionProperties"))
    fics = [a for a in ids(d, "application") if d.objects.of("application.federatedIdentityCredentials", a)]  # fmt: skip
    check("federatedIdentityCredential", g.all(f"/applications/{fics[0]}/federatedIdentityCredentials"))  # fmt: skip
    daemon = next(a["principalId"] for a in d.objects.assignments.values() if a["principalType"] == "ServicePrincipal")  # fmt: skip
    check("appRoleAssignment", g.all(f"/servicePrincipals/{daemon}/appRoleAssignments"))
    check("directoryObject", g.all(f"/directory/administrativeUnits/{au}/members"))
    device = next(x for x in ids(d, "device") if d.objects.targets("device.registeredOwners", x))
    check("directoryObject", g.all(f"/devices/{device}/registeredOwners"))
    owned = next(a for a in ids(d, "application") if d.objects.targets("application.owners", a))
    check("directoryObject", g.all(f"/applications/{owned}/owners"))
    check("user", g.all("/users", **{"$select": "id,assignedLicenses", "$top": "999"}))
    check("group", g.all("/groups", **{"$select": "id,assignedLicenses", "$top": "999"}))
    assert found == []


def test_batch_reaches_the_new_endpoints(tenant: tuple[Simulator, Graph, Directory]) -> None:
    _, g, d = tenant
    body = {
        "requests": [
            {"id": "1", "method": "GET", "url": "/applications?$select=id&$top=3"},
            {"id": "2", "method": "GET", "url": "/directoryRoles"},
            {"id": "3", "method": "GET", "url": "/subscribedSkus"},
        ]
    }
    answers = {a["id"]: a for a in g.post("/$batch", body).json()["responses"]}
    assert [answers[k]["status"] for k in "123"] == [200, 200, 200]
    assert len(answers["1"]["body"]["value"]) == 3
    assert answers["3"]["headers"]["x-ms-resource-unit"] == "3"


def test_persistence_round_trip(tmp_path: Path) -> None:
    d = Directory("t", "x.onmicrosoft.com")
    generate(d, 2, 200, 20)
    d.churn(random.Random(1), 0.2)
    save(d, tmp_path / "d.json.gz")
    e = load(tmp_path / "d.json.gz")
    for kind in LISTS:
        assert [r for _, r in e.scan(kind, 0)] == [r for _, r in d.scan(kind, 0)], kind
        assert e.changes(kind, 0, e.seq).keys() == d.changes(kind, 0, d.seq).keys()
    assert e.objects.to_json() == d.objects.to_json()
    assert set(e.deleted) == set(d.deleted) and e.seq == d.seq
