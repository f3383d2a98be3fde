"""An agent backing up a simulated tenant's Exchange through the simulator's bridge host."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.exchange.psrp_bridge import PsrpExchangeBridge
from agent.kinds.exchange import GROUP_KINDS, SETTINGS_KINDS
from agent.runtime import Runtime
from agent.simulator.service import Simulator, TenantHandle
from tests.agent_helpers import agent_for, simulated_tenant

EXCHANGE_KINDS = {k.name for k in (*GROUP_KINDS, *SETTINGS_KINDS)}
# Small, yet with DLs and mail-enabled security groups of every shape.
SIZE: dict[str, Any] = {
    "users": 120,
    "groups": 40,
    "distribution_groups": 6,
    "mail_security_groups": 4,
}


@contextmanager
def exchange_agent(
    tmp: Path, *, kinds: tuple[str, ...] = ("exchange", "defender"), **options: Any
) -> Iterator[tuple[Simulator, TenantHandle, Path, Runtime]]:
    spec = {**SIZE, **options.pop("spec", {})}
    with simulated_tenant(tmp / "sim", **spec) as sim:
        config, rt = agent_for(tmp / "agent", sim, kinds=kinds, **options)
        try:
            yield sim, sim.tenants["contoso"], config, rt
        finally:
            rt.close()


def bridge_for(rt: Runtime) -> PsrpExchangeBridge:
    """A bridge session as the agent opens it (for the write operations restore will use)."""
    return PsrpExchangeBridge(rt.config.tenant("contoso"))


def exchange_state(rt: Runtime, snapshot_id: int) -> dict[tuple[str, str], str]:
    snap = rt.catalog.snapshot(snapshot_id)
    return {
        (v.kind, v.object_id): v.blob_id
        for v in rt.catalog.state(snap.tenant, snap.seq)
        if v.kind in EXCHANGE_KINDS
    }
