"""What an envelope error or a transport failure means to the operator.

Each outcome an operator must tell apart is its own ``ExchangeError`` subclass with one
message and one fix. Some are not failures of the backup but facts about the tenant; those
carry ``skip_reason`` and their kinds are recorded as "skipped: <reason>".
"""

from __future__ import annotations

from agent.errors import (
    BridgeModuleMissing,
    ExchangeError,
    ExchangeMfaRequired,
    ExchangeNotLicensed,
    ExchangeRoleMissing,
    ExchangeThrottled,
)
from agent.exchange.protocol import EnvelopeError

SKIP_NOT_LICENSED = "not licensed"
SKIP_MISSING_ROLE = "missing Exchange role"
SKIP_MFA = "service account needs MFA (not supported)"

ROLE_FIX = (
    "Give the app's service principal the Exchange Administrator role in Entra (Global "
    "Administrator works too; Security Administrator does not cover Exchange), or add it to "
    "the least-privilege role group that ps_scripts' New-EbRoleGroupSetup creates "
    "('entra-backup permissions --scope exchange' lists the roles). Also check that "
    "Office 365 Exchange Online > Exchange.ManageAsApp is granted with admin consent."
)


def skip_reason(error: BaseException) -> str | None:
    """The job-record reason when ``error`` means "skip", not "fail"."""
    if isinstance(error, ExchangeNotLicensed):
        return SKIP_NOT_LICENSED
    if isinstance(error, ExchangeRoleMissing):
        return SKIP_MISSING_ROLE
    if isinstance(error, ExchangeMfaRequired):
        return SKIP_MFA
    return None


def error_for(error: EnvelopeError, host: str, *, connecting: bool = False) -> ExchangeError:
    """The operator-facing error for one envelope error (messages never hold secrets)."""
    cmdlet, message = error.cmdlet, _short(error.message)
    category = error.category
    if category == "Mfa":
        return ExchangeMfaRequired(
            "The service account must complete multi-factor authentication to sign in to "
            f"Exchange Online from the bridge host {host}; that is not supported: an unattended "
            f"backup cannot answer an MFA prompt ({message}).",
            "Connect with the app's certificate instead (exchange.connect = \"certificate_"
            'thumbprint" or "certificate_file"), or exempt the service account from MFA with a '
            "Conditional Access exclusion limited to the bridge host's network location.",
        )
    if category == "ModuleMissing":
        return BridgeModuleMissing(
            f"The bridge host {host} does not have the ExchangeOnlineManagement PowerShell "
            f"module ({message}).",
            "On the bridge host, run as administrator: Install-Module ExchangeOnlineManagement "
            "-Scope AllUsers (version 3.x), then run the backup again.",
        )
    if category == "NotLicensed":
        return ExchangeNotLicensed(
            f"The tenant is not licensed for {cmdlet} ({message}).",
            "Nothing to fix for the backup: these settings exist only with Microsoft Defender "
            "for Office 365 (Plan 1 or 2) and are recorded as 'skipped: not licensed'.",
        )
    if category == "Permission":
        what = "sign in to Exchange Online" if connecting else f"run {cmdlet}"
        return ExchangeRoleMissing(
            f"The app may not {what} on the bridge host {host}: {message}", ROLE_FIX
        )
    if category == "Throttled":
        return ExchangeThrottled(
            f"Exchange Online kept throttling {cmdlet} after the agent's retries ({message}).",
            "Run the backup again later, or spread the schedules of tenants that share the "
            "bridge host's app.",
        )
    if connecting:
        return ExchangeError(
            f"The bridge host {host} could not connect to Exchange Online: {message}",
            "Check exchange.organization, the app's certificate on the bridge host "
            "(certificate_thumbprint / certificate_file) and that the host can reach "
            "outlook.office365.com.",
        )
    return ExchangeError(
        f"{cmdlet} failed on the bridge host {host}: {message}",
        "Correct the cause the message names, then run the job again.",
    )


def _short(message: str, limit: int = 300) -> str:
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
