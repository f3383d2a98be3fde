"""The simulated bridge host: a CommandHandler for the WinRM endpoint that runs the module.

Per shell (= runspace) it keeps a Session: whether the module was loaded (by the protocol's
constant loader, agent/exchange/protocol.py) and which tenant Connect-EbExchange signed in to.
Each pipeline must be one command: the loader script, or an exported function with named,
typed parameters. PowerShell's own refusals (unknown command, parameter binding) end the
pipeline as Failed with PowerShell's error ids; everything else is the function's envelope.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from agent.exchange import protocol
from agent.exchange.contract import (
    FunctionContract,
    ModuleContract,
    PowerShellSyntaxError,
    parse_sources,
)
from agent.simulator.exchange import errors
from agent.simulator.exchange.binding import BindingFailure, Bound, bind, command_not_found
from agent.simulator.exchange.cmdlets import Session
from agent.simulator.exchange.functions import FUNCTIONS, Envelope
from agent.simulator.exchange.state import ExchangeOrg
from agent.simulator.winrm.psrp import Invocation, InvocationResult, SecureText
from agent.simulator.world import World

PS_VERSION = "7.4.6"
EXO_MODULE_VERSION = "3.7.1"
_LOADER_FUNCTION = "__EbLoader"


class BridgeHost:
    """CommandHandler of the endpoint; ``orgs`` maps tenant id to its simulated Exchange."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.orgs: dict[str, ExchangeOrg] = {}
        # Failure mode: the bridge host lacks the ExchangeOnlineManagement module.
        self.exo_module_installed = True
        self.sessions: dict[str, Session] = {}
        self.stats: dict[str, int] = {}
        self._lock = threading.Lock()
        self.shipped_text = protocol.module_text()
        self.shipped = parse_sources([(protocol.MODULE_FILE.name, self.shipped_text.encode())])
        wrapped = f"function {_LOADER_FUNCTION} {{\n{protocol.LOADER_SCRIPT}\n}}\n"
        self.loader = parse_sources([("loader", wrapped.encode())]).functions[_LOADER_FUNCTION]
        self._modules: dict[str, ModuleContract] = {}  # by sha256 of a loaded module text

    def add_org(self, org: ExchangeOrg) -> None:
        self.orgs[org.ctx.tenant_id.lower()] = org

    def session(self, shell_id: str) -> Session:
        with self._lock:
            return self.sessions.setdefault(shell_id, Session())

    # -- CommandHandler --------------------------------------------------------------------

    def handle(self, invocation: Invocation) -> InvocationResult:
        if len(invocation.commands) != 1:
            return InvocationResult(
                failed="The simulated bridge host runs one command per pipeline (see "
                "agent/exchange/protocol.py)."
            )
        command = invocation.commands[0]
        session = self.session(invocation.shell_id)
        self._count(command.text if not command.is_script else "<script>")
        try:
            if command.is_script:
                return self._load(
                    session, command.text, command.parameters, command.parameter_types
                )
            contract = self._function(session, command.text)
            bound = bind(contract, command.parameters, command.parameter_types)
        except BindingFailure as failure:
            return InvocationResult(
                failed=failure.message,
                failed_error_id=failure.error_id,
                failed_category=failure.category,
                failed_reason=failure.reason,
            )
        return self._call(session, bound)

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] = self.stats.get(name, 0) + 1

    def _function(self, session: Session, name: str) -> FunctionContract:
        module = self._modules.get(session.module_sha) if session.loaded else None
        if module is not None:
            exported = module.exported or tuple(module.functions)
            for candidate in exported:  # command lookup is case-insensitive
                if candidate.lower() == name.lower() and candidate in module.functions:
                    return module.functions[candidate]
        raise command_not_found(name)

    # -- the loader ------------------------------------------------------------------------

    def _load(
        self,
        session: Session,
        script: str,
        parameters: list[tuple[str | None, Any]],
        types: list[str],
    ) -> InvocationResult:
        if script != protocol.LOADER_SCRIPT:
            return InvocationResult(
                failed="The simulated bridge host runs only the module loader script "
                "(agent/exchange/protocol.py LOADER_SCRIPT); values go in parameters."
            )
        bound = bind(self.loader, parameters, types)
        text = bound.values["ModuleText"]
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if digest not in self._modules:
            try:
                self._modules[digest] = (
                    self.shipped
                    if text == self.shipped_text
                    else parse_sources([("module", text.encode())])
                )
            except PowerShellSyntaxError as exc:
                return InvocationResult(
                    failed=f"At line:1 char:1 {exc}",
                    failed_error_id="ParseException",
                    failed_category="ParserError",
                    failed_reason="ParseException",
                )
        module = self._modules[digest]
        session.loaded, session.module_sha = True, digest
        item = {
            "module": bound.values["ModuleName"],
            "sha256": digest,
            "functions": sorted(module.exported or module.functions),
            "psVersion": PS_VERSION,
            "exchangeOnlineManagement": EXO_MODULE_VERSION if self.exo_module_installed else None,
        }
        missing = [] if self.exo_module_installed else ["Import-Module:ExchangeOnlineManagement"]
        document = {
            "schema": 1,
            "op": "load",
            "ok": not missing,
            "items": [item],
            "errors": [
                {
                    "cmdlet": label,
                    "category": "ModuleMissing",
                    "message": "The ExchangeOnlineManagement module is not installed on this host.",
                }
                for label in missing
            ],
            "succeeded": [],
            "failed": missing,
            "next": None,
        }
        return InvocationResult(output=[json.dumps(document, separators=(",", ":"))])

    # -- function calls --------------------------------------------------------------------

    def _call(self, session: Session, bound: Bound) -> InvocationResult:
        session.delay_s = 0.0
        session.calls = []
        module = self._modules[session.module_sha]
        if bound.function == "Connect-EbExchange":
            env = Envelope("connect", module, session)
            self._connect(env, bound)
        else:
            op, handler = FUNCTIONS[bound.function]
            env = Envelope(op, module, session)
            handler(env, bound)
        return InvocationResult(output=[env.text()], delay_s=session.delay_s)

    def _connect(self, env: Envelope, bound: Bound) -> None:
        session = env.session
        session.org, session.roles, session.caller, session.ipps = None, set(), None, False
        signed_in = env.invoke(
            "Connect-ExchangeOnline", {}, runner=lambda: self._sign_in(session, bound)
        )
        if (
            signed_in is not None
            and bound.values.get("IncludeSecurityCompliance")
            and env.invoke("Connect-IPPSSession", {}, runner=lambda: []) is not None
        ):
            session.ipps = True

    def _sign_in(self, session: Session, bound: Bound) -> list[Any]:
        if not self.exo_module_installed:
            raise errors.not_recognized("Connect-ExchangeOnline")
        values = bound.values
        if bound.parameter_set == "Credential":
            return self._sign_in_user(session, values["Credential"])
        organization = str(values["Organization"])
        tenant = self.world.find(organization)
        org = self.orgs.get(tenant.tenant_id.lower()) if tenant is not None else None
        if tenant is None or org is None:
            raise errors.aadsts(
                "AADSTS90002",
                f"Tenant '{organization}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
            )
        app = tenant.apps.get(str(values["AppId"]).lower()) or tenant.apps.get(str(values["AppId"]))
        if app is None:
            raise errors.aadsts(
                "AADSTS700016",
                f"Application with identifier '{values['AppId']}' was not found in the directory '{organization}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
            )
        registered = [certificate_thumbprint(pem) for pem in app.certificates_pem]
        if bound.parameter_set == "Thumbprint":
            thumbprint = str(values["CertificateThumbprint"]).upper()
        else:
            thumbprint = _file_thumbprint(str(values["CertificateFilePath"]))
        if thumbprint not in registered:
            raise errors.aadsts(
                "AADSTS700027",
                "The certificate with identifier used to sign the client assertion is not registered on application.",
            )
        session.org, session.roles = org, org.roles_of_app(app.client_id)
        return []

    def _sign_in_user(self, session: Session, credential: dict[str, Any]) -> list[Any]:
        username = str(credential.get("UserName", ""))
        password = credential["Password"]
        domain = username.rsplit("@", 1)[-1]
        tenant = self.world.find(domain)
        account = tenant.accounts.get(username.lower()) if tenant is not None else None
        if tenant is None or account is None:
            raise errors.aadsts(
                "AADSTS50034",
                f"The user account {username} does not exist in the {domain} directory. To sign into this application, the account must be added to the directory.",
            )
        if not isinstance(password, SecureText) or not account.password_matches(password.value):
            raise errors.aadsts(
                "AADSTS50126", "Error validating credentials due to invalid username or password."
            )
        if account.mfa_required:
            raise errors.aadsts(
                "AADSTS50076",
                "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000002-0000-0ff1-ce00-000000000000'.",
            )
        org = self.orgs.get(tenant.tenant_id.lower())
        if org is None:
            raise errors.aadsts("AADSTS90002", f"Tenant '{domain}' not found.")
        session.org = org
        session.roles = org.roles_of_account(account.object_id, account.directory_roles)
        session.caller = account.object_id
        return []


def certificate_thumbprint(pem: bytes) -> str:
    """The Windows certificate thumbprint (SHA-1 of the DER, upper-case hex)."""
    return (
        x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA1()).hex().upper()
    )  # thumbprints are SHA-1


def _file_thumbprint(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError:
        raise errors.CmdletError(
            "System.IO.FileNotFoundException", f"Could not find file '{path}'."
        ) from None
    start = data.find(b"-----BEGIN CERTIFICATE-----")
    if start < 0:
        raise errors.CmdletError(
            "System.Security.Cryptography.CryptographicException",
            "The certificate file could not be read.",
        )
    return certificate_thumbprint(data[start:])
