"""Tokens for Microsoft Graph: msal clients per tenant and the mapping of their failures.

``AppTokenProvider`` is the app-only (client credentials) identity every backup uses;
``ServiceAccountTokenProvider`` is the optional delegated service account (ROPC). Failures
become ``AuthError`` / ``ConnectionFailed`` with a fix; no secret or token ever appears in them.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import warnings
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from agent.config import TenantConfig
from agent.errors import AuthError, ConnectionFailed, SecretError
from agent.secrets import resolve_secret

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MFA_CODES = {50076, 50079, 50074, 50158}
CERT_CODES = {700027, 700024, 700021, 50027, 700023}


def _msal_version() -> tuple[int, ...]:
    return tuple(int(p) for p in msal.__version__.split(".")[:2] if p.isdigit())


class _Context:
    """What an error message may name about a tenant: never a secret value."""

    def __init__(self, tenant: TenantConfig, client_id: str, credential: str) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self.credential = credential  # e.g. "client_secret (env:CONTOSO_SECRET)"

    @property
    def where(self) -> str:
        return f"[tenants.{self.tenant.name}]"


def _codes(result: dict[str, Any]) -> set[int]:
    return {int(c) for c in result.get("error_codes") or [] if str(c).isdigit()}


def _first_sentence(description: str) -> str:
    head = description.split(" Trace ID:", 1)[0].strip().split("\r\n", 1)[0]
    return re.sub(r"^AADSTS\d+:\s*", "", head)


def map_token_error(result: dict[str, Any], ctx: _Context) -> AuthError:
    """The operator's view of an Entra token error answer."""
    codes = _codes(result)
    tenant, app = ctx.tenant, ctx.client_id
    aadsts = ", ".join(f"AADSTS{c}" for c in sorted(codes)) or result.get("error", "error")
    if 7000215 in codes:
        return AuthError(
            f"Entra ID rejected the client secret of app {app} for tenant '{tenant.name}' "
            f"({aadsts}: invalid client secret).",
            f"Create a new client secret for the app registration and store its value (not "
            f"its secret ID) where {ctx.credential} points.",
        )
    if 7000222 in codes:
        return AuthError(
            f"The client secret of app {app} for tenant '{tenant.name}' has expired ({aadsts}).",
            f"Create a new client secret (or switch to a certificate) and store it where "
            f"{ctx.credential} points.",
        )
    if 700016 in codes:
        return AuthError(
            f"Tenant '{tenant.name}' ({tenant.tenant_id}) has no application {app} ({aadsts}).",
            f"Check client_id in {ctx.where}.app, and that the app is registered in (or "
            "consented to by) this tenant.",
        )
    if 90002 in codes or result.get("error") == "invalid_tenant":
        return _unknown_tenant(ctx)
    if codes & CERT_CODES:
        return AuthError(
            f"Entra ID rejected the certificate of app {app} for tenant '{tenant.name}' "
            f"({aadsts}: {_first_sentence(result.get('error_description', ''))}).",
            f"Upload this certificate to the app registration (Certificates & secrets), or "
            f"point {ctx.credential} at the certificate registered there; check this "
            "machine's clock.",
        )
    if codes & MFA_CODES:
        return AuthError(
            f"The service account of tenant '{tenant.name}' requires multi-factor "
            f"authentication ({aadsts}); service accounts with MFA are not supported.",
            "Exclude the service account from MFA with a Conditional Access policy limited to "
            "this agent's network location, or remove [service_account] and use the app only.",
        )
    if 50126 in codes:
        return AuthError(
            f"Wrong username or password for the service account of tenant '{tenant.name}' "
            f"({aadsts}).",
            f"Check username in {ctx.where}.service_account and the password behind "
            f"{ctx.credential}.",
        )
    if 50034 in codes:
        return AuthError(
            f"The service account user does not exist in tenant '{tenant.name}' ({aadsts}).",
            f"Check username in {ctx.where}.service_account.",
        )
    if 7000218 in codes:
        return AuthError(
            f"App {app} of tenant '{tenant.name}' does not allow public client flows ({aadsts}).",
            "In the app registration, under Authentication, set 'Allow public client flows' to "
            "Yes (needed for the service account sign-in).",
        )
    if codes & {500011, 1002012, 70011}:
        return AuthError(
            f"Entra ID refused the requested scope for tenant '{tenant.name}' ({aadsts}).",
            "Check graph_url and that the app has admin consent for Microsoft Graph.",
        )
    return AuthError(
        f"Sign-in of app {app} for tenant '{tenant.name}' failed ({aadsts}: "
        f"{_first_sentence(result.get('error_description', '')) or 'no description'}).",
        "Look up the AADSTS code at https://login.microsoftonline.com/error and fix the app "
        "registration or the credential.",
    )


def _unknown_tenant(ctx: _Context) -> AuthError:
    return AuthError(
        f"The login endpoint {ctx.tenant.authority_host} does not know tenant "
        f"'{ctx.tenant.tenant_id}' (AADSTS90002).",
        f"Set tenant_id in {ctx.where} to the tenant's GUID or its initial "
        "<name>.onmicrosoft.com domain.",
    )


def _host_of(url: str) -> str:
    return urlsplit(url).netloc or url


def map_exception(exc: BaseException, ctx: _Context) -> Exception:
    """Network, TLS and discovery exceptions raised by msal/requests, for the operator."""
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectionFailed(
            f"Could not verify the TLS certificate of {_host_of(ctx.tenant.authority_host)} "
            f"(login endpoint of tenant '{ctx.tenant.name}').",
            f"If a proxy or private CA signs this endpoint's certificate, set ca_bundle in "
            f"{ctx.where} to that CA's PEM file"
            + (f" (now {ctx.tenant.ca_bundle})." if ctx.tenant.ca_bundle else "."),
        )
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ConnectionError):
        return ConnectionFailed(
            f"Could not connect to {_host_of(ctx.tenant.authority_host)} (login endpoint of "
            f"tenant '{ctx.tenant.name}').",
            f"Check authority_host in {ctx.where}, DNS, the firewall and HTTPS_PROXY.",
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return ConnectionFailed(
            f"The login endpoint {_host_of(ctx.tenant.authority_host)} failed: "
            f"{type(exc).__name__}.",
            "Retry later; if it persists, check authority_host and any proxy in between.",
        )
    if isinstance(exc, ValueError):
        # msal re-raises discovery failures without the body; the original is the context.
        text, inner = str(exc), exc.__context__
        while inner is not None:
            text, inner = text + " " + str(inner), inner.__context__
        if "90002" in text or "invalid_tenant" in text:
            return _unknown_tenant(ctx)
        if "OIDC Discovery failed" in text or "Unable to get authority configuration" in text:
            return AuthError(
                f"{ctx.tenant.authority_host} did not answer as an Entra ID login endpoint for "
                f"tenant '{ctx.tenant.tenant_id}'.",
                f"Check authority_host and tenant_id in {ctx.where}.",
            )
    return AuthError(
        f"Signing in to tenant '{ctx.tenant.name}' failed: {type(exc).__name__}.",
        'Run again with log_level = "DEBUG" to see the exchange with the login endpoint.',
    )


def load_certificate_credential(ref: str, what: str) -> dict[str, str]:
    """msal's credential dict from a PEM holding the private key and its certificate."""
    pem = resolve_secret(ref, what).reveal().encode()
    try:
        key: PrivateKeyTypes = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise SecretError(
            f"The private key in '{ref}' ({what}) is encrypted.",
            "Store it unencrypted in a file readable only by the agent's account "
            "(openssl pkey -in key.pem -out plain.pem).",
        ) from None
    except ValueError:
        raise SecretError(
            f"'{ref}' ({what}) holds no PEM private key.",
            "Point it at a PEM file with the private key and the certificate "
            "(openssl pkcs12 -in app.pfx -out app.pem -nodes).",
        ) from None
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        certs = []
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    cert = next(
        (
            c
            for c in certs
            if c.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            == public
        ),
        None,
    )
    if cert is None:
        raise SecretError(
            f"'{ref}' ({what}) holds no certificate matching its private key.",
            "Put the private key and its certificate in the same PEM file.",
        )
    if cert.not_valid_after_utc <= dt.datetime.now(dt.UTC):
        raise AuthError(
            f"The certificate in '{ref}' ({what}) expired on {cert.not_valid_after_utc:%Y-%m-%d}.",
            "Create a new certificate, upload it to the app registration and replace the file.",
        )
    key_pem = serialization.PrivateFormat.PKCS8
    credential = {
        "private_key": key.private_bytes(
            serialization.Encoding.PEM, key_pem, serialization.NoEncryption()
        ).decode(),
        "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }
    if _msal_version() < (1, 35):
        # Older msal signs with the SHA-1 thumbprint only; from 1.35 on, leaving it out makes
        # msal compute the SHA-256 thumbprint (x5t#S256, PS256) from the certificate.
        credential["thumbprint"] = cert.fingerprint(hashes.SHA1()).hex().upper()
    return credential


class _PortPreservingClient:
    """msal's http_client, fixing one msal quirk: it builds the userrealm URL from the
    authority's host name alone, dropping an explicit port (msal/authority.py)."""

    def __init__(self, session: requests.Session, authority_host: str) -> None:
        self._session = session
        self._authority = urlsplit(authority_host)

    def _fix(self, url: str) -> str:
        parts = urlsplit(url)
        if (
            self._authority.port is not None
            and parts.port is None
            and parts.hostname == self._authority.hostname
            and parts.scheme == self._authority.scheme
        ):
            return urlunsplit(parts._replace(netloc=self._authority.netloc))
        return url

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._session.get(self._fix(url), **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._session.post(self._fix(url), **kwargs)

    def close(self) -> None:
        self._session.close()


class _Provider:
    """Shared plumbing: lazy msal app, lock, error mapping, claims."""

    def __init__(self, tenant: TenantConfig, session: requests.Session) -> None:
        self.tenant = tenant
        self.session = session
        self._lock = threading.Lock()
        self._app: Any = None
        self._cache = msal.TokenCache()
        # scope -> (access token, monotonic time until which it is handed out as it is)
        self._valid: dict[str, tuple[str, float]] = {}
        self._ctx = _Context(tenant, "", "")

    @property
    def authority(self) -> str:
        return f"{self.tenant.authority_host.rstrip('/')}/{self.tenant.tenant_id}"

    def _build(self) -> Any:
        raise NotImplementedError

    def _acquire(self, app: Any, scope: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def token(self, scope: str = GRAPH_SCOPE) -> str:
        """An access token for ``scope`` (from msal's cache while it is valid). Every Graph
        request asks for one: until five minutes before it expires (when msal would renew it)
        the last one is handed out without the lock and msal's cache lookup (~0.3 ms each)."""
        valid = self._valid.get(scope)
        if valid is not None and valid[1] > time.monotonic():
            return valid[0]
        with self._lock:
            try:
                if self._app is None:
                    self._app = self._build()
                result = self._acquire(self._app, scope)
            except (AuthError, SecretError):
                raise
            except Exception as exc:
                raise map_exception(exc, self._ctx) from None
        if not result or "access_token" not in result:
            raise map_token_error(result or {}, self._ctx)
        token = str(result["access_token"])
        lifetime = int(result.get("expires_in") or 0)
        self._valid[scope] = (token, time.monotonic() + lifetime - 300)
        return token

    def claims(self, scope: str = GRAPH_SCOPE) -> dict[str, Any]:
        """The access token's claims (roles, wids, tid, appid…), read without verification:
        only the resource verifies a token; the agent just reads what it was granted."""
        claims: dict[str, Any] = jwt.decode(self.token(scope), options={"verify_signature": False})
        return claims


class AppTokenProvider(_Provider):
    """App-only tokens for one tenant (client secret or certificate)."""

    def __init__(self, tenant: TenantConfig, session: requests.Session) -> None:
        super().__init__(tenant, session)
        app = tenant.app
        field = "client_secret" if app.client_secret else "certificate"
        ref = app.client_secret or app.certificate or ""
        self._ctx = _Context(tenant, app.client_id, f"{field} ({ref})")

    def _credential(self) -> str | dict[str, str]:
        app = self.tenant.app
        what = f"the {{}} of tenant '{self.tenant.name}'"
        if app.client_secret:
            return resolve_secret(app.client_secret, what.format("client secret")).reveal()
        assert app.certificate is not None  # config guarantees exactly one credential
        return load_certificate_credential(app.certificate, what.format("app certificate"))

    def _build(self) -> Any:
        return msal.ConfidentialClientApplication(
            self.tenant.app.client_id,
            client_credential=self._credential(),
            authority=self.authority,
            instance_discovery=False,
            http_client=self.session,
            token_cache=self._cache,
        )

    def _acquire(self, app: Any, scope: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = app.acquire_token_for_client(scopes=[scope])
        return result


class ServiceAccountTokenProvider(_Provider):
    """Delegated tokens of the tenant's service account (ROPC through a public client app)."""

    def __init__(self, tenant: TenantConfig, session: requests.Session) -> None:
        super().__init__(tenant, session)
        account = tenant.service_account
        if account is None:
            raise AuthError(
                f"Tenant '{tenant.name}' has no service account configured.",
                f"Add [tenants.{tenant.name}.service_account] with username, password and "
                "client_id.",
            )
        self.account = account
        self._memo: dict[str, tuple[dict[str, Any], float]] = {}
        self._ctx = _Context(tenant, account.client_id, f"password ({account.password})")

    def _build(self) -> Any:
        return msal.PublicClientApplication(
            self.account.client_id,
            authority=self.authority,
            instance_discovery=False,
            http_client=_PortPreservingClient(self.session, self.tenant.authority_host),
            token_cache=self._cache,
        )

    def _acquire(self, app: Any, scope: str) -> dict[str, Any] | None:
        # msal's cache misses for ".default" when the response lists the granted scopes
        # instead, so keep the last token per scope until five minutes before it expires.
        memo = self._memo.get(scope)
        if memo and memo[1] > time.monotonic():
            return memo[0]
        password = resolve_secret(
            self.account.password, f"the service account password of tenant '{self.tenant.name}'"
        ).reveal()
        with warnings.catch_warnings():
            # msal marks ROPC deprecated for public clients; it is the documented choice here.
            warnings.simplefilter("ignore", DeprecationWarning)
            result: dict[str, Any] | None = app.acquire_token_by_username_password(
                self.account.username, password, scopes=[scope]
            )
        if result and "access_token" in result:
            lifetime = int(result.get("expires_in") or 0)
            self._memo[scope] = (result, time.monotonic() + max(0, lifetime - 300))
        return result
