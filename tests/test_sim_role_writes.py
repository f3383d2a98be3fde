"""Role management writes through the agent's GraphClient against the simulated Graph over real
HTTPS: custom role definitions, built-in roles read-only, role assignments at tenant and AU
scope showing up where Entra shows them (directory role members, AU scoped role members), PIM
eligibility requests, and Graph's refusals (missing principal, non role-assignable group,
missing permission, tenant without Entra ID P2)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agent.errors import GraphError, PermissionMissing, WriteRejected
from agent.graph import GraphClient, WriteBudget
from agent.simulator.graph import Directory
from agent.simulator.service import READ_PERMISSIONS, Simulator, TenantHandle, TenantSpec
from tests.test_sim_support import session, token

RM = "/roleManagement/directory"
ROLES = ["RoleManagement.ReadWrite.Directory"]
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"


def client_for(sim: Simulator, handle: TenantHandle) -> GraphClient:
    bearer = token(sim, handle)
    return GraphClient(sim.base_url, session(sim), lambda: bearer, write_budget=WriteBudget())


@pytest.fixture(scope="module")
def tenant() -> Iterator[tuple[Simulator, dict[str, TenantHandle]]]:
    sim = Simulator()
    handles = {
        "p2": sim.add_tenant(
            TenantSpec(
                name="p2",
                seed=31,
                users=60,
                groups=12,
                administrative_units=3,
                graph_permissions=[*READ_PERMISSIONS, *ROLES],
            )
        ),
        "free": sim.add_tenant(
            TenantSpec(
                name="free",
                seed=32,
                users=30,
                groups=6,
                entra_premium=False,
                graph_permissions=[*READ_PERMISSIONS, *ROLES],
            )
        ),
        "readonly": sim.add_tenant(
            TenantSpec(
                name="readonly",
                seed=33,
                users=30,
                groups=6,
                graph_permissions=list(READ_PERMISSIONS),
            )
        ),
    }
    sim.faults.disable_throttling = True
    sim.start()
    try:
        yield sim, handles
        assert sim.errors == []
    finally:
        sim.stop()


def member(d: Directory) -> dict[str, Any]:
    return next(u for u in d.users() if u["userType"] == "Member")


def assignments(g: GraphClient) -> dict[tuple[str, str, str], str]:
    rows = [r for p in g.pages(f"{RM}/roleAssignments") for r in p.items]
    return {(r["principalId"], r["roleDefinitionId"], r["directoryScopeId"]): r["id"] for r in rows}


def test_custom_role_definitions_are_written_built_in_ones_refused(tenant) -> None:
    sim, handles = tenant
    g = client_for(sim, handles["p2"])
    body = {
        "displayName": "Sim Role Writer",
        "description": "test",
        "isEnabled": True,
        "rolePermissions": [{"allowedResourceActions": ["microsoft.directory/users/basic/update"]}],
    }
    created = g.post(f"{RM}/roleDefinitions", body)
    assert created["isBuiltIn"] is False and created["templateId"] == created["id"]
    g.patch(f"{RM}/roleDefinitions/{created['id']}", {"description": "edited"})
    assert g.get_json(f"{RM}/roleDefinitions/{created['id']}")["description"] == "edited"
    with pytest.raises(WriteRejected):  # same name twice
        g.post(f"{RM}/roleDefinitions", body)
    with pytest.raises(WriteRejected):  # only directory resource actions in custom roles
        g.post(
            f"{RM}/roleDefinitions",
            {
                **body,
                "displayName": "x",
                "rolePermissions": [
                    {
                        "allowedResourceActions": [
                            "microsoft.office365.exchange/allEntities/allTasks"
                        ]
                    }
                ],
            },
        )
    with pytest.raises(WriteRejected, match="built-in"):
        g.patch(f"{RM}/roleDefinitions/{USER_ADMIN}", {"description": "mine now"})
    with pytest.raises(WriteRejected, match="read-only"):
        g.patch(f"{RM}/roleDefinitions/{created['id']}", {"isBuiltIn": True})
    g.delete(f"{RM}/roleDefinitions/{created['id']}")
    with pytest.raises(GraphError, match="404"):
        g.get_json(f"{RM}/roleDefinitions/{created['id']}")


def test_assignments_show_as_role_members_and_scoped_role_members(tenant) -> None:
    sim, handles = tenant
    g, d = client_for(sim, handles["p2"]), handles["p2"].directory
    user = member(d)
    unit = g.get_json("/directory/administrativeUnits")["value"][0]["id"]
    scope = f"/administrativeUnits/{unit}"
    made = [
        g.post(
            f"{RM}/roleAssignments",
            {"principalId": user["id"], "roleDefinitionId": USER_ADMIN, "directoryScopeId": s},
        )
        for s in ("/", scope)
    ]
    have = assignments(g)
    assert {(user["id"], USER_ADMIN, "/"), (user["id"], USER_ADMIN, scope)} <= set(have)
    roles = g.get_json("/directoryRoles")["value"]
    role = next(r for r in roles if r["roleTemplateId"] == USER_ADMIN)  # activated on first use
    assert user["id"] in {
        m["id"] for m in g.get_json(f"/directoryRoles/{role['id']}/members")["value"]
    }
    scoped = g.get_json(f"/directory/administrativeUnits/{unit}/scopedRoleMembers")["value"]
    assert any(
        s["roleMemberInfo"]["id"] == user["id"] and s["roleId"] == role["id"] for s in scoped
    )
    with pytest.raises(WriteRejected):  # twice
        g.post(
            f"{RM}/roleAssignments",
            {"principalId": user["id"], "roleDefinitionId": USER_ADMIN, "directoryScopeId": "/"},
        )
    plain = next(x for x in d.groups() if not x.get("isAssignableToRole"))
    with pytest.raises(WriteRejected, match="isAssignableToRole"):
        g.post(
            f"{RM}/roleAssignments",
            {"principalId": plain["id"], "roleDefinitionId": USER_ADMIN, "directoryScopeId": "/"},
        )
    with pytest.raises(WriteRejected) as missing:
        g.post(
            f"{RM}/roleAssignments",
            {
                "principalId": "00000000-0000-0000-0000-00000000abcd",
                "roleDefinitionId": USER_ADMIN,
                "directoryScopeId": "/",
            },
        )
    assert missing.value.status == 404
    for row in made:
        g.delete(f"{RM}/roleAssignments/{row['id']}")
    have = assignments(g)
    assert (user["id"], USER_ADMIN, "/") not in have and (user["id"], USER_ADMIN, scope) not in have


def test_pim_eligibility_requests_and_licence(tenant) -> None:
    sim, handles = tenant
    g, d = client_for(sim, handles["p2"]), handles["p2"].directory
    user = member(d)
    request = {
        "action": "adminAssign",
        "principalId": user["id"],
        "roleDefinitionId": USER_ADMIN,
        "directoryScopeId": "/",
        "justification": "restore",
        "scheduleInfo": {
            "startDateTime": "2026-01-01T00:00:00Z",
            "expiration": {"type": "noExpiration"},
        },
    }
    done = g.post(f"{RM}/roleEligibilityScheduleRequests", request)
    assert done["status"] == "Provisioned"
    rows = [r for p in g.pages(f"{RM}/roleEligibilitySchedules") for r in p.items]
    mine = [
        r for r in rows if r["principalId"] == user["id"] and r["roleDefinitionId"] == USER_ADMIN
    ]
    assert len(mine) == 1 and mine[0]["scheduleInfo"]["startDateTime"] == "2026-01-01T00:00:00Z"
    with pytest.raises(WriteRejected):
        g.post(f"{RM}/roleEligibilityScheduleRequests", request)
    g.post(f"{RM}/roleEligibilityScheduleRequests", {**request, "action": "adminRemove"})
    rows = [r for p in g.pages(f"{RM}/roleEligibilitySchedules") for r in p.items]
    assert not [
        r for r in rows if r["principalId"] == user["id"] and r["roleDefinitionId"] == USER_ADMIN
    ]
    free = client_for(sim, handles["free"])
    other = member(handles["free"].directory)
    with pytest.raises(WriteRejected, match="P2"):
        free.post(f"{RM}/roleEligibilityScheduleRequests", {**request, "principalId": other["id"]})


def test_role_writes_need_role_management(tenant) -> None:
    sim, handles = tenant
    g, d = client_for(sim, handles["readonly"]), handles["readonly"].directory
    with pytest.raises(PermissionMissing, match=r"RoleManagement\.ReadWrite\.Directory"):
        g.post(
            f"{RM}/roleAssignments",
            {
                "principalId": member(d)["id"],
                "roleDefinitionId": USER_ADMIN,
                "directoryScopeId": "/",
            },
        )
