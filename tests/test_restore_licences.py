"""Restore of user and group licences through the CLI against a simulated tenant over real
HTTPS: direct licences removed, added since and lost with a deleted user; usage location
cleared; a group's licence removed (its members lose the inherited one). Only direct licences
are written to users; the group's come back through the group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.graph import GraphClient
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import agent_for, backup, restore, run, simulated_tenant, write_requests
from tests.test_sim_support import session, token

WRITES = ["User.ReadWrite.All", "Group.ReadWrite.All", "LicenseAssignment.ReadWrite.All"]
SELECT = "id,usageLocation,assignedLicenses,licenseAssignmentStates"


def kinds(*names: str) -> list[str]:
    return [x for k in names for x in ("--kind", k)]


def licences(g: GraphClient) -> dict[str, dict[str, Any]]:
    """User id → usage location, direct SKUs, inherited (SKU, group) pairs, effective SKUs."""
    out = {}
    for page in g.pages("/users", {"$select": SELECT}):
        for u in page.items:
            states = u.get("licenseAssignmentStates") or []
            out[u["id"]] = {
                "usageLocation": u.get("usageLocation"),
                "direct": {s["skuId"] for s in states if not s["assignedByGroup"]},
                "inherited": {
                    (s["skuId"], s["assignedByGroup"]) for s in states if s["assignedByGroup"]
                },
                "effective": {x["skuId"] for x in u.get("assignedLicenses") or []},
            }
    return out


def assign(g: GraphClient, kind: str, oid: str, add: list[str], remove: list[str]) -> None:
    g.post(f"/{kind}/{oid}/assignLicense",
           {"addLicenses": [{"skuId": s, "disabledPlans": []} for s in add], "removeLicenses": remove})  # fmt: skip


def test_drill_restores_direct_and_group_licences(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=60, groups=12, graph_permissions=[*READ_PERMISSIONS, *WRITES],
                          directory_roles=["Global Administrator"]) as sim:  # fmt: skip
        config, rt = agent_for(tmp_path / "agent", sim)
        cfg = str(config)
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))
        before = licences(g)
        groups = {
            x["id"]: x
            for p in g.pages("/groups", {"$select": "id,assignedLicenses"})
            for x in p.items
        }
        licensed_group = next(x for x in groups.values() if x.get("assignedLicenses"))
        heirs = [u for u, v in before.items() if any(gid == licensed_group["id"] for _, gid in v["inherited"])]  # fmt: skip
        direct = [u for u, v in before.items() if v["direct"]]
        skus = [s["skuId"] for s in g.get_json("/subscribedSkus")["value"]]
        assert heirs and len(direct) >= 4
        snap = backup(cfg)

        a, b, c, dd = direct[:4]
        assign(g, "users", a, [], sorted(before[a]["direct"])[:1])  # one direct licence lost
        extra = next(s for s in skus if s not in before[b]["effective"])
        assign(g, "users", b, [extra], [])  # added since: overwrite removes it
        sim.tenants["contoso"].directory.delete_user(c, permanent=True)
        assign(g, "users", dd, [], sorted(before[dd]["direct"]))
        g.patch(f"/users/{dd}", {"usageLocation": None})  # a licence needs it back first
        group_skus = [x["skuId"] for x in licensed_group["assignedLicenses"]]
        assign(g, "groups", licensed_group["id"], [], group_skus)
        assert licences(g)[heirs[0]]["inherited"] != before[heirs[0]]["inherited"]

        mark = len(sim.log.items())
        restore(cfg, snap, *kinds("user", "group"), "--dry-run", "--json")
        assert write_requests(sim, mark) == []
        report = restore(cfg, snap, *kinds("user", "group"), "--yes", "--json",
                         "--password-file", str(tmp_path / "pw.txt")).json()  # fmt: skip
        assert report["summary"]["failed"] == 0, [
            r for r in report["results"] if r["status"] == "failed"
        ]
        ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
        after = licences(g)
        for uid, want in before.items():
            assert after[ids.get(uid, uid)] == want, [
                r for r in report["results"] if r["id"] == uid
            ]
        # Usage location first, then the licence: the PATCH precedes assignLicense.
        writes = [(w.method, w.path) for w in write_requests(sim, mark) if dd in w.path]
        assert [m for m, _ in writes] == ["PATCH", "POST"] and writes[1][1].endswith(
            "assignLicense"
        )

        results = {(r["kind"], r["id"]): r for r in report["results"]}
        live = run("diff", str(snap), "--live", "--config", cfg, "--json", *kinds("user", "group")).json()  # fmt: skip
        for obj in live["objects"]:
            if obj["status"] != "changed":
                assert obj["id"] in ids or obj["id"] in ids.values(), obj
                continue
            props = {x["path"].split("[")[0].split(".")[0] for x in obj["changes"]}
            result = results.get((obj["kind"], obj["id"]))
            assert result is not None and props <= set(result["not_restored"]), obj
        again = restore(cfg, snap, *kinds("user", "group"), "--dry-run", "--json").json()
        assert [x for x in again["plan"]["actions"] if x["action"] != "skip"] == []
        rt.close()


def test_a_licence_the_tenant_no_longer_has_is_reported(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=30, groups=6, graph_permissions=[*READ_PERMISSIONS, *WRITES]) as sim:  # fmt: skip
        config, rt = agent_for(tmp_path / "agent", sim)
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))
        before = licences(g)
        user = next(u for u, v in before.items() if v["direct"])
        snap = backup(str(config))
        sku = sorted(before[user]["direct"])[0]
        assign(g, "users", user, [], [sku])
        d = sim.tenants["contoso"].directory
        with d.lock:  # the subscription ended since the snapshot
            d.objects.skus[:] = [s for s in d.objects.skus if s["skuId"] != sku]
        out = restore(str(config), snap, *kinds("user"), "--id", user, "--yes", "--json", code=10).json()  # fmt: skip
        (result,) = out["results"]
        assert result["status"] == "failed" and "no subscription for licence" in result["reason"]
        rt.close()
