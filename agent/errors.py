"""Errors the operator sees.

Every failure that reaches the CLI is an ``AgentError``: one sentence naming the problem and one
naming the fix. The CLI prints exactly that and exits non-zero; it never prints a traceback for
an ``AgentError``. Messages must never contain secret values (callers pass names, not values).
"""

from __future__ import annotations


class AgentError(Exception):
    """A failure with a stable code, a plain message and a suggested fix."""

    code: str = "E000"
    exit_code: int = 1

    def __init__(self, message: str, fix: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.message} Fix: {self.fix}" if self.fix else self.message


class ConfigError(AgentError):
    code = "E100"
    exit_code = 2


class SecretError(AgentError):
    code = "E110"
    exit_code = 2


class AuthError(AgentError):
    code = "E200"
    exit_code = 3


class PermissionMissing(AgentError):
    """The token lacks a Graph application permission or directory role a kind needs."""

    code = "E210"
    exit_code = 3


class ConnectionFailed(AgentError):
    code = "E300"
    exit_code = 4


class GraphError(AgentError):
    """Graph answered with an error that retries could not absorb."""

    code = "E310"
    exit_code = 4

    def __init__(
        self,
        message: str,
        fix: str = "",
        *,
        status: int = 0,
        graph_code: str = "",
        request_id: str = "",
        code: str | None = None,
    ) -> None:
        super().__init__(message, fix, code=code)
        self.status = status
        self.graph_code = graph_code
        self.request_id = request_id


class WriteRejected(GraphError):
    """Graph refused a write for a reason retries cannot fix: ``reason`` says which
    (read_only, unknown_property, invalid_value, required, conflict, exists, missing,
    synced, password, not_supported), ``target`` names the property or object."""

    code = "E320"

    def __init__(
        self,
        message: str,
        fix: str = "",
        *,
        reason: str = "",
        target: str = "",
        status: int = 0,
        graph_code: str = "",
        request_id: str = "",
    ) -> None:
        super().__init__(message, fix, status=status, graph_code=graph_code, request_id=request_id)
        self.reason = reason
        self.target = target


class RepositoryError(AgentError):
    code = "E400"
    exit_code = 5


class IntegrityError(RepositoryError):
    code = "E410"


class JobConflict(AgentError):
    code = "E500"
    exit_code = 6


class NotFound(AgentError):
    code = "E600"
    exit_code = 7


# --- Exchange Online through the bridge host (agent/exchange) ------------------------------


class ExchangeError(AgentError):
    """Exchange Online / the bridge host failed in a way retries could not absorb."""

    code = "E700"
    exit_code = 4


class BridgeUnreachable(ExchangeError):
    """No WinRM answer from the bridge host (DNS, closed port, TLS)."""

    code = "E710"


class BridgeAuthFailed(ExchangeError):
    """The bridge host refused the WinRM credentials."""

    code = "E711"
    exit_code = 3


class BridgeAuthUnavailable(ExchangeError):
    """The configured WinRM auth cannot run on this agent (a package or library is missing)."""

    code = "E715"
    exit_code = 2


class BridgeModuleMissing(ExchangeError):
    """The bridge host lacks the ExchangeOnlineManagement module (or cannot load ours)."""

    code = "E712"


class BridgeTimeout(ExchangeError):
    """A call on the bridge host did not finish in time."""

    code = "E713"


class BridgeProtocolError(ExchangeError):
    """The bridge answered without a valid envelope: never read as "no data"."""

    code = "E714"


class ExchangeThrottled(ExchangeError):
    code = "E720"


class ExchangeNotLicensed(ExchangeError):
    """The tenant has no licence for the feature (e.g. Defender for Office 365)."""

    code = "E730"
    exit_code = 3


class ExchangeRoleMissing(ExchangeError):
    """The app (or service account) lacks the Exchange role the cmdlet needs."""

    code = "E731"
    exit_code = 3


class ExchangeMfaRequired(ExchangeError):
    """The service account must do MFA: not supported for unattended Exchange sign-in."""

    code = "E732"
    exit_code = 3
