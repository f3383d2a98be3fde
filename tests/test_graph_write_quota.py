"""Graph's write quota (facts file §1: 3,000 writes per 150 s per app and tenant) through the
agent's GraphClient against the simulated Graph: a burst over it gets 429 WriteLimitExceeded
with Retry-After, and the client's WriteBudget paces a long run so every write is applied."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.graph import BatchRequest, ResourceBudget, WriteBudget
from agent.simulator.graph import Directory
from agent.simulator.service import READ_PERMISSIONS, Simulator, TenantHandle, TenantSpec
from tests.test_sim_support import client_for

USER_PROPS = ("jobTitle", "department", "officeLocation", "city", "state", "country", "postalCode",
              "streetAddress", "companyName", "employeeId", "employeeType", "mobilePhone",
              "faxNumber", "givenName", "surname", "displayName", "preferredName", "mySite",
              "aboutMe", "preferredLanguage")  # fmt: skip


@pytest.fixture
def writer() -> Iterator[tuple[Simulator, TenantHandle]]:
    """A tenant with throttling on and an app allowed to write users."""
    with Simulator() as sim:
        spec = TenantSpec(
            name="wingtip", seed=4, users=400, groups=10, applications=2, devices=2,
            graph_permissions=[*READ_PERMISSIONS, "User.ReadWrite.All"],
        )  # fmt: skip
        yield sim, sim.add_tenant(spec)
        assert sim.errors == []


def patches(d: Directory, count: int, tag: str) -> list[BatchRequest]:
    users = [u for u in d.users() if not u.get("onPremisesSyncEnabled")][: count // len(USER_PROPS)]
    return [
        BatchRequest(f"{u['id']}/{p}", "PATCH", f"/users/{u['id']}", {p: f"{tag}-{p}"})
        for p in USER_PROPS
        for u in users
    ]


def applied(d: Directory, requests: list[BatchRequest]) -> int:
    return sum(
        all((d.get(r.url.rsplit("/", 1)[1]) or {}).get(k) == v for k, v in (r.body or {}).items())
        for r in requests
    )


def test_write_burst_over_the_quota_gets_429_with_retry_after(
    writer: tuple[Simulator, TenantHandle],
) -> None:
    sim, handle = writer
    sim.faults.write_limit, sim.faults.write_window_s = 40, 60.0  # scaled-down quota
    g = client_for(sim, handle, max_retries=0)  # no retries: see Graph's answers as they are
    requests = patches(handle.directory, 60, "burst")
    results = g.write_batch(requests)
    statuses = [r.status for r in results]
    assert statuses.count(204) == 40 and statuses.count(429) == 20
    throttled = next(r for r in results if r.status == 429)
    assert 1 <= float(throttled.headers["Retry-After"]) <= 60
    assert throttled.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    assert throttled.headers["x-ms-throttle-scope"] == (
        f"Tenant_Application/Write/{handle.client_id}/{handle.tenant_id}"
    )
    assert applied(handle.directory, requests) == 40
    assert len(list(g.pages("/users", {"$top": "5"}))) >= 1  # reads have their own budget


def test_client_honours_retry_after_until_every_write_is_applied(
    writer: tuple[Simulator, TenantHandle],
) -> None:
    sim, handle = writer
    sim.faults.write_limit, sim.faults.write_window_s = 50, 1.0
    budget = WriteBudget()  # the documented quota: this app does not know it is shared
    g = client_for(sim, handle, write_budget=budget)
    requests = patches(handle.directory, 140, "retry")
    results = g.write_batch(requests)
    assert [r.status for r in results] == [204] * len(requests)
    assert applied(handle.directory, requests) == len(requests)
    assert g.stats.throttled >= 1 and budget.throttles >= 1  # 140 > 50: Graph said wait


def test_a_4000_write_run_paces_itself_and_applies_every_write(
    writer: tuple[Simulator, TenantHandle],
) -> None:
    sim, handle = writer
    # The simulator's write window scaled from 150 s to 2 s (same 3,000 writes); the client's
    # budget is declared with the same window.
    sim.faults.write_window_s = 2.0
    budget = WriteBudget(window_s=2.0)
    g = client_for(sim, handle, write_budget=budget, budget=ResourceBudget.for_tenant_size("M"))
    requests = patches(handle.directory, 4000, "run")
    assert len(requests) == 4000
    results = list(g.run_batches(requests, workers=2))
    assert [r.status for r in results] == [204] * 4000
    assert applied(handle.directory, requests) == 4000
    assert budget.writes >= 4000
