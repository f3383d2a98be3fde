"""``PsrpExchangeBridge``: the ExchangeBridge over WinRM/PSRP (pypsrp) to a bridge host.

One session = one ``RunspacePool`` with one runspace (the module and the Exchange connection
live in that runspace), opened lazily at the first call: load the module with the protocol's
constant loader script (module text as a typed parameter), check the digest the host computed,
``Connect-EbExchange`` once, then one pipeline per call. A dropped session (the host restarted,
the shell was reaped) is reopened and an idempotent read retried once.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import certifi
import requests
from pypsrp.complex_objects import PSCredential, PSInvocationState, RunspacePoolState
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue
from pypsrp.wsman import WSMan
from requests_credssp.exceptions import AuthenticationException as CredSSPAuthError
from requests_credssp.exceptions import NTStatusException
from spnego.exceptions import SpnegoError

from agent.config import ExchangeConfig, TenantConfig
from agent.errors import (
    AgentError,
    BridgeAuthFailed,
    BridgeAuthUnavailable,
    BridgeModuleMissing,
    BridgeProtocolError,
    BridgeTimeout,
    BridgeUnreachable,
    ExchangeError,
)
from agent.exchange import kerberos
from agent.exchange.bridge import ExchangeBridge
from agent.exchange.outcomes import error_for
from agent.exchange.protocol import (
    LOADER_SCRIPT,
    Envelope,
    ProtocolError,
    loader_parameters,
    module_sha256,
    parse_envelope,
)
from agent.secrets import resolve_secret

log = logging.getLogger("entra_backup.exchange")

# Raised by gssapi / krb5 when they are installed (spnego imports them already).
_KERBEROS_ERRORS = kerberos.errors()
UNKNOWN_SHELL = 2150858843  # WSMan fault: the shell (session) no longer exists
OPERATION_TIMEOUT = 2150858793
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
}


class _SessionLost(Exception):
    """The pool is gone; reopen before anything else runs."""


class PsrpExchangeBridge(ExchangeBridge):
    def __init__(
        self,
        tenant: TenantConfig,
        *,
        app_id: str | None = None,
        include_security_compliance: bool = False,
    ) -> None:
        super().__init__()
        assert tenant.exchange is not None, "tenant has no [exchange] section"
        self.config: ExchangeConfig = tenant.exchange
        self.group_page_size = self.config.group_page_size
        self.tenant = tenant
        self.app_id = app_id or tenant.app.client_id
        self.include_security_compliance = include_security_compliance
        url = urlsplit(self.config.bridge_url)
        self.ssl = url.scheme == "https"
        self.host = url.hostname or "?"
        self.port = url.port or (5986 if self.ssl else 5985)
        self.path = url.path.lstrip("/") or "wsman"
        self.where = f"tenants.{tenant.name}.exchange" if tenant.name else "exchange"
        self._lock = threading.RLock()
        self._pool: RunspacePool | None = None
        # Why the session could not be opened: later calls of this job fail the same way
        # at once instead of dialling an unreachable host again.
        self._broken: ExchangeError | None = None
        self.loaded: dict[str, Any] = {}  # what the loader reported (versions, functions)

    # -- session -------------------------------------------------------------------------------

    def warnings(self) -> list[str]:
        if self.ssl:
            return []
        sealed = self.config.auth not in ("basic", "certificate")
        return [
            f"Bridge host {self.config.bridge_url} is reached over plain HTTP (allow_http = "
            "true): the WinRM traffic is not protected by TLS"
            + (
                " (only WinRM message encryption of the auth protocol)"
                if sealed
                else ", and Basic sends the password readable on the wire"
            )
            + ". Use this for a lab only."
        ]

    def _wsman(self) -> WSMan:
        cfg = self.config
        kwargs: dict[str, Any] = {}
        if cfg.username:
            kwargs["username"] = cfg.username
        if cfg.password:
            kwargs["password"] = resolve_secret(cfg.password, f"{self.where}.password").reveal()
        if cfg.auth == "kerberos":
            kwargs["negotiate_service"] = kerberos.SERVICE  # HTTP/<host>, as Windows asks
        if cfg.auth == "certificate":
            pem = cfg.client_certificate.removeprefix("file:")
            resolve_secret(cfg.client_certificate, f"{self.where}.client_certificate")  # checks
            kwargs.update(certificate_pem=pem, certificate_key_pem=pem)
        # Message encryption needs NTLM/Kerberos/CredSSP; over HTTPS TLS already covers it.
        sealing = not self.ssl and cfg.auth not in ("basic", "certificate")
        verify: Any = cfg.ca_bundle or certifi.where()  # a path, so no env var overrides it
        return WSMan(
            self.host,
            port=self.port,
            path=self.path,
            ssl=self.ssl,
            auth=cfg.auth,
            cert_validation=verify,
            encryption="auto" if sealing else "never",
            no_proxy=True,  # the bridge is an internal host; never send it through a proxy
            operation_timeout=cfg.operation_timeout_s,
            read_timeout=cfg.operation_timeout_s + 10,
            connection_timeout=cfg.connect_timeout_s,
            **kwargs,
        )

    def open(self) -> None:
        """Open the pool, load the module, connect to Exchange (idempotent)."""
        with self._lock:
            if self._pool is not None:
                return
            if self._broken is not None:
                raise self._broken
            for warning in self.warnings():
                log.warning("%s", warning)
            try:
                self._check_available()
                pool = RunspacePool(self._wsman(), min_runspaces=1, max_runspaces=1)
                self._transport(pool.open)
                self._pool = pool
                self._load()
                self._connect()
            except ExchangeError as exc:
                self._discard()
                self._broken = exc
                raise
            except BaseException:
                self._discard()
                raise

    def _check_available(self) -> None:
        """Kerberos needs packages a plain install lacks: say so before dialling."""
        if self.config.auth != "kerberos":
            return
        missing = kerberos.unavailable()
        if missing:
            raise self._unavailable(missing)

    def _unavailable(self, detail: str) -> BridgeAuthUnavailable:
        auth = self.config.auth
        install = (
            kerberos.INSTALL_FIX
            if auth == "kerberos"
            else "Install the package it needs (pip install requests-credssp)"
        )
        return BridgeAuthUnavailable(
            f'WinRM auth = "{auth}" ({self.where}) is not available on this agent: '
            f"{detail.rstrip('.')}.",
            f'{install}; or choose another auth method (auth = "ntlm" or "certificate").',
        )

    def _load(self) -> None:
        envelope = self._invoke_script(LOADER_SCRIPT, loader_parameters(), op="load")
        if envelope.errors:
            raise error_for(envelope.errors[0], self.host)
        item = envelope.items[0] if envelope.items and isinstance(envelope.items[0], dict) else {}
        if item.get("sha256") != module_sha256():
            raise BridgeModuleMissing(
                f"The bridge host {self.host} did not load the ps_scripts module intact "
                "(its digest differs from the agent's copy).",
                "Check for a proxy or endpoint configuration rewriting WinRM traffic; the module "
                "travels as a parameter and must arrive byte for byte.",
            )
        self.loaded = item

    def _connect(self) -> None:
        cfg = self.config
        params: dict[str, Any] = {}
        if cfg.connect == "service_account":
            account = self.tenant.service_account
            assert account is not None  # the config loader insists
            password = resolve_secret(account.password, "the service account password")
            self._exchange_keys()
            params["Credential"] = PSCredential(
                username=account.username, password=password.reveal()
            )
        else:
            params.update(AppId=self.app_id, Organization=cfg.organization)
            if cfg.connect == "certificate_thumbprint":
                params["CertificateThumbprint"] = cfg.certificate_thumbprint
            else:
                secret = resolve_secret(
                    cfg.certificate_password, f"{self.where}.certificate_password"
                )
                self._exchange_keys()
                params["CertificateFilePath"] = cfg.certificate_file
                params["CertificatePassword"] = TaggedValue(tag="SS", value=secret.reveal())
        if self.include_security_compliance:
            params["IncludeSecurityCompliance"] = True
        envelope = self._invoke("Connect-EbExchange", params)
        if envelope.errors:
            raise error_for(envelope.errors[0], self.host, connecting=True)

    def _exchange_keys(self) -> None:
        assert self._pool is not None
        self._transport(self._pool.exchange_keys)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            if pool is not None:
                try:
                    pool.close()
                except (WinRMError, requests.RequestException, OSError) as exc:
                    log.info("Closing the bridge session failed (ignored): %s", exc)

    def _discard(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                if pool.is_alive():  # a dropped shell is marked closed; nothing to delete
                    pool.close()
            except (WinRMError, requests.RequestException, OSError):
                pass

    # -- calls ---------------------------------------------------------------------------------

    def call(self, function: str, parameters: dict[str, Any], *, idempotent: bool) -> Envelope:
        with self._lock:
            started = time.monotonic()
            self.stats.calls += 1
            self.stats.by_function[function] = self.stats.by_function.get(function, 0) + 1
            try:
                for attempt in (0, 1):
                    try:
                        self.open()
                        return self._invoke(function, parameters)
                    except _SessionLost as lost:
                        self._discard()
                        if attempt or not idempotent:
                            raise ExchangeError(
                                f"The session on the bridge host {self.host} was lost during "
                                f"{function} ({lost}).",
                                "Run the backup again; if it keeps happening, check the bridge "
                                "host's WinRM limits (MaxShellsPerUser, IdleTimeout) and event log.",
                            ) from None
                        log.warning("Bridge session lost (%s); reconnecting once.", lost)
                        self.stats.reconnects += 1
                        self.stats.retries += 1
                raise AssertionError("unreachable")
            finally:
                self.stats.seconds += time.monotonic() - started

    def _invoke(self, function: str, parameters: dict[str, Any]) -> Envelope:
        assert self._pool is not None
        ps = PowerShell(self._pool)
        ps.add_cmdlet(function)
        for name, value in parameters.items():
            ps.add_parameter(name, value)
        return self._run(ps, function, OPS[function])

    def _invoke_script(self, script: str, parameters: dict[str, Any], *, op: str) -> Envelope:
        assert self._pool is not None
        ps = PowerShell(self._pool)
        ps.add_script(script)
        for name, value in parameters.items():
            ps.add_parameter(name, value)
        return self._run(ps, "the module loader", op)

    def _run(self, ps: PowerShell, what: str, op: str) -> Envelope:
        deadline = time.monotonic() + self.config.call_timeout_s
        try:
            self._transport(ps.begin_invoke)
            while ps.state == PSInvocationState.RUNNING:
                if time.monotonic() >= deadline:
                    self._stop(ps)
                    raise BridgeTimeout(
                        f"{what} did not finish on the bridge host {self.host} within "
                        f"{self.config.call_timeout_s} s; it was stopped.",
                        f"Raise {self.where}.call_timeout_s if the tenant is large, or check "
                        "the bridge host's load and its connection to Exchange Online.",
                    )
                wait = min(
                    max(1, int(deadline - time.monotonic())), self.config.operation_timeout_s
                )
                self._transport(lambda wait=wait: ps.poll_invoke(wait))
        except WSManFaultError as fault:
            if fault.code == UNKNOWN_SHELL:
                raise _SessionLost(f"WSMan fault {fault.code}") from None
            raise ExchangeError(
                f"The bridge host {self.host} refused {what}: {fault.reason or fault.code}.",
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
                raise _SessionLost(message)
            raise BridgeProtocolError(
                f"PowerShell on the bridge host {self.host} refused {what}: {message}",
                "This is an agent/module mismatch; make sure both are the same version and "
                "report it with the log file.",
            )
        try:
            envelope = parse_envelope(list(ps.output))
        except (ProtocolError, KeyError, TypeError) as exc:
            raise self._malformed(what, str(exc)) from None
        if envelope.op != op:
            raise self._malformed(what, f"op {envelope.op!r}, expected {op!r}")
        if envelope.ok != (not envelope.failed) or bool(envelope.errors) != bool(envelope.failed):
            raise self._malformed(what, "ok, errors and failed disagree")
        return envelope

    def _auth_failed(self, detail: str) -> BridgeAuthFailed:
        auth = self.config.auth
        return BridgeAuthFailed(
            f'The bridge host {self.host} refused WinRM authentication (auth = "{auth}"): '
            f"{detail.rstrip('.')}.",
            _FIX_BY_AUTH[auth].format(w=self.where),
        )

    def _kerberos_failed(self, exc: BaseException) -> BridgeAuthFailed | None:
        """A Kerberos failure on this side, named by its cause (KDC, password, SPN, clock)."""
        if self.config.auth not in ("kerberos", "negotiate"):
            return None
        found = kerberos.cause(str(exc))
        if found is None:
            return None
        what, fix = found
        return BridgeAuthFailed(
            f'Kerberos for the bridge host {self.host} failed (auth = "{self.config.auth}"): '
            f"{what} ({_kerberos_detail(exc)}).",
            fix.format(w=self.where),
        )

    def _stop(self, ps: PowerShell) -> None:
        try:
            ps.stop()
        except (WinRMError, requests.RequestException, OSError) as exc:
            log.info("Stopping a timed-out pipeline failed (ignored): %s", exc)

    def _transport(self, action: Any) -> Any:
        """Run a pypsrp step, turning transport failures into the operator's errors."""
        try:
            return action()
        except AuthenticationError as exc:
            raise self._auth_failed(str(exc)) from None
        except SpnegoError as exc:  # NTLM/Kerberos failed on this side (no ticket, no KDC)
            raise self._kerberos_failed(exc) or self._auth_failed(
                f"{type(exc).__name__}: {exc}"
            ) from None
        except _KERBEROS_ERRORS as exc:  # the Kerberos library itself (getting a ticket)
            raise self._kerberos_failed(exc) or self._auth_failed(str(exc)) from None
        except (CredSSPAuthError, NTStatusException) as exc:  # e.g. 0x8009030C: logon denied
            raise self._auth_failed(str(exc)) from None
        except ValueError as exc:
            if "auth protocol" not in str(exc):  # pypsrp: the host offers another method
                raise
            raise self._auth_failed(str(exc)) from None
        except WinRMTransportError as exc:
            if exc.code in (502, 503, 504):
                raise _SessionLost(f"HTTP {exc.code}") from None
            raise BridgeUnreachable(
                f"The bridge host {self.host} answered WinRM with HTTP {exc.code}.",
                f"Check {self.where}.bridge_url (path /wsman, port 5986 for HTTPS).",
            ) from None
        except requests.exceptions.SSLError as exc:
            if self.config.auth == "certificate" and _client_cert_refused(exc):
                raise BridgeAuthFailed(
                    f"The bridge host {self.host} refused the WinRM client certificate in the "
                    f"TLS handshake ({_reason(exc)}).",
                    f"Use in {self.where}.client_certificate a certificate issued by a CA the "
                    "bridge host trusts (its Trusted Root store), with the Client "
                    "Authentication EKU and the private key in the same PEM file.",
                ) from None
            raise BridgeUnreachable(
                f"TLS with the bridge host {self.host}:{self.port} failed: {_reason(exc)}.",
                f"Point {self.where}.ca_bundle at the CA that issued the host's WinRM "
                "certificate, and use the name on that certificate in bridge_url.",
            ) from None
        except (requests.exceptions.ConnectionError, ssl.SSLError, ConnectionError) as exc:
            if self._pool is not None and self._pool.state == RunspacePoolState.OPENED:
                raise _SessionLost(_reason(exc)) from None
            raise BridgeUnreachable(
                f"Cannot reach the bridge host {self.host}:{self.port} over WinRM "
                f"({_reason(exc)}).",
                "Check that the host is up, WinRM listens on that port (winrm quickconfig "
                "-transport:https) and no firewall blocks it.",
            ) from None
        except requests.exceptions.Timeout as exc:
            raise BridgeTimeout(
                f"The bridge host {self.host} stopped answering WinRM ({_reason(exc)}).",
                "Check the host's load and network; the backup can be run again.",
            ) from None
        except ImportError as exc:  # an optional auth package (credssp, kerberos) is missing
            raise self._unavailable(str(exc)) from None
        except AgentError:
            raise


_FIX_BY_AUTH = {
    "basic": "Check {w}.username and the password it references, that the account may use "
    "WinRM on the host (Remote Management Users) and that the WinRM service allows Basic "
    '(winrm set winrm/config/service/auth @{{Basic="true"}}).',
    "ntlm": "Check {w}.username (a local account, or DOMAIN\\user) and the password it "
    "references, and that the account may use WinRM on the host (Remote Management Users).",
    "negotiate": "Check {w}.username (DOMAIN\\user or a local account) and the password it "
    "references, and that the account may use WinRM on the host (Remote Management Users).",
    "certificate": "Map {w}.client_certificate to an account on the bridge host (New-Item "
    "WSMan:\\localhost\\ClientCertificate -Subject <the certificate's UPN> -Issuer <its CA's "
    "thumbprint> -Credential <account>) and enable Auth/Certificate on the WinRM service.",
    "kerberos": "Check that the bridge host accepts Kerberos for HTTP/<the host name in "
    "{w}.bridge_url> (its SPN, Auth/Kerberos on the WinRM service), that {w}.username is an "
    "account allowed to use WinRM there (Remote Management Users), and its password or ticket; "
    'or choose auth = "ntlm" or "certificate".',
    "credssp": "Check {w}.username and the password it references, and that the WinRM "
    "service allows CredSSP (Enable-WSManCredSSP -Role Server).",
}


def _client_cert_refused(exc: BaseException) -> bool:
    """A handshake that failed on the host's side, not over the host's certificate: with a
    client certificate that is the host refusing it (an alert, or with TLS 1.3 often just
    the connection closed mid-handshake)."""
    text = str(exc)
    return "certificate verify failed" not in text and any(
        marker in text for marker in ("alert", "EOF occurred")
    )


def _kerberos_detail(exc: BaseException) -> str:
    """The library's own words, without pyspnego's wrapping or GSSAPI's major-code prefix."""
    text = " ".join(str(exc).split())
    minor = text.rfind("Minor (")
    if minor >= 0:
        text = text[text.find(":", minor) + 1 :].strip()
    return text[:200].rstrip(" .")


def _reason(exc: BaseException) -> str:
    text = str(exc)
    markers = (
        "Errno",
        "certificate verify failed",
        "alert",
        "EOF occurred",
        "refused",
        "timed out",
    )
    for marker in markers:
        index = text.find(marker)
        if index >= 0:
            return text[index : index + 120].rstrip(")'\" ")
    return type(exc).__name__


__all__ = ["PsrpExchangeBridge"]
