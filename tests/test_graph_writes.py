"""Writes through the agent's GraphClient against the simulated Graph over real HTTPS with msal
tokens: every write kind changes the tenant and shows in delta, and Graph's refusals (read-only
and unknown properties, missing objects, duplicate links, missing permissions and roles)
reach the caller as clear AgentErrors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agent.errors import PermissionMissing, WriteRejected
from agent.graph import BatchRequest, GraphClient, WriteBudget
from agent.simulator.graph import Directory
from agent.simulator.service import READ_PERMISSIONS, Simulator, TenantSpec
from tests.test_sim_support import client_for, serving

WRITE_PERMISSIONS = [
    "User.ReadWrite.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "AdministrativeUnit.ReadWrite.All",
    "Device.ReadWrite.All",
]
DEFAULT_ACCESS = "00000000-0000-0000-0000-000000000000"  # "default access" app role
PASSWORD = {"password": "Tmp-9fQ2-xL7w!", "forceChangePasswordNextSignIn": True}


@pytest.fixture(scope="module")
def tenant() -> Iterator[tuple[Simulator, GraphClient, Directory]]:
    spec = TenantSpec(
        name="fabrikam",
        seed=11,
        users=80,
        groups=25,
        applications=6,
        devices=10,
        graph_permissions=[*READ_PERMISSIONS, *WRITE_PERMISSIONS],
        directory_roles=["Global Administrator"],
    )
    with serving(spec) as (sim, handle):
        yield sim, client_for(sim, handle, write_budget=WriteBudget()), handle.directory


def new_user(g: GraphClient, d: Directory, nick: str, **extra: Any) -> dict[str, Any]:
    body = {
        "accountEnabled": True,
        "displayName": nick.title(),
        "mailNickname": nick,
        "userPrincipalName": f"{nick}@{d.domain}",
        "passwordProfile": PASSWORD,
        **extra,
    }
    return g.post("/users", body)


def delta_round(
    g: GraphClient, path: str, link: str | None, **params: Any
) -> tuple[list[Any], str]:
    rnd = g.delta(path, params or None, link)
    items = [item for page in rnd.pages() for item in page.items]
    assert rnd.delta_link is not None
    return items, rnd.delta_link


def ref(oid: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{oid}"}


def cloud_users(d: Directory, n: int) -> list[dict[str, Any]]:
    return [u for u in d.users() if not u.get("onPremisesSyncEnabled") and u["userType"] == "Member"][:n]  # fmt: skip


def security_group(d: Directory) -> dict[str, Any]:
    return next(
        x for x in d.groups()
        if x["securityEnabled"] and not x["mailEnabled"] and not x.get("onPremisesSyncEnabled")
        and not x.get("membershipRule")
    )  # fmt: skip


# -- users ------------------------------------------------------------------------------------


def test_user_create_update_delete_restore_show_in_delta(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    _, g, d = tenant
    select = "displayName,jobTitle,userPrincipalName"
    _, link = delta_round(g, "/users/delta", None, **{"$select": select})
    created = new_user(g, d, "ines.delta", jobTitle="Buyer")
    assert created["@odata.type"] == "#microsoft.graph.user" and created["id"]
    stored = d.get(created["id"]) or {}
    assert stored["passwordProfile"] == {"forceChangePasswordNextSignIn": True, "forceChangePasswordNextSignInWithMfa": False, "password": None}  # fmt: skip
    edited, gone = cloud_users(d, 2)
    g.patch(f"/users/{edited['id']}", {"jobTitle": "Head of Delta"})
    g.delete(f"/users/{gone['id']}")
    items, link = delta_round(g, "/users/delta", link)
    by_id = {i["id"]: i for i in items}
    assert by_id[created["id"]]["jobTitle"] == "Buyer"
    assert by_id[edited["id"]]["jobTitle"] == "Head of Delta"
    assert by_id[gone["id"]]["@removed"] == {"reason": "changed"}  # soft-deleted: restorable
    deleted = [i["id"] for page in g.pages("/directory/deletedItems/microsoft.graph.user") for i in page.items]  # fmt: skip
    assert gone["id"] in deleted
    restored = g.post(f"/directory/deletedItems/{gone['id']}/restore")
    assert restored["id"] == gone["id"] and d.get(gone["id"]) is not None
    items, _ = delta_round(g, "/users/delta", link)
    assert gone["id"] in {i["id"] for i in items if "@removed" not in i}


def test_restore_of_a_user_whose_name_was_taken_needs_a_new_name(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    _, g, d = tenant
    gone = cloud_users(d, 16)[15]
    g.delete(f"/users/{gone['id']}")
    upn = gone["userPrincipalName"]
    taken = new_user(g, d, "successor", userPrincipalName=upn)  # the name is free again
    with pytest.raises(WriteRejected) as err:
        g.post(f"/directory/deletedItems/{gone['id']}/restore")
    assert (err.value.reason, err.value.target) == ("conflict", "userPrincipalName")
    renamed = f"restored.{upn}"
    restored = g.post(f"/directory/deletedItems/{gone['id']}/restore", {"newUserPrincipalName": renamed})  # fmt: skip
    assert restored["userPrincipalName"] == renamed
    assert d.get(taken["id"])["userPrincipalName"] == upn


def test_user_writes_refused_like_graph(tenant: tuple[Simulator, GraphClient, Directory]) -> None:
    _, g, d = tenant
    user = cloud_users(d, 3)[2]
    with pytest.raises(WriteRejected) as err:
        g.patch(f"/users/{user['id']}", {"createdDateTime": "2020-01-01T00:00:00Z"})
    assert err.value.status == 400 and err.value.graph_code == "Request_BadRequest"
    assert err.value.reason == "read_only" and err.value.target == "createdDateTime"
    assert "createdDateTime" in err.value.message and "read-only" in err.value.message
    with pytest.raises(WriteRejected) as err:
        g.patch(f"/users/{user['id']}", {"favouriteColour": "teal"})
    assert (err.value.reason, err.value.target) == ("unknown_property", "favouriteColour")
    with pytest.raises(WriteRejected) as err:
        g.post("/users", {"accountEnabled": True, "displayName": "No Nick", "passwordProfile": PASSWORD, "userPrincipalName": f"nonick@{d.domain}"})  # fmt: skip
    assert (err.value.reason, err.value.target) == ("required", "mailNickname")
    with pytest.raises(WriteRejected) as err:
        new_user(g, d, "twin", userPrincipalName=user["userPrincipalName"])
    assert (err.value.reason, err.value.target) == ("conflict", "userPrincipalName")
    with pytest.raises(WriteRejected) as err:
        new_user(g, d, "weak", passwordProfile={"password": "abc"})
    assert err.value.reason == "password"
    missing = "5b1e7a52-0000-4000-8000-000000000001"
    with pytest.raises(WriteRejected) as err:
        g.patch(f"/users/{missing}", {"jobTitle": "x"})
    assert err.value.status == 404 and (err.value.reason, err.value.target) == ("missing", missing)
    synced = next(u for u in d.users() if u.get("onPremisesSyncEnabled"))
    with pytest.raises(WriteRejected) as err:
        g.patch(f"/users/{synced['id']}", {"displayName": "Renamed"})
    assert err.value.reason == "synced"
    assert d.get(user["id"]) == user  # nothing refused was applied


def test_manager_put_and_delete_show_in_delta(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    _, g, d = tenant
    user, boss = cloud_users(d, 6)[4:6]
    _, link = delta_round(g, "/users/delta", None, **{"$select": "displayName,manager"})
    g.put(f"/users/{user['id']}/manager/$ref", ref(boss["id"]))
    items, link = delta_round(g, "/users/delta", link)
    changed = next(i for i in items if i["id"] == user["id"])
    assert [m["id"] for m in changed["manager@delta"]] == [boss["id"]]
    g.delete(f"/users/{user['id']}/manager/$ref")
    assert d.manager_of(user["id"]) is None
    with pytest.raises(WriteRejected) as err:
        g.delete(f"/users/{user['id']}/manager/$ref")
    assert err.value.status == 404


# -- groups, members, owners ---------------------------------------------------------------------


def test_group_create_members_owners_and_members_delta(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    _, g, d = tenant
    a, b, c = cloud_users(d, 10)[7:10]
    _, link = delta_round(g, "/groups/delta", None, **{"$select": "displayName,members"})
    group = g.post("/groups", {
        "displayName": "Restore drill", "mailEnabled": False, "mailNickname": "drill",
        "securityEnabled": True,
        "members@odata.bind": [f"https://graph.microsoft.com/v1.0/users/{a['id']}"],
    })  # fmt: skip
    gid = group["id"]
    g.post(f"/groups/{gid}/members/$ref", ref(b["id"]))
    g.post(f"/groups/{gid}/owners/$ref", ref(c["id"]))
    assert d.members(gid) == {a["id"], b["id"]} and d.owners(gid) == {c["id"]}
    items, link = delta_round(g, "/groups/delta", link)
    entry = [i for i in items if i["id"] == gid]
    assert entry and {m["id"] for i in entry for m in i.get("members@delta", [])} == {
        a["id"],
        b["id"],
    }
    with pytest.raises(WriteRejected) as err:
        g.post(f"/groups/{gid}/members/$ref", ref(b["id"]))
    assert err.value.status == 400 and (err.value.reason, err.value.target) == ("exists", "members")
    missing = "5b1e7a52-0000-4000-8000-000000000002"
    with pytest.raises(WriteRejected) as err:
        g.post(f"/groups/{gid}/members/$ref", ref(missing))
    assert err.value.status == 404 and err.value.target == missing
    g.delete(f"/groups/{gid}/members/{a['id']}/$ref")
    items, _ = delta_round(g, "/groups/delta", link)
    removed = [m for i in items if i["id"] == gid for m in i.get("members@delta", [])]
    assert removed == [{"@odata.type": "#microsoft.graph.user", "id": a["id"], "@removed": {"reason": "deleted"}}]  # fmt: skip
    g.patch(f"/groups/{gid}", {"description": "Rehearsal"})
    assert d.get(gid)["description"] == "Rehearsal"
    with pytest.raises(WriteRejected) as err:
        g.patch(f"/groups/{gid}", {"isAssignableToRole": True})  # create-only
    assert err.value.reason == "read_only"
    dl = next(x for x in d.groups() if x["mailEnabled"] and "Unified" not in x["groupTypes"])
    with pytest.raises(WriteRejected) as err:
        g.post(f"/groups/{dl['id']}/members/$ref", ref(a["id"]))
    assert err.value.reason == "not_supported"  # DLs and mail-enabled SGs: Exchange only


def test_microsoft_365_group_soft_deleted_and_restorable(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    _, g, d = tenant
    group = g.post("/groups", {"displayName": "Team Orca", "mailEnabled": True, "mailNickname": "orca", "securityEnabled": False, "groupTypes": ["Unified"]})  # fmt: skip
    assert group["mail"] == f"orca@{d.domain}"
    with pytest.raises(WriteRejected) as err:
        g.post("/groups", {"displayName": "Orca 2", "mailEnabled": True, "mailNickname": "orca", "securityEnabled": False, "groupTypes": ["Unified"]})  # fmt: skip
    assert err.value.reason == "conflict"
    g.delete(f"/groups/{group['id']}")
    deleted = [i["id"] for p in g.pages("/directory/deletedItems/microsoft.graph.group") for i in p.items]  # fmt: skip
    assert group["id"] in deleted
    g.post(f"/directory/deletedItems/{group['id']}/restore")
    assert d.get(group["id"]) is not None


# -- applications, service principals, assignments, grants, AUs -------------------------------


def test_application_service_principal_owners_assignments_grants(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    _, g, d = tenant
    owner, member = cloud_users(d, 12)[10:12]
    role_id = "3c1b8f56-7a4e-4c0b-9a43-0d7b6a1e2f10"
    app = g.post("/applications", {"displayName": "Payroll", "appRoles": [{
        "id": role_id, "allowedMemberTypes": ["User"], "description": "Payroll users",
        "displayName": "User", "isEnabled": True, "value": "Payroll.User",
    }]})  # fmt: skip
    assert app["appId"] and app["publisherDomain"] == d.domain
    with pytest.raises(WriteRejected) as err:
        g.patch(f"/applications/{app['id']}", {"appId": "11111111-2222-3333-4444-555555555555"})
    assert (err.value.reason, err.value.target) == ("read_only", "appId")
    sp = g.post("/servicePrincipals", {"appId": app["appId"]})
    assert sp["appDisplayName"] == "Payroll" and sp["servicePrincipalType"] == "Application"
    with pytest.raises(WriteRejected) as err:
        g.post("/servicePrincipals", {"appId": app["appId"]})
    assert err.value.status == 409 and err.value.reason == "conflict"
    g.post(f"/applications/{app['id']}/owners/$ref", ref(owner["id"]))
    with pytest.raises(WriteRejected) as err:
        g.post(f"/applications/{app['id']}/owners/$ref", ref(owner["id"]))
    assert err.value.reason == "exists"
    owners = [o["id"] for p in g.pages(f"/applications/{app['id']}/owners") for o in p.items]
    assert owners == [owner["id"]]
    assignment = g.post(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo", {
        "principalId": member["id"], "resourceId": sp["id"], "appRoleId": role_id,
    })  # fmt: skip
    assert assignment["principalType"] == "User" and assignment["resourceDisplayName"] == "Payroll"
    listed = [a["id"] for p in g.pages(f"/users/{member['id']}/appRoleAssignments") for a in p.items]  # fmt: skip
    assert assignment["id"] in listed
    with pytest.raises(WriteRejected) as err:
        g.post(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo", {"principalId": member["id"], "resourceId": sp["id"], "appRoleId": role_id})  # fmt: skip
    assert err.value.reason == "exists"
    g.delete(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo/{assignment['id']}")
    assert not [p for p in g.pages(f"/users/{member['id']}/appRoleAssignments") if any(a["id"] == assignment["id"] for a in p.items)]  # fmt: skip
    graph_sp = next(r for _, r in d.scan("servicePrincipal", 0) if r.get("appDisplayName") == "Microsoft Graph")  # fmt: skip
    grant = g.post("/oauth2PermissionGrants", {"clientId": sp["id"], "consentType": "AllPrincipals", "resourceId": graph_sp["id"], "scope": "User.Read"})  # fmt: skip
    g.patch(f"/oauth2PermissionGrants/{grant['id']}", {"scope": "User.Read Mail.Read"})
    assert d.get(grant["id"])["scope"] == "User.Read Mail.Read"
    with pytest.raises(WriteRejected) as err:
        g.patch(f"/oauth2PermissionGrants/{grant['id']}", {"clientId": graph_sp["id"]})
    assert err.value.reason == "read_only"
    g.delete(f"/oauth2PermissionGrants/{grant['id']}")
    assert d.get(grant["id"]) is None and grant["id"] not in d.deleted  # grants go for good
    g.delete(f"/applications/{app['id']}")  # its service principal goes with it
    apps = [i["id"] for p in g.pages("/directory/deletedItems/microsoft.graph.application") for i in p.items]  # fmt: skip
    sps = [i["id"] for p in g.pages("/directory/deletedItems/microsoft.graph.servicePrincipal") for i in p.items]  # fmt: skip
    assert app["id"] in apps and sp["id"] in sps


def test_administrative_unit_create_members_and_delta(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    _, g, d = tenant
    user = cloud_users(d, 13)[12]
    _, link = delta_round(g, "/directory/administrativeUnits/delta", None)
    au = g.post("/directory/administrativeUnits", {"displayName": "Lisbon office"})
    g.post(f"/directory/administrativeUnits/{au['id']}/members/$ref", ref(user["id"]))
    members = [m["id"] for p in g.pages(f"/directory/administrativeUnits/{au['id']}/members") for m in p.items]  # fmt: skip
    assert members == [user["id"]]
    with pytest.raises(WriteRejected) as err:
        g.post(f"/directory/administrativeUnits/{au['id']}/members/$ref", ref(user["id"]))
    assert err.value.reason == "exists"
    g.delete(f"/directory/administrativeUnits/{au['id']}/members/{user['id']}/$ref")
    g.patch(f"/directory/administrativeUnits/{au['id']}", {"description": "Office staff"})
    items, _ = delta_round(g, "/directory/administrativeUnits/delta", link)
    assert any(i["id"] == au["id"] and i.get("description") == "Office staff" for i in items)
    g.delete(f"/directory/administrativeUnits/{au['id']}")
    assert au["id"] in d.deleted  # AUs are soft-deleted (facts file §3)


def test_device_update_registered_owner_and_hard_delete(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    _, g, d = tenant
    device = next(r for _, r in d.scan("device", 0))
    user = cloud_users(d, 14)[13]
    g.patch(f"/devices/{device['id']}", {"accountEnabled": False})
    assert d.get(device["id"])["accountEnabled"] is False
    with pytest.raises(WriteRejected) as err:
        g.patch(f"/devices/{device['id']}", {"isCompliant": True})  # only Intune sets it
    assert (err.value.reason, err.value.target) == ("read_only", "isCompliant")
    owners = d.objects.targets("device.registeredOwners", device["id"])
    if user["id"] not in owners:
        g.post(f"/devices/{device['id']}/registeredOwners/$ref", ref(user["id"]))
    with pytest.raises(WriteRejected) as err:
        g.post(f"/devices/{device['id']}/registeredOwners/$ref", ref(user["id"]))
    assert err.value.reason == "exists"
    g.delete(f"/devices/{device['id']}/registeredOwners/{user['id']}/$ref")
    assert user["id"] not in d.objects.targets("device.registeredOwners", device["id"])
    g.delete(f"/devices/{device['id']}")
    assert d.get(device["id"]) is None and device["id"] not in d.deleted  # no deletedItems cast


# -- $batch -------------------------------------------------------------------------------------


def test_batch_of_writes_applies_each_and_reports_each_refusal(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    _, g, d = tenant
    users = cloud_users(d, 40)[14:40]
    requests = [
        BatchRequest(str(i), "PATCH", f"/users/{u['id']}", {"officeLocation": f"Desk {i}"})
        for i, u in enumerate(users)
    ]
    requests.append(BatchRequest("bad", "PATCH", f"/users/{users[0]['id']}", {"mail": None, "id": "x"}))  # fmt: skip
    results = g.write_batch(requests)
    assert [r.status for r in results[:-1]] == [204] * len(users)
    assert all(d.get(u["id"])["officeLocation"] == f"Desk {i}" for i, u in enumerate(users))
    error = g.batch_error(requests[-1], results[-1])
    assert isinstance(error, WriteRejected) and error.reason == "read_only" and error.target == "id"


# -- permissions and roles ----------------------------------------------------------------------


def test_missing_permission_or_role_is_a_clear_error() -> None:
    with Simulator() as sim:
        handle = sim.add_tenant(TenantSpec(name="litware", seed=3, users=30, groups=8, applications=2, devices=2))  # fmt: skip
        sim.faults.disable_throttling = True
        d = handle.directory
        g = client_for(sim, handle)
        user = d.users()[3]
        with pytest.raises(PermissionMissing) as denied:
            g.patch(f"/users/{user['id']}", {"jobTitle": "x"})
        assert "User.ReadWrite.All" in denied.value.message and "403" in denied.value.message
        with pytest.raises(PermissionMissing) as denied:
            g.post(f"/groups/{d.groups()[0]['id']}/members/$ref", ref(user["id"]))
        assert "GroupMember.ReadWrite.All" in denied.value.message
        role_group = d.create_group(displayName="Helpdesk admins", mailNickname="helpdesk", isAssignableToRole=True)  # fmt: skip
        handle.app.graph_permissions += ["GroupMember.ReadWrite.All"]
        g = client_for(sim, handle)
        with pytest.raises(PermissionMissing) as denied:  # role-assignable: RoleManagement too
            g.post(f"/groups/{role_group['id']}/members/$ref", ref(user["id"]))
        assert "RoleManagement.ReadWrite.Directory" in denied.value.message
        assert user["id"] not in d.members(role_group["id"])
        handle.app.graph_permissions += ["RoleManagement.ReadWrite.Directory"]
        client_for(sim, handle).post(f"/groups/{role_group['id']}/members/$ref", ref(user["id"]))
        assert user["id"] in d.members(role_group["id"])
        handle.app.graph_permissions.append("User.ReadWrite.All")
        g = client_for(sim, handle)
        g.delete(f"/users/{user['id']}")
        with pytest.raises(PermissionMissing) as denied:
            g.post(f"/directory/deletedItems/{user['id']}/restore")
        assert "Global Administrator" in denied.value.message  # facts file §3
        assert user["id"] in d.deleted
        assert sim.errors == []


def test_generated_app_role_assignments_are_ones_graph_accepts(
    tenant: tuple[Simulator, GraphClient, Directory],
) -> None:
    """What the generator assigned, restore can write back as it is: default access (the
    all-zero role) only on apps that declare no app roles, as Graph requires."""
    _, g, d = tenant
    sps = {r["id"]: r for _, r in d.scan("servicePrincipal", 0)}
    generated = [
        dict(a) for a in d.objects.assignments.values() if a["principalType"] in ("User", "Group")
    ]
    default = [a for a in generated if a["appRoleId"] == DEFAULT_ACCESS]
    assert default, "the tenant should have default-access assignments"
    assert all(not sps[a["resourceId"]].get("appRoles") for a in default)
    with_role = [a for a in generated if a["appRoleId"] != DEFAULT_ACCESS]
    for a in [*default[:3], *with_role[:3]]:
        base = f"/servicePrincipals/{a['resourceId']}/appRoleAssignedTo"
        g.delete(f"{base}/{a['id']}")
        again = g.post(base, {k: a[k] for k in ("principalId", "resourceId", "appRoleId")})
        assert (again["principalId"], again["appRoleId"]) == (a["principalId"], a["appRoleId"])
