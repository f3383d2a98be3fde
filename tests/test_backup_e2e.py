"""End to end: the agent backs up a simulated tenant over real HTTPS, msal and requests."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from agent.collect.base import Cancelled
from agent.jobs.backup import run_backup
from tests.agent_helpers import agent_for, cli, counts, simulated_tenant, state_of


@pytest.fixture
def env(tmp_path: Path):
    with simulated_tenant(tmp_path / "sim") as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        yield sim, sim.tenants["contoso"].directory, config, rt
        rt.close()


def snapshot_counts(rt, snapshot_id: int) -> dict[str, int]:
    """Objects per kind for the user/group kinds this module checks against the tenant."""
    wanted = ("user", "group", "groupMember", "groupOwner")
    return {k: v for k, v in counts(rt, snapshot_id).items() if k in wanted}


def live_counts(directory) -> dict[str, int]:
    groups = list(directory.groups())
    return {
        "user": len(list(directory.users())),
        "group": len(groups),
        "groupMember": len(groups),
        "groupOwner": len(groups),
    }


def test_full_backup_captures_every_user_group_membership_and_owner(env) -> None:
    sim, directory, config, rt = env
    result = cli("backup", "--tenant", "contoso", "--config", str(config), "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["status"] == "succeeded"
    assert snapshot_counts(rt, report["snapshot"]["id"]) == live_counts(directory)

    # Content: a member list and a user's properties are what the tenant holds.
    group = next(g for g in directory.groups() if len(directory.members(g["id"])) > 3)
    out = Path(config).parent / "export"
    assert (
        cli(
            "export", str(report["snapshot"]["id"]), "--out", str(out), "--config", str(config)
        ).code
        == 0
    )
    import json

    exported = json.loads((out / "groupMember" / f"{group['id']}.json").read_text())
    assert {m["id"] for m in exported["members"]} == set(directory.members(group["id"]))
    user = next(iter(directory.users()))
    exported_user = json.loads((out / "user" / f"{user['id']}.json").read_text())
    assert exported_user["userPrincipalName"] == user["userPrincipalName"]


def test_incremental_snapshot_equals_a_full_one(env) -> None:
    sim, directory, config, rt = env
    first = run_backup(rt, "contoso", force_full=True)
    directory.churn(random.Random(11), 0.05)
    incremental = run_backup(rt, "contoso")
    assert incremental.mode == "incremental" and incremental.status == "succeeded"
    full = run_backup(rt, "contoso", force_full=True)
    assert state_of(rt, incremental.snapshot.id) == state_of(rt, full.snapshot.id)
    assert state_of(rt, incremental.snapshot.id) != state_of(rt, first.snapshot.id)
    # The full run after an unchanged tenant changes nothing.
    assert all(k.added == k.changed == k.removed == 0 for k in full.snapshot.kinds)
    assert incremental.graph["requests"] < full.graph["requests"]


def test_incremental_sees_adds_edits_deletes_and_membership_changes(env) -> None:
    sim, directory, config, rt = env
    run_backup(rt, "contoso", force_full=True)
    users = list(directory.users())
    groups = [g for g in directory.groups() if not g.get("membershipRule")]
    new_user = directory.create_user(
        displayName="Ada Lovelace",
        userPrincipalName=f"ada@{sim.tenants['contoso'].domain}",
        mailNickname="ada",
        accountEnabled=True,
    )
    directory.update_user(users[0]["id"], jobTitle="Chief Restorer")
    directory.delete_user(users[1]["id"])  # soft delete
    directory.delete_user(users[2]["id"], permanent=True)
    directory.add_member(groups[0]["id"], new_user["id"])
    removed_member = next(iter(directory.members(groups[1]["id"])))
    directory.remove_member(groups[1]["id"], removed_member)

    report = run_backup(rt, "contoso")
    state = state_of(rt, report.snapshot.id)
    assert ("user", new_user["id"]) in state
    assert ("user", users[1]["id"]) not in state and ("user", users[2]["id"]) not in state
    assert rt.repository.get(state[("user", users[0]["id"])])["jobTitle"] == "Chief Restorer"
    members0 = rt.repository.get(state[("groupMember", groups[0]["id"])])["members"]
    assert new_user["id"] in {m["id"] for m in members0}
    members1 = rt.repository.get(state[("groupMember", groups[1]["id"])])["members"]
    assert removed_member not in {m["id"] for m in members1}
    user_kind = next(k for k in report.snapshot.kinds if k.kind == "user")
    assert (user_kind.added, user_kind.changed, user_kind.removed) == (1, 1, 2)


def test_second_full_backup_of_an_unchanged_tenant_adds_almost_no_bytes(env) -> None:
    sim, directory, config, rt = env
    run_backup(rt, "contoso", force_full=True)
    blobs, size = rt.repository.stats()
    run_backup(rt, "contoso", force_full=True)
    blobs2, size2 = rt.repository.stats()
    assert blobs2 == blobs
    assert size2 - size < size * 0.01


def test_repository_never_holds_plaintext(env) -> None:
    sim, directory, config, rt = env
    run_backup(rt, "contoso", force_full=True)
    upn = next(iter(directory.users()))["userPrincipalName"].encode()
    files = [p for p in rt.repository_path.rglob("*") if p.is_file()]
    assert rt.repository.stats()[0] > 100  # packs and their index, every object in them
    assert any(p.suffix == ".pack" for p in files)
    assert not any(upn in p.read_bytes() for p in files)
    # The database holds ids and blob names, never the directory data itself.
    rt.close()
    for db in Path(rt.config.agent.data_dir).glob("agent.db*"):  # the WAL included
        assert upn not in db.read_bytes()


def test_verify_names_a_corrupted_blob_and_what_it_holds(env) -> None:
    sim, directory, config, rt = env
    report = run_backup(rt, "contoso", force_full=True)
    assert cli("verify", "--config", str(config)).code == 0
    user = next(iter(directory.users()))
    blob_id = state_of(rt, report.snapshot.id)[("user", user["id"])]
    pack, offset, length = rt.repository.location(blob_id) or pytest.fail("not stored")
    data = bytearray(pack.read_bytes())
    data[offset + length // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    result = cli("verify", "--config", str(config))
    assert result.code != 0
    assert blob_id in result.out and user["id"] in result.out
    assert "Traceback" not in result.out + result.err


def test_interrupted_job_leaves_earlier_snapshots_intact_and_next_run_succeeds(env) -> None:
    sim, directory, config, rt = env
    first = run_backup(rt, "contoso", force_full=True)
    before = state_of(rt, first.snapshot.id)
    directory.churn(random.Random(5), 0.05)
    cancel = threading.Event()

    def progress(kind: str, done: int) -> None:
        if kind == "group":
            cancel.set()  # stop once users are staged and groups are under way

    with pytest.raises(Cancelled):
        run_backup(rt, "contoso", cancel=cancel, progress=progress)
    jobs = rt.catalog.jobs("contoso")
    assert jobs[0].status == "interrupted"
    assert [s.id for s in rt.catalog.snapshots("contoso")] == [first.snapshot.id]
    assert state_of(rt, first.snapshot.id) == before
    again = run_backup(rt, "contoso")
    assert again.status == "succeeded"
    full = run_backup(rt, "contoso", force_full=True)
    assert state_of(rt, again.snapshot.id) == state_of(rt, full.snapshot.id)


def test_throttling_is_absorbed_without_losing_objects(env) -> None:
    sim, directory, config, rt = env
    sim.faults.throttle_probability = 0.3
    report = run_backup(rt, "contoso", force_full=True)
    sim.faults.throttle_probability = 0.0
    assert report.status == "succeeded"
    assert report.graph["throttled"] > 0
    assert snapshot_counts(rt, report.snapshot.id) == live_counts(directory)


def test_kind_without_permission_is_skipped_and_says_which(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", graph_permissions=["User.Read.All"]) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        result = cli("backup", "--tenant", "contoso", "--config", str(config), "--json")
        report = result.json()
        by_kind = {k["kind"]: k for k in report["kinds"]}
        assert by_kind["user"]["status"] == "succeeded" and by_kind["user"]["succeeded"] > 0
        assert by_kind["group"]["status"] == "skipped"
        assert by_kind["group"]["reason"] == "missing Group.Read.All"
        assert by_kind["groupMember"]["reason"] == "missing GroupMember.Read.All"
        rt.close()
