"""How the agent calls the bridge host: the one definition of the call convention.

How to call the bridge (pypsrp, one ``RunspacePool`` per tenant connection)
---------------------------------------------------------------------------
1. Open ``RunspacePool(WSMan(host, port=5986, ssl=True, path="wsman", auth=..., username=...,
   password=..., cert_validation=<CA file>, encryption="never" over HTTPS))`` with the default
   one runspace (``max_runspaces=1``): the module and the Exchange connection live in that
   runspace, so every later pipeline must run in it. Call ``pool.exchange_keys()`` before
   sending a SecureString or PSCredential (parameter sets CertificateFile / Credential).
2. Load the module: one pipeline ``add_script(LOADER_SCRIPT)`` with the parameters of
   ``loader_parameters()``. ``LOADER_SCRIPT`` is a constant; the module file travels byte for
   byte as the typed ``-ModuleText`` parameter, never spliced into script text. The single
   output is a JSON envelope (``op == "load"``) whose item names the module, the SHA-256 the
   host computed over the text it received (compare with ``module_sha256()``), the exported
   functions, the host's PowerShell version and the ExchangeOnlineManagement version — or an
   error with category ``ModuleMissing`` when that module is not installed on the host.
3. Connect once per pool: ``add_cmdlet("Connect-EbExchange")`` with the named parameters of one
   parameter set (Thumbprint: AppId, Organization, CertificateThumbprint).
4. Every call: ``PowerShell(pool).add_cmdlet(<exported function>)`` and ``add_parameter(name,
   value)`` for each value — str, int, bool (``True`` for a [switch]), list of str for
   [string[]], dict for [hashtable], ``iso_utc(datetime)`` for [datetime] (pypsrp 0.9.1 cannot
   serialize DateTime; PowerShell converts the ISO-8601 string while binding). Never
   ``add_script`` with values, never a value in a command name.
5. The function writes exactly one output: a compact JSON string, the envelope
   ``{"schema":1,"op":…,"ok":…,"items":[…],"errors":[{"cmdlet","category","message"}],
   "succeeded":[…],"failed":[…],"next":…}`` (``parse_envelope``). ``next`` is null except on a
   page of a paged export (Export-EbDistributionGroups): then it is the resume token to pass
   as ``-ResumeToken`` for the next page, valid only in the same pool (runspace). A Failed
   pipeline (``had_errors`` with state Failed) means PowerShell itself refused the call: an
   unknown function (CommandNotFoundException — the module is not loaded, e.g. after the bridge
   host dropped the shell: open a new pool and load again) or a parameter-binding error (the
   agent's bug).
6. ``errors[].category`` is one of ``CATEGORIES``; ``Throttled`` messages carry the host's
   back-off as "retry after N seconds" (``retry_after_seconds``).

The pool's runspace is single-threaded: run one pipeline at a time per pool, several pools
per tenant at most ``MAX_POOLS_PER_TENANT`` (facts file §1, Exchange PowerShell sessions).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PS_DIR = Path(__file__).resolve().parent.parent.parent / "ps_scripts"
MODULE_FILE = PS_DIR / "EntraBackup.Exchange.psm1"
MODULE_NAME = "EntraBackup.Exchange"
# The PSRP configuration (endpoint) name; pypsrp's default resource URI uses it.
CONFIGURATION_NAME = "Microsoft.PowerShell"
# facts file §1 (old remote-PowerShell values, unconfirmed): 3 concurrent sessions per user.
MAX_POOLS_PER_TENANT = 3

# Runs once per pool. Values arrive only as parameters; the module text becomes a script block
# of a dynamic module (no file on the host), imported globally so later pipelines see it.
LOADER_SCRIPT = """param(
    [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$ModuleText,
    [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$ModuleName
)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$sha = [System.Security.Cryptography.SHA256]::Create()
$digest = -join ($sha.ComputeHash([System.Text.Encoding]::UTF8.GetBytes($ModuleText)) | ForEach-Object { $_.ToString('x2') })
$module = New-Module -Name $ModuleName -ScriptBlock ([scriptblock]::Create($ModuleText)) | Import-Module -Global -PassThru
$exo = Get-Module -ListAvailable -Name 'ExchangeOnlineManagement' | Sort-Object -Property Version -Descending | Select-Object -First 1
$errors = @()
$failed = @()
$exoVersion = $null
if ($null -eq $exo) {
    $errors = @([ordered]@{ cmdlet = 'Import-Module:ExchangeOnlineManagement'; category = 'ModuleMissing'; message = 'The ExchangeOnlineManagement module is not installed on this host.' })
    $failed = @('Import-Module:ExchangeOnlineManagement')
}
else {
    $exoVersion = $exo.Version.ToString()
}
$item = [ordered]@{
    module                   = $module.Name
    sha256                   = $digest
    functions                = @($module.ExportedFunctions.Keys | Sort-Object)
    psVersion                = $PSVersionTable.PSVersion.ToString()
    exchangeOnlineManagement = $exoVersion
}
$document = [ordered]@{
    schema    = 1
    op        = 'load'
    ok        = ($failed.Count -eq 0)
    items     = @($item)
    errors    = $errors
    succeeded = @()
    failed    = $failed
    next      = $null
}
ConvertTo-Json -InputObject $document -Depth 5 -Compress
"""

ENVELOPE_KEYS = ("schema", "op", "ok", "items", "errors", "succeeded", "failed", "next")
# What the module's Get-EbErrorCategory returns, plus the loader's ModuleMissing.
CATEGORIES = ("Mfa", "NotLicensed", "Permission", "Throttled", "NotFound", "Other", "ModuleMissing")
_RETRY_AFTER = re.compile(r"retry after (\d+) seconds?", re.IGNORECASE)


def module_text() -> str:
    """The module file exactly as shipped (bytes decoded as UTF-8, line endings untouched)."""
    return MODULE_FILE.read_bytes().decode("utf-8")


def module_sha256() -> str:
    return hashlib.sha256(MODULE_FILE.read_bytes()).hexdigest()


def loader_parameters() -> dict[str, str]:
    return {"ModuleText": module_text(), "ModuleName": MODULE_NAME}


def iso_utc(value: dt.datetime) -> str:
    """A [datetime] parameter value: ISO-8601 with 'Z' (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ProtocolError(ValueError):
    """The bridge answered something that is not exactly one envelope."""


@dataclass(frozen=True)
class EnvelopeError:
    cmdlet: str
    category: str
    message: str


@dataclass(frozen=True)
class Envelope:
    op: str
    ok: bool
    items: list[Any]
    errors: list[EnvelopeError]
    succeeded: list[str]
    failed: list[str]
    next: str | None = None  # resume token of a paged export; None when complete


def parse_envelope(outputs: list[Any]) -> Envelope:
    """The single JSON string a module function (or the loader) wrote."""
    if len(outputs) != 1 or not isinstance(outputs[0], str):
        raise ProtocolError(f"expected one JSON string, got {len(outputs)} outputs")
    try:
        document = json.loads(outputs[0])
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"output is not JSON: {exc}") from None
    if not isinstance(document, dict) or tuple(document) != ENVELOPE_KEYS:
        raise ProtocolError("output is not an envelope")
    if document["schema"] != 1:
        raise ProtocolError(f"unknown envelope schema {document['schema']!r}")
    for key in ("items", "errors", "succeeded", "failed"):
        if not isinstance(document[key], list):
            raise ProtocolError(f"envelope {key} is not an array")
    if document["next"] is not None and not isinstance(document["next"], str):
        raise ProtocolError("envelope next is not a string")
    errors = [EnvelopeError(e["cmdlet"], e["category"], e["message"]) for e in document["errors"]]
    return Envelope(
        op=document["op"],
        ok=bool(document["ok"]),
        items=document["items"],
        errors=errors,
        succeeded=list(document["succeeded"]),
        failed=list(document["failed"]),
        next=document["next"],
    )


def retry_after_seconds(message: str) -> float | None:
    """The back-off a Throttled error asks for, if it names one."""
    match = _RETRY_AFTER.search(message)
    return float(match.group(1)) if match else None
