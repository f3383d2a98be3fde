"""Calling the simulated bridge host with the real pypsrp client, as agent/exchange/protocol.py
describes: load the module with the constant loader, connect, then one function per pipeline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from agent.exchange import protocol
from agent.simulator.exchange import certificate_thumbprint
from agent.simulator.service import BRIDGE_USER, Simulator, TenantHandle


def wsman(sim: Simulator, password: str | None = None) -> WSMan:
    return WSMan(
        "127.0.0.1",
        port=sim.server.port,
        ssl=True,
        path="wsman",
        auth="basic",
        username=BRIDGE_USER,
        password=password or sim.bridge_password_path.read_text().strip(),
        cert_validation=str(sim.ca_path),
        encryption="never",
        no_proxy=True,
        operation_timeout=5,
    )


@dataclass
class Failed:
    """A pipeline PowerShell itself refused (state Failed): its terminating error record."""

    message: str
    error_id: str
    reason: str


def run(pool: RunspacePool, command: str, *, script: bool = False, **params: Any) -> Any:
    ps = PowerShell(pool)
    if script:
        ps.add_script(command)
    else:
        ps.add_cmdlet(command)
    for name, value in params.items():
        ps.add_parameter(name, value)
    output = ps.invoke()
    if ps.had_errors:
        record = ps.streams.error[0]
        return Failed(str(record), str(record.fq_error), str(record.reason))
    assert len(output) == 1 and isinstance(output[0], str), output
    return json.loads(output[0])


def set_setting(
    pool: RunspacePool, cmdlet: str, properties: dict[str, Any], identity: str | None = None
) -> Any:
    """One Set-EbSetting call (a singleton setting has no identity)."""
    ident = {} if identity is None else {"Identity": identity}
    return run(pool, "Set-EbSetting", Cmdlet=cmdlet, Properties=properties, **ident)


def load(pool: RunspacePool) -> dict[str, Any]:
    result = run(pool, protocol.LOADER_SCRIPT, script=True, **protocol.loader_parameters())
    assert isinstance(result, dict), result
    return result


def connect(pool: RunspacePool, handle: TenantHandle, **extra: Any) -> dict[str, Any]:
    result = run(
        pool,
        "Connect-EbExchange",
        AppId=handle.client_id,
        Organization=handle.domain,
        CertificateThumbprint=certificate_thumbprint(handle.app.certificates_pem[0]),
        **extra,
    )
    assert isinstance(result, dict), result
    return result


def open_bridge(sim: Simulator, handle: TenantHandle) -> RunspacePool:
    """An opened pool with the module loaded and the tenant connected (close it after)."""
    pool = RunspacePool(wsman(sim))
    pool.open()
    load(pool)
    envelope = connect(pool, handle)
    assert envelope["ok"], envelope
    return pool


def settings_of(envelope: dict[str, Any], cmdlet: str) -> list[dict[str, Any]]:
    return [o for item in envelope["items"] if item["cmdlet"] == cmdlet for o in item["objects"]]
