"""The simulated Graph's tenant configuration over real HTTPS with msal tokens: role
definitions, assignments (derived from role members and AU scoped members), PIM eligibility,
group setting templates and settings, organization, domains, company branding with image
streams — CSDL shapes, paging, $filter, permissions and their real 403 bodies, RU costs,
generation, churn and persistence."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.schema.csdl import load_schema
from agent.simulator.graph import Directory, generate
from agent.simulator.graph.persist import load, save
from agent.simulator.graph.tenant_store import BRANDING_STREAMS
from agent.simulator.service import Simulator, TenantSpec
from agent.simulator.world import ROLE_TEMPLATE_IDS
from tests.test_sim_support import Graph, read_only_tenant

RM = "/roleManagement/directory"
LISTS = {
    "unifiedRoleDefinition": f"{RM}/roleDefinitions",
    "unifiedRoleAssignment": f"{RM}/roleAssignments",
    "unifiedRoleEligibilitySchedule": f"{RM}/roleEligibilitySchedules",
    "groupSettingTemplate": "/groupSettingTemplates",
    "groupSetting": "/groupSettings",
    "organization": "/organization",
    "domain": "/domains",
}


@pytest.fixture(scope="module")
def tenant() -> Iterator[tuple[Simulator, Graph, Directory]]:
    yield from read_only_tenant(users=600, groups=60)


def problems(entity: str, items: list[dict[str, Any]]) -> list[str]:
    schema = load_schema()
    return [p for item in items for p in schema.validate(entity, item)]


def test_every_served_entity_validates_against_csdl(
    tenant: tuple[Simulator, Graph, Directory],
) -> None:
    _, g, d = tenant
    for entity, path in LISTS.items():
        items = g.all(path)
        assert items, path
        assert problems(entity, items) == [], path
        one = g.get(f"{path}/{items[0]['id']}").json()
        assert one["id"] == items[0]["id"] and problems(entity, [one]) == []
    org = d.tenant_id
    branding = g.get(f"/organization/{org}/branding").json()
    assert problems("organizationalBranding", [branding]) == []
    localizations = g.all(f"/organization/{org}/branding/localizations")
    assert problems("organizationalBrandingLocalization", localizations) == []
    # Stream properties are never inlined in JSON.
    assert not set(BRANDING_STREAMS) & {k for item in localizations for k in item}


def test_roles_are_the_rbac_view_of_the_directory(
    tenant: tuple[Simulator, Graph, Directory],
) -> None:
    _, g, d = tenant
    definitions = {r["id"]: r for r in g.all(f"{RM}/roleDefinitions")}
    builtin = {r["templateId"] for r in definitions.values() if r["isBuiltIn"]}
    assert set(ROLE_TEMPLATE_IDS.values()) <= builtin
    assert all(r["rolePermissions"][0]["allowedResourceActions"] for r in definitions.values())
    custom = [r for r in definitions.values() if not r["isBuiltIn"]]
    assert custom and all(r["templateId"] == r["id"] for r in custom)

    assignments = g.all(f"{RM}/roleAssignments", **{"$top": "10"})
    assert len(assignments) == len({a["id"] for a in assignments}) > 10  # paged by 10
    # Every member of an activated role holds a tenant-wide assignment of its template…
    with d.lock:
        expected = {
            (role["roleTemplateId"], member)
            for _, role in d.scan("directoryRole", 0)
            for member in d.objects.targets("directoryRole.members", role["id"])
        }
        kinds = {d.kind_of(a["principalId"]) for a in assignments}
    got = {
        (a["roleDefinitionId"], a["principalId"])
        for a in assignments
        if a["directoryScopeId"] == "/"
    }
    assert expected <= got
    assert {"user", "servicePrincipal"} <= kinds  # and role-assignable groups, if any
    # … and AU scoped role members are assignments scoped to their unit.
    scoped = [a for a in assignments if a["directoryScopeId"].startswith("/administrativeUnits/")]
    unit = scoped[0]["directoryScopeId"].rsplit("/", 1)[1]
    members = g.all(f"/directory/administrativeUnits/{unit}/scopedRoleMembers")
    assert scoped[0]["principalId"] in {m["roleMemberInfo"]["id"] for m in members}
    assert all(a["roleDefinitionId"] in definitions for a in assignments)

    user = assignments[0]["principalId"]
    mine = g.all(f"{RM}/roleAssignments", **{"$filter": f"principalId eq '{user}'"})
    assert mine and all(a["principalId"] == user for a in mine)
    schedules = g.all(f"{RM}/roleEligibilitySchedules")
    assert len(schedules) == 6  # max(3, 600 // 100)
    assert all(s["status"] == "Provisioned" and s["memberType"] == "Direct" for s in schedules)


def test_settings_organization_domains(tenant: tuple[Simulator, Graph, Directory]) -> None:
    _, g, d = tenant
    templates = {t["displayName"]: t for t in g.all("/groupSettingTemplates")}
    unified = templates["Group.Unified"]
    assert unified["id"] == "62375ab9-6b52-47ed-826b-58e47e0e304b"  # facts file §4
    settings = {s["displayName"]: s for s in g.all("/groupSettings")}
    values = {v["name"]: v["value"] for v in settings["Group.Unified"]["values"]}
    assert set(values) == {v["name"] for v in unified["values"]}
    assert values["EnableGroupCreation"] == "false" and values["GroupCreationAllowedGroupId"]

    orgs = g.get("/organization").json()["value"]
    assert [o["id"] for o in orgs] == [d.tenant_id]
    domains = {x["id"]: x for x in g.all("/domains")}
    initial = [x for x in domains.values() if x["isInitial"]]
    assert [x["id"] for x in initial] == [d.domain]
    assert sum(x["isDefault"] for x in domains.values()) == 1
    verified = {v["name"] for v in orgs[0]["verifiedDomains"]}
    assert verified == {x for x, row in domains.items() if row["isVerified"]}
    selected = g.get("/organization", **{"$select": "id,displayName"}).json()["value"]
    assert set(selected[0]) == {"id", "displayName"}
    assert g.get("/domains", **{"$select": "id,shoeSize"}).status_code == 400


def test_branding_text_and_image_streams(tenant: tuple[Simulator, Graph, Directory]) -> None:
    sim, g, d = tenant
    base = f"/organization/{d.tenant_id}/branding"
    default = g.get(base).json()
    assert default["id"] == "0" and default["bannerLogoRelativeUrl"]
    french = g.get(base, headers={"Accept-Language": "fr-FR"}).json()
    assert french["id"] == "fr-FR" and french["signInPageText"].startswith("Bienvenue")
    images = d.tenant_config.images
    for locale, streams in images.items():
        for name, data in streams.items():
            r = g.get(f"{base}/localizations/{locale}/{name}")
            assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
            assert r.content == data and data.startswith(b"\x89PNG\r\n\x1a\n")
    assert g.get(f"{base}/bannerLogo").content == images["0"]["bannerLogo"]
    assert g.get(f"{base}/localizations/default/favicon").content == images["0"]["favicon"]
    unset = g.get(f"{base}/localizations/fr-FR/squareLogoDark")  # documented: 200 with {}
    assert unset.status_code == 200 and unset.json() == {}
    assert g.get(f"{base}/localizations/fr-FR/shoeSize").status_code == 400
    assert g.get(f"{base}/localizations/xx-XX").status_code == 404
    assert g.get("/organization/00000000-0000-0000-0000-000000000000/branding").status_code == 404
    for path in ("/organization", "/domains", f"{RM}/roleAssignments", base, f"{base}/bannerLogo"):
        assert g.get(path).headers["x-ms-resource-unit"] == "1", path  # facts file §1: unlisted


def test_no_branding_is_a_404(tmp_path: Path) -> None:
    with Simulator() as sim:
        handle = sim.add_tenant(TenantSpec(users=30, groups=4))
        with handle.directory.lock:
            handle.directory.tenant_config.branding.clear()
            handle.directory.tenant_config.images.clear()
        g = Graph(sim, handle)
        r = g.get(f"/organization/{handle.tenant_id}/branding")
        assert r.status_code == 404 and r.json()["error"]["code"] == "Request_ResourceNotFound"
        assert g.get(f"/organization/{handle.tenant_id}/branding/bannerLogo").status_code == 404


def test_permissions_and_their_real_403_bodies() -> None:
    with Simulator() as sim:
        handle = sim.add_tenant(
            TenantSpec(
                users=30, groups=4, graph_permissions=["User.Read.All", "Directory.Read.All"]
            )
        )
        g = Graph(sim, handle)
        assert g.get(f"{RM}/roleDefinitions").status_code == 200  # Directory.Read.All will do
        assert g.get("/groupSettings").status_code == 200
        assert g.get("/domains").status_code == 200
        # PIM does not take Directory.Read.All; its 403 wraps its own error in the message.
        r = g.get(f"{RM}/roleEligibilitySchedules")
        assert r.status_code == 403
        error = r.json()["error"]
        assert error["code"] == "UnknownError"
        assert json.loads(error["message"])["errorCode"] == "PermissionScopeNotGranted"
        branding = f"/organization/{handle.tenant_id}/branding"
        assert g.get(branding).status_code == 403  # needs Organization(al Branding) permissions
        other = sim.add_tenant(TenantSpec(name="fabrikam", users=30, groups=4, graph_permissions=["User.Read.All"]))  # fmt: skip
        h = Graph(sim, other)
        for path in (f"{RM}/roleDefinitions", f"{RM}/roleAssignments", "/groupSettings", "/organization", "/domains"):  # fmt: skip
            r = h.get(path)
            assert r.status_code == 403, path
            assert r.json()["error"]["code"] == "Authorization_RequestDenied"
        other.app.graph_permissions.append("RoleEligibilitySchedule.Read.Directory")
        pim = Graph(sim, other)
        assert pim.get(f"{RM}/roleEligibilitySchedules").status_code == 200
        # PIM needs Entra ID P2 (here from the E5 subscription): without it, 400.
        with other.directory.lock:
            for sku in other.directory.objects.skus:
                if sku["skuPartNumber"] == "SPE_E5":
                    sku["capabilityStatus"] = "Suspended"
        r = pim.get(f"{RM}/roleEligibilitySchedules")
        assert r.status_code == 400 and r.json()["error"]["code"] == "AadPremiumLicenseRequired"


def test_generation_is_deterministic_proportional_and_persists(tmp_path: Path) -> None:
    a, b = Directory("t", "x.onmicrosoft.com"), Directory("t", "x.onmicrosoft.com")
    generate(a, 9, 300, 30)
    generate(b, 9, 300, 30)
    assert a.tenant_config.to_json() == b.tenant_config.to_json()
    big = Directory("t", "x.onmicrosoft.com")
    generate(big, 9, 3000, 30)
    small_store, big_store = a.tenant_config, big.tenant_config
    assert len(big_store.eligibility) > len(small_store.eligibility)
    assert len(big_store.custom_assignments) > len(small_store.custom_assignments)
    assert len(big_store.role_definitions) > len(small_store.role_definitions)

    a.churn(random.Random(1), 0.2)
    save(a, tmp_path / "d.json.gz")
    e = load(tmp_path / "d.json.gz")
    assert e.tenant_config.to_json() == a.tenant_config.to_json()
    with e.lock, a.lock:
        assert e.tenant_config.role_assignments(e) == a.tenant_config.role_assignments(a)


def test_churn_changes_roles_settings_and_branding(
    tenant: tuple[Simulator, Graph, Directory],
) -> None:
    _, g, d = tenant
    base = f"/organization/{d.tenant_id}/branding"
    before = {x["id"]: x for x in g.all(f"{RM}/roleAssignments", **{"$top": "999"})}
    definitions = {x["id"]: x for x in g.all(f"{RM}/roleDefinitions")}
    text = g.get(base).json()
    summary = d.churn(random.Random(5), 0.1)
    after = {x["id"]: x for x in g.all(f"{RM}/roleAssignments", **{"$top": "999"})}
    for aid in summary.role_assignments_added:
        assert aid in after and aid not in before
    for aid in summary.role_assignments_removed:
        assert aid in before and aid not in after
    changed = summary.role_definitions_changed[0]
    role = g.get(f"{RM}/roleDefinitions/{changed}").json()
    assert role["rolePermissions"] != definitions[changed]["rolePermissions"]
    assert g.get(base).json()["signInPageText"] != text["signInPageText"]
    locale, image = summary.branding_images_changed[0]
    data = g.get(f"{base}/localizations/{locale}/{image}").content
    assert data == d.tenant_config.images[locale][image]
    assert g.get(base).json()[f"{image}RelativeUrl"] != text[f"{image}RelativeUrl"]
    assert summary.group_settings_changed and summary.eligibility_added
