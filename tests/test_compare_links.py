"""diff pairs whole-object links as restore does (agent/kinds/links.py), through the CLI against
a simulated tenant: app role assignments by principal and role, an app's extension properties
by their short name, federated credentials by name. Links restore wrote again (new ids, new
creation times) are no difference between the snapshot before the damage and the one after
the restore; the damage itself is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.graph import GraphClient
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import agent_for, backup, restore, run, simulated_tenant
from tests.test_sim_support import session, token

LINKS = ("appRoleAssignment", "applicationExtensionProperty", "applicationFederatedCredential")
WRITES = ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"]


def kinds(*names: str) -> list[str]:
    return [x for k in names for x in ("--kind", k)]


def diff(config: str, old: int, new: int) -> dict[str, Any]:
    out: dict[str, Any] = run("diff", str(old), str(new), "--config", config, "--json", *kinds(*LINKS)).json()  # fmt: skip
    return out


def test_diff_pairs_links_restore_wrote_again_by_their_identity(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=60, groups=8, applications=10, devices=0,
                          graph_permissions=[*READ_PERMISSIONS, *WRITES]) as sim:  # fmt: skip
        config, rt = agent_for(tmp_path / "agent", sim)
        cfg = str(config)
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))
        sp = next(s for p in g.pages("/servicePrincipals") for s in p.items
                  if len(g.get_json(f"/servicePrincipals/{s['id']}/appRoleAssignedTo")["value"]) >= 2)  # fmt: skip
        app = next(a for p in g.pages("/applications") for a in p.items)
        base = f"/applications/{app['id']}"
        ext = g.post(f"{base}/extensionProperties", {"name": "costCentre", "dataType": "String", "targetObjects": ["User"]})  # fmt: skip
        g.post(f"{base}/federatedIdentityCredentials", {"name": "deploy", "issuer": "https://token.actions.githubusercontent.com",
               "subject": "repo:contoso/app:ref:refs/heads/main", "audiences": ["api://AzureADTokenExchange"]})  # fmt: skip
        before = backup(cfg)

        assigned = g.get_json(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo")["value"][:2]
        for link in assigned:
            g.delete(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo/{link['id']}")
        g.delete(f"{base}/extensionProperties/{ext['id']}")
        g.delete(f"{base}/federatedIdentityCredentials/deploy")
        damaged = backup(cfg)
        # The damage is a difference, named by what each link is.
        shown = diff(cfg, before, damaged)
        paths = {(o["kind"], c["path"], c["op"]) for o in shown["objects"] for c in o["changes"]}
        for link in assigned:
            key = f"appRoleAssignedTo[{link['principalId']}/{link['appRoleId']}]"
            assert ("appRoleAssignment", key, "removed") in paths, paths
        assert (
            "applicationExtensionProperty",
            "extensionProperties[costCentre]",
            "removed",
        ) in paths
        assert ("applicationFederatedCredential", "federatedIdentityCredentials[deploy]", "removed") in paths  # fmt: skip

        report = restore(cfg, before, *kinds(*LINKS), "--yes", "--json").json()
        assert report["summary"]["failed"] == 0 and report["summary"]["restored"] == 3, report
        after = backup(cfg)
        # Written again with new ids: the same links, so no difference — as restore sees it.
        now = {a["id"] for a in g.get_json(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo")["value"]}  # fmt: skip
        assert not now & {a["id"] for a in assigned}
        assert diff(cfg, before, after)["objects"] == []
        again = restore(cfg, before, *kinds(*LINKS), "--dry-run", "--json").json()
        assert again["plan"]["actions"] == []
        rt.close()
