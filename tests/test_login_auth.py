"""The agent's sign-in (msal + requests) against the simulated Entra login endpoint over TLS."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from agent.auth import AppTokenProvider, ServiceAccountTokenProvider
from agent.config import TenantConfig, load_config
from agent.errors import AuthError, ConnectionFailed
from agent.http import make_session
from agent.logs import setup_logging
from agent.simulator import ca
from agent.simulator.httpserver import HttpsServer, Router
from agent.simulator.login import register_login_routes
from agent.simulator.tokens import TokenIssuer
from agent.simulator.world import (
    ROLE_TEMPLATE_IDS,
    AppRegistration,
    ClientSecret,
    ServiceAccount,
    SimTenant,
    World,
)

SECRET = "Zx8~Q.simulated-Client-Secret-Value-0123456789"
OLD_SECRET = "Ab3~Q.an-Expired-Client-Secret-Value-98765"
PASSWORD = "Correct-Horse-Battery-Staple-42!"
PERMISSIONS = ["User.Read.All", "Group.Read.All", "Policy.Read.All"]
GLOBAL_READER = ROLE_TEMPLATE_IDS["Global Reader"]
UA = "entra-backup-tests/1"


def make_certificate(days: int = 365) -> tuple[bytes, bytes]:
    """(PEM with private key + certificate, PEM of the certificate alone)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-backup app")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem + cert_pem, cert_pem


def write_private(path: Path, data: bytes | str) -> Path:
    """Write an owner-only file, as an operator stores a credential."""
    raw = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    return path


@dataclass
class Login:
    server: HttpsServer
    issuer: TokenIssuer
    world: World
    tenant: SimTenant
    app_id: str
    public_app_id: str
    confidential_only_app_id: str
    ca_path: Path
    cert_pem_path: Path  # private key + registered certificate
    tmp: Path

    def config(
        self,
        *,
        tenant_id: str | None = None,
        client_id: str | None = None,
        credential: str | None = None,
        authority: str | None = None,
        ca_bundle: Path | None = None,
        service_account: dict[str, str] | None = None,
    ) -> TenantConfig:
        """A tenant config as an operator would write it, loaded through load_config."""
        secret_file = write_private(self.tmp / "keys" / "contoso.secret", SECRET + "\n")
        cred = credential or f'client_secret = "file:{secret_file.as_posix()}"'
        text = f"""
[agent]
data_dir = "{(self.tmp / "data").as_posix()}"

[tenants.contoso]
tenant_id = "{tenant_id or self.tenant.domain}"
authority_host = "{authority or self.server.base_url}"
graph_url = "{self.server.base_url}"
ca_bundle = "{(ca_bundle or self.ca_path).as_posix()}"

[tenants.contoso.app]
client_id = "{client_id or self.app_id}"
{cred}
"""
        if service_account:
            text += "\n[tenants.contoso.service_account]\n" + "".join(
                f'{k} = "{v}"\n' for k, v in service_account.items()
            )
        path = self.tmp / f"agent-{uuid.uuid4().hex[:8]}.toml"
        path.write_text(text)
        return load_config(path).tenant("contoso")

    def service_account(
        self, user: str = "svc-backup", password: str = PASSWORD, client_id: str | None = None
    ) -> TenantConfig:
        """A tenant config with a service account (password in an owner-only file)."""
        secret = write_private(self.tmp / "keys" / f"{user}.pw", password)
        return self.config(
            service_account={
                "username": f"{user}@{self.tenant.domain}",
                "password": f"file:{secret.as_posix()}",
                "client_id": client_id or self.public_app_id,
            }
        )

    def token_requests(self) -> int:
        # The server logs a request just after answering it: give the log a moment.
        deadline = time.monotonic() + 2.0
        while True:
            n = sum(1 for r in self.server.log.items() if r.path.endswith("/oauth2/v2.0/token"))
            if n or time.monotonic() > deadline:
                return n
            time.sleep(0.01)


@pytest.fixture
def login(tmp_path: Path, tls: ca.TlsMaterial) -> Iterator[Login]:
    full_pem, cert_pem = make_certificate()
    tenant = SimTenant(
        tenant_id=str(uuid.uuid4()), domain="contoso.onmicrosoft.com", display_name="Contoso"
    )
    app_id, public_id, conf_id = (str(uuid.uuid4()) for _ in range(3))
    now = dt.datetime.now(dt.UTC)
    tenant.apps[app_id] = AppRegistration(
        client_id=app_id,
        display_name="entra-backup",
        secrets=[
            ClientSecret.create(SECRET, now + dt.timedelta(days=180)),
            ClientSecret.create(OLD_SECRET, now - dt.timedelta(days=1)),
        ],
        certificates_pem=[cert_pem],
        graph_permissions=list(PERMISSIONS),
        directory_roles=[GLOBAL_READER],
    )
    tenant.apps[public_id] = AppRegistration(
        client_id=public_id,
        display_name="entra-backup service account",
        graph_permissions=["Directory.Read.All"],
        public_client=True,
    )
    tenant.apps[conf_id] = AppRegistration(client_id=conf_id, display_name="no public flows")
    for name, mfa in (("svc-backup", False), ("svc-mfa", True)):
        upn = f"{name}@{tenant.domain}"
        tenant.accounts[upn] = ServiceAccount(
            username=upn,
            password_sha256=hashlib.sha256(PASSWORD.encode()).hexdigest(),
            mfa_required=mfa,
            directory_roles=[ROLE_TEMPLATE_IDS["Exchange Administrator"]],
        )
    world = World()
    world.add(tenant)
    issuer = TokenIssuer()
    router = Router()
    register_login_routes(router, world, issuer)
    ca_path, _, _ = tls.write(tmp_path / "tls")
    cert_path = write_private(tmp_path / "keys" / "app.pem", full_pem)
    with HttpsServer(router, tls) as server:
        yield Login(
            server, issuer, world, tenant, app_id, public_id, conf_id, ca_path, cert_path, tmp_path
        )
        assert server.errors == []


def session_for(cfg: TenantConfig) -> requests.Session:
    return make_session(Path(cfg.ca_bundle) if cfg.ca_bundle else None, user_agent=UA)


def auth_error(cfg: TenantConfig) -> AuthError:
    with pytest.raises(AuthError) as info:
        AppTokenProvider(cfg, session_for(cfg)).token()
    return info.value


def service_account_error(cfg: TenantConfig) -> AuthError:
    with pytest.raises(AuthError) as info:
        ServiceAccountTokenProvider(cfg, session_for(cfg)).token()
    return info.value


# --- success ---------------------------------------------------------------------------------


def test_client_secret_flow_gives_graph_token_with_roles_and_wids(login: Login) -> None:
    cfg = login.config()
    provider = AppTokenProvider(cfg, session_for(cfg))
    token = provider.token()
    claims = login.issuer.verify(token, "https://graph.microsoft.com")
    assert claims is not None, "the simulated Graph must accept the token"
    assert claims["tid"] == login.tenant.tenant_id
    assert claims["appid"] == login.app_id
    assert claims["roles"] == PERMISSIONS
    assert claims["wids"] == [GLOBAL_READER]
    assert claims["iss"] == f"https://sts.windows.net/{login.tenant.tenant_id}/"
    # preflight reads the same claims without verifying
    assert provider.claims()["roles"] == PERMISSIONS
    # msal's cache answers repeats: one trip to the token endpoint for several calls
    assert provider.token() == token
    assert login.token_requests() == 1


def test_certificate_flow_signs_an_assertion_the_endpoint_accepts(login: Login) -> None:
    cfg = login.config(credential=f'certificate = "file:{login.cert_pem_path.as_posix()}"')
    claims = AppTokenProvider(cfg, session_for(cfg)).claims()
    assert claims["roles"] == PERMISSIONS
    assert claims["wids"] == [GLOBAL_READER]
    assert claims["appid"] == login.app_id


def test_tenant_guid_works_as_well_as_domain(login: Login) -> None:
    cfg = login.config(tenant_id=login.tenant.tenant_id)
    assert AppTokenProvider(cfg, session_for(cfg)).claims()["tid"] == login.tenant.tenant_id


def test_service_account_ropc_gives_delegated_token(login: Login) -> None:
    cfg = login.service_account()
    provider = ServiceAccountTokenProvider(cfg, session_for(cfg))
    claims = provider.claims()
    assert claims["upn"] == f"svc-backup@{login.tenant.domain}"
    assert "Directory.Read.All" in claims["scp"]
    assert claims["wids"] == [ROLE_TEMPLATE_IDS["Exchange Administrator"]]
    assert login.issuer.verify(provider.token(), "https://graph.microsoft.com") is not None
    assert login.token_requests() == 1  # the second call came from msal's cache
    # msal looked up the user realm on the authority (port kept) before ROPC
    assert any(r.path.startswith("/common/userrealm/") for r in login.server.log.items())


# --- failures --------------------------------------------------------------------------------


def test_wrong_secret_is_named_and_never_shown(login: Login, tmp_path: Path, capfd) -> None:
    log_file = tmp_path / "logs" / "agent.jsonl"
    setup_logging("DEBUG", log_file, console=True)
    try:
        wrong = "Wr0ng~Secret.ThatMustNeverBeShown-1234"
        write_private(login.tmp / "keys" / "wrong.secret", wrong)
        cfg = login.config(
            credential=f'client_secret = "file:{(login.tmp / "keys" / "wrong.secret").as_posix()}"'
        )
        err = auth_error(cfg)
        logging.getLogger("agent.test").error("backup failed: %s", err)
    finally:
        setup_logging("INFO", None, console=False)
    text = str(err)
    assert "client secret" in text and "AADSTS7000215" in text
    assert "wrong.secret" in err.fix  # names where the secret lives, not what it is
    captured = capfd.readouterr()
    for place in (text, log_file.read_text(), captured.err, captured.out):
        assert wrong not in place
        assert SECRET not in place


def test_expired_secret(login: Login) -> None:
    path = write_private(login.tmp / "keys" / "old.secret", OLD_SECRET)
    err = auth_error(login.config(credential=f'client_secret = "file:{path.as_posix()}"'))
    assert "expired" in err.message and "AADSTS7000222" in err.message
    assert OLD_SECRET not in str(err)


def test_unknown_app(login: Login) -> None:
    missing = str(uuid.uuid4())
    err = auth_error(login.config(client_id=missing))
    assert missing in err.message and "AADSTS700016" in err.message
    assert "client_id" in err.fix


def test_unknown_tenant(login: Login) -> None:
    err = auth_error(login.config(tenant_id="fabrikam.onmicrosoft.com"))
    assert "fabrikam.onmicrosoft.com" in err.message and "AADSTS90002" in err.message
    assert "tenant_id" in err.fix


def test_unregistered_certificate(login: Login) -> None:
    other, _ = make_certificate()
    path = write_private(login.tmp / "keys" / "other.pem", other)
    err = auth_error(login.config(credential=f'certificate = "file:{path.as_posix()}"'))
    assert "certificate" in err.message and "AADSTS700027" in err.message


def test_service_account_with_mfa_is_refused_plainly(login: Login) -> None:
    cfg = login.service_account("svc-mfa")
    err = service_account_error(cfg)
    assert "service accounts with MFA are not supported" in err.message
    assert PASSWORD not in str(err)


def test_service_account_wrong_password(login: Login) -> None:
    cfg = login.service_account(password="nope-nope")
    err = service_account_error(cfg)
    assert "Wrong username or password" in err.message
    assert "AADSTS50126" in err.message


def test_service_account_app_without_public_client_flows(login: Login) -> None:
    cfg = login.service_account(client_id=login.confidential_only_app_id)
    err = service_account_error(cfg)
    assert "Allow public client flows" in err.fix


def test_wrong_ca_is_a_connection_failure_naming_ca_bundle(login: Login, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(ca.generate().ca_pem)
    cfg = login.config(ca_bundle=other_ca)
    with pytest.raises(ConnectionFailed) as info:
        AppTokenProvider(cfg, session_for(cfg)).token()
    assert "ca_bundle" in info.value.fix
    assert f"127.0.0.1:{login.server.port}" in info.value.message


def test_unreachable_login_endpoint_names_the_host(login: Login) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = login.config(authority=f"https://127.0.0.1:{port}")
    with pytest.raises(ConnectionFailed) as info:
        AppTokenProvider(cfg, session_for(cfg)).token()
    assert f"127.0.0.1:{port}" in info.value.message


def test_requests_ca_bundle_in_environment_does_not_override_pinned_ca(
    login: Login, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_bytes(ca.generate().ca_pem)  # a CA that signed nothing we talk to
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bogus))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bogus))
    cfg = login.config()
    assert AppTokenProvider(cfg, session_for(cfg)).claims()["roles"] == PERMISSIONS


def test_proxy_from_environment_and_no_proxy_are_honoured(
    login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("HTTPS_PROXY", dead_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    cfg = login.config()
    with pytest.raises(ConnectionFailed):  # the (dead) proxy is really used
        AppTokenProvider(cfg, session_for(cfg)).token()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert AppTokenProvider(cfg, session_for(cfg)).claims()["tid"] == login.tenant.tenant_id


# --- the endpoint's wire format --------------------------------------------------------------


def _token_url(login: Login, tenant: str | None = None) -> str:
    return f"{login.server.base_url}/{tenant or login.tenant.tenant_id}/oauth2/v2.0/token"


def test_error_bodies_have_entras_shape_and_status(login: Login) -> None:
    s = make_session(login.ca_path, user_agent=UA)
    form = {
        "grant_type": "client_credentials",
        "client_id": login.app_id,
        "client_secret": "not-it",
        "scope": "https://graph.microsoft.com/.default",
    }
    r = s.post(_token_url(login), data=form, headers={"client-request-id": "abc-123"})
    body = r.json()
    assert r.status_code == 401 and body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert body["correlation_id"] == "abc-123"
    assert {"timestamp", "trace_id"} <= set(body)

    r = s.post(_token_url(login, "nobody.onmicrosoft.com"), data=form)
    assert (r.status_code, r.json()["error"], r.json()["error_codes"]) == (
        400,
        "invalid_request",
        [90002],
    )
    r = s.post(_token_url(login), data={**form, "client_id": str(uuid.uuid4())})
    assert (r.status_code, r.json()["error"]) == (400, "unauthorized_client")
    r = s.post(_token_url(login), data={**form, "scope": "https://graph.microsoft.com/User.Read"})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_scope")


def test_discovery_document_uses_absolute_urls(login: Login) -> None:
    s = make_session(login.ca_path, user_agent=UA)
    doc = s.get(
        f"{login.server.base_url}/{login.tenant.domain}/v2.0/.well-known/openid-configuration"
    ).json()
    base = f"{login.server.base_url}/{login.tenant.tenant_id}"
    assert doc["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert doc["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert doc["issuer"] == f"{base}/v2.0"
    keys = s.get(doc["jwks_uri"]).json()["keys"]
    assert keys[0]["kid"] == login.issuer.kid
    missing = s.get(f"{login.server.base_url}/nobody.example/v2.0/.well-known/openid-configuration")
    assert missing.status_code == 400 and missing.json()["error_codes"] == [90002]


def test_expired_or_forged_client_assertions_are_refused(login: Login) -> None:
    s = make_session(login.ca_path, user_agent=UA)
    pem = login.cert_pem_path.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE") :])
    x5t = jwt.utils.base64url_encode(cert.fingerprint(hashes.SHA1())).decode()
    now = int(time.time())
    claims = {
        "aud": _token_url(login),
        "iss": login.app_id,
        "sub": login.app_id,
        "jti": str(uuid.uuid4()),
        "iat": now - 3600,
        "exp": now - 1800,
    }

    def post(assertion: str) -> dict[str, object]:
        r = s.post(
            _token_url(login),
            data={
                "grant_type": "client_credentials",
                "client_id": login.app_id,
                "scope": "https://graph.microsoft.com/.default",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )
        assert r.status_code == 401
        result: dict[str, object] = r.json()
        return result

    expired = jwt.encode(claims, key, algorithm="RS256", headers={"x5t": x5t})  # type: ignore[arg-type]
    assert post(expired)["error_codes"] == [700024]
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {**claims, "exp": now + 600}, forger, algorithm="RS256", headers={"x5t": x5t}
    )
    assert post(forged)["error_codes"] == [700027]
    valid = jwt.encode(
        {**claims, "exp": now + 600},
        key,
        algorithm="RS256",  # type: ignore[arg-type]
        headers={"x5t": x5t},
    )
    ok = s.post(
        _token_url(login),
        data={
            "grant_type": "client_credentials",
            "client_id": login.app_id,
            "scope": "https://graph.microsoft.com/.default",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": valid,
        },
    )
    assert ok.status_code == 200 and ok.json()["token_type"] == "Bearer"
