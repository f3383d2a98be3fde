"""The bridge host's WinRM endpoint as pypsrp reaches it: URL, auth and TLS (``WSMan``), and
the failures of a pypsrp step turned into the operator's errors (authentication refused, the
Kerberos cause, TLS, unreachable, timed out) or ``SessionLost`` (reopen and go on)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import certifi
import requests
from pypsrp.exceptions import AuthenticationError, WinRMTransportError
from pypsrp.wsman import WSMan
from requests_credssp.exceptions import AuthenticationException as CredSSPAuthError
from requests_credssp.exceptions import NTStatusException
from spnego.exceptions import SpnegoError

from agent.config import ExchangeConfig, TenantConfig
from agent.errors import (
    AgentError,
    BridgeAuthFailed,
    BridgeAuthUnavailable,
    BridgeTimeout,
    BridgeUnreachable,
)
from agent.exchange import kerberos
from agent.secrets import resolve_secret

# Raised by gssapi / krb5 when they are installed (spnego imports them already).
_KERBEROS_ERRORS = kerberos.errors()


class SessionLost(Exception):
    """The pool is gone; reopen before anything else runs."""


class BridgeEndpoint:
    """One tenant's ``[exchange]`` bridge URL and WinRM auth."""

    def __init__(self, tenant: TenantConfig) -> None:
        assert tenant.exchange is not None, "tenant has no [exchange] section"
        self.config: ExchangeConfig = tenant.exchange
        url = urlsplit(self.config.bridge_url)
        self.ssl = url.scheme == "https"
        self.host = url.hostname or "?"
        self.port = url.port or (5986 if self.ssl else 5985)
        self.path = url.path.lstrip("/") or "wsman"
        self.where = f"tenants.{tenant.name}.exchange" if tenant.name else "exchange"

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

    def wsman(self) -> WSMan:
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

    def check_available(self) -> None:
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

    def transport(self, action: Any, session_open: Callable[[], bool]) -> Any:
        """Run a pypsrp step, turning transport failures into the operator's errors; a
        connection lost while ``session_open()`` is a lost session."""
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
                raise SessionLost(f"HTTP {exc.code}") from None
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
            if session_open():
                raise SessionLost(_reason(exc)) from None
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
