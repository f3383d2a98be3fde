"""Relationships read per parent (app extension properties and federated credentials,
service principal policy links, device users, app role assignments) and the $expand-read
links: backed up as the simulator holds them, incrementally equal to a full read."""

from __future__ import annotations

import random
from pathlib import Path

from agent.config import load_config
from agent.demo import setup_agent
from agent.jobs.backup import run_backup
from agent.kinds import known_names
from agent.runtime import Runtime
from agent.simulator.graph.directory import Directory
from agent.simulator.graph.policy_store import SP_RELATIONS
from tests.agent_helpers import (
    agent_for,
    kinds_with_permissions,
    objects_of,
    simulated_tenant,
    state_of,
)

# kind -> (parent kind, relation as the simulator stores it, property in the backed-up object)
LINKS = {
    "applicationOwner": ("application", "application.owners", "owners"),
    "servicePrincipalOwner": ("servicePrincipal", "servicePrincipal.owners", "owners"),
    "deviceRegisteredOwner": ("device", "device.registeredOwners", "registeredOwners"),
    "deviceRegisteredUser": ("device", "device.registeredUsers", "registeredUsers"),
    "administrativeUnitMember": ("administrativeUnit", "administrativeUnit.members", "members"),
    **{
        f"servicePrincipal{t}Policy": (
            "servicePrincipal",
            f"servicePrincipal.{rel}",
            rel,
        )
        for t, rel in (
            ("ClaimsMapping", "claimsMappingPolicies"),
            ("TokenIssuance", "tokenIssuancePolicies"),
            ("TokenLifetime", "tokenLifetimePolicies"),
            ("HomeRealmDiscovery", "homeRealmDiscoveryPolicies"),
        )
    },
}
CHILDREN = {
    "applicationExtensionProperty": "extensionProperties",
    "applicationFederatedCredential": "federatedIdentityCredentials",
}


def _live_targets(d: Directory, relation: str, source: str) -> set[str]:
    targets = d.objects.targets(relation, source)
    name = relation.split(".", 1)[1]
    if relation.startswith("servicePrincipal.") and name in SP_RELATIONS:
        # Policies are not directory rows: a link to a policy deleted since is not shown.
        return {t for t in targets if d.policies.get(SP_RELATIONS[name], t) is not None}
    return {t for t in targets if d.kind_of(t) is not None}


def _assert_matches_simulator(rt: Runtime, snapshot_id: int, d: Directory) -> None:
    for kind, (parent, relation, prop) in LINKS.items():
        got = objects_of(rt, snapshot_id, kind)
        with d.lock:
            parents = {r["id"] for _, r in d.scan(parent, 0)}
            want = {p: _live_targets(d, relation, p) for p in parents}
        assert set(got) == parents, kind  # one object per parent
        assert {p: {t["id"] for t in o[prop]} for p, o in got.items()} == want, kind
        assert sum(map(len, want.values())) > 0, f"simulator has no {relation} to back up"
    for kind, relation in CHILDREN.items():
        got = objects_of(rt, snapshot_id, kind)
        with d.lock:
            want = {
                r["id"]: sorted(c["id"] for c in d.objects.of(f"application.{relation}", r["id"]))
                for _, r in d.scan("application", 0)
            }
        assert {p: [c["id"] for c in o[relation]] for p, o in got.items()} == want, kind
        assert any(want.values()), kind
    # Every app role assignment exactly once, whoever holds it (users, groups, SPs).
    held = [a for o in objects_of(rt, snapshot_id, "appRoleAssignment").values()
            for a in o["appRoleAssignedTo"]]  # fmt: skip
    with d.lock:
        live = {
            a["id"]: a["principalType"]
            for a in d.objects.assignments.values()
            if d.kind_of(a["principalId"]) and d.kind_of(a["resourceId"])
        }
    assert sorted(a["id"] for a in held) == sorted(live)
    assert set(live.values()) == {"User", "Group", "ServicePrincipal"}


def test_relationships_match_the_tenant_and_incremental_equals_full(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=300, groups=30, applications=60) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim)
        first = run_backup(rt, "contoso", force_full=True)
        assert first.status == "succeeded", [k for k in first.kinds if k.status != "succeeded"]
        _assert_matches_simulator(rt, first.snapshot.id, d)
        # Relationship reads are batched: far fewer requests than parents times relations.
        parents = d.count("application") * 2 + d.count("servicePrincipal") * 5
        reads = (
            "/v1.0/applications",
            "/v1.0/servicePrincipals",
            "/v1.0/devices",
            "/v1.0/$batch",
        )
        assert len([i for i in sim.log.items() if i.path.startswith(reads)]) < parents / 5

        summary = d.churn(random.Random(11), 0.1)
        assert summary.links_changed
        incremental = run_backup(rt, "contoso")
        _assert_matches_simulator(rt, incremental.snapshot.id, d)
        changed = {k.kind for k in incremental.snapshot.kinds if k.added or k.changed}
        assert {"deviceRegisteredUser", "applicationExtensionProperty"} <= changed
        full = run_backup(rt, "contoso", force_full=True)
        assert state_of(rt, incremental.snapshot.id) == state_of(rt, full.snapshot.id)
        rt.close()


def test_policy_links_are_skipped_by_name_without_policy_permission(tmp_path: Path) -> None:
    permissions = ["User.Read.All", "Group.Read.All", "Application.Read.All"]
    by_kind = kinds_with_permissions(tmp_path, permissions)
    assert by_kind["applicationExtensionProperty"].status == "succeeded"
    assert by_kind["servicePrincipalClaimsMappingPolicy"].status == "skipped"
    assert by_kind["servicePrincipalClaimsMappingPolicy"].reason == "missing Policy.Read.All"


def _managers(d: Directory) -> dict[str, str]:
    with d.lock:
        return {
            u: m
            for u, m in d.manager.items()
            if d.row("user", u) is not None and d.row("user", m) is not None
        }


def _backed_up_managers(rt: Runtime, snapshot_id: int) -> dict[str, str]:
    got = objects_of(rt, snapshot_id, "userManager")
    assert all(o["manager"]["@odata.type"] == "#microsoft.graph.user" for o in got.values())
    return {u: o["manager"]["id"] for u, o in got.items()}


def test_managers_come_with_the_users_delta_and_stay_incremental(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=300, groups=20) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim)
        first = run_backup(rt, "contoso", force_full=True)
        assert _backed_up_managers(rt, first.snapshot.id) == _managers(d) != {}
        # No request per user: the position ($deltatoken=latest) and one manager-only delta
        # round (2 pages of 200, the page size the agent asks for) carry manager@delta; the
        # users come from one list page.
        requests = [(i.path, i.query) for i in sim.log.items()]
        assert not any(p.endswith("/manager") for p, _ in requests)
        delta = [q for p, q in requests if p.endswith("/users/delta")]
        assert sum("latest" in q for q in delta) == 1 and len(delta) == 3
        assert sum(p.endswith("/users") and "top=999" in q for p, q in requests) == 1

        users = sorted(_managers(d))
        d.set_manager(users[0], None)  # manager removed
        d.set_manager(users[1], users[2])  # manager changed
        boss = _managers(d)[users[3]]
        d.delete_user(boss)  # the manager leaves (soft delete): their reports lose them
        d.churn(random.Random(5), 0.05)
        incremental = run_backup(rt, "contoso")
        by_kind = {k.kind: k for k in incremental.kinds}
        assert by_kind["userManager"].mode == "incremental"
        assert _backed_up_managers(rt, incremental.snapshot.id) == _managers(d)
        changes = {k.kind: k for k in incremental.snapshot.kinds}["userManager"]
        assert changes.removed >= 2 and changes.changed >= 1

        full = run_backup(rt, "contoso", force_full=True)
        assert state_of(rt, incremental.snapshot.id) == state_of(rt, full.snapshot.id)
        rt.close()


def test_a_scope_without_managers_never_hides_a_manager_change(tmp_path: Path) -> None:
    """Two scopes share the users delta: a run without userManager moves only the user
    kind's position, so the next run with managers must not reuse it (a full round)."""
    with simulated_tenant(tmp_path / "sim", users=150, groups=10) as sim:
        d = sim.tenants["contoso"].directory
        config = setup_agent(tmp_path / "agent", sim, kinds=("user",))
        config.write_text(
            config.read_text()
            + '\n[[tenants.contoso.scopes]]\nname = "people"\nkinds = ["user", "userManager"]\n'
            'schedule = "0 3 * * *"\n'
        )
        rt = Runtime(load_config(config, known_kinds=known_names()))
        run_backup(rt, "contoso", scope="nightly", force_full=True)
        people = run_backup(rt, "contoso", scope="people")
        assert _backed_up_managers(rt, people.snapshot.id) == _managers(d)

        user = sorted(_managers(d))[0]
        d.set_manager(user, None)  # seen only by the users-only run below
        run_backup(rt, "contoso", scope="nightly")
        again = run_backup(rt, "contoso", scope="people")
        assert {k.kind: k.mode for k in again.kinds}["userManager"] == "full"
        assert _backed_up_managers(rt, again.snapshot.id) == _managers(d)
        assert user not in _backed_up_managers(rt, again.snapshot.id)
        rt.close()
