"""Fault injection of the simulated Graph, the agent's own Graph client against it, and
``serve`` as ``entra-backup simulator serve`` runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from agent.simulator.service import Simulator, TenantSpec
from tests.test_sim_support import Graph, logged, session, token


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as s:
        s.add_tenant(TenantSpec(users=60, groups=12))
        yield s
        assert s.errors == []


def test_error_rate_answers_503_with_retry_after(sim: Simulator) -> None:
    g = Graph(sim, sim.tenants["contoso"])
    sim.faults.error_rate = 1.0
    r = g.get("/users")
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert r.json()["error"]["code"] == "serviceNotAvailable"
    sim.faults.error_rate = 0.0
    assert g.get("/users").status_code == 200


def test_fail_paths_and_latency(sim: Simulator) -> None:
    g = Graph(sim, sim.tenants["contoso"])
    sim.faults.fail_paths = {r"^/groups": 504}
    assert g.get("/groups").status_code == 504
    assert g.get("/users").status_code == 200
    sim.faults.fail_paths = {}
    sim.faults.latency_ms = 150
    started = time.monotonic()
    g.get("/users", **{"$top": "1"})
    assert time.monotonic() - started >= 0.15
    sim.faults.reset()


def test_reset_rate_drops_the_connection(sim: Simulator) -> None:
    g = Graph(sim, sim.tenants["contoso"])
    sim.faults.reset_rate = 1.0
    with pytest.raises(requests.ConnectionError):
        g.get("/users")
    sim.faults.reset_rate = 0.0
    assert any(i.note.get("fault") == "reset" for i in logged(sim, 1))
    assert g.get("/users").status_code == 200


def test_throttle_storm_and_request_log_notes(sim: Simulator) -> None:
    handle = sim.tenants["contoso"]
    g = Graph(sim, handle)
    sim.faults.throttle_probability = 1.0
    r = g.get("/users")
    assert r.status_code == 429 and r.headers["Retry-After"]
    sim.faults.throttle_probability = 0.0
    g.get(f"/groups/{handle.directory.groups()[0]['id']}/members")
    notes = [i.note for i in logged(sim, 2)]
    assert notes[-2]["throttled"] is True
    assert notes[-1] == {
        "ru": 3,
        "throttled": False,
        "app_id": handle.client_id,
        "tenant_id": handle.tenant_id,
    }


def test_agent_graph_client_reads_everything_through_throttling(sim: Simulator) -> None:
    from agent.graph.budget import ResourceBudget
    from agent.graph.client import GraphClient

    handle = sim.tenants["contoso"]
    bearer = token(sim, handle)
    sim.faults.throttle_probability = 0.3
    client = GraphClient(
        sim.base_url, session(sim), lambda: bearer, ResourceBudget(5000), max_backoff_s=0.2
    )
    round_ = client.delta(
        "/groups/delta",
        params={"$select": "id,displayName,members"},
        headers={"Prefer": "odata.maxpagesize=2"},
    )
    merged: dict[str, set[str]] = {}
    for page in round_.pages():
        for item in page.items:
            merged.setdefault(item["id"], set()).update(
                m["id"] for m in item.get("members@delta", [])
            )
    sim.faults.throttle_probability = 0.0
    d = handle.directory
    assert merged == {x["id"]: d.members(x["id"]) for x in d.groups()}
    assert round_.delta_link and client.stats.as_dict().get("throttled", 0) > 0


def test_serve_writes_tenants_json_without_secrets_and_saves_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    code = (
        "from pathlib import Path; from agent.simulator.service import serve, TenantSpec; "
        f"serve(Path({str(state)!r}), '127.0.0.1', 0, [TenantSpec(users=30, groups=5)])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        deadline = time.monotonic() + 60
        while not (state / "tenants.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        info = json.loads((state / "tenants.json").read_text())
        tenant = info["tenants"][0]
        assert tenant["authority_host"] == tenant["graph_url"]
        secret_file = Path(tenant["client_secret_file"])
        assert os.stat(secret_file).st_mode & 0o077 == 0
        assert Path(tenant["certificate_file"]).exists() and (state / "ca.pem").exists()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert secret_file.read_text() not in out and "Traceback" not in out
    assert (state / "tenants" / "contoso" / "directory.json.gz").exists()
