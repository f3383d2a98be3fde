"""One pipeline on the bridge host: a module function (or the loader script) with every value
a typed parameter, run until it ends or its deadline (then stopped), and its output decoded as
exactly one envelope of the op the function answers with."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import requests
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import WinRMError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool

from agent.errors import BridgeProtocolError, BridgeTimeout, ExchangeError
from agent.exchange.protocol import Envelope, ProtocolError, parse_envelope
from agent.exchange.psrp_endpoint import BridgeEndpoint, SessionLost

log = logging.getLogger("entra_backup.exchange")

UNKNOWN_SHELL = 2150858843  # WSMan fault: the shell (session) no longer exists
# Operation the agent sends; the op each function's envelope must carry.
OPS = {
    "Connect-EbExchange": "connect",
    "Export-EbDistributionGroups": "exportDistributionGroups",
    "Export-EbSettings": "exportSettings",
    "New-EbDistributionGroup": "newDistributionGroup",
    "Set-EbDistributionGroup": "setDistributionGroup",
    "Sync-EbDistributionGroupMember": "syncDistributionGroupMember",
    "Remove-EbDistributionGroup": "removeDistributionGroup",
    "Set-EbSetting": "setSetting",
    "New-EbPolicyWithRule": "newPolicyWithRule",
    "New-EbTransportRule": "newTransportRule",
    "Remove-EbSetting": "removeSetting",
    "New-EbRoleGroupSetup": "newRoleGroupSetup",
    "New-EbSetting": "newSetting",
    "Set-EbRuleState": "setRuleState",
    "Update-EbRoleGroupMember": "updateRoleGroupMember",
    "New-EbAllowBlockListItem": "newAllowBlockListItem",
    "Remove-EbAllowBlockListItem": "removeAllowBlockListItem",
    "New-EbRoleAssignment": "newRoleAssignment",
    "Set-EbRoleAssignment": "setRoleAssignment",
    "Sync-EbRoleGroupRole": "syncRoleGroupRole",
}
Transport = Callable[[Any], Any]  # runs one pypsrp step, its failures as operator errors


def pipeline(
    pool: RunspacePool, parameters: dict[str, Any], *, function: str = "", script: str = ""
) -> PowerShell:
    """A module function (or a script) with its parameters, values only as parameters."""
    ps = PowerShell(pool)
    if function:
        ps.add_cmdlet(function)
    else:
        ps.add_script(script)
    for name, value in parameters.items():
        ps.add_parameter(name, value)
    return ps


def run(ps: PowerShell, what: str, endpoint: BridgeEndpoint, transport: Transport) -> None:
    """Run ``ps`` to its end within the call timeout; a lost session is ``SessionLost``."""
    deadline = time.monotonic() + endpoint.config.call_timeout_s
    try:
        transport(ps.begin_invoke)
        while ps.state == PSInvocationState.RUNNING:
            if time.monotonic() >= deadline:
                _stop(ps)
                raise BridgeTimeout(
                    f"{what} did not finish on the bridge host {endpoint.host} within "
                    f"{endpoint.config.call_timeout_s} s; it was stopped.",
                    f"Raise {endpoint.where}.call_timeout_s if the tenant is large, or check "
                    "the bridge host's load and its connection to Exchange Online.",
                )
            wait = min(
                max(1, int(deadline - time.monotonic())), endpoint.config.operation_timeout_s
            )
            transport(lambda wait=wait: ps.poll_invoke(wait))
    except WSManFaultError as fault:
        if fault.code == UNKNOWN_SHELL:
            raise SessionLost(f"WSMan fault {fault.code}") from None
        raise ExchangeError(
            f"The bridge host {endpoint.host} refused {what}: {fault.reason or fault.code}.",
            "Check the bridge host's WinRM configuration and event log.",
        ) from None
    finally:
        if ps.state != PSInvocationState.RUNNING:
            with contextlib.suppress(WinRMError, requests.RequestException, OSError):
                ps.close()
    if ps.state == PSInvocationState.FAILED:
        message = str(ps.streams.error[-1]) if ps.streams.error else "no error record"
        if "CommandNotFoundException" in message or "is not recognized" in message:
            # Our function is unknown: the runspace lost the module (host recycled it).
            raise SessionLost(message)
        raise BridgeProtocolError(
            f"PowerShell on the bridge host {endpoint.host} refused {what}: {message}",
            "This is an agent/module mismatch; make sure both are the same version and "
            "report it with the log file.",
        )


def decode(
    output: list[Any], what: str, op: str, malformed: Callable[[str, str], ExchangeError]
) -> Envelope:
    """The one envelope of ``output``; anything else is ``malformed(what, why)``."""
    try:
        envelope = parse_envelope(output)
    except (ProtocolError, KeyError, TypeError) as exc:
        raise malformed(what, str(exc)) from None
    if envelope.op != op:
        raise malformed(what, f"op {envelope.op!r}, expected {op!r}")
    if envelope.ok != (not envelope.failed) or bool(envelope.errors) != bool(envelope.failed):
        raise malformed(what, "ok, errors and failed disagree")
    return envelope


def _stop(ps: PowerShell) -> None:
    try:
        ps.stop()
    except (WinRMError, requests.RequestException, OSError) as exc:
        log.info("Stopping a timed-out pipeline failed (ignored): %s", exc)
