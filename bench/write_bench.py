"""Write benchmark: user PATCHes in $batch through GraphClient against the simulator, paced by
the write quota (facts file §1: 3,000 writes per 150 s per app and tenant).

    python -m bench.write_bench --writes 4000 --window-s 2 --workers 2

The simulator's write window is scaled to ``--window-s`` (same 3,000 writes) and the client's
WriteBudget declared with the same window, so a run shows in seconds what takes minutes against
Graph. Reports wall time, writes/s, requests, 429s, budget waits, and efficiency = writes/s ÷
(quota / window), i.e. how close to the quota the run came. Simulator and agent share this
process, so the figure is a floor for the agent's own overhead.
"""

from __future__ import annotations

import argparse
import json
import time

from agent.graph import BatchRequest, GraphClient, ResourceBudget, WriteBudget
from agent.simulator.service import READ_PERMISSIONS, Simulator, TenantSpec
from tests.test_sim_support import session, token

PROPS = ("jobTitle", "department", "officeLocation", "city", "state", "country", "postalCode",
         "streetAddress", "companyName", "employeeId")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=4000)
    parser.add_argument("--window-s", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    users = args.writes // len(PROPS) * 2 + 50  # ~70 % are cloud users that can be patched
    with Simulator() as sim:
        spec = TenantSpec(
            name="bench", seed=42, users=users, groups=5, applications=1, devices=1,
            graph_permissions=[*READ_PERMISSIONS, "User.ReadWrite.All"],
        )  # fmt: skip
        handle = sim.add_tenant(spec)
        sim.faults.write_window_s = args.window_s
        sim.faults.latency_ms = args.latency_ms
        bearer = token(sim, handle)
        writes = WriteBudget(window_s=args.window_s)
        client = GraphClient(
            sim.base_url,
            session(sim),
            lambda: bearer,
            ResourceBudget.for_tenant_size("L" if users > 500 else "M"),
            write_budget=writes,
        )
        cloud = [u for u in handle.directory.users() if not u.get("onPremisesSyncEnabled")]
        requests = [
            BatchRequest(f"{u['id']}/{p}", "PATCH", f"/users/{u['id']}", {p: "bench"})
            for p in PROPS
            for u in cloud
        ][: args.writes]
        started = time.monotonic()
        failed = sum(r.status >= 400 for r in client.run_batches(requests, args.workers))
        wall = time.monotonic() - started
    stats = client.stats.as_dict()
    rate = len(requests) / wall
    print(
        json.dumps(
            {
                "writes": len(requests),
                "failed": failed,
                "wall_s": round(wall, 2),
                "writes_per_s": round(rate, 1),
                "requests": stats["requests"],
                "throttled_429": stats["throttled"],
                "budget_waits": writes.waits,
                "efficiency": round(rate / (3000 / args.window_s), 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
