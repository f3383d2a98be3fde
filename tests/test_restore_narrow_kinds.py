"""A restore of a few kinds (--kind groupMember …) reads only those kinds live, yet knows
whether the objects its links name still exist: a member, owner or manager that is gone and
not part of the restore is left out with "target X was not restored: <why>", a group that is
gone leaves its member list skipped, a role assignment whose principal is gone is skipped
naming it, and nothing is sent that Graph would refuse with 404.
Through the CLI against the simulated tenant over real HTTPS."""

from __future__ import annotations

from pathlib import Path

from agent.simulator.exchange import dl
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import agent_for, backup, cli, restore, write_requests
from tests.exchange_agent_helpers import exchange_agent
from tests.test_restore_e2e import WRITES, cloud, make_env, plain_groups
from tests.test_restore_exchange import ADMIN, member_ids
from tests.test_restore_roles import RM, graph, held, listing, tenant


def test_a_narrow_restore_leaves_out_links_to_objects_it_did_not_read_that_are_gone(
    tmp_path: Path,
) -> None:
    with make_env(tmp_path, ["Global Administrator"]) as sim:
        config_path, rt = agent_for(tmp_path / "agent", sim)
        config, d = str(config_path), sim.tenants["contoso"].directory
        groups = sorted(g["id"] for g in plain_groups(d))
        users = [u["id"] for u in cloud(d)]
        # `hard` goes for good, `binned` to the recycle bin: both are members somewhere.
        hard, binned = [u for u in users if any(u in d.members(g) for g in groups)][:2]
        hard_of = sorted(g for g in groups if hard in d.members(g))
        binned_of = sorted(g for g in groups if binned in d.members(g))
        report_to = next(u for u in users if u not in (hard, binned))
        d.set_manager(report_to, hard)
        # An ordinary change the same restore undoes, and a group that is gone itself.
        other = next(g for g in groups if not {hard, binned} & d.members(g) and d.members(g))
        dropped = next(g for g in groups if g != other and not {hard, binned} & d.members(g))
        snap = backup(config)
        d.delete_user(hard, permanent=True)
        d.delete_user(binned)
        removed = sorted(d.members(other))[0]
        d.remove_member(other, removed)
        d.delete_group(dropped, permanent=True)
        mark = len(sim.log.items())

        kinds = [x for k in ("groupMember", "userManager") for x in ("--kind", k)]
        args = ("restore", "--tenant", "contoso", "--snapshot", str(snap), "--config", config)
        plan = cli(*args, *kinds, "--dry-run", "--json").json()
        actions = {(a["kind"], a["id"]): a for a in plan["plan"]["actions"]}
        for who, of in ((hard, hard_of), (binned, binned_of)):
            why = f"target {who} was not restored: the user is gone and not part of this restore"
            for group in of:
                action = actions[("groupMember", group)]
                assert who not in action["add"], action
                assert why in action["not_written"]["members"], action
        manager = actions[("userManager", report_to)]
        assert manager["action"] == "skip" and manager["reason"].startswith(f"target {hard} ")
        assert actions[("groupMember", other)]["add"] == [removed]
        gone = actions[("groupMember", dropped)]
        assert gone["action"] == "skip" and gone["reason"].startswith("its group is gone")
        assert write_requests(sim, mark) == []

        out = cli(*args, *kinds, "--yes", "--json")
        report = out.json()
        assert (out.code, report["summary"]["failed"]) == (0, 0), report["results"]
        results = {(r["kind"], r["id"]): r for r in report["results"]}
        assert results[("groupMember", other)]["status"] == "restored"
        assert removed in d.members(other)
        written = " ".join(w.path for w in write_requests(sim, mark))
        assert hard not in written and binned not in written and dropped not in written
        assert [w for w in write_requests(sim, mark) if w.status >= 400] == []
        rt.close()


def test_a_narrow_restore_skips_role_assignments_whose_principal_is_gone(tmp_path: Path) -> None:
    """--kind roleAssignment reads no users, yet an assignment whose user is gone for good is
    a skip naming the user; another removed assignment is written again."""
    with tenant(tmp_path) as sim:
        config_path, rt = agent_for(tmp_path / "agent", sim)
        config, g, d = str(config_path), graph(sim), sim.tenants["contoso"].directory
        definitions = {r["id"]: r for r in listing(g, "roleDefinitions")}
        users = [
            (key, row)
            for key, row in held(listing(g, "roleAssignments")).items()
            if definitions[key[1]]["isBuiltIn"] and key[2] == "/" and d.kind_of(key[0]) == "user"
        ]
        (lost, _), (removed, row) = users[0], next(u for u in users if u[0][0] != users[0][0][0])
        snap = backup(config)
        d.delete_user(lost[0], permanent=True)
        g.delete(f"{RM}/roleAssignments/{row['id']}")
        mark = len(sim.log.items())

        args = ("restore", "--tenant", "contoso", "--snapshot", str(snap), "--config", config,
                "--kind", "roleAssignment")  # fmt: skip
        plan = cli(*args, "--dry-run", "--json").json()["plan"]["actions"]
        skipped = [a for a in plan if a["action"] == "skip" and f"names user {lost[0]}" in a["reason"]]  # fmt: skip
        assert skipped and all("gone and will not be restored" in a["reason"] for a in skipped)
        assert [a for a in plan if a["action"] == "recreate"], plan
        assert write_requests(sim, mark) == []
        out = cli(*args, "--yes", "--json")
        assert (out.code, out.json()["summary"]["failed"]) == (0, 0), out.json()["results"]
        assert removed in held(listing(g, "roleAssignments"))
        assert [w for w in write_requests(sim, mark) if w.status >= 400] == []  # no 404 tried
        rt.close()


def test_a_narrow_dl_member_restore_leaves_out_a_member_that_is_gone(tmp_path: Path) -> None:
    """--kind distributionGroupMember reads no users: a DL member deleted for good is left out
    of the member list with its reason (Exchange would refuse it); a removed member comes back."""
    spec = {"graph_permissions": [*READ_PERMISSIONS, *WRITES], "distribution_groups": 4}
    with exchange_agent(tmp_path, kinds=("user", "group", "exchange"), spec=spec) as (
        sim, handle, config_path, _rt,
    ):  # fmt: skip
        org, d, config = handle.exchange, handle.directory, str(config_path)
        with org.lock:
            org.sync()
            record = sorted(
                (r for r in org.dls.values() if r.recipient_type == "MailUniversalDistributionGroup"),
                key=lambda r: r.name,
            )[0]  # fmt: skip
            users = sorted(r["id"] for _, r in d.scan("user", 0) if r.get("mail") and not r.get("onPremisesSyncEnabled"))  # fmt: skip
            gone, back, kept = users[:3]
            dl.update_members(org, {"Identity": record.guid, "Members": [gone, back, kept], **ADMIN}, True, None)  # fmt: skip
        snap = backup(config)
        d.delete_user(gone, permanent=True)
        with org.lock:
            dl.update_members(org, {"Identity": record.guid, "Members": [kept], **ADMIN}, True, None)  # fmt: skip
        kinds = ("--kind", "distributionGroup", "--kind", "distributionGroupMember")
        plan = restore(config, snap, "--dry-run", "--json", *kinds).json()["plan"]["actions"]
        [action] = [a for a in plan if a["kind"] == "distributionGroupMember"]
        assert action["add"] == [back]
        why = f"target {gone} was not restored: the user is gone and not part of this restore"
        assert action["not_written"]["members"] == why
        report = restore(config, snap, "--yes", "--json", *kinds).json()
        assert report["summary"]["failed"] == 0, report["results"]
        assert member_ids(org, record.guid) == sorted([back, kept])
