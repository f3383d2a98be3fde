"""A job killed midway damages nothing; the service stops cleanly and recovers dead jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent.jobs.backup import run_backup
from tests.agent_helpers import agent_for, cli, simulated_tenant, state_of


def wait_for(predicate, timeout: float = 60.0, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def test_killed_backup_process_leaves_snapshots_intact(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=400, groups=60) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        first = run_backup(rt, "contoso", force_full=True)
        before = state_of(rt, first.snapshot.id)
        sim.faults.latency_ms = 400  # slow enough (~10 requests) to kill it midway
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent.cli",
                "backup",
                "--tenant",
                "contoso",
                "--full",
                "--config",
                str(config),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert wait_for(
                lambda: any(
                    j.status == "running" and j.pid == proc.pid for j in rt.catalog.jobs("contoso")
                )
            )
            time.sleep(1.0)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        sim.faults.latency_ms = 0
        assert [s.id for s in rt.catalog.snapshots("contoso")] == [first.snapshot.id]
        assert state_of(rt, first.snapshot.id) == before

        # The next run notices the dead job, marks it interrupted and succeeds.
        again = run_backup(rt, "contoso")
        assert again.status == "succeeded"
        killed = next(j for j in rt.catalog.jobs("contoso") if j.pid == proc.pid)
        assert killed.status == "interrupted"
        assert cli("verify", "--config", str(config)).code == 0
        rt.close()


def test_serve_schedules_scopes_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with simulated_tenant(tmp_path / "sim", users=40, groups=8) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        # A job left running by a process that no longer exists.
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        rt.catalog.ensure_tenant("contoso", sim.tenants["contoso"].tenant_id)
        orphan = rt.catalog.start_job(
            "contoso", job_type="backup", mode="full", scope="nightly", host=rt.host, pid=dead.pid
        )
        log_file = Path(rt.config.agent.log_file)
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "serve", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert wait_for(lambda: log_file.exists() and "Scheduled" in log_file.read_text())
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, out
        assert "Traceback" not in out
        assert "backup contoso / nightly" in log_file.read_text()
        assert rt.catalog.job(orphan).status == "interrupted"
        rt.close()


def test_scheduled_scope_run_records_a_job(tmp_path: Path) -> None:
    from agent.scheduler import AgentService

    with simulated_tenant(tmp_path / "sim", users=40, groups=8) as sim:
        config, rt = agent_for(tmp_path / "agent", sim)
        service = AgentService(rt)
        scheduler = service.build()
        assert [j.id for j in scheduler.get_jobs()] == ["contoso:nightly"]
        assert service.run_scope("contoso", "nightly") == "succeeded"
        # One run per tenant at a time: a second run while the tenant is busy is skipped.
        service._tenant_locks["contoso"].acquire()
        try:
            assert service.run_scope("contoso", "nightly") == "busy"
        finally:
            service._tenant_locks["contoso"].release()
        assert rt.catalog.jobs("contoso")[0].status == "succeeded"
        rt.close()


def test_demo_command_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--users",
            "300",
            "--groups",
            "50",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Full backup" in proc.stdout and "Incremental backup" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    # The demo leaves an ordinary config behind that the CLI can read.
    listed = cli(
        "snapshots", "list", "--config", str(tmp_path / "demo" / "agent.toml"), "--json"
    ).json()
    assert [s["mode"] for s in listed] == ["incremental", "full"]
