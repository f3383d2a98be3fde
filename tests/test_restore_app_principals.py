"""Applications and their service principals restored together, through the CLI against a
simulated tenant. Deleting an app deletes its service principal; purging the app leaves the
service principal in deleted items, where Graph will not restore it without its application
("Restore or remove a recently deleted application"). Restore recreates the app (new appId)
and, instead of undeleting the stale service principal, creates the one for the new appId
with the snapshot's settings, owners, app role assignments (to it and held by it), delegated
grant and claims mapping policy, every reference to the old id mapped to the new one. The
plan says why the deleted one was not undeleted; the next restore is a no-op."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.errors import AgentError
from agent.graph import GraphClient
from agent.simulator.graph.gen_apps import GRAPH_APP_ID, GRAPH_ROLES
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import agent_for, backup, restore, simulated_tenant, write_requests
from tests.test_restore_tenant_support import settled
from tests.test_sim_support import session, token

WRITES = ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All",
          "DelegatedPermissionGrant.ReadWrite.All", "Policy.ReadWrite.ApplicationConfiguration"]  # fmt: skip
KINDS = ("application", "servicePrincipal", "servicePrincipalOwner", "appRoleAssignment",
         "oauth2PermissionGrant", "servicePrincipalClaimsMappingPolicy")  # fmt: skip
CLAIMS = "claimsMappingPolicies"


def kinds() -> list[str]:
    return [x for k in KINDS for x in ("--kind", k)]


def links(g: GraphClient, sp: str, graph_sp: str) -> dict[str, Any]:
    """What hangs off service principal ``sp``: owners, who is assigned to it, the Graph app
    roles it holds, its delegated grants, its claims mapping policy."""
    held = g.get_json(f"/servicePrincipals/{graph_sp}/appRoleAssignedTo")["value"]
    grants = g.get_json("/oauth2PermissionGrants")["value"]
    return {
        "owners": sorted(o["id"] for o in g.get_json(f"/servicePrincipals/{sp}/owners")["value"]),
        "assigned": sorted(
            (a["principalId"], a["appRoleId"])
            for a in g.get_json(f"/servicePrincipals/{sp}/appRoleAssignedTo")["value"]
        ),
        "holds": sorted(a["appRoleId"] for a in held if a["principalId"] == sp),
        "grants": sorted((x["resourceId"], x["scope"]) for x in grants if x["clientId"] == sp),
        "claims": [p["id"] for p in g.get_json(f"/servicePrincipals/{sp}/{CLAIMS}")["value"]],
    }


def test_purged_app_brings_a_new_service_principal_not_the_stale_one(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=30, groups=4, applications=12,
                          graph_permissions=[*READ_PERMISSIONS, *WRITES], service_account=True,
                          service_account_roles=["Application Administrator"]) as sim:  # fmt: skip
        config, rt = agent_for(tmp_path / "agent", sim)
        cfg = str(config)
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))
        sps = {sp["appId"]: sp for sp in g.get_json("/servicePrincipals")["value"]}
        graph_sp = sps[GRAPH_APP_ID]["id"]
        own = sim.tenants["contoso"].client_id
        apps = [a for a in g.get_json("/applications")["value"] if a["appId"] not in (own,)]
        app = next(a for a in apps if a["appRoles"] and a["appId"] in sps)
        sp = sps[app["appId"]]
        user, other = g.get_json("/users", {"$top": "2"})["value"]
        # Everything that hangs off it: owner, assignments both ways, a grant, claims policy.
        g.post(f"/servicePrincipals/{sp['id']}/owners/$ref",
               {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user['id']}"})  # fmt: skip
        g.post(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo", {"principalId": other["id"],
               "resourceId": sp["id"], "appRoleId": app["appRoles"][0]["id"]})  # fmt: skip
        held = {a["appRoleId"] for a in g.get_json(f"/servicePrincipals/{sp['id']}/appRoleAssignments")["value"]}  # fmt: skip
        role = next(r for r in GRAPH_ROLES.values() if r not in held)
        g.post(f"/servicePrincipals/{graph_sp}/appRoleAssignedTo",
               {"principalId": sp["id"], "resourceId": graph_sp, "appRoleId": role})  # fmt: skip
        if not any(x["clientId"] == sp["id"] for x in g.get_json("/oauth2PermissionGrants")["value"]):  # fmt: skip
            g.post("/oauth2PermissionGrants", {"clientId": sp["id"], "consentType": "AllPrincipals",
                   "resourceId": graph_sp, "scope": "User.Read"})  # fmt: skip
        policy = g.get_json(f"/policies/{CLAIMS}")["value"][0]
        if not g.get_json(f"/servicePrincipals/{sp['id']}/{CLAIMS}")["value"]:
            g.post(f"/servicePrincipals/{sp['id']}/{CLAIMS}/$ref",
                   {"@odata.id": f"https://graph.microsoft.com/v1.0/policies/{CLAIMS}/{policy['id']}"})  # fmt: skip
        before = links(g, sp["id"], graph_sp)
        snap = backup(cfg)

        g.delete(f"/applications/{app['id']}")  # its service principal goes to deleted items too
        g.delete(f"/directory/deletedItems/{app['id']}")  # the app is gone for good
        # Graph: a service principal is not restored without an active application.
        with pytest.raises(AgentError, match="not active"):
            g.post(f"/directory/deletedItems/{sp['id']}/restore")
        mark = settled(sim, g)

        plan = restore(cfg, snap, *kinds(), "--dry-run", "--json").json()["plan"]
        assert write_requests(sim, mark) == []
        planned = {a["kind"]: a for a in plan["actions"] if a["id"] in (app["id"], sp["id"])}
        assert planned["application"]["action"] == "recreate"
        assert planned["servicePrincipal"]["action"] == "recreate"
        assert "not undeleted" in planned["servicePrincipal"]["reason"]
        assert "new appId" in planned["servicePrincipal"]["reason"]

        report = restore(cfg, snap, *kinds(), "--yes", "--json").json()
        failed = [r for r in report["results"] if r["status"] == "failed"]
        assert failed == [], json.dumps(failed, indent=1)
        ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
        new_app = g.get_json(f"/applications/{ids[app['id']]}")
        new_sp = g.get_json(f"/servicePrincipals/{ids[sp['id']]}")
        assert new_app["appId"] != app["appId"] and new_sp["appId"] == new_app["appId"]
        assert (new_sp["displayName"], new_sp.get("notes")) == (sp["displayName"], sp.get("notes"))
        assert new_sp["appRoleAssignmentRequired"] == sp["appRoleAssignmentRequired"]
        assert links(g, new_sp["id"], graph_sp) == before
        # The stale one stays in deleted items (Graph purges it after 30 days).
        stale = g.get_json("/directory/deletedItems/microsoft.graph.servicePrincipal")["value"]
        assert sp["id"] in {s["id"] for s in stale}

        again = restore(cfg, snap, *kinds(), "--dry-run", "--json").json()
        left = [a for a in again["plan"]["actions"] if a["action"] != "skip"]
        assert left == [], json.dumps(left, indent=1)
        rt.close()


def test_service_principal_of_an_app_gone_for_good_is_skipped_with_why(tmp_path: Path) -> None:
    """Restoring the service principal alone while its app is purged: nothing Graph would
    refuse is sent; the plan says to restore the application too."""
    with simulated_tenant(tmp_path / "sim", users=20, groups=2, applications=6,
                          graph_permissions=[*READ_PERMISSIONS, *WRITES]) as sim:  # fmt: skip
        config, rt = agent_for(tmp_path / "agent", sim)
        cfg = str(config)
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))
        own = sim.tenants["contoso"].client_id
        sps = {sp["appId"]: sp for sp in g.get_json("/servicePrincipals")["value"]}
        app = next(a for a in g.get_json("/applications")["value"] if a["appId"] != own)
        sp = sps[app["appId"]]
        snap = backup(cfg)
        g.delete(f"/applications/{app['id']}")
        g.delete(f"/directory/deletedItems/{app['id']}")
        mark = settled(sim, g)
        args = ("--kind", "servicePrincipal", "--id", sp["id"])  # the app: Graph is asked
        report = restore(cfg, snap, *args, "--yes", "--json").json()
        [result] = [r for r in report["results"] if r["id"] == sp["id"]]
        assert result["status"] == "skipped", result
        assert (
            app["appId"] in result["reason"] and "restore the application too" in result["reason"]
        )
        assert write_requests(sim, mark) == []
        rt.close()
