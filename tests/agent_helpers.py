"""Shared wiring for end-to-end tests: a simulated tenant and an agent pointed at it."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.cli import main
from agent.config import load_config
from agent.db.catalog import KindResult
from agent.demo import setup_agent
from agent.jobs.backup import run_backup
from agent.kinds import known_names
from agent.runtime import Runtime
from agent.simulator.service import Simulator, TenantSpec

# What writing every Entra policy kind takes (Policy.ReadWrite.*): granted to the simulated app
# by the policy write and restore tests, beside what else each needs.
POLICY_WRITE_PERMISSIONS = [
    "Policy.ReadWrite.ConditionalAccess",
    "Policy.ReadWrite.AuthenticationMethod",
    "Policy.ReadWrite.Authorization",
    "Policy.ReadWrite.SecurityDefaults",
    "Policy.ReadWrite.CrossTenantAccess",
    "Policy.ReadWrite.ConsentRequest",
    "Policy.ReadWrite.ApplicationConfiguration",
    "Policy.ReadWrite.PermissionGrant",
]


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli(*args: str) -> CliResult:
    """Run the CLI in this process, as an operator would type it."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args])
    return CliResult(code, out.getvalue(), err.getvalue())


def run(*args: str, code: int = 0) -> CliResult:
    """``cli``, asserting the exit code and that no traceback reached the operator."""
    result = cli(*args)
    assert result.code == code, result.out + result.err
    assert "Traceback" not in result.out + result.err
    return result


def backup(config: str) -> int:
    """A backup of the tenant "contoso" through the CLI: its snapshot id."""
    out = run("backup", "--tenant", "contoso", "--config", config, "--json").json()
    return int(out["snapshot"]["id"])


def restore(config: str, snap: int, *args: str, code: int = 0) -> CliResult:
    """A restore of snapshot ``snap`` into the tenant "contoso" through the CLI."""
    return run("restore", "--tenant", "contoso", "--snapshot", str(snap), "--config", config,
               *args, code=code)  # fmt: skip


def assert_differences_reported(config: str, snap: int, report: Any, *kind_args: str) -> None:
    """Every difference a live diff still shows after a restore is in the restore's report with
    its reason (``not_restored``). A recreated object shows as removed and added (old and new
    id); a change naming a recreated object (or its appId) is the same object under a new id."""
    listed = {(r["kind"], r["id"]): r["not_restored"] for r in report["results"]}
    ids = {o["old"]: o["new"] for o in report["id_map"]["objects"]}
    live = run("diff", str(snap), "--live", "--config", config, "--json", *kind_args).json()
    for obj in live["objects"]:
        if obj["status"] != "changed":
            assert obj["id"] in ids or obj["id"] in ids.values(), obj
            continue
        for change in obj["changes"]:
            if any(old in change["path"] or new in change["path"] for old, new in ids.items()):
                continue  # names a recreated object (or its appId): same object, new id
            prop = change["path"].split("[")[0].split(".")[0]
            assert prop in listed.get((obj["kind"], obj["id"]), {}), (obj, change)


def cli_process(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None, cwd: Path | None = None
) -> CliResult:
    """Run the CLI as a separate process (exit codes, signals, no tracebacks)."""
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@contextlib.contextmanager
def simulated_tenant(state_dir: Path, **spec: Any) -> Iterator[Simulator]:
    sim = Simulator(state_dir)
    sim.add_tenant(TenantSpec(**{"name": "contoso", "seed": 7, "users": 300, "groups": 60, **spec}))
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def agent_for(data_dir: Path, sim: Simulator, **options: Any) -> tuple[Path, Runtime]:
    config = setup_agent(data_dir, sim, **options)
    return config, Runtime(load_config(config, known_kinds=known_names()))


def state_of(rt: Runtime, snapshot_id: int) -> dict[tuple[str, str], str]:
    snap = rt.catalog.snapshot(snapshot_id)
    return {(v.kind, v.object_id): v.blob_id for v in rt.catalog.state(snap.tenant, snap.seq)}


def objects_of(rt: Runtime, snapshot_id: int, kind: str) -> dict[str, Any]:
    """The objects of one kind in a snapshot, by object id, read back from the repository."""
    snap = rt.catalog.snapshot(snapshot_id)
    return {
        v.object_id: rt.repository.get(v.blob_id)
        for v in rt.catalog.state(snap.tenant, snap.seq, kind)
    }


def kinds_with_permissions(tmp_path: Path, permissions: list[str]) -> dict[str, KindResult]:
    """One full backup of a small simulated tenant whose app holds only ``permissions``:
    the result of every kind, by name."""
    with simulated_tenant(
        tmp_path / "sim", users=60, groups=8, graph_permissions=permissions
    ) as sim:
        _, rt = agent_for(tmp_path / "agent", sim)
        try:
            report = run_backup(rt, "contoso", force_full=True)
        finally:
            rt.close()
    return {k.kind: k for k in report.kinds}


def counts(rt: Runtime, snapshot_id: int) -> dict[str, int]:
    result: dict[str, int] = {}
    for kind, _ in state_of(rt, snapshot_id):
        result[kind] = result.get(kind, 0) + 1
    return result


READS = frozenset({"GET", "HEAD"})


def write_requests(sim: Simulator, since: int = 0) -> list[Any]:
    """Requests the simulator served after the first ``since`` that could change a tenant:
    everything but reads, sign-ins and $batch requests whose items are all reads. The bridge
    host's WS-Man messages are all POSTs: its writes are the module functions in
    ``sim.winrm.log`` (see tests/test_restore_exchange.py)."""
    writes = []
    for item in sim.log.items()[since:]:
        if item.method in READS or item.path.endswith("/oauth2/v2.0/token"):
            continue
        if item.path == "/wsman":
            continue
        if item.path.endswith("/$batch") and set(item.note.get("batch_methods", ["?"])) <= READS:
            continue
        writes.append(item)
    return writes
