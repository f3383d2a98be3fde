"""One agent, several tenants: each has its own credentials, jobs and snapshot chain."""

from __future__ import annotations

from pathlib import Path

from agent.config import load_config
from agent.demo import agent_config_text, setup_agent
from agent.jobs.backup import run_backup
from agent.kinds import known_names
from agent.runtime import Runtime
from agent.scheduler import AgentService
from agent.simulator.service import Simulator, TenantSpec
from tests.agent_helpers import counts


def test_one_agent_backs_up_two_tenants_separately(tmp_path: Path) -> None:
    sim = Simulator(tmp_path / "sim")
    sim.add_tenant(TenantSpec(name="contoso", seed=1, users=50, groups=8))
    sim.add_tenant(TenantSpec(name="fabrikam", seed=2, users=80, groups=12))
    with sim:
        config = setup_agent(tmp_path / "agent", sim, "contoso")
        second = agent_config_text(tmp_path / "agent", sim, "fabrikam", credential="secret")
        tenant_block = second[second.index("[tenants.fabrikam]") :]
        config.write_text(config.read_text() + "\n" + tenant_block)
        rt = Runtime(load_config(config, known_kinds=known_names()))

        service = AgentService(rt)
        assert sorted(j.id for j in service.build().get_jobs()) == [
            "contoso:nightly",
            "fabrikam:nightly",
        ]
        a = run_backup(rt, "contoso")
        b = run_backup(rt, "fabrikam")
        assert counts(rt, a.snapshot.id)["user"] == 50
        assert counts(rt, b.snapshot.id)["user"] == 80
        assert (a.snapshot.seq, b.snapshot.seq) == (1, 1)  # separate chains
        assert [s.tenant for s in rt.catalog.snapshots("fabrikam")] == ["fabrikam"]
        # The same person-shaped data in two tenants never mixes: ids differ per tenant.
        users_a = {oid for kind, oid in _state(rt, a.snapshot.id) if kind == "user"}
        users_b = {oid for kind, oid in _state(rt, b.snapshot.id) if kind == "user"}
        assert not users_a & users_b
        rt.close()


def _state(rt: Runtime, snapshot_id: int) -> set[tuple[str, str]]:
    snap = rt.catalog.snapshot(snapshot_id)
    return {(v.kind, v.object_id) for v in rt.catalog.state(snap.tenant, snap.seq)}
