"""Restore of directory roles through the CLI against a simulated tenant over real HTTPS: custom
role definitions, built-in role assignments (tenant and AU scope, to a recreated user), PIM
eligibility; role members and AU scoped role members come back through the assignments;
dry-run writes nothing; missing permission and licence are plan skips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.graph import GraphClient
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import agent_for, backup, restore, run, simulated_tenant, write_requests
from tests.test_sim_support import session, token

RM = "/roleManagement/directory"
ROLE_KINDS = ("user", "roleDefinition", "roleAssignment", "roleEligibilitySchedule",
              "directoryRole", "directoryRoleMember", "administrativeUnitScopedRoleMember")  # fmt: skip
WRITES = ["User.ReadWrite.All", "RoleManagement.ReadWrite.Directory"]
DEF_PROPS = ("displayName", "description", "isEnabled", "rolePermissions")
Key = tuple[str, str, str]


def kinds(*names: str) -> list[str]:
    return [x for k in names for x in ("--kind", k)]


def tenant(tmp: Path, *, writes: list[str] = WRITES, **spec: Any) -> Any:
    return simulated_tenant(tmp / "sim", users=80, groups=16, administrative_units=4,
                            graph_permissions=[*READ_PERMISSIONS, *writes],
                            directory_roles=["Global Administrator"], **spec)  # fmt: skip


def graph(sim: Any) -> GraphClient:
    return GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))


def listing(g: GraphClient, what: str) -> list[dict[str, Any]]:
    return [r for page in g.pages(f"{RM}/{what}") for r in page.items]


def held(rows: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    return {(r["principalId"], r["roleDefinitionId"], r["directoryScopeId"]): r for r in rows}


def mapped(keys: dict[Key, Any], ids: dict[str, str]) -> set[Key]:
    m = lambda x: ids.get(x, x)  # noqa: E731
    return {(m(p), m(r), "/".join(m(part) for part in s.split("/"))) for p, r, s in keys}


def test_drill_restores_role_definitions_assignments_and_eligibility(tmp_path: Path) -> None:
    with tenant(tmp_path) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        config_s, g, d = str(config), graph(sim), sim.tenants["contoso"].directory
        definitions = {r["id"]: r for r in listing(g, "roleDefinitions")}
        custom = [r for r in definitions.values() if not r["isBuiltIn"]]
        assignments = held(listing(g, "roleAssignments"))
        eligible = held(listing(g, "roleEligibilitySchedules"))
        built_in_held = [
            k for k in assignments if definitions[k[1]]["isBuiltIn"] and d.kind_of(k[0]) == "user"
        ]
        tenant_scope = [k for k in built_in_held if k[2] == "/"]
        au_scope = [k for k in built_in_held if k[2] != "/"]
        assert len(custom) >= 2 and len(tenant_scope) >= 3 and au_scope and eligible
        snap = backup(config_s)

        # Damage: a custom role deleted (its assignments first: Graph refuses a role in
        # use), another edited; built-in assignments removed at tenant and AU scope; a role
        # holder deleted for good; an assignment and an eligibility added since; one
        # eligibility removed.
        gone_role, edited_role = custom[0], custom[1]
        for key, row in assignments.items():
            if key[1] == gone_role["id"]:
                g.delete(f"{RM}/roleAssignments/{row['id']}")
        g.delete(f"{RM}/roleDefinitions/{gone_role['id']}")
        g.patch(f"{RM}/roleDefinitions/{edited_role['id']}", {"description": "defaced",
                "rolePermissions": [{"allowedResourceActions": ["microsoft.directory/users/delete"]}]})  # fmt: skip
        removed = [tenant_scope[0], au_scope[0]]
        for key in removed:
            g.delete(f"{RM}/roleAssignments/{assignments[key]['id']}")
        holder = next(k[0] for k in tenant_scope[1:] if k[0] not in {r[0] for r in removed})
        d.delete_user(holder, permanent=True)
        newcomer = next(
            u["id"] for u in d.users()
            if u["userType"] == "Member" and u["id"] not in {k[0] for k in assignments}
        )  # fmt: skip
        extra = g.post(f"{RM}/roleAssignments", {"principalId": newcomer, "directoryScopeId": "/",
                       "roleDefinitionId": tenant_scope[0][1]})  # fmt: skip
        lost = next(iter(eligible))
        request = {"principalId": lost[0], "roleDefinitionId": lost[1], "directoryScopeId": "/"}
        g.post(f"{RM}/roleEligibilityScheduleRequests", {**request, "action": "adminRemove"})
        g.post(f"{RM}/roleEligibilityScheduleRequests", {**request, "action": "adminAssign",
               "principalId": newcomer, "scheduleInfo": {"expiration": {"type": "noExpiration"}}})  # fmt: skip

        mark = len(sim.log.items())
        plan = restore(config_s, snap, *kinds(*ROLE_KINDS), "--dry-run", "--json").json()
        assert write_requests(sim, mark) == []  # dry-run writes nothing
        acts = {(a["kind"], a["id"]): a for a in plan["plan"]["actions"]}
        assert acts[("roleDefinition", gone_role["id"])]["action"] == "recreate"
        assert acts[("roleDefinition", edited_role["id"])]["action"] == "patch"
        assert acts[("roleAssignment", extra["id"])]["action"] == "delete"
        assert acts[("roleEligibilitySchedule", eligible[lost]["id"])]["action"] == "recreate"
        members = [a for a in plan["plan"]["actions"] if a["kind"] == "directoryRoleMember"]
        assert members and all("through roleAssignment" in a["reason"] for a in members)

        report = restore(config_s, snap, *kinds(*ROLE_KINDS), "--yes", "--json",
                         "--password-file", str(tmp_path / "pw.txt")).json()  # fmt: skip
        assert report["summary"]["failed"] == 0, [
            r for r in report["results"] if r["status"] == "failed"
        ]
        ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
        assert holder in ids and gone_role["id"] in ids

        # Live equals the snapshot: definitions (writable properties), every assignment
        # (the recreated holder under its new id, built-in roles at both scopes), eligibility.
        now_defs = {r["id"]: r for r in listing(g, "roleDefinitions")}
        for role in custom:
            live = now_defs[ids.get(role["id"], role["id"])]
            assert {p: live.get(p) for p in DEF_PROPS} == {p: role.get(p) for p in DEF_PROPS}
        assert set(held(listing(g, "roleAssignments"))) == mapped(assignments, ids)
        now_eligible = held(listing(g, "roleEligibilitySchedules"))
        assert set(now_eligible) == mapped(eligible, ids)
        assert now_eligible[lost]["scheduleInfo"] == eligible[lost]["scheduleInfo"]
        members_of = {
            r["roleTemplateId"]: {
                m["id"] for m in g.get_json(f"/directoryRoles/{r['id']}/members")["value"]
            }
            for r in g.get_json("/directoryRoles")["value"]
        }
        assert removed[0][0] in members_of[removed[0][1]]
        assert ids[holder] in set().union(*members_of.values())

        # Whatever still differs is in the report with its reason.
        listed = {(r["kind"], r["id"]): r for r in report["results"]}
        live = run("diff", str(snap), "--live", "--config", config_s, "--json",
                   *kinds(*ROLE_KINDS[1:])).json()  # fmt: skip
        for obj in live["objects"]:
            oid = obj["id"]
            if obj["kind"] in ("directoryRoleMember", "administrativeUnitScopedRoleMember"):
                continue  # links naming the recreated holder: same user, new id
            if obj["status"] == "changed":
                result = listed[(obj["kind"], oid)]
                props = {c["path"].split("[")[0].split(".")[0] for c in obj["changes"]}
                assert props <= set(result["not_restored"]), (obj, result)
            else:  # recreated: the old id removed, the new one added
                assert oid in ids or oid in ids.values(), obj

        again = restore(config_s, snap, *kinds(*ROLE_KINDS), "--dry-run", "--json").json()
        assert [a for a in again["plan"]["actions"] if a["action"] not in ("skip",)] == []
        rt.close()


def test_built_in_role_definitions_are_never_written(tmp_path: Path) -> None:
    with tenant(tmp_path) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        d = sim.tenants["contoso"].directory
        snap = backup(str(config))
        store = d.tenant_config
        built_in = next(r for r in store.role_definitions.values() if r["isBuiltIn"])
        with d.lock:  # Microsoft changed a built-in role since the snapshot
            built_in["description"] = "Updated by Microsoft"
            built_in["version"] = "2"
        mark = len(sim.log.items())
        out = restore(str(config), snap, *kinds("roleDefinition"), "--yes", "--json").json()
        assert write_requests(sim, mark) == []
        (result,) = out["results"]
        assert result["status"] == "skipped" and result["reason"].startswith("built-in")
        rt.close()


@pytest.mark.parametrize("case", ["no permission", "not licensed"])
def test_kinds_the_app_cannot_write_are_skipped_with_the_reason(tmp_path: Path, case: str) -> None:
    writes = ["User.ReadWrite.All"] if case == "no permission" else WRITES
    with tenant(tmp_path, writes=writes, entra_premium=case != "not licensed") as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        g = graph(sim)
        snap = backup(str(config))
        row = next(r for r in listing(g, "roleAssignments"))
        d = sim.tenants["contoso"].directory
        d.tenant_config.custom_assignments.clear()  # damage without the app's permission
        d.tenant_config.eligibility.clear()
        with d.lock:
            for rel in d.objects.links["directoryRole.members"].values():
                rel.discard(row["principalId"])
        mark = len(sim.log.items())
        out = restore(str(config), snap, *kinds("roleAssignment", "roleEligibilitySchedule"),
                      "--yes", "--json").json()  # fmt: skip
        writes = write_requests(sim, mark)
        reasons = {r["kind"]: r["reason"] for r in out["results"] if r["id"] == "*"}
        if case == "no permission":
            assert reasons["roleAssignment"] == "missing RoleManagement.ReadWrite.Directory"
            assert writes == []
            assert reasons["roleEligibilitySchedule"].startswith("missing ")
        else:
            assert "not licensed" in reasons["roleEligibilitySchedule"]
            assert writes and {w.path.rsplit("/", 1)[-1] for w in writes} == {"roleAssignments"}
            assert out["summary"]["failed"] == 0
            assert (row["principalId"], row["roleDefinitionId"], row["directoryScopeId"]) in held(
                listing(g, "roleAssignments")
            )
        rt.close()


def test_merge_gives_back_removed_assignments_and_keeps_new_ones(tmp_path: Path) -> None:
    with tenant(tmp_path) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        g, d = graph(sim), sim.tenants["contoso"].directory
        before = held(listing(g, "roleAssignments"))
        snap = backup(str(config))
        key = next(k for k in before if k[2] == "/")
        g.delete(f"{RM}/roleAssignments/{before[key]['id']}")
        newcomer = next(u["id"] for u in d.users() if u["userType"] == "Member" and u["id"] not in {k[0] for k in before})  # fmt: skip
        new = (newcomer, key[1], "/")
        g.post(f"{RM}/roleAssignments", dict(zip(("principalId", "roleDefinitionId", "directoryScopeId"), new, strict=True)))  # fmt: skip
        out = restore(str(config), snap, *kinds("roleAssignment"), "--mode", "merge", "--yes", "--json").json()  # fmt: skip
        assert [r["action"] for r in out["results"]] == ["recreate"]
        assert set(held(listing(g, "roleAssignments"))) == set(before) | {new}
        rt.close()
