"""The simulated Microsoft Graph's $batch and resource-unit throttling over real HTTPS: item
limits, dependencies and headers, 429 with Retry-After and the throttle headers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.simulator.service import Simulator, TenantSpec
from tests.test_sim_support import Graph, logged, small_tenant


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[Simulator, Graph]]:
    yield from small_tenant(tmp_path / "sim")


# -- $batch --------------------------------------------------------------------------------------


def test_batch_limits_dependencies_and_item_headers(small: tuple[Simulator, Graph]) -> None:
    sim, g = small
    d = sim.tenants["contoso"].directory
    many = {
        "requests": [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(21)]
    }
    assert g.post("/$batch", many).status_code == 400
    dup = {"requests": [{"id": "1", "method": "GET", "url": "/users"}] * 2}
    assert g.post("/$batch", dup).status_code == 400
    gid = d.groups()[0]["id"]
    body = {
        "requests": [
            {"id": "a", "method": "GET", "url": "/users?$select=id&$top=5"},
            {"id": "b", "method": "GET", "url": f"/groups/{gid}/owners?$select=id"},
            {"id": "c", "method": "GET", "url": "/groups/00000000-0000-0000-0000-000000000000"},
            {"id": "d", "method": "GET", "url": "/users?$top=1", "dependsOn": ["c"]},
            {
                "id": "e",
                "method": "GET",
                "url": "users/$count",
                "headers": {"ConsistencyLevel": "eventual"},
            },
        ]
    }
    r = g.post("/$batch", body)
    assert r.status_code == 200
    answers = {a["id"]: a for a in r.json()["responses"]}
    assert [answers[k]["status"] for k in "abcde"] == [200, 200, 404, 424, 200]
    assert len(answers["a"]["body"]["value"]) == 5
    assert answers["e"]["body"] == str(d.count("user"))
    assert all("x-ms-resource-unit" in answers[k]["headers"] for k in "abce")


def test_batch_items_are_throttled_one_by_one(tmp_path: Path) -> None:
    with Simulator() as sim:
        handle = sim.add_tenant(TenantSpec(users=20, groups=4))
        g = Graph(sim, handle)
        sim.faults.throttle_scale = 0.01  # 35 RU per 10 s for this S tenant
        body = {"requests": [{"id": str(i), "method": "GET", "url": "/users"} for i in range(20)]}
        answers = g.post("/$batch", body).json()["responses"]
        throttled = [a for a in answers if a["status"] == 429]
        assert throttled and len(throttled) < 20
        assert all(int(a["headers"]["Retry-After"]) >= 1 for a in throttled)
        assert throttled[0]["body"]["error"]["code"] == "TooManyRequests"


# -- throttling ----------------------------------------------------------------------------------


def test_burst_beyond_budget_gets_429_with_retry_after(tmp_path: Path) -> None:
    with Simulator() as sim:
        handle = sim.add_tenant(TenantSpec(users=20, groups=4))
        g = Graph(sim, handle)
        sim.faults.throttle_scale = 0.01  # 35 RU per 10 s
        statuses = []
        for _ in range(30):
            r = g.get("/users")  # 2 RU each (facts file §1)
            assert r.headers["x-ms-resource-unit"] == "2"
            statuses.append(r.status_code)
            if r.status_code == 429:
                break
        assert statuses[-1] == 429 and 15 <= len(statuses) <= 19
        assert int(r.headers["Retry-After"]) >= 1
        assert r.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
        assert (
            r.headers["x-ms-throttle-scope"]
            == f"Tenant_Application/ReadWrite/{handle.client_id}/{handle.tenant_id}"
        )
        err = r.json()["error"]
        assert err["code"] == "TooManyRequests" and err["innerError"]["status"] == "429"
        log = logged(sim, len(statuses), "/v1.0/users")
        assert any(i.note.get("throttled") for i in log)
        assert sum(i.note.get("ru", 0) for i in log) == 2 * (len(statuses) - 1)
        time.sleep(float(r.headers["Retry-After"]))
        ok = g.get("/users", **{"$select": "id", "$top": "5"})
        assert ok.status_code == 200 and ok.headers["x-ms-resource-unit"] == "1"


def test_limit_percentage_header_above_80_percent(tmp_path: Path) -> None:
    with Simulator() as sim:
        handle = sim.add_tenant(TenantSpec(users=20, groups=4))
        g = Graph(sim, handle)
        sim.faults.throttle_scale = 0.01
        seen = [g.get("/users").headers.get("x-ms-throttle-limit-percentage") for _ in range(17)]
        assert seen[0] is None and any(seen)
