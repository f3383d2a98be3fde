"""The whole-tenant disaster drill (issue 5, "Proof"): snapshot a small generated tenant, damage
every kind restore can write back with a random mix (fixed seed) — Graph objects and links,
conditional access and every other policy kind, the tenant configuration, Groups general
settings (admin portal), DLs, mail-enabled security groups and Exchange/Defender settings
(bridge) — restore the whole snapshot in one run (`restore --snapshot S --yes`, no --kind),
and check with the agent's own live compare that the tenant equals the snapshot except what
the restore report lists with its reason.

The kinds come from the restorer registry (ready()); tests/drill_damage.py picks each kind's
damage hook by its family. A ready kind without damage fails the drill unless UNDAMAGED says
why, so a kind registered later cannot be forgotten here.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from agent.exchange.psrp_bridge import PsrpExchangeBridge
from agent.graph import GraphClient
from agent.kinds import BY_NAME
from agent.restore.restorers import ready, restorer_for
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import agent_for, backup, cli, run, simulated_tenant
from tests.drill_damage import Drill, damage_synced_user, hook_for, prepare
from tests.test_restore_e2e import WRITES, cloud, plain_groups
from tests.test_sim_support import session, token

# Ready kinds the drill does not damage, and why.
UNDAMAGED: dict[str, str] = {
    "directoryRole": "activated built-in roles cannot be deleted",
    "directoryRoleMember": "restored through roleAssignment, which the drill damages",
    "administrativeUnitScopedRoleMember": "restored through roleAssignment",
}
# Stamps Exchange sets at every write: not settings (the bridge restorers ignore them).
STAMPS = {"WhenChanged", "WhenChangedUTC"}
SERVICE_ACCOUNT_ROLES = ["Cloud Application Administrator", "Application Administrator"]


def write_permissions() -> list[str]:
    """What the drill's app is granted: each ready Graph kind's first write permission."""
    found = {
        restorer_for(BY_NAME[k]).write_permissions(BY_NAME[k])[:1]
        for k in ready()
        if BY_NAME[k].channel == "graph"
    }
    return sorted({p for perms in found for p in perms})


def set_up_exchange_role_group(sim, rt) -> None:  # type: ignore[no-untyped-def]
    """The least-privilege role group for restore (ps_scripts New-EbRoleGroupSetup, run once
    by an Exchange administrator); Exchange Administrator is then taken from the app."""
    handle = sim.tenants["contoso"]
    with PsrpExchangeBridge(rt.config.tenant("contoso")) as bridge:
        setup = bridge.call("New-EbRoleGroupSetup", {
            "AppId": handle.client_id, "ServicePrincipalObjectId": "0f0e0d0c-0b0a-4909-8807-060504030201",
            "DisplayName": "entra-backup", "RoleGroupName": "entra-backup restore",
            "Mode": "ReadWrite"}, idempotent=False)  # fmt: skip
    assert setup.ok, setup.errors
    handle.exchange.app_exchange_admin = False


def graph(sim: Any) -> GraphClient:
    return GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))


def same(item: Any, ids: dict[str, str]) -> Any:
    """A link as it is once restored: without what the server assigns on a recreate, naming
    recreated objects by their new ids."""
    if not isinstance(item, dict):
        return item
    text = json.dumps({k: v for k, v in item.items() if k not in ("id", "createdDateTime")})
    for old, new in ids.items():
        text = text.replace(old, new)
    return json.loads(text)


def unexplained_changes(
    obj: dict[str, Any], why: dict[tuple[str, str], dict[str, Any]], ids: dict[str, str]
) -> list[Any]:
    """What the live compare still shows for ``obj`` that the report does not explain."""
    result = why.get((obj["kind"], obj["id"]), {})
    if result.get("status") == "skipped" and result.get("reason"):
        return []  # listed, with the reason nothing was written
    if obj["status"] != "changed":  # a recreate: old id removed, new id added
        if obj["id"] in ids or obj["id"] in ids.values() or result.get("reason") or result.get("not_restored"):  # fmt: skip
            return []
        return [(obj["kind"], obj["id"], obj["status"])]
    # A link recreated under a new server-assigned id (appRoleAssignedTo, extension
    # properties): the same link, as its other fields say.
    gone = [same(c["old"], ids) for c in obj["changes"] if c["op"] == "removed"]
    made = [same(c["new"], ids) for c in obj["changes"] if c["op"] == "added"]
    out = []
    for change in obj["changes"]:
        prop = change["path"].split("[")[0].split(".")[0]
        if prop in STAMPS or prop in (result.get("not_restored") or {}):
            continue
        if change["op"] == "changed" and change["path"].endswith("].id"):
            continue
        if change["op"] == "changed" and ids.get(str(change["old"])) == change["new"]:
            continue  # points at the recreated object (a manager): same object, new id
        if change["op"] == "removed" and same(change["old"], ids) in made:
            continue
        if change["op"] == "added" and same(change["new"], ids) in gone:
            continue
        if any(o in change["path"] or n in change["path"] for o, n in ids.items()):
            continue  # names a recreated object: same object, new id
        if any(o in json.dumps(change) and n in json.dumps(change) for o, n in ids.items()):
            continue  # a value naming a recreated object by its new id
        out.append((obj["kind"], obj["id"], change))
    return out


def test_whole_tenant_drill_restores_every_ready_kind(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=40, groups=10, administrative_units=3,
                          applications=8, distribution_groups=3, mail_security_groups=2,
                          graph_permissions=[*READ_PERMISSIONS, *write_permissions()],
                          directory_roles=["Global Administrator"], service_account=True,
                          service_account_roles=SERVICE_ACCOUNT_ROLES) as sim:  # fmt: skip
        config_path, rt = agent_for(tmp_path / "agent", sim, kinds=("entra", "exchange", "defender"))  # fmt: skip
        config = str(config_path)
        set_up_exchange_role_group(sim, rt)
        drill = Drill(sim, graph(sim), random.Random(2026))
        prepare(drill)
        snap = backup(config)

        kinds = sorted(ready())
        hooks = {k: hook_for(BY_NAME[k]) for k in kinds if k not in UNDAMAGED}
        assert [k for k, h in hooks.items() if h is None] == [], "ready kinds without damage"
        damaged: dict[str, list[str]] = {}
        # Links first, then objects (a deleted parent has no links left to cut).
        for name in sorted(hooks, key=lambda k: not BY_NAME[k].parent):
            damaged[name] = hooks[name](drill, BY_NAME[name])  # type: ignore[misc]
        damaged["user"] += damage_synced_user(drill)
        # Every ready kind damaged, or listed with the reason it is not.
        undamaged = sorted(k for k in hooks if not damaged[k])
        assert undamaged == [], f"ready kinds the drill did not damage: {undamaged}"

        out = cli("restore", "--tenant", "contoso", "--snapshot", str(snap), "--config", config,
                  "--yes", "--json", "--password-file", str(tmp_path / "passwords.txt"))  # fmt: skip
        report = out.json()
        failed = [r for r in report["results"] if r["status"] == "failed"]
        brief = [(r["kind"], r["id"], r["action"], r["reason"]) for r in failed]
        assert (brief, out.code) == ([], 0), json.dumps([brief, damaged], indent=1)
        # Links to the synced user deleted in AD are left out, each saying why (not a 404).
        gone = f"target {drill.made['synced']} was not restored: synced from on-premises"
        told = {r["kind"] for r in report["results"] if gone in json.dumps(r)}
        assert {"groupMember", "groupOwner", "userManager"} <= told, told
        ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
        why = {(r["kind"], r["id"]): r for r in report["results"]}
        why.update({(r["kind"], r.get("new_id")): r for r in report["results"] if r.get("new_id")})
        why.update({(r["kind"], ids[r["id"]]): r for r in report["results"] if r["id"] in ids})

        live = run("diff", str(snap), "--live", "--config", config, "--json",
                   *[x for k in kinds for x in ("--kind", k)]).json()  # fmt: skip
        unexplained = [x for obj in live["objects"] for x in unexplained_changes(obj, why, ids)]
        brief = [(k, i, c if isinstance(c, str) else (c["op"], c["path"])) for k, i, c in unexplained]  # fmt: skip
        assert brief == [], json.dumps([unexplained, damaged], indent=1)
        again = cli("restore", "--tenant", "contoso", "--snapshot", str(snap), "--config", config,
                    "--dry-run", "--json").json()  # fmt: skip
        left = [(a["kind"], a["id"], a["action"], a["properties"], a["add"], a["remove"])
                for a in again["plan"]["actions"] if a["action"] != "skip"]  # fmt: skip
        assert left == [], json.dumps(left)
        rt.close()


def test_links_to_a_synced_user_that_stays_deleted_are_skipped_with_its_reason(tmp_path: Path) -> None:  # fmt: skip
    """A user synced from on-premises AD deleted there (sync soft-deletes it in Entra): restore
    does not undelete it, so its memberships, ownerships and reports' manager link cannot be
    written back — each is left out naming the user and why, the rest is restored."""
    with simulated_tenant(tmp_path / "sim", users=60, groups=12,
                          graph_permissions=[*READ_PERMISSIONS, *WRITES],
                          directory_roles=["Global Administrator"]) as sim:  # fmt: skip
        config_path, rt = agent_for(tmp_path / "agent", sim)
        config, d = str(config_path), sim.tenants["contoso"].directory
        groups = {g["id"] for g in plain_groups(d)}
        synced = next(
            u["id"]
            for u in d.users()
            if u.get("onPremisesSyncEnabled")
            and groups & {g for g in groups if u["id"] in d.members(g)}
        )
        member_of = sorted(g for g in groups if synced in d.members(g))
        cloud_user = next(u["id"] for u in cloud(d) if u["id"] != synced)
        other = next(g for g in sorted(groups) if synced not in d.members(g))
        d.add_owner(member_of[0], synced)
        d.set_manager(cloud_user, synced)
        snap = backup(config)
        d.delete_user(synced)  # as Entra Connect does when AD deletes it
        gone_member = sorted(d.members(other))[0]
        d.remove_member(other, gone_member)  # an ordinary change the same restore undoes
        kinds = [x for k in ("user", "groupMember", "groupOwner", "userManager") for x in ("--kind", k)]  # fmt: skip
        plan = cli("restore", "--tenant", "contoso", "--snapshot", str(snap), "--config", config,
                   "--dry-run", "--json", *kinds).json()  # fmt: skip
        actions = {(a["kind"], a["id"]): a for a in plan["plan"]["actions"]}
        assert actions[("user", synced)]["action"] == "skip"
        why = f"target {synced} was not restored: synced from on-premises Active Directory"
        for kind, pid in [("groupMember", g) for g in member_of] + [("groupOwner", member_of[0]), ("userManager", cloud_user)]:  # fmt: skip
            action = actions[(kind, pid)]
            assert synced not in action["add"], action
            assert action["action"] == "skip" and action["reason"].startswith(why), action
        out = cli("restore", "--tenant", "contoso", "--snapshot", str(snap), "--config", config,
                  "--yes", "--json", *kinds)  # fmt: skip
        report = out.json()
        assert (out.code, report["summary"]["failed"]) == (0, 0), report["results"]
        results = {(r["kind"], r["id"]): r for r in report["results"]}
        assert results[("groupMember", member_of[0])]["status"] == "skipped"
        assert results[("groupMember", other)]["status"] == "restored"
        assert gone_member in d.members(other) and synced not in d.members(member_of[0])
        rt.close()
