"""Helpers of the tenant-configuration restore tests."""

from __future__ import annotations

import time

from agent.graph import GraphClient
from agent.simulator.service import Simulator


def settled(sim: Simulator, g: GraphClient | None) -> int:
    """The request log's length once every request sent so far is in it: the server logs a
    request just after answering, so a test can be ahead of the log. A marker read goes
    last; the log is complete when it shows up."""
    if g is None:
        return len(sim.log.items())
    g.get_json("/organization", {"$select": "id"})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        items = sim.log.items()
        if items and items[-1].path.endswith("/organization") and items[-1].method == "GET":
            return len(items)
        time.sleep(0.01)
    return len(sim.log.items())
