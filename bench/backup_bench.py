"""Backup benchmark: a generated tenant served by the simulator in its own process.

    python -m bench.backup_bench --users 100000 --groups 20000 --latency-ms 30

Reports, for a full backup and for an incremental one after churn: wall time, Graph requests,
resource units (RU) spent, RU per object, 429s, objects/s, the agent's peak RSS, and
efficiency = (RU spent / budget per second) / wall time, i.e. how close to Graph's throttling
ceiling the run came. Run it at two sizes to see whether memory grows with the tenant.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import resource
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.memory_trace import MemoryTrace

BUDGET_RU_PER_S = {"S": 350, "M": 500, "L": 800}


GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def served(items: list[Any]) -> dict[str, Any]:
    """What the simulator served: requests, batch items, RU, 429s, and the busiest paths."""
    paths: Counter[str] = Counter()
    batch_paths: Counter[str] = Counter()
    for i in items:
        paths[GUID.sub("{id}", i.path)] += 1
        batch_paths.update(GUID.sub("{id}", p) for p in i.note.get("batch_paths", ()))
    return {
        "requests": len(items),
        "batch_items": sum(int(i.note.get("batch_items", 0) or 0) for i in items),
        "ru": sum(int(i.note.get("ru", 0) or 0) for i in items),
        "throttled": sum(1 for i in items if i.status == 429),
        # a $batch answers 200 with 429 items inside: count those requests too
        "batches_with_429": sum(1 for i in items if i.status != 429 and i.note.get("throttled")),
        "top_paths": dict(paths.most_common(40)),
        # requests inside $batch, by path (relationship reads per parent)
        "batch_paths": dict(batch_paths.most_common(20)),
        # every request as "METHOD path?query" (ids as {id}), for --requests-out
        "lines": [
            GUID.sub("{id}", f"{i.method} {i.path}?{i.query}".rstrip("?"))
            + "".join(f"\n    {GUID.sub('{id}', p)}" for p in i.note.get("batch_paths", ()))
            for i in items
        ],
        # (finished at, duration ms, body bytes, "METHOD path"): where each chain spent its time
        "timeline": [
            (
                round(i.at, 4),
                round(i.duration_ms, 1),
                i.size,
                GUID.sub("{id}", f"{i.method} {i.path}"),
            )
            for i in items
        ],
    }


def _cpu_s() -> float:
    """CPU seconds (user + system) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def simulator_process(
    conn: Connection, state: str, users: int, groups: int, latency_ms: float
) -> None:
    from agent.simulator.service import READ_PERMISSIONS, Simulator, TenantSpec

    sim = Simulator(Path(state))
    started = time.monotonic()
    # AuditLog.Read.All: relationship kinds follow the directory audit log incrementally.
    permissions = [*READ_PERMISSIONS, "AuditLog.Read.All"]
    handle = sim.add_tenant(
        TenantSpec(
            name="bench",
            seed=42,
            users=users,
            groups=groups,
            service_account=True,
            graph_permissions=permissions,
        )
    )
    generated_s = time.monotonic() - started
    sim.faults.latency_ms = latency_ms
    sim.start()
    d = handle.directory
    svc = handle.service_account
    conn.send(
        {
            "base_url": sim.base_url,
            "ca_path": str(sim.ca_path),
            "tenant_id": handle.tenant_id,
            "client_id": handle.client_id,
            "certificate_path": str(handle.certificate_path),
            "client_secret": handle.client_secret,
            "service_account": None
            if svc is None
            else {
                "username": svc.username,
                "client_id": svc.client_id,
                "password_path": str(svc.password_path),
            },
            # what the demo config's [exchange] section names (the scope reads Entra only)
            "bridge_password_path": str(sim.bridge_password_path),
            "domain": handle.domain,
            "certificates_pem": list(handle.app.certificates_pem[:1]),
            "generated_s": generated_s,
            "tenant": {
                "users": d.count("user"),
                "groups": d.count("group"),
                "memberships": sum(len(d.members(g["id"])) for g in d.groups()),
                "applications": d.count("application"),
                "service_principals": d.count("servicePrincipal"),
                "conditional_access_policies": len(d.policies.ids("conditionalAccessPolicy")),
            },
        }
    )
    while True:
        command, arg = conn.recv()
        if command == "churn":
            summary = handle.directory.churn(random.Random(7), arg)
            conn.send(str(summary))
        elif command == "log":
            items = sim.log.items()
            sim.log.clear()
            conn.send({**served(items), "cpu_s": _cpu_s()})
        else:
            sim.server.stop()
            conn.send("stopped")
            return


def run(
    users: int,
    groups: int,
    latency_ms: float,
    churn: float,
    size: str,
    verify: bool = False,
    trace: MemoryTrace | None = None,
    requests_out: Path | None = None,
    profile: Path | None = None,
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="entra-bench-"))
    parent, child = mp.Pipe()
    proc = mp.Process(
        target=simulator_process,
        args=(child, str(work / "sim"), users, groups, latency_ms),
        daemon=True,  # never outlives a failed run
    )
    proc.start()
    try:
        return measure(work, parent, churn, size, latency_ms, verify, trace, requests_out, profile)
    finally:
        parent.send(("stop", None))
        proc.join(timeout=30)


def measure(
    work: Path,
    parent: Connection,
    churn: float,
    size: str,
    latency_ms: float,
    verify: bool,
    trace: MemoryTrace | None = None,
    requests_out: Path | None = None,
    profile: Path | None = None,
) -> dict[str, Any]:
    from agent.config import load_config
    from agent.demo import setup_agent
    from agent.jobs.backup import run_backup
    from agent.kinds import ALL_KINDS, known_names
    from agent.runtime import Runtime

    info = parent.recv()
    account = info["service_account"]
    handle = SimpleNamespace(
        **{k: info[k] for k in ("tenant_id", "client_id", "client_secret")},
        certificate_path=Path(info["certificate_path"]),
        domain=info["domain"],
        app=SimpleNamespace(certificates_pem=info["certificates_pem"]),
        service_account=None
        if account is None
        else SimpleNamespace(
            username=account["username"],
            client_id=account["client_id"],
            password_path=Path(account["password_path"]),
        ),
    )
    sim = SimpleNamespace(
        base_url=info["base_url"],
        ca_path=Path(info["ca_path"]),
        bridge_password_path=Path(info["bridge_password_path"]),
        tenants={"bench": handle},
    )
    # Every Entra kind but sign-ins: their first read is 30 days of them at the reports
    # service's 5 requests / 10 s, which measures that limit rather than the backup.
    entra = tuple(k.name for k in ALL_KINDS if k.area == "entra" and k.name != "signIn")
    config = setup_agent(work / "agent", sim, "bench", kinds=entra)  # type: ignore[arg-type]
    text = config.read_text().replace('tenant_size = "auto"', "")
    config.write_text(
        text.replace("[tenants.bench]\n", f'[tenants.bench]\ntenant_size = "{size}"\n')
    )
    rt = Runtime(load_config(config, known_kinds=known_names()))
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "tenant": info["tenant"],
        "latency_ms": latency_ms,
        "tenant_size": size,
        "simulator_generation_s": round(info["generated_s"], 1),
    }
    snapshots: dict[str, Any] = {}
    if trace is not None:  # started here: the simulator process is forked already
        trace.__enter__()
    for label, full in (("full", True), ("incremental", False)):
        if not full:
            parent.send(("churn", churn))
            results["churn"] = parent.recv()
        parent.send(("log", None))
        sim_cpu = parent.recv()["cpu_s"]
        agent_cpu = _cpu_s()
        load = os.getloadavg()[0]
        started = time.monotonic()
        if trace is not None:
            trace.phase = label
        if full and profile is not None:
            from bench.thread_profile import profiled_threads

            with profiled_threads(profile):
                report = run_backup(rt, "bench", force_full=full)
        else:
            report = run_backup(rt, "bench", force_full=full, progress=trace and trace.progress)
        wall = time.monotonic() - started
        if trace is not None:
            trace.after(label)
        snapshots[label] = report.snapshot
        agent_cpu = _cpu_s() - agent_cpu
        parent.send(("log", None))
        served = parent.recv()
        if requests_out is not None:  # where each run's requests went, one line each
            out = requests_out.with_name(f"{requests_out.stem}-{label}{requests_out.suffix}")
            out.write_text("\n".join(served["lines"]) + "\n")
            start = served["timeline"][0][0] if served["timeline"] else 0.0
            out.with_suffix(".timeline.tsv").write_text(
                "".join(
                    f"{at - start:.3f}\t{ms}\t{size}\t{what}\n"
                    for at, ms, size, what in served["timeline"]
                )
            )
        objects = sum(k.succeeded for k in report.kinds)
        results[label] = {
            "status": report.status,
            "wall_s": round(wall, 2),
            "objects": objects,
            "failed_objects": sum(k.failed for k in report.kinds),
            "requests": served["requests"],
            "resource_units": served["ru"],
            "ru_per_object": round(served["ru"] / max(objects, 1), 4),
            "batch_items": served["batch_items"],
            "throttled_429": served["throttled"],
            "batches_with_429": served["batches_with_429"],
            "objects_per_s": round(objects / wall),
            # Both share the machine's cores: CPU seconds per wall second of each side
            "agent_cpu_s": round(agent_cpu, 1),
            "simulator_cpu_s": round(served["cpu_s"] - sim_cpu, 1),
            "load_before": round(load, 1),
            "peak_rss_mb_so_far": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
            "efficiency": round(served["ru"] / BUDGET_RU_PER_S[size] / wall, 3),
            "repository_bytes": rt.repository.stats()[1],
            "top_paths": served["top_paths"],
            "batch_paths": served["batch_paths"],
            "slowest_kinds": {
                k.kind: [round(k.duration_s, 1), k.succeeded, k.status]
                for k in sorted(report.kinds, key=lambda k: -k.duration_s)[:10]
            },
            "not_ok": {k.kind: k.reason[:120] for k in report.kinds if k.status != "succeeded"},
        }
    if trace is not None:
        trace.__exit__(None, None, None)
    results["incremental_requests_fraction"] = round(
        results["incremental"]["requests"] / max(results["full"]["requests"], 1), 4
    )
    results["incremental_time_fraction"] = round(
        results["incremental"]["wall_s"] / max(results["full"]["wall_s"], 1e-6), 4
    )
    results["agent_peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    if verify:  # a full backup right after the incremental one must store the same objects
        full_after = run_backup(rt, "bench", force_full=True).snapshot
        inc = snapshots["incremental"]
        states = [
            {(v.kind, v.object_id): v.blob_id for v in rt.catalog.state("bench", s.seq)}
            for s in (inc, full_after)
        ]
        differing = Counter(
            k[0]
            for k in states[0].keys() | states[1].keys()
            if states[0].get(k) != states[1].get(k)
        )
        results["incremental_equals_full"] = not differing
        results["objects_differing_by_kind"] = dict(differing)
    rt.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--groups", type=int, default=4000)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument("--size", choices=sorted(BUDGET_RU_PER_S), default="L")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--verify", action="store_true", help="compare the incremental snapshot with a full one"
    )
    parser.add_argument(
        "--memory-trace",
        type=Path,
        default=None,
        help="write RSS / heap samples over the run (bench/memory_trace.py) to this JSON file",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="with --memory-trace: also Python's top allocation sites at its peaks (slow)",
    )
    parser.add_argument(
        "--requests-out",
        type=Path,
        default=None,
        help="write each run's requests to NAME-full.txt / NAME-incremental.txt",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="write a CPU profile of the full run (all agent threads) to this pstats file",
    )
    args = parser.parse_args()
    trace = MemoryTrace(tracemalloc_on=args.tracemalloc) if args.memory_trace else None
    results = run(
        args.users,
        args.groups,
        args.latency_ms,
        args.churn,
        args.size,
        args.verify,
        trace,
        args.requests_out,
        args.profile,
    )
    if trace is not None:
        args.memory_trace.parent.mkdir(parents=True, exist_ok=True)
        args.memory_trace.write_text(json.dumps(trace.summary(), indent=1) + "\n")
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
