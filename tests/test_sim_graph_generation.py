"""The simulator's generated tenants: deterministic and realistic, persisted and reloaded with
their apps' credentials and delta links."""

from __future__ import annotations

import random
from pathlib import Path

from agent.simulator.graph import Directory, generate
from agent.simulator.graph.persist import load, save
from agent.simulator.service import Simulator, TenantSpec
from tests.test_sim_support import Graph

# -- generation and persistence ------------------------------------------------------------------


def test_generation_is_deterministic_and_realistic() -> None:
    a, b = Directory("t", "x.onmicrosoft.com"), Directory("t", "x.onmicrosoft.com")
    generate(a, 9, 400, 80)
    generate(b, 9, 400, 80)
    assert a.users() == b.users() and a.groups() == b.groups()
    assert all(a.members(x["id"]) == b.members(x["id"]) for x in a.groups())
    users = a.users()
    guests = [u for u in users if u["userType"] == "Guest"]
    assert 5 <= len(guests) <= 40 and all("#EXT#@" in u["userPrincipalName"] for u in guests)
    synced = [u for u in users if u.get("onPremisesSyncEnabled")]
    assert 0.15 * len(users) < len(synced) < 0.45 * len(users)
    kinds = {
        "unified": [x for x in a.groups() if "Unified" in x["groupTypes"]],
        "dynamic": [x for x in a.groups() if "DynamicMembership" in x["groupTypes"]],
        "distribution": [x for x in a.groups() if x["mailEnabled"] and not x["securityEnabled"]],
        "mail-security": [
            x
            for x in a.groups()
            if x["mailEnabled"] and x["securityEnabled"] and not x["groupTypes"]
        ],
        "role": [x for x in a.groups() if x.get("isAssignableToRole")],
    }
    assert all(kinds.values()), {k: len(v) for k, v in kinds.items()}
    c = Directory("t", "x.onmicrosoft.com")
    generate(c, 10, 400, 80)
    assert c.users() != a.users()


def test_persistence_round_trip(tmp_path: Path) -> None:
    d = Directory("t", "x.onmicrosoft.com")
    generate(d, 2, 200, 40)
    d.churn(random.Random(1), 0.1)
    save(d, tmp_path / "d.json.gz")
    e = load(tmp_path / "d.json.gz")
    assert e.users() == d.users() and e.groups() == d.groups()
    assert all(e.members(x["id"]) == d.members(x["id"]) for x in d.groups())
    assert all(e.owners(x["id"]) == d.owners(x["id"]) for x in d.groups())
    assert e.seq == d.seq and set(e.deleted) == set(d.deleted)
    assert e.changes("user", 0, e.seq).keys() == d.changes("user", 0, d.seq).keys()


def test_simulator_reloads_saved_tenant_and_its_tokens(tmp_path: Path) -> None:
    sim = Simulator(tmp_path / "state")
    handle = sim.add_tenant(TenantSpec(users=50, groups=10))
    sim.start()
    g = Graph(sim, handle)
    _, link, _ = g.delta("/users/delta", **{"$select": "id,displayName"})
    new = handle.directory.create_user(
        displayName="Persisted", userPrincipalName="p@contoso.onmicrosoft.com"
    )
    sim.stop()
    again = Simulator(tmp_path / "state")
    handle2 = again.add_tenant(TenantSpec(users=50, groups=10))
    again.start()
    try:
        assert (
            handle2.client_secret == handle.client_secret and handle2.client_id == handle.client_id
        )
        assert handle2.directory.get(new["id"]) is not None
        g2 = Graph(again, handle2)
        port_link = link.replace(sim.base_url, again.base_url)
        items, _, _ = g2.delta(port_link)
        assert [i["id"] for i in items] == [new["id"]]
    finally:
        again.stop()
    assert handle.certificate_path.stat().st_mode & 0o077 == 0
