"""The simulated Entra login endpoint's wire format: Entra's error bodies and statuses, the
discovery document, and client assertions that are expired or forged."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.http import make_session
from agent.simulator import ca
from tests.login_helpers import UA, Login, login_endpoint


@pytest.fixture
def login(tmp_path: Path, tls: ca.TlsMaterial) -> Iterator[Login]:
    yield from login_endpoint(tmp_path, tls)


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
