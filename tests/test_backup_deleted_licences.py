"""The recycle bin (deleted users, groups, apps, enterprise apps, AUs) and licences: what the
tenant holds at backup time, through the CLI against the simulator."""

from __future__ import annotations

from pathlib import Path

from agent.config import load_config
from agent.kinds import known_names
from agent.runtime import Runtime
from agent.simulator.graph.directory import Directory
from tests.agent_helpers import cli, simulated_tenant, state_of

DELETED = {
    "deletedUser": "user",
    "deletedGroup": "group",
    "deletedApplication": "application",
    "deletedServicePrincipal": "servicePrincipal",
    "deletedAdministrativeUnit": "administrativeUnit",
}


def _backup(config: Path) -> dict[str, int]:
    result = cli("backup", "--tenant", "contoso", "--config", str(config), "--json")
    assert result.code == 0, result.err
    snapshot = result.json()["snapshot"]
    return {k["kind"]: k["objects"] for k in snapshot["kinds"]}


def _in_bin(d: Directory) -> dict[str, int]:
    return {name: len(d.deleted_items(kind)) for name, kind in DELETED.items()}


def test_deleted_items_appear_after_soft_delete_and_leave_after_restore_or_purge(
    tmp_path: Path,
) -> None:
    from agent.demo import setup_agent

    with simulated_tenant(tmp_path / "sim", users=120, groups=20) as sim:
        d = sim.tenants["contoso"].directory
        config = setup_agent(tmp_path / "agent", sim)
        before = _backup(config)
        assert all(before.get(name, 0) == 0 for name in DELETED)
        assert before["subscribedSku"] == len(d.objects.skus) > 0

        users = [u["id"] for u in d.users()[-3:]]
        for user in users:
            d.delete_user(user)
        group = next(r["id"] for _, r in d.scan("group", 0) if "Unified" in r.get("groupTypes", ()))
        d.delete_group(group)
        app = next(r for _, r in d.scan("application", 0))
        sp = next(r["id"] for _, r in d.scan("servicePrincipal", 0) if r["appId"] == app["appId"])
        d.delete("servicePrincipal", sp)
        d.delete("application", app["id"])
        au = next(r["id"] for _, r in d.scan("administrativeUnit", 0))
        d.delete("administrativeUnit", au)
        after_delete = _backup(config)
        assert {n: after_delete.get(n, 0) for n in DELETED} == _in_bin(d)
        assert after_delete["deletedUser"] == 3 and after_delete["deletedApplication"] == 1
        rt = Runtime(load_config(config, known_kinds=known_names()))
        latest = rt.catalog.latest_snapshot("contoso")
        assert latest is not None
        state = state_of(rt, latest.id)
        binned = [rt.repository.get(b) for (kind, _), b in state.items() if kind == "deletedUser"]
        # Group-based licences are part of each group object.
        licensed = {
            oid: [lic["skuId"] for lic in rt.repository.get(b).get("assignedLicenses", [])]
            for (kind, oid), b in state.items()
            if kind == "group"
        }
        rt.close()
        with d.lock:
            want = {
                r["id"]: [lic["skuId"] for lic in r.get("assignedLicenses", [])]
                for _, r in d.scan("group", 0)
            }
        assert licensed == want and any(want.values())
        # Restore needs what can be undeleted and since when.
        assert sorted(u["id"] for u in binned) == sorted(users)
        assert all(u["deletedDateTime"] and u["userPrincipalName"] for u in binned)

        d.restore_deleted(users[0])
        d.purge_deleted(users[1])
        d.restore_deleted(group)
        d.purge_deleted(app["id"])
        after_restore = _backup(config)
        assert {n: after_restore.get(n, 0) for n in DELETED} == _in_bin(d)
        assert after_restore["deletedUser"] == 1 and after_restore.get("deletedGroup", 0) == 0
