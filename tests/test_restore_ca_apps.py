"""Conditional access restore through the CLI against a simulated tenant over real HTTPS: the
second permission Graph asks for beside Policy.ReadWrite.ConditionalAccess (Policy.Read.All,
or Application.Read.All) is checked before planning and listed by `permissions --write`; and
the applications a policy names by appId follow a recreated app's new appId, a policy naming
an app that stays gone is skipped with the reason, and words and Microsoft's first-party
apps pass through untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.errors import PermissionMissing
from agent.graph import GraphClient
from agent.simulator.graph.churn_objects import delete_application
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import agent_for, backup, cli, restore, simulated_tenant, write_requests
from tests.test_restore_tenant_support import settled
from tests.test_sim_support import session, token

CA = "/identity/conditionalAccess/policies"
NAMED = "/identity/conditionalAccess/namedLocations"
EXCHANGE_ONLINE = "00000002-0000-0ff1-ce00-000000000000"  # first party: no app of the tenant
KINDS = ("application", "servicePrincipal", "conditionalAccessPolicy")


def env(tmp_path: Path, permissions: list[str]) -> Any:
    return simulated_tenant(
        tmp_path / "sim", seed=5, users=40, groups=6, applications=8, devices=0,
        graph_permissions=permissions,
    )  # fmt: skip


def policy(name: str, include: list[str], exclude: list[str]) -> dict[str, Any]:
    return {
        "displayName": name,
        "state": "enabledForReportingButNotEnforced",
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": include, "excludeApplications": exclude},
            "clientAppTypes": ["all"],
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    }


def apps_of(policy: dict[str, Any]) -> tuple[list[str], list[str]]:
    apps = policy["conditions"]["applications"]
    return apps["includeApplications"], apps["excludeApplications"]


def test_ca_writes_need_policy_read_all_checked_before_planning(tmp_path: Path) -> None:
    # Reads conditional access with its own read permission; holds neither Policy.Read.All
    # nor Application.Read.All, one of which Graph needs beside the write permission.
    held = [p for p in READ_PERMISSIONS if p not in ("Policy.Read.All", "Application.Read.All")]
    held += ["Policy.Read.ConditionalAccess", "Policy.ReadWrite.ConditionalAccess"]
    with env(tmp_path, held) as sim:
        config, rt = agent_for(tmp_path / "agent", sim, kinds=("conditionalAccessPolicy",))
        handle = sim.tenants["contoso"]
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, handle))
        snap = backup(str(config))
        target = g.get_json(CA)["value"][0]
        with handle.directory.lock:
            handle.directory.policies.update("conditionalAccessPolicy", target["id"], {"state": "disabled"}, "2026-01-01T00:00:00Z")  # fmt: skip
        mark = settled(sim, g)
        kind = ("--kind", "conditionalAccessPolicy")
        plan = restore(str(config), snap, *kind, "--dry-run", "--json").json()
        [action] = plan["plan"]["actions"]
        assert (action["kind"], action["id"], action["action"]) == ("conditionalAccessPolicy", "*", "skip")  # fmt: skip
        assert action["reason"].startswith("missing Policy.Read.All")
        assert "Policy.ReadWrite.ConditionalAccess" in action["reason"]
        shown = restore(str(config), snap, *kind, "--dry-run").out
        assert "missing Policy.Read.All" in shown
        report = restore(str(config), snap, *kind, "--yes", "--json").json()
        assert [(r["status"], r["reason"]) for r in report["results"]] == [("skipped", action["reason"])]  # fmt: skip
        assert write_requests(sim, mark) == []
        # The simulated Graph refuses the write as the real one does.
        with pytest.raises(PermissionMissing):
            g.patch(f"{CA}/{target['id']}", {"state": "enabled"})
        assert g.get_json(f"{CA}/{target['id']}")["state"] == "disabled"
        rt.close()

    needs = cli("permissions", "--scope", "conditionalAccessPolicy", "--write", "--json").json()
    assert needs["write"] == ["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"]
    assert needs["restore"]["permissions"] == needs["write"]
    text = cli("permissions", "--scope", "conditionalAccessPolicy", "--write").out
    assert "Policy.ReadWrite.ConditionalAccess" in text and "Policy.Read.All" in text


def test_named_location_writes_need_policy_read_all_checked_before_planning(
    tmp_path: Path,
) -> None:
    # Graph's named location create/update pages ask for Policy.Read.All beside
    # Policy.ReadWrite.ConditionalAccess, with nothing in its place: Application.Read.All,
    # which stands in for it for conditional access policies, does not count here.
    held = [p for p in READ_PERMISSIONS if p != "Policy.Read.All"]
    held += ["Policy.Read.ConditionalAccess", "Policy.ReadWrite.ConditionalAccess"]
    assert "Application.Read.All" in held
    with env(tmp_path, held) as sim:
        config, rt = agent_for(tmp_path / "agent", sim, kinds=("namedLocation",))
        handle = sim.tenants["contoso"]
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, handle))
        snap = backup(str(config))
        target = g.get_json(NAMED)["value"][0]
        with handle.directory.lock:
            handle.directory.policies.update("namedLocation", target["id"], {"displayName": "Renamed"}, "2026-01-01T00:00:00Z")  # fmt: skip
        mark = settled(sim, g)
        kind = ("--kind", "namedLocation")
        plan = restore(str(config), snap, *kind, "--dry-run", "--json").json()
        [action] = plan["plan"]["actions"]
        assert (action["kind"], action["id"], action["action"]) == ("namedLocation", "*", "skip")
        assert action["reason"] == (
            "missing Policy.Read.All: Graph writes named locations only with it beside "
            "Policy.ReadWrite.ConditionalAccess"
        )
        report = restore(str(config), snap, *kind, "--yes", "--json").json()
        assert [(r["status"], r["reason"]) for r in report["results"]] == [("skipped", action["reason"])]  # fmt: skip
        assert write_requests(sim, mark) == []
        # The simulated Graph refuses both writes as the real one does.
        with pytest.raises(PermissionMissing):
            g.patch(f"{NAMED}/{target['id']}", {"@odata.type": target["@odata.type"], "displayName": target["displayName"]})  # fmt: skip
        with pytest.raises(PermissionMissing):
            g.post(NAMED, {"@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "New", "countriesAndRegions": ["FR"]})  # fmt: skip
        assert g.get_json(f"{NAMED}/{target['id']}")["displayName"] == "Renamed"
        rt.close()

    needs = cli("permissions", "--scope", "namedLocation", "--write", "--json").json()
    assert needs["write"] == ["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"]


def test_ca_application_references_follow_a_recreated_app(tmp_path: Path) -> None:
    writes = ["Application.ReadWrite.All", "Policy.ReadWrite.ConditionalAccess"]
    with env(tmp_path, [*READ_PERMISSIONS, *writes]) as sim:
        config, rt = agent_for(tmp_path / "agent", sim, kinds=KINDS)
        handle = sim.tenants["contoso"]
        g = GraphClient(sim.base_url, session(sim), lambda: token(sim, handle))
        sps = {sp["appId"]: sp for sp in g.get_json("/servicePrincipals")["value"]}
        back, gone = [a for a in g.get_json("/applications")["value"] if a["appId"] in sps][:2]
        follows = g.post(CA, policy("Apps: follows", [back["appId"], "Office365"], [EXCHANGE_ONLINE]))  # fmt: skip
        blocked = g.post(CA, policy("Apps: names a gone app", [gone["appId"]], []))
        words = g.post(CA, policy("Apps: words only", ["All"], [EXCHANGE_ONLINE]))
        snap = backup(str(config))
        for app in (back, gone):  # gone for good, with their service principals
            delete_application(handle.directory, app["id"], permanent=True)
        g.patch(f"{CA}/{words['id']}", {"state": "disabled"})
        mark = settled(sim, g)

        # Only `back` (and its service principal) is restored; `gone` is not.
        chosen = ["--id", back["id"], "--id", sps[back["appId"]]["id"],
                  *(x for p in (follows, blocked, words) for x in ("--id", p["id"]))]  # fmt: skip
        kinds = [x for k in KINDS for x in ("--kind", k)]
        plan = restore(str(config), snap, *kinds, *chosen, "--dry-run", "--json").json()
        assert write_requests(sim, mark) == []
        actions = {a["id"]: a for a in plan["plan"]["actions"]}
        assert actions[back["id"]]["action"] == "recreate"
        assert (actions[follows["id"]]["action"], actions[follows["id"]]["properties"]) == ("patch", ["conditions"])  # fmt: skip
        skipped = actions[blocked["id"]]
        assert skipped["action"] == "skip"
        assert f"names application {gone['appId']} ({gone['displayName']})" in skipped["reason"]
        assert "gone" in skipped["reason"] and "not part of this restore" in skipped["reason"]
        assert actions[words["id"]]["action"] == "patch"

        report = restore(str(config), snap, *kinds, *chosen, "--yes", "--json").json()
        assert report["summary"]["failed"] == 0, report["results"]
        mapped = {(o["kind"], o["old"]): o["new"] for o in report["id_map"]["objects"]}
        new_app_id = mapped[("appId", back["appId"])]  # the map carries the appId too
        assert new_app_id != back["appId"]
        assert g.get_json(f"/applications/{mapped[('application', back['id'])]}")["appId"] == new_app_id  # fmt: skip
        # The recreated app's new appId in place of the old one; words and first party as they were.
        assert apps_of(g.get_json(f"{CA}/{follows['id']}")) == ([new_app_id, "Office365"], [EXCHANGE_ONLINE])  # fmt: skip
        assert apps_of(g.get_json(f"{CA}/{blocked['id']}")) == ([gone["appId"]], [])
        assert apps_of(g.get_json(f"{CA}/{words['id']}")) == (["All"], [EXCHANGE_ONLINE])
        assert g.get_json(f"{CA}/{words['id']}")["state"] == words["state"]
        statuses = {r["id"]: r["status"] for r in report["results"]}
        assert statuses[follows["id"]] == "restored" and statuses[blocked["id"]] == "skipped"

        # A second restore finds the recreated app (same displayName) and has nothing to do.
        again = restore(str(config), snap, *kinds, *chosen, "--dry-run", "--json").json()
        writes_left = [a for a in again["plan"]["actions"] if a["action"] != "skip"]
        assert writes_left == [], writes_left
        rt.close()
