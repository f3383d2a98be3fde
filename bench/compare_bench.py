"""Compare benchmark: diff of two snapshots and diff against the live tenant.

    python -m bench.compare_bench --users 20000 --groups 4000

A generated tenant is served by the simulator in its own process and backed up, churned and
backed up again; then ``entra-backup diff latest`` (the two snapshots) and ``entra-backup
diff previous --live`` (the first snapshot and the tenant) run as separate processes. Reports per diff: wall time,
objects listed, the CLI process's peak RSS and (live) Graph requests. Run it at two sizes to
see whether memory grows with the tenant.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.backup_bench import simulator_process

# Peak RSS as the CLI process itself sees it: /proc's VmHWM belongs to the process image, while
# rusage's maxrss would include this (larger) benchmark process it was forked from.
WRAPPER = """
import atexit, os, sys
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(os.environ["PEAK_FILE"], "w").write(line.split()[1])
atexit.register(_peak)
from agent.cli import main
sys.exit(main(sys.argv[1:]))
"""


def cli_measured(*args: str) -> tuple[dict[str, Any], float, float]:
    """Run the CLI in its own process: (JSON output, wall seconds, peak RSS in MB)."""
    with tempfile.TemporaryDirectory() as tmp:
        peak = Path(tmp) / "peak"
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", WRAPPER, *args],
            capture_output=True,
            env={**os.environ, "PEAK_FILE": str(peak)},
            check=False,
        )
        wall = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit(f"diff exited {proc.returncode}: {proc.stderr.decode()}")
        return json.loads(proc.stdout), wall, int(peak.read_text()) / 1024


def run(users: int, groups: int, latency_ms: float, churn: float) -> dict[str, Any]:
    from agent.config import load_config
    from agent.demo import setup_agent
    from agent.jobs.backup import run_backup
    from agent.kinds import known_names
    from agent.runtime import Runtime

    work = Path(tempfile.mkdtemp(prefix="entra-compare-bench-"))
    parent, child = mp.Pipe()
    proc = mp.Process(
        target=simulator_process, args=(child, str(work / "sim"), users, groups, latency_ms)
    )
    proc.start()
    info = parent.recv()
    handle = SimpleNamespace(
        **{k: info[k] for k in ("tenant_id", "client_id", "client_secret")},
        certificate_path=Path(info["certificate_path"]),
        service_account=None,  # no admin portal profile: portal kinds are skipped
    )
    sim = SimpleNamespace(
        base_url=info["base_url"], ca_path=Path(info["ca_path"]), tenants={"bench": handle}
    )
    config = setup_agent(work / "agent", sim, "bench")  # type: ignore[arg-type]
    config.write_text(
        config.read_text().replace("[tenants.bench]\n", '[tenants.bench]\ntenant_size = "L"\n')
    )
    rt = Runtime(load_config(config, known_kinds=known_names()))
    results: dict[str, Any] = {"users": users, "groups": groups, "latency_ms": latency_ms}
    started = time.monotonic()
    snapshot = run_backup(rt, "bench", force_full=True).snapshot
    results["full_backup_s"] = round(time.monotonic() - started, 1)
    results["objects"] = snapshot.object_count if snapshot else 0
    parent.send(("churn", churn))
    results["churn"] = parent.recv()
    run_backup(rt, "bench")
    rt.close()

    report, wall, rss = cli_measured("diff", "latest", "-c", str(config), "--json")
    results["diff_snapshots"] = {
        "wall_s": round(wall, 2),
        "objects_listed": len(report["objects"]),
        "peak_rss_mb": round(rss, 1),
    }
    parent.send(("log", None))
    parent.recv()
    # The first snapshot against the tenant now: the same churn, read live.
    report, wall, rss = cli_measured("diff", "previous", "--live", "-c", str(config), "--json")
    parent.send(("log", None))
    served = parent.recv()
    results["diff_live"] = {
        "wall_s": round(wall, 2),
        "objects_listed": len(report["objects"]),
        "peak_rss_mb": round(rss, 1),
        "requests": served["requests"],
        "resource_units": served["ru"],
    }
    parent.send(("stop", None))
    parent.recv()
    proc.join(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--groups", type=int, default=4000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--churn", type=float, default=0.01)
    args = parser.parse_args()
    print(json.dumps(run(args.users, args.groups, args.latency_ms, args.churn), indent=2))


if __name__ == "__main__":
    main()
