"""Runbook rehearsal: the simulator as its own process, the agent configured like for a real
tenant from the files the simulator writes (no code shared between the two)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.agent_helpers import cli


def test_agent_backs_up_a_standalone_simulator_like_a_real_tenant(tmp_path: Path) -> None:
    state = tmp_path / "sim"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent",
            "simulator",
            "serve",
            "--state",
            str(state),
            "--port",
            "0",
            "--users",
            "120",
            "--groups",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (state / "tenants.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        info = json.loads((state / "tenants.json").read_text())
        tenant = info["tenants"][0]
        config = tmp_path / "agent.toml"
        assert cli("init", "--config", str(config), "--data-dir", str(tmp_path / "data")).code == 0
        text = config.read_text()
        # What an operator edits: the tenant's ids, endpoints, CA and credential reference.
        start = text.index("[tenants.contoso]")
        end = text.index("[[tenants.contoso.scopes]]")
        text = (
            text[:start]
            + f"""[tenants.contoso]
tenant_id = "{tenant["tenant_id"]}"
authority_host = "{tenant["authority_host"]}"
graph_url = "{tenant["graph_url"]}"
ca_bundle = "{info["ca_file"]}"

[tenants.contoso.app]
client_id = "{tenant["client_id"]}"
client_secret = "file:{tenant["client_secret_file"]}"

"""
            + text[end:]
        )
        config.write_text(text)
        result = cli("backup", "--tenant", "contoso", "--config", str(config), "--json")
        assert result.code == 0, result.err
        report = result.json()
        assert {k["kind"]: k["succeeded"] for k in report["kinds"]}["user"] == 120
        assert cli("verify", "--config", str(config)).code == 0
        secret = Path(tenant["client_secret_file"]).read_text().strip()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert secret not in out  # the simulator never prints credentials
        assert (state / "tenants" / "contoso" / "directory.json.gz").exists()  # state saved
    finally:
        if proc.poll() is None:
            proc.kill()
