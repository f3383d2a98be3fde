"""Restore of app extension properties, federated credentials, service principal policy links,
devices and their owners and users, through the CLI against a simulated tenant over real
HTTPS: a drill with a recreated app (new appId), edited and deleted children, a replaced
policy link, device settings, owners and users; a deleted device is reported, not recreated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.graph import GraphClient
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import agent_for, backup, restore, run, simulated_tenant, write_requests
from tests.test_restore_tenant_support import settled
from tests.test_sim_support import session, token

KINDS = ("application", "servicePrincipal", "applicationExtensionProperty",
         "applicationFederatedCredential", "servicePrincipalTokenLifetimePolicy",
         "servicePrincipalClaimsMappingPolicy", "device", "deviceRegisteredOwner",
         "deviceRegisteredUser")  # fmt: skip
WRITES = ["Application.ReadWrite.All", "Policy.ReadWrite.ApplicationConfiguration",
          "Device.ReadWrite.All"]  # fmt: skip
FIC = ("name", "issuer", "subject", "audiences", "description")


def kinds(*names: str) -> list[str]:
    return [x for k in names for x in ("--kind", k)]


def ids_of(g: GraphClient, path: str) -> set[str]:
    return {x["id"] for page in g.pages(path) for x in page.items}


def creds(g: GraphClient, app: str) -> dict[str, tuple[Any, ...]]:
    rows = g.get_json(f"/applications/{app}/federatedIdentityCredentials")["value"]
    return {r["name"]: tuple(str(r.get(f)) for f in FIC) for r in rows}


def extensions(g: GraphClient, app: str) -> set[tuple[Any, ...]]:
    rows = g.get_json(f"/applications/{app}/extensionProperties")["value"]
    return {(r["name"].split("_", 2)[2], r["dataType"], tuple(r["targetObjects"])) for r in rows}


def fic(name: str, subject: str) -> dict[str, Any]:
    return {"name": name, "issuer": "https://token.actions.githubusercontent.com",
            "subject": subject, "audiences": ["api://AzureADTokenExchange"]}  # fmt: skip


def test_drill_restores_app_children_policy_links_and_devices(tmp_path: Path) -> None:
    # Claims mapping / token issuance links are SSO configuration: restoring them needs a
    # service account holding Application Administrator (the seed; restore/sso.py).
    with simulated_tenant(tmp_path / "sim", users=80, groups=10, applications=8, devices=12,
                          service_account=True, service_account_roles=["Application Administrator"],
                          graph_permissions=[*READ_PERMISSIONS, *WRITES]) as sim:  # fmt: skip
        config, rt = agent_for(tmp_path / "agent", sim)
        cfg = str(config)
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))
        apps = [a for p in g.pages("/applications") for a in p.items]
        sps = {s["appId"]: s for p in g.pages("/servicePrincipals") for s in p.items}
        ours = [a for a in apps if a["appId"] in sps]
        recreated, edited = ours[0], ours[1]
        # Children worth losing: credentials and extension properties on both apps.
        for app in (recreated, edited):
            g.post(f"/applications/{app['id']}/federatedIdentityCredentials", fic("deploy", "repo:a"))  # fmt: skip
            g.post(f"/applications/{app['id']}/federatedIdentityCredentials", fic("release", "repo:b"))  # fmt: skip
            g.post(f"/applications/{app['id']}/extensionProperties",
                   {"name": "badge", "dataType": "String", "targetObjects": ["User"]})  # fmt: skip
        want_creds = {a["id"]: creds(g, a["id"]) for a in (recreated, edited)}
        want_ext = {a["id"]: extensions(g, a["id"]) for a in (recreated, edited)}
        g.post("/policies/tokenLifetimePolicies", {"displayName": "Short tokens", "isOrganizationDefault": False,
               "definition": ['{"TokenLifetimePolicy":{"Version":1,"AccessTokenLifetime":"01:00:00"}}']})  # fmt: skip
        lifetimes = sorted(ids_of(g, "/policies/tokenLifetimePolicies"))
        claims = sorted(ids_of(g, "/policies/claimsMappingPolicies"))
        assert len(lifetimes) >= 2 and claims
        sp_a, sp_b = sps[edited["appId"]], sps[ours[2]["appId"]]
        for sp, rel, pol in ((sp_a, "tokenLifetimePolicies", lifetimes[0]),
                             (sp_b, "claimsMappingPolicies", claims[0])):  # fmt: skip
            if pol not in ids_of(g, f"/servicePrincipals/{sp['id']}/{rel}"):
                for old in ids_of(g, f"/servicePrincipals/{sp['id']}/{rel}"):
                    g.delete(f"/servicePrincipals/{sp['id']}/{rel}/{old}/$ref")
                g.post(f"/servicePrincipals/{sp['id']}/{rel}/$ref",
                       {"@odata.id": f"https://graph.microsoft.com/v1.0/policies/{rel}/{pol}"})  # fmt: skip
        devices = [d for p in g.pages("/devices") for d in p.items]
        owned = [d for d in devices if ids_of(g, f"/devices/{d['id']}/registeredOwners")]
        assert len(owned) >= 3
        dev, dev2, gone_dev = owned[:3]
        owners = ids_of(g, f"/devices/{dev['id']}/registeredOwners")
        users_of = ids_of(g, f"/devices/{dev2['id']}/registeredUsers")
        snap = backup(cfg)

        # Damage.
        g.delete(f"/applications/{recreated['id']}")
        g.delete(f"/directory/deletedItems/{recreated['id']}")  # gone for good: new appId
        base = f"/applications/{edited['id']}"
        g.delete(f"{base}/federatedIdentityCredentials/deploy")
        g.patch(f"{base}/federatedIdentityCredentials/release", {"subject": "repo:evil"})
        for ext in g.get_json(f"{base}/extensionProperties")["value"]:
            g.delete(f"{base}/extensionProperties/{ext['id']}")
        g.delete(f"/servicePrincipals/{sp_a['id']}/tokenLifetimePolicies/{lifetimes[0]}/$ref")
        g.post(f"/servicePrincipals/{sp_a['id']}/tokenLifetimePolicies/$ref",
               {"@odata.id": f"https://graph.microsoft.com/v1.0/policies/tokenLifetimePolicies/{lifetimes[1]}"})  # fmt: skip
        g.delete(f"/servicePrincipals/{sp_b['id']}/claimsMappingPolicies/{claims[0]}/$ref")
        g.delete(f"/devices/{dev['id']}/registeredOwners/{sorted(owners)[0]}/$ref")
        stranger = next(u["id"] for u in sim.tenants["contoso"].directory.users() if u["id"] not in users_of)  # fmt: skip
        g.post(f"/devices/{dev2['id']}/registeredUsers/$ref",
               {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{stranger}"})  # fmt: skip
        g.patch(f"/devices/{dev2['id']}", {"accountEnabled": not dev2["accountEnabled"], "displayName": "Lost laptop"})  # fmt: skip
        g.delete(f"/devices/{gone_dev['id']}")

        mark = settled(sim, g)  # the damage's last request is in the log
        plan = restore(cfg, snap, *kinds(*KINDS), "--dry-run", "--json").json()
        assert write_requests(sim, mark) == []
        acts = {(a["kind"], a["id"]): a for a in plan["plan"]["actions"]}
        assert acts[("device", gone_dev["id"])]["reason"].startswith("cannot be recreated")
        assert "device is gone" in acts[("deviceRegisteredOwner", gone_dev["id"])]["reason"]

        report = restore(cfg, snap, *kinds(*KINDS), "--yes", "--json").json()
        assert report["summary"]["failed"] == 0, [
            r for r in report["results"] if r["status"] == "failed"
        ]
        ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
        new_app = ids[recreated["id"]]
        assert creds(g, new_app) == want_creds[recreated["id"]]
        assert creds(g, edited["id"]) == want_creds[edited["id"]]
        assert extensions(g, new_app) == want_ext[recreated["id"]]  # new appId in the name
        assert extensions(g, edited["id"]) == want_ext[edited["id"]]
        assert ids_of(g, f"/servicePrincipals/{sp_a['id']}/tokenLifetimePolicies") == {lifetimes[0]}  # fmt: skip
        assert ids_of(g, f"/servicePrincipals/{sp_b['id']}/claimsMappingPolicies") == {claims[0]}
        assert ids_of(g, f"/devices/{dev['id']}/registeredOwners") == owners
        assert ids_of(g, f"/devices/{dev2['id']}/registeredUsers") == users_of
        now = g.get_json(f"/devices/{dev2['id']}")
        assert (now["accountEnabled"], now["displayName"]) == (dev2["accountEnabled"], dev2["displayName"])  # fmt: skip

        # Whatever still differs is in the report with its reason.
        results = {(r["kind"], r["id"]): r for r in report["results"]}
        live = run("diff", str(snap), "--live", "--config", cfg, "--json", *kinds(*KINDS)).json()
        for obj in live["objects"]:
            result = results.get((obj["kind"], obj["id"]))
            if obj["id"] == gone_dev["id"]:
                assert result is not None and result["status"] == "skipped", obj
            elif obj["status"] == "changed":
                if any(o in str(obj) or n in str(obj) for o, n in ids.items()):
                    continue  # names the recreated app or its new appId
                changes = [c for c in obj["changes"] if not c["path"].endswith("].id")]
                # (a recreated extension property or credential: Graph gives it a new id)
                props = {c["path"].split("[")[0].split(".")[0] for c in changes}
                assert result is not None and props <= set(result["not_restored"]), obj
            else:  # recreated: the old id removed, the new one added
                assert obj["id"] in ids or obj["id"] in ids.values(), obj
        again = restore(cfg, snap, *kinds(*KINDS), "--dry-run", "--json").json()
        assert [a for a in again["plan"]["actions"] if a["action"] != "skip"] == []
        rt.close()
