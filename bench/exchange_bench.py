"""Simulated bridge host benchmark: pypsrp against the simulator's /wsman in this process.

    python -m bench.exchange_bench --users 5000 --dls 1000 --members 50

Reports: pool open + module load + connect, one settings export of every family, one export
of all distribution lists with their members (one Get-DistributionGroupMember per group inside
the function, one PSRP round trip for the whole call), the envelope size, and a "changed since"
export after churn. Figures describe the simulator and the PSRP path, not Exchange Online.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import time
from typing import Any

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from agent.exchange import protocol
from agent.exchange.contract import SETTINGS_GET_CMDLETS
from agent.simulator.exchange import certificate_thumbprint
from agent.simulator.exchange.churn import churn
from agent.simulator.service import BRIDGE_USER, Simulator, TenantSpec


def _call(
    pool: RunspacePool, name: str, script: bool = False, **params: Any
) -> tuple[dict[str, Any], int]:
    ps = PowerShell(pool)
    ps.add_script(name) if script else ps.add_cmdlet(name)
    for key, value in params.items():
        ps.add_parameter(key, value)
    output = ps.invoke()
    assert not ps.had_errors, [str(e) for e in ps.streams.error]
    return json.loads(output[0]), len(output[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--dls", type=int, default=1000)
    parser.add_argument("--members", type=int, default=50)
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with Simulator() as sim:
        started = time.monotonic()
        spec = TenantSpec(
            name="bench",
            seed=42,
            users=args.users,
            groups=args.users // 20,
            distribution_groups=args.dls,
            members_per_dl=args.members,
        )
        tenant = sim.add_tenant(spec)
        figures["generate_s"] = round(time.monotonic() - started, 2)
        wsman = WSMan(
            "127.0.0.1",
            port=sim.server.port,
            ssl=True,
            path="wsman",
            auth="basic",
            username=BRIDGE_USER,
            password=sim.bridge_password_path.read_text().strip(),
            cert_validation=str(sim.ca_path),
            encryption="never",
            no_proxy=True,
        )
        started = time.monotonic()
        with RunspacePool(wsman) as pool:
            _call(pool, protocol.LOADER_SCRIPT, script=True, **protocol.loader_parameters())
            _call(
                pool,
                "Connect-EbExchange",
                AppId=tenant.client_id,
                Organization=tenant.domain,
                CertificateThumbprint=certificate_thumbprint(tenant.app.certificates_pem[0]),
            )
            figures["open_load_connect_ms"] = round((time.monotonic() - started) * 1000)
            started = time.monotonic()
            _, size = _call(pool, "Export-EbSettings", Cmdlet=sorted(SETTINGS_GET_CMDLETS))
            figures["settings_export_ms"] = round((time.monotonic() - started) * 1000)
            figures["settings_envelope_kb"] = round(size / 1024)
            started = time.monotonic()
            groups, size = _call(
                pool,
                "Export-EbDistributionGroups",
                RecipientTypeDetails="MailUniversalDistributionGroup",
                IncludeMembers=True,
            )
            seconds = time.monotonic() - started
            figures["dl_export"] = {
                "groups": len(groups["items"]),
                "members": sum(len(g["Members"] or []) for g in groups["items"]),
                "seconds": round(seconds, 2),
                "groups_per_s": round(len(groups["items"]) / seconds),
                "envelope_mb": round(size / 2**20, 1),
            }
            mark = tenant.directory.now()
            tenant.directory.advance_clock(2)
            churned = churn(tenant.exchange, random.Random(7), fraction=0.02)
            since = protocol.iso_utc(dt.datetime.fromtimestamp(mark, dt.UTC))
            started = time.monotonic()
            changed, _ = _call(
                pool,
                "Export-EbDistributionGroups",
                RecipientTypeDetails="MailUniversalDistributionGroup",
                ChangedSinceUtc=since,
                IncludeMembers=True,
            )
            figures["changed_since_export"] = {
                "groups": len(changed["items"]),
                "churned_groups": len(
                    set(churned.dl_edited)
                    | {g for g, _ in churned.members_added + churned.members_removed}
                ),
                "ms": round((time.monotonic() - started) * 1000),
            }
        assert sim.errors == [] and sim.winrm.errors == []
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
