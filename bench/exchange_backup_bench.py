"""Exchange backup benchmark (the agent end to end): the bridge host simulated in its own
process (bench/exchange_bench.py measures the simulator and PSRP path alone).

    python -m bench.exchange_backup_bench --dls 2000 --members 50

A tenant with ``--dls`` distribution lists of ``--members`` members each plus the full default
settings set, every Exchange cmdlet slowed to a realistic latency (``--cmdlet-ms``, and
``--list-ms`` for Get-DistributionGroup, which pages through every group). Reports for a full
backup and for an incremental one after churn (Graph-side membership changes and Exchange-only
writes on ``--churn`` of the DLs): wall time, bridge calls by function, cmdlets the simulated
Exchange ran, objects stored, and the agent's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import resource
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def simulator_process(conn: Connection, state: str, args: dict[str, Any]) -> None:
    from agent.simulator.exchange import certificate_thumbprint
    from agent.simulator.exchange.dl import get_groups
    from agent.simulator.service import BRIDGE_USER, Simulator, TenantSpec

    sim = Simulator(Path(state))
    started = time.monotonic()
    handle = sim.add_tenant(
        TenantSpec(
            name="bench",
            seed=42,
            users=args["users"],
            groups=args["groups"],
            distribution_groups=args["dls"],
            mail_security_groups=args["mesgs"],
            members_per_dl=args["members"],
        )
    )
    generated_s = time.monotonic() - started
    org = handle.exchange
    for cmdlet in org.settings:
        org.faults.latency_s[cmdlet] = args["cmdlet_ms"] / 1000
    for cmdlet in ("Get-RoleGroup", "Get-ManagementRoleAssignment", "Get-DistributionGroupMember"):
        org.faults.latency_s[cmdlet] = args["cmdlet_ms"] / 1000
    org.faults.latency_s["Get-DistributionGroup"] = args["list_ms"] / 1000
    sim.start()
    conn.send(
        {
            "base_url": sim.base_url,
            "ca_path": str(sim.ca_path),
            "tenant_id": handle.tenant_id,
            "domain": handle.domain,
            "client_id": handle.client_id,
            "certificate_path": str(handle.certificate_path),
            "thumbprint": certificate_thumbprint(handle.app.certificates_pem[0]),
            "bridge_user": BRIDGE_USER,
            "bridge_password_path": str(sim.bridge_password_path),
            "generated_s": generated_s,
            "dls": len(org.dls),
        }
    )
    while True:
        command, arg = conn.recv()
        if command == "churn":
            rng = random.Random(7)
            dls = get_groups(org, {"RecipientTypeDetails": "MailUniversalDistributionGroup"})
            picked = rng.sample(dls, max(1, round(len(dls) * arg)))
            users = [u["id"] for u in handle.directory.users()]
            for i, group in enumerate(picked):
                gid = group["ExternalDirectoryObjectId"]
                if i % 2:  # Graph-side: a new member
                    handle.directory.add_member(gid, rng.choice(users))
                else:  # Exchange-only: a property only Exchange has
                    with org.lock:
                        org.dls[gid].props["MailTip"] = f"Changed {i}"
                        org.dls[gid].when_changed = handle.directory.now()
            conn.send(len(picked))
        elif command == "stats":
            conn.send({"bridge": dict(sim.bridge.stats), "exchange": dict(org.stats)})
            sim.bridge.stats.clear()
            org.stats.update(cmdlets=0, throttled=0)
        elif command == "stop":
            sim.stop()
            conn.send("stopped")
            return


def config_text(data: Path, info: dict[str, Any]) -> str:
    return f"""
[agent]
data_dir = "{data.as_posix()}"
repository_key = "file:{(data / "keys" / "repository.key").as_posix()}"

[tenants.bench]
tenant_id = "{info["tenant_id"]}"
authority_host = "{info["base_url"]}"
graph_url = "{info["base_url"]}"
ca_bundle = "{info["ca_path"]}"

[tenants.bench.app]
client_id = "{info["client_id"]}"
certificate = "file:{info["certificate_path"]}"

[tenants.bench.exchange]
bridge_url = "{info["base_url"]}/wsman"
auth = "basic"
username = "{info["bridge_user"]}"
password = "file:{info["bridge_password_path"]}"
organization = "{info["domain"]}"
certificate_thumbprint = "{info["thumbprint"]}"
call_timeout_s = 3600
operation_timeout_s = 20

[[tenants.bench.scopes]]
name = "exchange"
kinds = ["exchange", "defender"]
schedule = "0 2 * * *"
"""


def run(args: argparse.Namespace) -> dict[str, Any]:
    from agent.config import load_config
    from agent.db.catalog import Catalog
    from agent.jobs.backup import run_backup
    from agent.kinds import known_names
    from agent.runtime import Runtime
    from agent.store.keys import RepositoryKey
    from agent.store.repository import Repository

    work = Path(tempfile.mkdtemp(prefix="exchange-bench-"))
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(
        target=simulator_process, args=(child, str(work / "sim"), vars(args)), daemon=True
    )
    proc.start()
    info = parent.recv()
    data = work / "agent"
    (data / "keys").mkdir(parents=True)
    RepositoryKey.generate().write_key_file(data / "keys" / "repository.key")
    config = data / "agent.toml"
    config.write_text(config_text(data, info))
    cfg = load_config(config, known_kinds=known_names())
    Repository.init(
        Path(cfg.agent.repository),
        RepositoryKey.from_text((data / "keys" / "repository.key").read_text().strip()),
    )
    Catalog(cfg.agent.database_url).close()
    rt = Runtime(cfg)
    out: dict[str, Any] = {"generated_s": round(info["generated_s"], 1), "dls": info["dls"]}

    def measure(name: str, full: bool) -> None:
        started = time.monotonic()
        report = run_backup(rt, "bench", force_full=full)
        wall = time.monotonic() - started
        parent.send(("stats", None))
        server = parent.recv()
        kinds = {k.kind: k for k in report.kinds}
        out[name] = {
            "status": report.status,
            "wall_s": round(wall, 1),
            "bridge_calls": report.graph["bridge"]["by_function"],
            "bridge_seconds": report.graph["bridge"]["seconds"],
            "graph_requests": report.graph.get("requests"),
            "exchange_cmdlets_run": server["exchange"]["cmdlets"],
            "dls_stored": kinds["distributionGroup"].succeeded,
            "members_stored": kinds["distributionGroupMember"].succeeded,
            "settings_objects": sum(
                k.succeeded
                for k in report.kinds
                if k.kind
                not in (
                    "distributionGroup",
                    "distributionGroupMember",
                    "mailEnabledSecurityGroup",
                    "mailEnabledSecurityGroupMember",
                )
            ),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        print(name, json.dumps(out[name]), flush=True)

    measure("full", True)
    parent.send(("churn", args.churn))
    out["churned_dls"] = parent.recv()
    measure("incremental", False)
    parent.send(("stop", None))
    parent.recv()
    rt.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dls", type=int, default=2000)
    parser.add_argument("--mesgs", type=int, default=0)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--cmdlet-ms", type=float, default=150.0)
    parser.add_argument("--list-ms", type=float, default=2000.0)
    parser.add_argument("--churn", type=float, default=0.01)
    args = parser.parse_args()
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
