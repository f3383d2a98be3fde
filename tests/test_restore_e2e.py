"""restore through the CLI against a simulated tenant over real HTTPS: a disaster drill with a
fixed seed, dry-run, refusals, merge vs overwrite and a single-property restore."""

from __future__ import annotations

import json
import os
import random
import stat
from pathlib import Path
from typing import Any

import pytest

from agent.graph import GraphClient
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import (
    agent_for,
    assert_differences_reported,
    backup,
    restore,
    run,
    simulated_tenant,
    write_requests,
)
from tests.test_sim_support import session, token

WRITES = [
    "User.ReadWrite.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "AdministrativeUnit.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
]
KINDS = ("user", "group", "groupMember", "groupOwner", "userManager")
APP_KINDS = ("application", "servicePrincipal", "applicationOwner", "servicePrincipalOwner",
             "appRoleAssignment")  # fmt: skip
# Writable properties the drill compares (read-only ones cannot come back on a recreate).
USER_PROPS = ("displayName", "department", "jobTitle", "userPrincipalName", "accountEnabled",
              "mailNickname", "givenName", "surname", "city", "usageLocation")  # fmt: skip
GROUP_PROPS = ("displayName", "description", "mailNickname", "groupTypes", "securityEnabled",
               "mailEnabled", "visibility")  # fmt: skip


def make_env(tmp_path: Path, roles: list[str]) -> Any:
    return simulated_tenant(
        tmp_path / "sim",
        users=120,
        groups=30,
        administrative_units=4,
        graph_permissions=[*READ_PERMISSIONS, *WRITES],
        directory_roles=roles,
    )


@pytest.fixture
def env(tmp_path: Path):
    with make_env(tmp_path, ["Global Administrator"]) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        yield sim, sim.tenants["contoso"].directory, str(config), tmp_path
        rt.close()


def cloud(d: Any) -> list[dict[str, Any]]:
    return [u for u in d.users() if not u.get("onPremisesSyncEnabled")]


def plain_groups(d: Any) -> list[dict[str, Any]]:
    """Cloud security and Microsoft 365 groups: Graph manages all of them (not DLs, dynamic)."""
    return [
        g
        for g in d.groups()
        if not g.get("onPremisesSyncEnabled")
        and not g.get("membershipRule")
        and ("Unified" in g["groupTypes"] or not g["mailEnabled"])
    ]


def state(d: Any) -> dict[str, Any]:
    users = {u["id"]: {p: u.get(p) for p in USER_PROPS} for u in d.users()}
    groups = {g["id"]: {p: g.get(p) for p in GROUP_PROPS} for g in d.groups()}
    return {
        "user": users,
        "group": groups,
        "groupMember": {g: set(d.members(g)) for g in groups},
        "groupOwner": {g: set(d.owners(g)) for g in groups},
        "userManager": {u: d.manager_of(u) for u in users},
    }


def mapped(before: dict[str, Any], id_map: dict[str, str]) -> dict[str, Any]:
    """The snapshot state with recreated objects under their new ids."""
    m = lambda x: id_map.get(x, x)  # noqa: E731
    return {
        "user": {m(k): v for k, v in before["user"].items()},
        "group": {m(k): v for k, v in before["group"].items()},
        "groupMember": {m(k): {m(i) for i in v} for k, v in before["groupMember"].items()},
        "groupOwner": {m(k): {m(i) for i in v} for k, v in before["groupOwner"].items()},
        "userManager": {m(k): (m(v) if v else None) for k, v in before["userManager"].items()},
    }


def damage(d: Any, rng: random.Random) -> dict[str, list[str]]:
    users = cloud(d)
    rng.shuffle(users)
    groups = plain_groups(d)
    rng.shuffle(groups)
    done: dict[str, list[str]] = {"soft": [], "hard": [], "edited": []}
    for u in users[:3]:
        d.delete_user(u["id"])
        done["soft"].append(u["id"])
    for u in users[3:5]:
        d.delete_user(u["id"], permanent=True)
        done["hard"].append(u["id"])
    for u in users[5:10]:
        d.update_user(u["id"], department="Wrecked", jobTitle=None)
        done["edited"].append(u["id"])
    for u in users[10:14]:
        boss = rng.choice(users[20:])
        d.set_manager(u["id"], boss["id"])
    d.delete_group(groups[0]["id"])  # soft
    d.delete_group(groups[1]["id"], permanent=True)
    d.update_group(groups[2]["id"], description="defaced")
    for g in groups[3:8]:
        members = sorted(d.members(g["id"]))
        if members:
            d.remove_member(g["id"], members[0])
        d.add_member(g["id"], rng.choice(users[20:])["id"])
        owners = sorted(d.owners(g["id"]))
        if owners:
            d.remove_owner(g["id"], owners[0])
        else:
            d.add_owner(g["id"], rng.choice(users[20:])["id"])
    return done


def test_disaster_drill_restores_the_whole_snapshot(env) -> None:
    sim, d, config, tmp = env
    snap = backup(config)
    before = state(d)
    done = damage(d, random.Random(5))
    assert state(d) != before

    mark = len(sim.log.items())
    plan = restore(config, snap, "--dry-run", "--json").json()
    assert write_requests(sim, mark) == []  # dry-run writes nothing
    actions = {(a["kind"], a["id"]): a["action"] for a in plan["plan"]["actions"]}
    assert all(actions[("user", u)] == "undelete" for u in done["soft"])
    assert all(actions[("user", u)] == "recreate" for u in done["hard"])
    assert all(actions[("user", u)] == "patch" for u in done["edited"])

    secrets_file = tmp / "passwords.txt"
    report = restore(config, snap, "--yes", "--json", "--password-file", str(secrets_file)).json()
    assert report["summary"]["failed"] == 0, report["results"]
    ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
    assert set(done["hard"]) <= set(ids)
    assert set(ids.values()).isdisjoint(ids)

    after = state(d)
    want = mapped(before, ids)
    why = {(r["kind"], ids.get(r["id"], r["id"])): r["reason"] for r in report["results"]}
    for kind in ("user", "group", "groupMember", "groupOwner", "userManager"):
        for oid, value in want[kind].items():
            if after[kind].get(oid) != value:  # only what the report explains
                assert "synced from on-premises" in why[(kind, oid)], (
                    kind,
                    oid,
                    value,
                    after[kind].get(oid),
                    [
                        r
                        for r in report["results"]
                        if r["kind"] == kind and ids.get(r["id"], r["id"]) == oid
                    ],
                    before["user"].get(oid),
                    after["user"].get(oid),
                )

    # Recreated users: a unique temporary password each, only in the owner-only file.
    assert stat.S_IMODE(os.stat(secrets_file).st_mode) == 0o600
    lines = [x.split("\t") for x in secrets_file.read_text().splitlines()[1:]]
    assert len(lines) == len(done["hard"]) and len({p for _, p in lines}) == len(lines)
    everything = json.dumps(report) + "".join(str(i.note) + i.path for i in sim.log.items())
    for _, password in lines:
        assert password not in everything

    # Whatever still differs is in the report with its reason.
    listed = {
        (r["kind"], r["id"]): r["not_restored"] for r in report["results"] if r["not_restored"]
    }
    live = run("diff", str(snap), "--live", "--config", config, "--json",
               *[x for k in KINDS for x in ("--kind", k)], code=0).json()  # fmt: skip
    for obj in live["objects"]:
        if obj["status"] == "changed":
            for change in obj["changes"]:
                linked = change["path"].partition("[")[2].rstrip("]")
                if linked in ids or linked in ids.values():
                    continue  # a link to a recreated object: same object, new id
                prop = change["path"].split("[")[0].split(".")[0]
                assert prop in listed.get((obj["kind"], obj["id"]), {}), (obj, change)
        else:  # recreated objects: the old id removed, the new id added
            assert obj["id"] in ids or obj["id"] in ids.values(), obj

    again = restore(config, snap, "--dry-run", "--json").json()
    assert [a for a in again["plan"]["actions"] if a["action"] != "skip"] == []


def test_drill_restores_apps_service_principals_owners_and_assignments(env) -> None:
    sim, d, config, _ = env
    g = GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))
    apps = g.get_json("/applications")["value"]
    sps = {sp["appId"]: sp for sp in g.get_json("/servicePrincipals")["value"]}
    ours = [a for a in apps if a["appId"] in sps]
    assert len(ours) >= 4
    snap = backup(config)
    soft, hard, edited, linked = ours[:4]
    g.delete(f"/applications/{soft['id']}")
    g.delete(f"/applications/{hard['id']}")
    g.delete(f"/directory/deletedItems/{hard['id']}")
    edited_sp = sps[edited["appId"]]
    g.patch(f"/servicePrincipals/{edited_sp['id']}", {"notes": "defaced", "appRoleAssignmentRequired": not edited_sp.get("appRoleAssignmentRequired")})  # fmt: skip
    g.patch(f"/applications/{edited['id']}", {"displayName": "Defaced app"})
    sp = sps[linked["appId"]]
    owners = g.get_json(f"/applications/{linked['id']}/owners")["value"]
    for owner in owners:
        g.delete(f"/applications/{linked['id']}/owners/{owner['id']}/$ref")
    assigned = g.get_json(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo")["value"]
    for assignment in assigned[:2]:
        g.delete(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo/{assignment['id']}")

    kinds = [x for k in APP_KINDS for x in ("--kind", k)]
    report = restore(config, snap, *kinds, "--yes", "--json").json()
    assert report["summary"]["failed"] == 0, report["results"]
    ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
    assert hard["id"] in ids and soft["id"] not in ids
    assert g.get_json(f"/applications/{soft['id']}")["displayName"] == soft["displayName"]
    recreated = g.get_json(f"/applications/{ids[hard['id']]}")
    assert recreated["displayName"] == hard["displayName"]
    assert g.get_json(f"/applications/{edited['id']}")["displayName"] == edited["displayName"]
    now_sp = g.get_json(f"/servicePrincipals/{edited_sp['id']}")
    assert now_sp.get("notes") == edited_sp.get("notes")
    assert now_sp.get("appRoleAssignmentRequired") == edited_sp.get("appRoleAssignmentRequired")
    now_owners = g.get_json(f"/applications/{linked['id']}/owners")["value"]
    assert {o["id"] for o in now_owners} == {o["id"] for o in owners}
    now_assigned = g.get_json(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo")["value"]
    key = lambda a: (a["principalId"], a["appRoleId"])  # noqa: E731
    assert sorted(map(key, now_assigned)) == sorted(map(key, assigned))

    assert_differences_reported(config, snap, report, *kinds)
    again = restore(config, snap, *kinds, "--dry-run", "--json").json()
    assert [a for a in again["plan"]["actions"] if a["action"] != "skip"] == []


def test_recreating_users_needs_a_password_file(env) -> None:
    sim, d, config, tmp_path = env
    snap = backup(config)
    gone = cloud(d)[:2]
    for user in gone:
        d.delete_user(user["id"], permanent=True)
    mark = len(sim.log.items())
    # The dry run says the real run will stop, and why, under its plan.
    plan = restore(config, snap, "--kind", "user", "--dry-run", "--json").json()
    [stop] = plan["blocked"]
    assert "recreates 2 users" in stop["message"] and "--password-file" in stop["fix"]
    shown = " ".join(restore(config, snap, "--kind", "user", "--dry-run").out.split())
    assert "The real run would stop before any write" in shown and "--password-file" in shown
    # The real run stops before it asks and before any write.
    err = " ".join(restore(config, snap, "--kind", "user", "--yes", code=2).err.split())
    assert "--password-file" in err and "recreates 2 users" in err
    # A file that exists already (restore never overwrites one), or a folder that does not:
    taken = tmp_path / "taken.txt"
    taken.write_text("someone's notes\n")
    for bad, why in ((taken, "already exists"), (tmp_path / "nowhere" / "pw.txt", "does not exist")):  # fmt: skip
        plan = restore(config, snap, "--kind", "user", "--dry-run", "--json",
                       "--password-file", str(bad)).json()  # fmt: skip
        assert why in plan["blocked"][0]["message"]
        out = restore(config, snap, "--kind", "user", "--yes", "--password-file", str(bad), code=2)
        assert why in " ".join(out.err.split())
    assert taken.read_text() == "someone's notes\n"
    assert write_requests(sim, mark) == []
    # Nothing to recreate: no password file needed, nothing blocked.
    assert restore(config, snap, "--kind", "group", "--dry-run", "--json").json()["blocked"] == []


def test_without_yes_and_no_terminal_restore_refuses(env) -> None:
    sim, d, config, _ = env
    snap = backup(config)
    user = cloud(d)[0]
    d.update_user(user["id"], department="Elsewhere")
    mark = len(sim.log.items())
    out = restore(config, snap, "--kind", "user", code=2)
    assert "--yes" in out.err
    assert write_requests(sim, mark) == []


def test_merge_keeps_changed_values_overwrite_replaces_them(env) -> None:
    _, d, config, _ = env
    snap = backup(config)
    a, b = cloud(d)[:2]
    d.update_user(a["id"], department="Changed since", jobTitle=None)
    restore(config, snap, "--kind", "user", "--id", a["id"], "--mode", "merge", "--yes")
    assert d.get(a["id"])["department"] == "Changed since"  # merge: changed, not emptied
    assert d.get(a["id"])["jobTitle"] == a["jobTitle"]  # emptied since: merged back
    restore(config, snap, "--kind", "user", "--id", a["id"], "--mode", "overwrite", "--yes")
    assert d.get(a["id"])["department"] == a["department"]
    d.update_user(b["id"], department="Kept")
    out = restore(config, snap, "--kind", "user", "--mode", "skip", "--yes", "--json").json()
    assert d.get(b["id"])["department"] == "Kept"
    assert {r["status"] for r in out["results"]} == {"skipped"}


def test_single_property_restore_changes_only_that(env) -> None:
    sim, d, config, _ = env
    snap = backup(config)
    user = cloud(d)[0]
    d.update_user(user["id"], department="Moved", jobTitle="Promoted")
    mark = len(sim.log.items())
    out = restore(config, snap, "--id", user["id"], "--properties", "department", "--yes",
                  "--json").json()  # fmt: skip
    now = d.get(user["id"])
    assert now["department"] == user["department"] and now["jobTitle"] == "Promoted"
    writes = write_requests(sim, mark)
    assert [(w.method, w.path.rsplit("/", 1)[-1]) for w in writes] == [("PATCH", user["id"])]
    assert [r["status"] for r in out["results"]] == ["restored"]


def test_undeleting_users_needs_the_global_administrator_role(tmp_path: Path) -> None:
    """The seed: undeleting needs Global Administrator. Without it the plan (dry run and real
    run alike) skips each undelete with the role and the fix; everything else is restored."""
    with make_env(tmp_path, []) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        d = sim.tenants["contoso"].directory
        snap = backup(str(config))
        gone, edited = cloud(d)[:2]
        d.delete_user(gone["id"])
        d.update_user(edited["id"], department="Elsewhere")
        mark = len(sim.log.items())
        plan = restore(str(config), snap, "--kind", "user", "--dry-run", "--json").json()
        actions = {a["id"]: a for a in plan["plan"]["actions"]}
        assert actions[gone["id"]]["action"] == "skip"
        why = actions[gone["id"]]["reason"]
        assert "Global Administrator" in why and "assign Global Administrator" in why
        assert actions[edited["id"]]["action"] == "patch"
        assert plan["blocked"] == []
        assert "Global Administrator" in restore(str(config), snap, "--kind", "user", "--dry-run").out  # fmt: skip
        assert write_requests(sim, mark) == []
        report = restore(str(config), snap, "--kind", "user", "--yes", "--json").json()
        results = {r["id"]: r for r in report["results"]}
        assert (results[gone["id"]]["status"], results[gone["id"]]["reason"]) == ("skipped", why)
        assert results[edited["id"]]["status"] == "restored"
        assert d.get(edited["id"])["department"] == edited["department"]
        assert not [w for w in write_requests(sim, mark) if "deletedItems" in w.path]
        assert d.get(gone["id"]) is None
        rt.close()


def test_drill_restores_administrative_units_and_their_members(env) -> None:
    _, d, config, _ = env
    sim = env[0]
    g = GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))
    units = g.get_json("/directory/administrativeUnits")["value"]
    static = [u for u in units if not u.get("membershipRule")]
    assert len(static) >= 3
    members = {
        u["id"]: {
            m["id"]
            for m in g.get_json(f"/directory/administrativeUnits/{u['id']}/members")["value"]
        }
        for u in static
    }
    snap = backup(config)
    soft, hard, edited = static[:3]
    g.delete(f"/directory/administrativeUnits/{soft['id']}")
    g.delete(f"/directory/administrativeUnits/{hard['id']}")
    g.delete(f"/directory/deletedItems/{hard['id']}")
    g.patch(f"/directory/administrativeUnits/{edited['id']}", {"description": "defaced"})
    for mid in sorted(members[edited["id"]])[:2]:
        g.delete(f"/directory/administrativeUnits/{edited['id']}/members/{mid}/$ref")

    kinds = ["--kind", "administrativeUnit", "--kind", "administrativeUnitMember"]
    report = restore(config, snap, *kinds, "--yes", "--json").json()
    assert report["summary"]["failed"] == 0, report["results"]
    ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
    assert set(ids) == {hard["id"]}
    for unit in (soft, hard, edited):
        uid = ids.get(unit["id"], unit["id"])
        now = g.get_json(f"/directory/administrativeUnits/{uid}")
        assert (now["displayName"], now.get("description")) == (
            unit["displayName"],
            unit.get("description"),
        )
        have = g.get_json(f"/directory/administrativeUnits/{uid}/members")["value"]
        assert {m["id"] for m in have} == members[unit["id"]]
    again = restore(config, snap, *kinds, "--dry-run", "--json").json()
    assert [a for a in again["plan"]["actions"] if a["action"] != "skip"] == []


def test_deleted_and_edited_delegated_grants_come_back(env) -> None:
    sim, _, config, _ = env
    g = GraphClient(sim.base_url, session(sim), lambda: token(sim, sim.tenants["contoso"]))
    grants = g.get_json("/oauth2PermissionGrants")["value"]
    assert grants
    snap = backup(config)
    fields = ("clientId", "consentType", "principalId", "resourceId", "scope")

    def now() -> set[tuple[Any, ...]]:
        live = g.get_json("/oauth2PermissionGrants")["value"]
        return {tuple(x.get(f) for f in fields) for x in live}

    want = {tuple(x.get(f) for f in fields) for x in grants}
    kind = ("--kind", "oauth2PermissionGrant")
    g.delete(f"/oauth2PermissionGrants/{grants[0]['id']}")
    report = restore(config, snap, *kind, "--yes", "--json").json()
    assert [r["action"] for r in report["results"]] == ["recreate"]
    assert report["summary"]["failed"] == 0 and now() == want
    # The recreated grant (new id) is matched on the next restore: an edit is patched back.
    recreated = report["results"][0]["new_id"]
    g.patch(f"/oauth2PermissionGrants/{recreated}", {"scope": "User.Read"})
    report = restore(config, snap, *kind, "--yes", "--json").json()
    assert [r["action"] for r in report["results"]] == ["patch"] and now() == want
    again = restore(config, snap, *kind, "--dry-run", "--json").json()
    assert again["plan"]["actions"] == [], json.dumps(again["plan"]["actions"])
