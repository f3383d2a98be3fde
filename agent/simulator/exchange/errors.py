"""Errors of simulated Exchange cmdlets, worded as EXO V3 surfaces them, and the module's own
categorisation of them (a port of Get-EbErrorCategory, so envelopes match what the module
would write for the same error)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SERVER = "DB8PR04MB6795.EURPRD04.PROD.OUTLOOK.COM"


@dataclass
class CmdletError(Exception):
    """A terminating error of one Exchange cmdlet (the module catches it per cmdlet)."""

    exception_type: str  # .NET exception type name
    message: str  # the exception message, as $_.Exception.Message
    error_id: str = ""  # FullyQualifiedErrorId

    def __str__(self) -> str:
        return self.message


def server_error(exception_type: str, text: str) -> CmdletError:
    """EXO V3 REST errors: "|<server exception type>|<message>" in a generic exception."""
    short = exception_type.rsplit(".", 1)[-1]
    return CmdletError(
        "System.Exception",
        f"|{exception_type}|{text}",
        f"[Server=AM6PR04MB5672,RequestId={_SERVER}][FailureCategory=Cmdlet-{short}]",
    )


def not_recognized(cmdlet: str) -> CmdletError:
    return CmdletError(
        "System.Management.Automation.CommandNotFoundException",
        f"The term '{cmdlet}' is not recognized as a name of a cmdlet, function, script file, or "
        "executable program.\nCheck the spelling of the name, or if a path was included, verify "
        "that the path is correct and try again.",
        "CommandNotFoundException",
    )


def not_found(identity: str) -> CmdletError:
    return server_error(
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
        f"The operation couldn't be performed because object '{identity}' couldn't be found on "
        f"'{_SERVER}'.",
    )


def recipient_not_found(identity: str) -> CmdletError:
    return server_error(
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
        f'Couldn\'t find object "{identity}". Please make sure that it was spelled correctly or '
        "specify a different object.",
    )


def name_taken(name: str) -> CmdletError:
    return server_error(
        "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
        f'The name "{name}" is already being used. Please try another name.',
    )


def proxy_taken(address: str, owner: str) -> CmdletError:
    return server_error(
        "Microsoft.Exchange.Data.Directory.ProxyAddressExistsException",
        f'The proxy address "SMTP:{address}" is already being used by the proxy addresses or '
        f'LegacyExchangeDN of "{owner}". Please choose another proxy address.',
    )


def invalid_value(name: str, value: object, detail: str) -> CmdletError:
    return CmdletError(
        "System.Management.Automation.ParameterBindingArgumentTransformationException",
        f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
        f'"{value}" to type "{detail}".',
        "ParameterArgumentTransformationError",
    )


def validation(text: str) -> CmdletError:
    return server_error("Microsoft.Exchange.Data.DataValidationException", text)


def not_group_manager() -> CmdletError:
    return server_error(
        "Microsoft.Exchange.Management.Tasks.OperationRequiresGroupManagerException",
        "You don't have sufficient permissions. This operation can only be performed by a "
        "manager of the group.",
    )


def throttled(retry_after_s: int) -> CmdletError:
    return server_error(
        "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
        "The server is busy (429 TooManyRequests): the request was throttled because too many "
        f"requests arrived in a short time. Please retry after {retry_after_s} seconds.",
    )


def timed_out(timeout_s: float) -> CmdletError:
    return CmdletError(
        "System.Threading.Tasks.TaskCanceledException",
        "The request was canceled due to the configured HttpClient.Timeout of "
        f"{timeout_s:g} seconds elapsing.",
        "System.Threading.Tasks.TaskCanceledException",
    )


def needs_defender(parameter: str) -> CmdletError:
    return server_error(
        "Microsoft.Exchange.Management.Tasks.ValidationException",
        f"The {parameter} parameter is available only in organizations with Microsoft Defender "
        "for Office 365. Microsoft Defender for Office 365 is required to use it.",
    )


def aadsts(code: str, text: str) -> CmdletError:
    return CmdletError(
        "Microsoft.Identity.Client.MsalServiceException",
        f"{code}: {text}",
        "Microsoft.Identity.Client.MsalServiceException",
    )


# -- the module's Get-EbErrorCategory, same order and patterns (PowerShell -match is
# case-insensitive) ---------------------------------------------------------------------------

_I = re.IGNORECASE
_MFA = re.compile(r"AADSTS50076|AADSTS50079", _I)
_NOT_RECOGNIZED = re.compile(r"is not recognized as (the|a) name of a cmdlet", _I)
_LICENSE = re.compile(
    r"not licensed|isn't licensed|license (is )?required|requires a license|not available for "
    r"your organization|Advanced Threat Protection|Microsoft Defender for Office 365 (is )?required",
    _I,
)
_THROTTLE = re.compile(
    r"throttl|\(429\)|TooManyRequests|Too many requests|ServerBusy|Server Busy|MicroDelay|budget",
    _I,
)
_NOT_FOUND = re.compile(
    r"ManagementObjectNotFound|couldn't be found|couldn't find|could not be found|wasn't found|"
    r"was not found|ObjectNotFound",
    _I,
)
_PERMISSION = re.compile(
    r"UnauthorizedAccess|Access ?Denied|\(403\)|Forbidden|isn't assigned to any management roles|"
    r"not authorized|insufficient (access|privileges|permissions)|does not have (the )?permission|"
    r"no management role assignment|AADSTS7000112|AADSTS65001|AADSTS50105",
    _I,
)


def categorize(error: CmdletError, cmdlet: str, mdo_cmdlets: list[str]) -> str:
    text = f"{error.exception_type} {error.error_id} {error.message}"
    if _MFA.search(text):
        return "Mfa"
    if error.exception_type.endswith("CommandNotFoundException") or _NOT_RECOGNIZED.search(text):
        return "NotLicensed" if cmdlet.lower() in {c.lower() for c in mdo_cmdlets} else "Permission"
    if _LICENSE.search(text):
        return "NotLicensed"
    if _THROTTLE.search(text):
        return "Throttled"
    if _NOT_FOUND.search(text):
        return "NotFound"
    if _PERMISSION.search(text):
        return "Permission"
    return "Other"
