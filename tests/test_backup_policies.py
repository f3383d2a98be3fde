"""Policy kinds end to end against the simulator: every kind captured with the simulator's
count, volatile fields dropped, unchanged policies stored once, incremental equal to full
after policy churn, the conditional access rate limit respected, and policy kinds skipped by
name when the app lacks the policy permissions."""

from __future__ import annotations

import random
from pathlib import Path

from agent.jobs.backup import run_backup
from agent.kinds.entra_config import POLICY_KINDS
from tests.agent_helpers import agent_for, counts, simulated_tenant, state_of

NAMES = [k.name for k in POLICY_KINDS]
RATE_LIMITED = ("/v1.0/identity/conditionalAccess/policies", "/v1.0/identity/conditionalAccess/namedLocations")  # fmt: skip


def test_every_policy_kind_is_captured_and_incremental_equals_full(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=400, groups=40) as sim:
        directory = sim.tenants["contoso"].directory
        policies = directory.policies
        _, rt = agent_for(tmp_path / "agent", sim)
        first = run_backup(rt, "contoso", force_full=True)
        by_kind = {k.kind: k for k in first.kinds}
        assert all(by_kind[n].status == "succeeded" for n in NAMES), [
            (n, by_kind[n].reason) for n in NAMES if by_kind[n].status != "succeeded"
        ]
        present = counts(rt, first.snapshot.id)
        for name in NAMES:
            assert present.get(name, 0) == policies.count(name) > 0, name

        state = state_of(rt, first.snapshot.id)
        stored = {key: rt.repository.get(blob) for key, blob in state.items() if key[0] in NAMES}
        ca = [v for (k, _), v in stored.items() if k == "conditionalAccessPolicy"]
        assert ca and all("modifiedDateTime" not in p and p["conditions"] for p in ca)
        methods = stored[("authenticationMethodsPolicy", "authenticationMethodsPolicy")]
        assert "lastModifiedDateTime" not in methods
        configs = methods["authenticationMethodConfigurations"]
        assert len(configs) == len(
            policies.singleton("authenticationMethodsPolicy")["authenticationMethodConfigurations"]
        )
        assert all(c["@odata.type"].startswith("#microsoft.graph.") for c in configs)
        assert ("crossTenantAccessDefault", "crossTenantAccessDefault") in stored  # no id
        locations = [v for (k, _), v in stored.items() if k == "namedLocation"]
        assert {x["@odata.type"] for x in locations} >= {"#microsoft.graph.ipNamedLocation"}

        unchanged = run_backup(rt, "contoso")
        for kind in unchanged.snapshot.kinds:
            if kind.kind in NAMES:
                assert kind.added == kind.changed == kind.removed == 0, kind.kind

        summary = directory.churn(random.Random(5), 0.05)
        assert summary.policies_changed and (summary.policies_added or summary.policies_deleted)
        incremental = run_backup(rt, "contoso")
        full = run_backup(rt, "contoso", force_full=True)
        assert state_of(rt, incremental.snapshot.id) == state_of(rt, full.snapshot.id)
        changed = {k.kind for k in incremental.snapshot.kinds if k.added or k.changed or k.removed}
        assert {kind for kind, _ in summary.policies_changed + summary.policies_added} <= changed
        after = counts(rt, incremental.snapshot.id)
        assert all(after.get(n, 0) == policies.count(n) for n in NAMES)

        # Four backups read conditional access and named locations side by side with every
        # other kind: the client kept to Graph's 1 request/s for them (no 429 storm).
        limited = [i for i in sim.log.items() if i.path.startswith(RATE_LIMITED)]
        assert len([i for i in limited if i.status == 200]) >= 8
        assert len([i for i in limited if i.status == 429]) <= 2
        assert sim.errors == []
        rt.close()


def test_policy_kinds_are_skipped_without_policy_permissions(tmp_path: Path) -> None:
    permissions = ["User.Read.All", "Group.Read.All", "GroupMember.Read.All"]
    with simulated_tenant(
        tmp_path / "sim", users=60, groups=8, graph_permissions=permissions
    ) as sim:
        _, rt = agent_for(tmp_path / "agent", sim)
        report = run_backup(rt, "contoso", force_full=True)
        by_kind = {k.kind: k for k in report.kinds}
        assert by_kind["user"].status == by_kind["group"].status == "succeeded"
        for kind in POLICY_KINDS:
            assert by_kind[kind.name].status == "skipped", kind.name
            assert by_kind[kind.name].reason == f"missing {kind.read_permissions[0]}"
        assert by_kind["conditionalAccessPolicy"].reason == "missing Policy.Read.All"
        assert by_kind["authorizationPolicy"].reason == "missing Policy.Read.All"
        assert not [i for i in sim.log.items() if "/policies" in i.path and i.status == 403]
        rt.close()
