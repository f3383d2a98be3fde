"""The job's read of the directory audit log keeps what the relationship kinds need, not one
entry per event read: the ids it holds to tell whether the last run's newest event is still
in the log (retention) do not grow with the tenant's audit volume."""

from __future__ import annotations

import random
from pathlib import Path

from agent.collect.audit_feed import PATH, READ, AuditFeed
from agent.collect.window import OVERLAP, format_time, parse_time
from agent.jobs.connection import connect_tenant
from agent.simulator.service import READ_PERMISSIONS
from tests.agent_helpers import agent_for, simulated_tenant

WITH_AUDIT = [*READ_PERMISSIONS, "AuditLog.Read.All"]


def test_ids_held_stay_bounded_while_the_events_read_grow(tmp_path: Path) -> None:
    with simulated_tenant(
        tmp_path / "sim", users=120, groups=12, graph_permissions=WITH_AUDIT
    ) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim)
        graph = connect_tenant(rt, "contoso", rt.config.tenant("contoso")).graph
        d.churn(random.Random(1), 0.05)
        # The last run's mark: its newest event (what an incremental run starts from).
        newest = AuditFeed(graph, {READ}, ()).newest()
        assert newest is not None
        mark, mark_id = parse_time(newest[0]), newest[1]
        read: list[int] = []
        held: list[int] = []
        for churns in (1, 6):  # the audit volume after the mark grows
            for seed in range(churns):
                d.churn(random.Random(seed), 0.05)
            feed = AuditFeed(graph, {READ}, ("Update user",), starts=[mark - OVERLAP])
            window = feed.since(mark)
            assert window.holds(mark, mark_id)
            assert not window.holds(mark, "00000000-0000-0000-0000-000000000000")
            assert window.events  # what the relationship kinds need is still kept
            params = {"$filter": f"activityDateTime ge {format_time(mark - OVERLAP)}"}
            read.append(sum(len(p.items) for p in graph.pages(PATH, params=params)))
            held.append(len(window.at_marks))
        assert read[-1] > 3 * read[0]
        assert max(held) == 1  # the mark's own event: nothing per event read
        rt.close()


def test_the_mark_is_not_held_once_the_log_dropped_it(tmp_path: Path) -> None:
    # Without Entra ID P1 the log keeps 7 days: after 8, the mark's event is gone.
    with simulated_tenant(
        tmp_path / "sim", users=60, groups=6, graph_permissions=WITH_AUDIT, entra_premium=False
    ) as sim:
        d = sim.tenants["contoso"].directory
        _, rt = agent_for(tmp_path / "agent", sim)
        graph = connect_tenant(rt, "contoso", rt.config.tenant("contoso")).graph
        d.churn(random.Random(1), 0.05)
        newest = AuditFeed(graph, {READ}, ()).newest()
        assert newest is not None
        mark = parse_time(newest[0])
        d.advance_clock(8 * 24 * 3600)
        d.churn(random.Random(2), 0.05)
        window = AuditFeed(graph, {READ}, (), starts=[mark - OVERLAP]).since(mark)
        assert not window.holds(mark, newest[1])
        rt.close()
