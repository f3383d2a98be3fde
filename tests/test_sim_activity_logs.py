"""The simulated /auditLogs endpoints as Graph documents them: newest first, time-window
$filter, $top paging with nextLink, CSDL-valid entities, retention, the licence error, the
Directory.Read.All requirement of sign-ins and the reports service's own request limit."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.collect.window import parse_time
from agent.schema.csdl import load_schema
from agent.simulator.graph.activity import drop_premium
from agent.simulator.service import READ_PERMISSIONS, Simulator, TenantSpec
from tests.test_sim_support import Graph

LOGS = [*READ_PERMISSIONS, "AuditLog.Read.All"]


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[tuple[Simulator, Graph]]:
    sim = Simulator(tmp_path / "sim")
    handle = sim.add_tenant(
        TenantSpec(name="contoso", seed=4, users=200, groups=20, graph_permissions=LOGS)
    )
    handle.directory.churn(random.Random(1), 0.05)
    sim.faults.disable_throttling = True
    sim.start()
    try:
        yield sim, Graph(sim, handle)
        assert sim.errors == []
    finally:
        sim.stop()


def test_entities_are_newest_first_paged_and_valid(tenant: tuple[Simulator, Graph]) -> None:
    sim, g = tenant
    schema = load_schema()
    for path, entity, when in (
        ("/auditLogs/directoryAudits", "directoryAudit", "activityDateTime"),
        ("/auditLogs/signIns", "signIn", "createdDateTime"),
    ):
        pages = list(g.pages(path, **{"$top": "7"}))
        assert len(pages) > 2 and all(len(p["value"]) == 7 for p in pages[:-1])
        items = [i for p in pages for i in p["value"]]
        assert len({i["id"] for i in items}) == len(items)
        times = [i[when] for i in items]
        assert times == sorted(times, reverse=True)
        assert all(schema.validate(entity, i) == [] for i in items)
        # A window: ge and lt bound it, inclusive and exclusive.
        lo, hi = times[len(times) // 2], times[3]
        window = g.all(path, **{"$filter": f"{when} ge {lo} and {when} lt {hi}"})
        assert [i[when] for i in window] == [t for t in times if lo <= t < hi]


def test_bad_filters_and_page_sizes_are_refused(tenant: tuple[Simulator, Graph]) -> None:
    sim, g = tenant
    answer = g.get("/auditLogs/signIns", **{"$filter": "activityDateTime ge 2024-01-01T00:00:00Z"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "BadRequest"
    answer = g.get("/auditLogs/directoryAudits", **{"$top": "1001"})
    assert answer.status_code == 400


def test_events_beyond_retention_vanish(tenant: tuple[Simulator, Graph]) -> None:
    sim, g = tenant
    directory = sim.tenants["contoso"].directory
    assert g.all("/auditLogs/directoryAudits")
    directory.advance_clock(31 * 24 * 3600)
    assert g.all("/auditLogs/directoryAudits") == []
    signins = g.all("/auditLogs/signIns")
    oldest = min(parse_time(i["createdDateTime"]) for i in signins)
    assert directory.now() - oldest.timestamp() <= 30 * 24 * 3600


def test_sign_ins_need_a_premium_licence_and_directory_read(tmp_path: Path) -> None:
    sim = Simulator(tmp_path / "sim")
    free = sim.add_tenant(
        TenantSpec(name="contoso", seed=4, users=60, groups=5, graph_permissions=LOGS)
    )
    drop_premium(free.directory)
    bare = sim.add_tenant(
        TenantSpec(
            name="fabrikam",
            seed=4,
            users=60,
            groups=5,
            graph_permissions=["AuditLog.Read.All", "User.Read.All"],
        )
    )
    with sim:
        answer = Graph(sim, free).get("/auditLogs/signIns")
        assert answer.status_code == 403
        error = answer.json()["error"]
        assert error["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
        assert error["message"] == "Neither tenant is B2C or tenant doesn't have premium license"
        assert Graph(sim, free).get("/auditLogs/directoryAudits").status_code == 200
        answer = Graph(sim, bare).get("/auditLogs/signIns")
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "Authorization_RequestDenied"
        assert Graph(sim, bare).get("/auditLogs/directoryAudits").status_code == 200


def test_reports_limit_is_five_requests_per_ten_seconds(tmp_path: Path) -> None:
    sim = Simulator(tmp_path / "sim")
    handle = sim.add_tenant(
        TenantSpec(name="contoso", seed=4, users=60, groups=5, graph_permissions=LOGS)
    )
    with sim:
        g = Graph(sim, handle)
        answers = [g.get("/auditLogs/directoryAudits") for _ in range(10)]
        assert [a.status_code for a in answers[:5]] == [200] * 5
        throttled = [a for a in answers if a.status_code == 429]
        assert throttled and float(throttled[0].headers["Retry-After"]) >= 1
        assert throttled[0].json()["error"]["code"] == "TooManyRequests"
        # The directory's RU budget is not the one spent: users still answer.
        assert g.get("/users", **{"$top": "5"}).status_code == 200


def test_activity_survives_a_restart(tmp_path: Path) -> None:
    spec = TenantSpec(name="contoso", seed=4, users=60, groups=5, graph_permissions=LOGS)
    sim = Simulator(tmp_path / "sim")
    handle = sim.add_tenant(spec)
    handle.directory.churn(random.Random(2), 0.05)
    with sim:
        g = Graph(sim, handle)
        audits, signins = g.all("/auditLogs/directoryAudits"), g.all("/auditLogs/signIns")
    again = Simulator(tmp_path / "sim")
    handle = again.add_tenant(spec)
    with again:
        g = Graph(again, handle)
        assert g.all("/auditLogs/directoryAudits") == audits
        assert g.all("/auditLogs/signIns")[-len(signins) :] == signins
