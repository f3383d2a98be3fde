"""Simulated WinRM/PSRP endpoint of a bridge host, served to the unmodified pypsrp client.

``register_winrm_routes`` mounts it on the shared HTTPS server; a ``CommandHandler`` answers each
pipeline. See /work/shared/reference/psrp-wsman-notes.md for the wire facts it follows.
"""

from agent.simulator.winrm.auth import WinRMAuth
from agent.simulator.winrm.endpoint import WinRMEndpoint, register_winrm_routes
from agent.simulator.winrm.psrp import (
    CommandCall,
    CommandHandler,
    Invocation,
    InvocationResult,
    LoggedInvocation,
)
from agent.simulator.winrm.wsman import OPERATION_TIMEOUT, UNKNOWN_SHELL

__all__ = [
    "OPERATION_TIMEOUT",
    "UNKNOWN_SHELL",
    "CommandCall",
    "CommandHandler",
    "Invocation",
    "InvocationResult",
    "LoggedInvocation",
    "WinRMAuth",
    "WinRMEndpoint",
    "register_winrm_routes",
]
