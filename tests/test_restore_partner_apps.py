"""Service principals of multi-tenant apps another (non-Microsoft) tenant publishes, through the
CLI against a simulated tenant. Graph creates the service principal of such an app from its
appId alone ("Create an enterprise application from a multitenant application"), taking the
publisher's values (appOwnerOrganizationId = the publisher's tenant); an app registered in
another tenant for itself only is as unknown as an appId nobody registered. Restore undeletes
a soft-deleted one and recreates a purged one from its appId, and relinks the users assigned
to it and its delegated grant; the next restore finds it by appId and has nothing to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import GraphError
from agent.graph import GraphClient
from agent.simulator.graph.published_apps import PARTNER_APPS, SINGLE_TENANT_ELSEWHERE
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import agent_for, backup, restore, run, simulated_tenant
from tests.test_sim_support import session, token

WRITES = ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All",
          "DelegatedPermissionGrant.ReadWrite.All"]  # fmt: skip
KINDS = ("servicePrincipal", "appRoleAssignment", "oauth2PermissionGrant")
PUBLISHED = ("appId", "appDisplayName", "appOwnerOrganizationId", "signInAudience",
             "servicePrincipalNames", "appRoles", "oauth2PermissionScopes", "verifiedPublisher")  # fmt: skip


def kinds() -> list[str]:
    return [x for k in KINDS for x in ("--kind", k)]


def test_partner_service_principals_come_back_from_their_app_id(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=30, groups=4, applications=16,
                          graph_permissions=[*READ_PERMISSIONS, *WRITES]) as sim:  # fmt: skip
        config, rt = agent_for(tmp_path / "agent", sim)
        cfg = str(config)
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))
        publishers = {p.tenant_id for p in PARTNER_APPS}
        full = g.get_json("/servicePrincipals", {"$select": ",".join(("id", *PUBLISHED))})
        partners = [sp for sp in full["value"] if sp["appOwnerOrganizationId"] in publishers]
        assert len(partners) == 2, "the generator puts partner apps' service principals here"
        soft, hard = partners

        def hangs_off(sp_id: str) -> tuple[list[tuple[str, str]], list[str]]:
            assigned = g.get_json(f"/servicePrincipals/{sp_id}/appRoleAssignedTo")["value"]
            grants = g.get_json("/oauth2PermissionGrants")["value"]
            return (sorted((a["principalId"], a["appRoleId"]) for a in assigned),
                    sorted(x["scope"] for x in grants if x["clientId"] == sp_id))  # fmt: skip

        before = {sp["id"]: hangs_off(sp["id"]) for sp in partners}
        assert all(a and s for a, s in before.values())
        snap = backup(cfg)
        # The backup holds whose app it is: what tells restore to create it from its appId.
        shown = run("diff", str(snap), "--live", "--config", cfg, "--json", *kinds()).json()
        assert shown["objects"] == []
        g.delete(f"/servicePrincipals/{soft['id']}")
        g.delete(f"/servicePrincipals/{hard['id']}")
        g.delete(f"/directory/deletedItems/{hard['id']}")

        plan = restore(cfg, snap, *kinds(), "--dry-run", "--json").json()["plan"]
        actions = {(a["kind"], a["id"]): a["action"] for a in plan["actions"]}
        assert actions[("servicePrincipal", soft["id"])] == "undelete"
        assert actions[("servicePrincipal", hard["id"])] == "recreate"

        report = restore(cfg, snap, *kinds(), "--yes", "--json").json()
        failed = [r for r in report["results"] if r["status"] == "failed"]
        assert failed == [], json.dumps(failed, indent=1)
        ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
        assert soft["id"] not in ids and hard["id"] in ids
        select = {"$select": ",".join(PUBLISHED)}
        for sp in partners:
            new_id = ids.get(sp["id"], sp["id"])
            now = g.get_json(f"/servicePrincipals/{new_id}", select)
            assert {k: now.get(k) for k in PUBLISHED} == {k: sp.get(k) for k in PUBLISHED}
            assert hangs_off(new_id) == before[sp["id"]]

        again = restore(cfg, snap, *kinds(), "--dry-run", "--json").json()
        left = [a for a in again["plan"]["actions"] if a["action"] != "skip"]
        assert left == [], json.dumps(left, indent=1)

        # Another tenant's single-tenant app: no service principal of it can be made here.
        with pytest.raises(GraphError, match="does not reference a valid application"):
            g.post("/servicePrincipals", {"appId": SINGLE_TENANT_ELSEWHERE.app_id})
        rt.close()
