"""diff and history through the CLI against a simulated tenant over real HTTPS."""

from __future__ import annotations

import copy
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.agent_helpers import agent_for, backup, run, simulated_tenant, write_requests

PEOPLE_KINDS = ("user", "group", "groupMember", "groupOwner")
USER_PROPS = ("department", "jobTitle")


@pytest.fixture
def env(tmp_path: Path):
    with simulated_tenant(tmp_path / "sim") as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        yield sim, sim.tenants["contoso"].directory, str(config), rt
        rt.close()


def tenant_state(directory) -> dict[str, Any]:
    groups = {g["id"]: g for g in directory.groups()}
    return copy.deepcopy(
        {
            "user": {u["id"]: u for u in directory.users()},
            "group": groups,
            "groupMember": {g: directory.members(g) for g in groups},
            "groupOwner": {g: directory.owners(g) for g in groups},
        }
    )


def expected_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[tuple, set]:
    """(kind, id, status) → the set of (path, op) the diff must list, from the tenant itself."""
    expected: dict[tuple, set] = {}
    for kind in PEOPLE_KINDS:
        old, new = before[kind], after[kind]
        for oid in new.keys() - old.keys():
            expected[(kind, oid, "added")] = set()
        for oid in old.keys() - new.keys():
            expected[(kind, oid, "removed")] = set()
        for oid in old.keys() & new.keys():
            a, b = old[oid], new[oid]
            if kind in ("groupMember", "groupOwner"):
                name = "members" if kind == "groupMember" else "owners"
                paths = {(f"{name}[{m}]", "added") for m in b - a}
                paths |= {(f"{name}[{m}]", "removed") for m in a - b}
            else:
                props = USER_PROPS if kind == "user" else ("description",)
                paths = {(p, "changed") for p in props if a.get(p) != b.get(p)}
            if paths:
                expected[(kind, oid, "changed")] = paths
    return expected


def listed(report: dict[str, Any]) -> dict[tuple, set]:
    return {
        (o["kind"], o["id"], o["status"]): {(c["path"], c["op"]) for c in o["changes"]}
        for o in report["objects"]
    }


def check_schema(report: dict[str, Any]) -> None:
    """The documented entra-backup/diff/1 shape, key by key."""
    assert report["schema"] == "entra-backup/diff/1"
    assert set(report) == {"schema", "tenant", "from", "to", "kinds", "objects", "summary"}
    for point in (report["from"], report["to"]):
        assert set(point) in ({"snapshot", "seq", "completed_at"}, {"live", "job", "read_at"})
    for kind in report["kinds"]:
        assert set(kind) == {"kind", "status", "reason", "added", "removed", "changed"}
        assert kind["status"] in ("compared", "skipped", "failed")
    for obj in report["objects"]:
        assert set(obj) == {"kind", "id", "label", "status", "secret", "properties", "changes"}
        assert obj["status"] in ("added", "removed", "changed")
        assert bool(obj["changes"]) == (obj["status"] == "changed")
        for change in obj["changes"]:
            assert change["op"] in ("added", "removed", "changed")
            allowed = {"added": {"new"}, "removed": {"old"}, "changed": {"old", "new"}}
            assert set(change) - {"path", "op"} == allowed[change["op"]]
        assert obj["properties"] == sorted(
            {c["path"].split("[")[0].split(".")[0] for c in obj["changes"]}
        )
    totals = {s: sum(k[s] for k in report["kinds"]) for s in ("added", "removed", "changed")}
    assert report["summary"] == totals
    assert totals["added"] == sum(o["status"] == "added" for o in report["objects"])


def test_diff_of_two_backups_lists_exactly_the_churn(env) -> None:
    sim, directory, config, rt = env
    first = backup(config)
    before = tenant_state(directory)
    churn = directory.churn(random.Random(7), 0.1)
    group = next(g for g in directory.groups() if not g.get("membershipRule"))
    owner = next(u["id"] for u in directory.users() if u["id"] not in directory.owners(group["id"]))
    directory.add_owner(group["id"], owner)
    after = tenant_state(directory)
    second = backup(config)

    kinds = [arg for k in PEOPLE_KINDS for arg in ("--kind", k)]
    report = run("diff", str(first), str(second), *kinds, "--config", config, "--json").json()
    check_schema(report)
    assert report["from"]["snapshot"] == first and report["to"]["snapshot"] == second
    expected = expected_diff(before, after)
    assert churn.users_changed and churn.members_added and churn.users_hard_deleted
    assert churn.groups_added and churn.groups_changed and churn.members_removed
    assert listed(report) == expected
    # Values: the old and new department of every changed user, as the tenant had them.
    for obj in report["objects"]:
        if obj["kind"] == "user" and obj["status"] == "changed":
            for change in obj["changes"]:
                old, new = before["user"][obj["id"]], after["user"][obj["id"]]
                assert (change["old"], change["new"]) == (old[change["path"]], new[change["path"]])
        if obj["kind"] == "user":  # labels come from the encrypted objects
            side = after if obj["status"] != "removed" else before
            assert obj["label"] == side["user"][obj["id"]]["userPrincipalName"]
        if obj["kind"] == "groupMember":
            assert (
                obj["label"]
                == (after["group"].get(obj["id"]) or before["group"][obj["id"]])["displayName"]
            )

    # 'diff SNAPSHOT' alone: what that snapshot changed; 'latest' names it.
    assert run("diff", "latest", *kinds, "--config", config, "--json").json() == report
    assert run("diff", str(second), "previous", *kinds, "-c", config, "--json").json()[
        "summary"
    ] == {
        "added": report["summary"]["removed"],
        "removed": report["summary"]["added"],
        "changed": report["summary"]["changed"],
    }

    # Human output: labels, property paths and values, member names.
    text = run("diff", "latest", "--kind", "user", "--kind", "groupMember", "-c", config).out
    changed = next(
        u
        for u in churn.users_changed
        if before["user"][u]["department"] != after["user"][u]["department"]
    )
    assert after["user"][changed]["userPrincipalName"] in text
    assert f'"{after["user"][changed]["department"]}"' in text
    # A member added to a group is named by its user principal name.
    uid = next(u for _, u in churn.members_added if u in after["user"])
    assert after["user"][uid]["userPrincipalName"] in text


def test_diff_live_gives_the_same_answer_reads_only_and_leaves_nothing(env) -> None:
    sim, directory, config, rt = env
    first = backup(config)
    directory.churn(random.Random(5), 0.05)
    log_mark, tenant_seq = len(sim.log.items()), directory.seq

    live = run("diff", "latest", "--live", "--config", config, "--json").json()
    check_schema(live)
    assert live["to"]["live"] is True and live["from"]["snapshot"] == first
    statuses = {k["kind"]: k["status"] for k in live["kinds"]}
    assert all(statuses[k] == "compared" for k in PEOPLE_KINDS)
    assert set(statuses.values()) <= {"compared", "skipped"}  # skipped: e.g. no portal account
    # Read only: no write request reached the tenant, nothing in it changed.
    assert not write_requests(sim, log_mark)
    assert directory.seq == tenant_seq
    # Nothing left behind: no snapshot, no staging rows, no scratch files; a compare job.
    assert [s["id"] for s in run("snapshots", "list", "-c", config, "--json").json()] == [first]
    db = sqlite3.connect(Path(rt.config.agent.data_dir) / "agent.db")
    for table in ("staged_object", "staged_full_listing", "staged_delta_link"):
        assert db.execute(f"select count(*) from {table}").fetchone()[0] == 0, table
    db.close()
    assert not list((Path(rt.config.agent.data_dir) / "tmp").glob("live-*"))
    job = run("jobs", "list", "-c", config, "--json").json()[0]
    assert (job["job_type"], job["status"], job["snapshot_id"]) == ("compare", "succeeded", None)

    second = backup(config)
    stored = run("diff", str(first), str(second), "--config", config, "--json").json()
    assert live["objects"] == stored["objects"] and stored["objects"]
    assert live["summary"] == stored["summary"]

    # Against the new snapshot, the live tenant shows no difference.
    again = run("diff", "latest", "--live", "--kind", "user", "-c", config, "--json").json()
    assert again["objects"] == [] and [k["kind"] for k in again["kinds"]] == ["user"]


def test_history_of_an_edited_then_deleted_user_shows_each_version(env) -> None:
    sim, directory, config, rt = env
    user = copy.deepcopy(directory.users()[3])
    uid = user["id"]
    s1 = backup(config)
    directory.update_user(uid, jobTitle="Chief Restorer")
    s2 = backup(config)
    directory.update_user(uid, department="Recovery", city="Reykjavik")
    s3 = backup(config)
    backup(config)  # nothing changed: no new version
    directory.delete_user(uid)
    s5 = backup(config)
    directory.restore_deleted(uid)
    s6 = backup(config)

    report = run("history", "--kind", "user", "--id", uid, "-c", config, "--json").json()
    assert report["schema"] == "entra-backup/history/1"
    assert report["label"] == user["userPrincipalName"]
    events = [(e["event"], e["snapshot"], e["version"]) for e in report["events"]]
    assert events == [
        ("added", s1, 1),
        ("changed", s2, 2),
        ("changed", s3, 3),
        ("removed", s5, None),
        ("added", s6, 4),
    ]
    changes = [[change for change in e["changes"]] for e in report["events"]]
    assert changes[1] == [
        {"path": "jobTitle", "op": "changed", "old": user.get("jobTitle"), "new": "Chief Restorer"}
    ]
    assert {(c["path"], c["op"]) for c in changes[2]} == {
        ("department", "changed"),
        ("city", "added" if "city" not in user else "changed"),
    }
    assert changes[4] == []  # undeleted as it was
    assert all(e["completed_at"] for e in report["events"])

    text = run("history", "--kind", "user", "--id", uid, "-c", config).out
    assert user["userPrincipalName"] in text.replace("\n", "").replace(" ", "") or uid in text
    assert "Chief Restorer" in text and "removed" in text


def test_unknown_snapshot_kind_or_id_is_a_clear_error(env) -> None:
    sim, directory, config, rt = env
    c = ("-c", config)
    # Before any backup.
    assert "has no snapshot" in run("diff", "latest", *c, code=7).err
    first = backup(config)
    cases = [
        (("diff", "999", *c), 7, "There is no snapshot 999"),
        (("diff", "yesterday", *c), 2, "'yesterday' is not a snapshot reference"),
        (("diff", "previous", *c), 7, "has no previous snapshot"),
        (("diff", str(first), "--kind", "usr", *c), 2, "Unknown object kind 'usr'"),
        (("diff", str(first), str(first), "--live", *c), 2, "not both"),
        (("diff", "latest", "--tenant", "fabrikam", "--live", *c), 2, "no tenant named"),
        (("history", "--kind", "user", "--id", "nope", *c), 7, "no user with id 'nope'"),
        (("history", "--kind", "usr", "--id", "x", *c), 2, "Unknown object kind 'usr'"),
    ]
    for args, code, message in cases:
        result = run(*args, code=code)
        assert message in result.err.replace("\n", " "), (args, result.err)
    # A snapshot against itself: no differences, said once, not a table of zeros.
    same = run("diff", "latest", str(first), *c).out
    assert "No differences." in same and "Per kind" not in same
    # The first snapshot alone: everything in it is new.
    report = run("diff", "latest", "--kind", "user", *c, "--json").json()
    assert report["from"] == {"snapshot": None, "seq": 0, "completed_at": None}
    assert report["summary"]["added"] == len(directory.users())
