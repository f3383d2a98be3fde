"""A deleted Microsoft first-party app's service principal comes back from its appId, through
the CLI against a simulated tenant: Graph creates the service principal of a multi-tenant app
another tenant publishes from its appId alone (how an enterprise app is added), so restore
recreates it — published by Microsoft, not an app of the tenant — and links its assignments
to the new one."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import GraphError
from agent.graph import GraphClient
from agent.simulator.graph.gen_apps import MICROSOFT_TENANT
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import agent_for, backup, restore, simulated_tenant, write_requests
from tests.test_restore_tenant_support import settled
from tests.test_sim_support import session, token

SHAREPOINT = "00000003-0000-0ff1-ce00-000000000000"
DEFAULT_ACCESS = "00000000-0000-0000-0000-000000000000"
WRITES = ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"]
KINDS = ["--kind", "servicePrincipal", "--kind", "appRoleAssignment"]


def test_deleted_first_party_service_principal_is_recreated_from_its_app_id(tmp_path: Path) -> None:  # fmt: skip
    with simulated_tenant(tmp_path / "sim", users=30, groups=4, applications=4, devices=0,
                          graph_permissions=[*READ_PERMISSIONS, *WRITES]) as sim:  # fmt: skip
        config, rt = agent_for(tmp_path / "agent", sim)
        cfg = str(config)
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))
        [sp] = g.get_json("/servicePrincipals", {"$filter": f"appId eq '{SHAREPOINT}'"})["value"]
        user = g.get_json("/users", {"$top": "1"})["value"][0]
        g.post(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo",
               {"principalId": user["id"], "resourceId": sp["id"], "appRoleId": DEFAULT_ACCESS})  # fmt: skip
        snap = backup(cfg)
        g.delete(f"/servicePrincipals/{sp['id']}")
        g.delete(f"/directory/deletedItems/{sp['id']}")  # gone for good
        mark = settled(sim, g)

        plan = restore(cfg, snap, *KINDS, "--id", sp["id"], "--dry-run", "--json").json()
        assert write_requests(sim, mark) == []
        actions = {(a["kind"], a["action"]) for a in plan["plan"]["actions"]}
        assert actions == {("servicePrincipal", "recreate"), ("appRoleAssignment", "relink")}

        report = restore(cfg, snap, *KINDS, "--id", sp["id"], "--yes", "--json").json()
        assert report["summary"]["failed"] == 0, report["results"]
        new_id = {o["old"]: o["new"] for o in report["id_map"]["objects"]}[sp["id"]]
        now = g.get_json(f"/servicePrincipals/{new_id}")
        assert (now["appId"], now["displayName"]) == (SHAREPOINT, sp["displayName"])
        assert now["appOwnerOrganizationId"] == MICROSOFT_TENANT  # Microsoft's app, not ours
        assigned = g.get_json(f"/servicePrincipals/{new_id}/appRoleAssignedTo")["value"]
        assert [(a["principalId"], a["appRoleId"]) for a in assigned] == [(user["id"], DEFAULT_ACCESS)]  # fmt: skip

        # An appId no tenant publishes names no application: Graph refuses it.
        with pytest.raises(GraphError, match="does not reference a valid application"):
            g.post("/servicePrincipals", {"appId": "6f1c5e2a-0b7d-4c1e-9a51-3d2f8e4b7c90"})

        # The next restore finds it by its appId: nothing left to do.
        again = restore(cfg, snap, *KINDS, "--id", sp["id"], "--dry-run", "--json").json()
        assert [a for a in again["plan"]["actions"] if a["action"] != "skip"] == []
        rt.close()
