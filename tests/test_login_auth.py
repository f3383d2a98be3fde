"""The agent's sign-in (msal + requests) against the simulated Entra login endpoint over TLS:
tokens for an app (secret, certificate) and a service account, and every failure named."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.auth import AppTokenProvider, ServiceAccountTokenProvider
from agent.errors import ConnectionFailed
from agent.logs import setup_logging
from agent.simulator import ca
from agent.simulator.world import ROLE_TEMPLATE_IDS
from tests.login_helpers import (
    GLOBAL_READER,
    OLD_SECRET,
    PASSWORD,
    PERMISSIONS,
    SECRET,
    Login,
    auth_error,
    login_endpoint,
    make_certificate,
    service_account_error,
    session_for,
    write_private,
)


@pytest.fixture
def login(tmp_path: Path, tls: ca.TlsMaterial) -> Iterator[Login]:
    yield from login_endpoint(tmp_path, tls)


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
