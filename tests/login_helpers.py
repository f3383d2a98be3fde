"""Helpers for the sign-in tests: a simulated Entra login endpoint over TLS with one tenant,
its apps and service accounts, and tenant configs written as an operator would."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.auth import AppTokenProvider, ServiceAccountTokenProvider
from agent.config import TenantConfig, load_config
from agent.errors import AuthError
from agent.http import make_session
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
    a_day_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    cert_pem = ca.pem(ca.certificate("entra-backup app", key, days=days, not_before=a_day_ago))
    return ca.key_pem(key) + cert_pem, cert_pem


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


def login_endpoint(tmp_path: Path, tls: ca.TlsMaterial) -> Iterator[Login]:
    """A login endpoint with one tenant: an app with a secret (and an expired one) and a
    certificate, a public client for service accounts, one confidential-only app, and two
    service accounts (one needing MFA)."""
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
