"""Pacing: the resource-unit budget (refill, pauses, sizes, the RU header), documented request
costs, and per-path request rates (conditional access) with a fake clock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent.graph.budget import ResourceBudget
from agent.graph.costs import estimate_cost
from agent.graph.pacing import MARGIN, PathPacer
from agent.simulator.httpserver import HttpsServer, Response, Router
from tests.graph_client_helpers import (
    FakeClock,
    Sleeps,
    fail_first,
    make_client,
    ok_users,
    throttled,
)

# -- pacing --------------------------------------------------------------------------------


def test_budget_blocks_for_the_simulated_refill_time() -> None:
    clock = FakeClock()
    budget = ResourceBudget(1000, window_s=10.0, target=0.95, clock=clock.clock, sleep=clock.sleep)
    assert budget.capacity == pytest.approx(950) and budget.rate == pytest.approx(95)
    budget.acquire(950)
    assert clock.sleeps == []
    budget.acquire(190)  # 190 RU at 95 RU/s: two seconds
    assert sum(clock.sleeps) == pytest.approx(2.0)
    assert budget.spent == 1140
    # Graph said the request cost more than estimated: the difference is paid back first.
    budget.settle(estimated=1, actual=96)
    before = clock.now
    budget.acquire(1)
    assert clock.now - before == pytest.approx(96 / 95, rel=0.01)
    assert budget.spent == 1140 + 95 + 1


def test_budget_request_dearer_than_the_bucket_waits_for_a_full_bucket() -> None:
    clock = FakeClock()
    budget = ResourceBudget(100, window_s=10.0, target=1.0, clock=clock.clock, sleep=clock.sleep)
    budget.acquire(100)
    budget.acquire(250)
    assert sum(clock.sleeps) == pytest.approx(10.0)


def test_budget_pause_blocks_everyone_and_lowers_the_rate() -> None:
    clock = FakeClock()
    budget = ResourceBudget(3500, clock=clock.clock, sleep=clock.sleep)
    rate = budget.rate
    budget.pause(2.5)
    budget.pause(1.0)  # a second 429 of the same episode: no extra cut, no shorter pause
    assert budget.rate == pytest.approx(rate * 0.8)
    budget.acquire(1)
    assert clock.now == pytest.approx(1002.5)
    for _ in range(100):
        budget.settle(1, 1)  # clean responses win the rate back slowly
    assert budget.rate == pytest.approx(rate)


def test_budget_pause_holds_other_threads_in_real_time() -> None:
    budget = ResourceBudget.for_tenant_size("S")
    # A lower bound only (no thread returns before the pause ends), so a loaded machine that
    # starts the threads late cannot fail it.
    until = time.monotonic() + 0.3
    budget.pause(0.3)
    returned: list[float] = []

    def worker() -> None:
        budget.acquire(1)
        returned.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(returned) == 3 and min(returned) >= until


def test_budget_sizes() -> None:
    assert ResourceBudget.for_tenant_size("S").ru_per_window == 3500
    assert ResourceBudget.for_tenant_size("m").ru_per_window == 5000
    assert ResourceBudget.for_tenant_size("L").ru_per_window == 8000
    with pytest.raises(ValueError):
        ResourceBudget.for_tenant_size("XL")


def test_client_throttle_pauses_the_shared_budget(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    router.add("GET", "/v1.0/users", fail_first(1, lambda: throttled("4"), ok_users))
    clock = FakeClock()
    budget = ResourceBudget(5000, clock=clock.clock, sleep=clock.sleep)
    client = make_client(server, ca_file, budget=budget)
    client.get_json("/users", {"$select": "id"})
    assert budget.paused_until == pytest.approx(1004.0)
    assert budget.throttles == 1
    # Another worker on the same tenant waits out the pause before its request.
    other = make_client(server, ca_file, budget=budget)
    other.get_json("/users")
    assert clock.now >= 1004.0


def test_budget_settles_with_the_resource_unit_header(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    router.add(
        "GET",
        "/v1.0/groups/{id}/transitiveMembers",
        lambda r: Response.json({"value": []}, headers={"x-ms-resource-unit": "4"}),
    )
    budget = ResourceBudget(5000)
    client = make_client(server, ca_file, budget=budget)
    client.get_json("/groups/g1/transitiveMembers", {"$select": "id"})  # estimated 5 - 1
    client.get_json("/groups/g1/transitiveMembers")  # estimated 5, Graph says 4
    assert budget.spent == 8 and client.stats.resource_units == 8


# -- costs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "cost"),
    [
        ("GET", "/users", 2),
        ("GET", "/users?$select=id,displayName&$top=999", 1),
        ("GET", "/users/u1?$expand=manager", 3),
        ("GET", "/applications", 2),
        ("GET", "/applications/a1/extensionProperties", 2),
        ("GET", "/groups", 1),
        ("GET", "/groups/g1/members", 3),
        ("GET", "/groups/g1/members?$select=id", 2),
        ("GET", "/groups/g1/members/microsoft.graph.user?$select=id", 2),
        ("GET", "/groups/g1/transitiveMembers", 5),
        ("GET", "/users/u1/memberOf", 2),
        ("GET", "/users/u1/transitiveMemberOf?$top=10", 1),
        ("GET", "/users/u1/licenseDetails", 2),
        ("GET", "/users/u1/ownedObjects", 2),
        ("GET", "/oauth2PermissionGrants", 2),
        ("GET", "/servicePrincipals/s1/appRoleAssignments", 2),
        ("GET", "/subscribedSkus", 3),
        ("POST", "/directoryObjects/getByIds", 5),
        ("GET", "/users/delta?$select=id", 1),
        ("GET", "https://graph.microsoft.com/v1.0/users/delta()?$skiptoken=abc", 1),
        ("GET", "https://graph.microsoft.com/v1.0/users?%24select=id&%24skiptoken=x", 1),
        ("GET", "https://graph.microsoft.com/v1.0/groups/g1/members?$top=5&$select=id", 1),
        ("PATCH", "/users/u1", 1),
        ("POST", "/groups/g1/members/$ref", 1),
        ("GET", "/organization", 1),
    ],
)
def test_estimate_cost_follows_the_documented_table(method: str, url: str, cost: int) -> None:
    assert estimate_cost(method, url) == cost


# -- per-path request rates ----------------------------------------------------------------


def test_conditional_access_paths_are_paced_to_their_own_rate() -> None:
    clock = FakeClock()
    pacer = PathPacer(clock=clock.clock, sleep=clock.sleep)
    pacer.acquire("https://graph.example/v1.0/identity/conditionalAccess/policies")
    pacer.acquire("/identity/conditionalAccess/namedLocations")  # the same tenant-wide limit
    pacer.acquire("https://graph.example/v1.0/IDENTITY/conditionalaccess/policies?$skiptoken=x")
    assert clock.sleeps == pytest.approx([MARGIN, MARGIN])
    pacer.acquire("https://graph.example/v1.0/users")  # other paths never wait
    pacer.acquire("/policies/authorizationPolicy")
    assert len(clock.sleeps) == 2
    assert pacer.pause("/identity/conditionalAccess/policies", 5.0)
    assert not pacer.pause("/users", 5.0)
    before = clock.now
    pacer.acquire("/identity/conditionalAccess/policies")
    assert clock.now - before == pytest.approx(5.0)


def test_a_429_on_a_paced_path_waits_for_that_path_only(
    server: HttpsServer, router: Router, ca_file: Path
) -> None:
    path = "/v1.0/identity/conditionalAccess/policies"
    router.add("GET", path, fail_first(1, lambda: throttled("1"), ok_users))
    budget = ResourceBudget(3500)
    sleeps = Sleeps()
    client = make_client(server, ca_file, sleeps, budget=budget)
    assert len(client.get_json("/identity/conditionalAccess/policies")["value"]) == 3
    assert sleeps.calls[0] == 1.0 and client.stats.throttled == 1
    assert budget.throttles == 0  # the resource-unit budget of the other kinds is untouched
