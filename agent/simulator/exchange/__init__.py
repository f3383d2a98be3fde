"""Simulated Exchange Online behind the simulated bridge host (agent/simulator/winrm).

state.py holds a tenant's Exchange (settings, RBAC, the Exchange-only half of mail-enabled
groups whose other half is the Graph directory); cmdlets.py/dl.py/settings.py are the Exchange
cmdlets; functions.py runs the ps_scripts module's functions on them; bridge.py is the
CommandHandler (loader, Connect, PowerShell binding); generator.py and churn.py fill and change
a tenant.
"""

from agent.simulator.exchange.bridge import BridgeHost, certificate_thumbprint
from agent.simulator.exchange.generator import build_org
from agent.simulator.exchange.state import DlRecord, ExchangeFaults, ExchangeOrg

__all__ = [
    "BridgeHost",
    "DlRecord",
    "ExchangeFaults",
    "ExchangeOrg",
    "build_org",
    "certificate_thumbprint",
]
