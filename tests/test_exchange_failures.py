"""Every way the bridge can fail gives the operator one clear message, never "no data"."""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path

from agent.jobs.backup import run_backup
from agent.simulator.exchange.dl import get_groups
from agent.simulator.world import ServiceAccount
from tests.agent_helpers import cli
from tests.exchange_agent_helpers import bridge_for, exchange_agent

PASSWORD = "Svc-Passw0rd!"
DL = "MailUniversalDistributionGroup"


def backup_cli(config: Path) -> tuple[int, str]:
    result = cli("backup", "--tenant", "contoso", "--config", str(config))
    assert "Traceback" not in result.err + result.out
    return result.code, " ".join((result.err + result.out).split())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_missing_role_skips_with_the_role_to_grant(tmp_path: Path) -> None:
    with exchange_agent(tmp_path, kinds=("exchange", "entra")) as (_, handle, config, rt):
        handle.exchange.app_exchange_admin = False
        report = run_backup(rt, "contoso", force_full=True)
        results = {k.kind: k for k in report.kinds}
        assert results["distributionGroup"].status == "skipped"
        assert results["distributionGroup"].reason == "missing Exchange role"
        assert results["organizationConfig"].reason == "missing Exchange role"
        assert results["user"].status == "succeeded"  # Graph kinds are not affected
        events = " ".join(e.message for e in rt.catalog.events(report.job_id))
        assert "Exchange Administrator" in events
        # Only Exchange in scope: the job fails with that one message and exit code 3.
        only = tmp_path / "only-exchange.toml"
        only.write_text(config.read_text().replace('"exchange", "entra"', '"exchange"'))
        code, text = backup_cli(only)
        assert code == 3 and "E731" in text and "Exchange Administrator" in text


def test_service_account_with_mfa_is_not_supported(tmp_path: Path) -> None:
    with exchange_agent(tmp_path) as (_, handle, config, _):
        upn = f"svc-exo@{handle.domain}"
        handle.exchange.tenant.accounts[upn] = ServiceAccount(
            username=upn,
            password_sha256=hashlib.sha256(PASSWORD.encode()).hexdigest(),
            mfa_required=True,
        )
        secret = tmp_path / "svc.secret"
        secret.write_text(PASSWORD)
        secret.chmod(0o600)
        text = config.read_text().replace(
            "[tenants.contoso.exchange]\n",
            '[tenants.contoso.exchange]\nconnect = "service_account"\n',
        ) + (
            f'\n[tenants.contoso.service_account]\nusername = "{upn}"\n'
            f'password = "file:{secret.as_posix()}"\nclient_id = "{handle.client_id}"\n'
        )
        config.write_text(text)
        code, out = backup_cli(config)
        assert code == 3 and "E732" in out
        assert "multi-factor" in out and "not supported" in out
        assert "certificate_thumbprint" in out  # the fix names the supported way
        assert PASSWORD not in out


def test_unreachable_bridge_host_fails_its_kinds_with_one_message(tmp_path: Path) -> None:
    port = closed_port()
    options = {"bridge_url": f'"https://127.0.0.1:{port}/wsman"'}
    with exchange_agent(tmp_path, kinds=("exchange", "entra"), exchange=options) as (
        _,
        _,
        config,
        rt,
    ):
        report = run_backup(rt, "contoso", force_full=True)
        assert report.status == "partial"
        results = {k.kind: k for k in report.kinds}
        assert results["user"].status == "succeeded"
        for name in ("distributionGroup", "organizationConfig"):
            assert results[name].status == "failed"
            assert f"Cannot reach the bridge host 127.0.0.1:{port}" in results[name].reason
        only = tmp_path / "only-exchange.toml"
        only.write_text(config.read_text().replace('"exchange", "entra"', '"exchange"'))
        code, text = backup_cli(only)
        assert code == 4 and "E710" in text and "firewall" in text


def test_module_missing_on_the_bridge_host(tmp_path: Path) -> None:
    with exchange_agent(tmp_path) as (sim, _, config, _):
        sim.bridge.exo_module_installed = False
        code, text = backup_cli(config)
        assert code == 4 and "E712" in text
        assert "does not have the ExchangeOnlineManagement" in text
        assert "Install-Module ExchangeOnlineManagement" in text


def test_a_call_longer_than_call_timeout_is_stopped(tmp_path: Path) -> None:
    options = {"call_timeout_s": "2", "operation_timeout_s": "5"}
    with exchange_agent(tmp_path, exchange=options) as (_, handle, _, rt):
        handle.exchange.faults.latency_s["Get-OrganizationConfig"] = 30.0
        started = time.monotonic()
        report = run_backup(rt, "contoso", force_full=True)
        assert time.monotonic() - started < 25  # stopped, not waited out
        results = {k.kind: k for k in report.kinds}
        assert results["organizationConfig"].status == "failed"
        assert "did not finish on the bridge host" in results["organizationConfig"].reason
        assert "call_timeout_s" in results["organizationConfig"].reason
        # Only that call's batch failed: later settings and the groups were read in the
        # same session after the stop.
        assert results["managementRoleAssignment"].status == "succeeded"
        assert results["distributionGroup"].status == "succeeded"
        assert report.status == "partial"


def test_dropped_session_is_reopened_and_the_read_retried_once(tmp_path: Path) -> None:
    with exchange_agent(tmp_path) as (sim, _, _, rt), bridge_for(rt) as bridge:
        first = bridge.export_settings(["Get-AcceptedDomain"])
        assert sim.winrm.drop_all() == 1  # the bridge host restarted
        again = bridge.export_settings(["Get-AcceptedDomain"])
        assert again.objects == first.objects and again.failures == {}
        assert bridge.stats.reconnects == 1
        assert sim.bridge.stats.get("<script>") == 2  # the module was loaded again


def test_a_listing_lost_with_its_session_is_listed_again(tmp_path: Path) -> None:
    with exchange_agent(tmp_path) as (sim, handle, _, rt), bridge_for(rt) as bridge:
        live = get_groups(handle.exchange, {"RecipientTypeDetails": DL})
        pages = bridge.export_groups(DL, page_size=2)
        first = next(pages)
        assert sim.winrm.drop_all() == 1  # the bridge host restarted mid-listing
        rest = list(pages)
        # The new session cannot continue the old listing: it starts again from the first page.
        assert rest[0].restarted and not any(p.restarted for p in rest[1:])
        assert rest[0].groups == first.groups
        listed = [g["ExternalDirectoryObjectId"] for p in rest for g in p.groups]
        assert sorted(listed) == sorted(g["ExternalDirectoryObjectId"] for g in live)
        assert bridge.stats.reconnects == 1


def test_throttled_cmdlets_are_retried_after_the_hosts_back_off(tmp_path: Path) -> None:
    with exchange_agent(tmp_path) as (_, handle, _, rt):
        faults = handle.exchange.faults
        with bridge_for(rt) as bridge:
            bridge.export_settings(["Get-AcceptedDomain"])  # connected before throttling
            faults.throttled_until = time.monotonic() + 1.0
            result = bridge.export_settings(["Get-AcceptedDomain", "Get-RemoteDomain"])
            assert result.failures == {}
            assert len(result.objects["Get-AcceptedDomain"]) >= 1
            assert bridge.stats.retries >= 1
            # Throttled for longer than the agent waits: a clear "throttled" failure.
            faults.throttled_until = time.monotonic() + 3600
            faults.throttle_retry_after_s = 1
            result = bridge.export_settings(["Get-RemoteDomain"])
            error = result.failures["Get-RemoteDomain"]
            assert error.code == "E720" and "kept throttling" in error.message
