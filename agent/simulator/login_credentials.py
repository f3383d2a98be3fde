"""How the simulated token endpoint authenticates a client: client_id from the body or HTTP
Basic, a client secret (matching, not expired) or a certificate assertion (a registered
certificate's thumbprint, RS256/PS256 signature, audience, lifetime, iss = sub = client_id)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from urllib.parse import unquote

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from agent.simulator.httpserver import Request
from agent.simulator.login_errors import LoginError
from agent.simulator.world import AppRegistration, SimTenant

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def client_id_of(request: Request, form: dict[str, str]) -> tuple[str, str | None]:
    """client_id and client_secret from the body or an HTTP Basic header."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            return unquote(user), unquote(password)
        except (ValueError, UnicodeDecodeError):
            pass
    return form.get("client_id", ""), form.get("client_secret")


def authenticate_client(
    request: Request,
    tenant: SimTenant,
    app: AppRegistration,
    form: dict[str, str],
    secret: str | None,
) -> bool:
    """Check the client credential if one was sent; False when none was."""
    assertion = form.get("client_assertion")
    if assertion:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise LoginError(
                400,
                "invalid_request",
                50027,
                f"Invalid JWT token. The client_assertion_type must be '{ASSERTION_TYPE}'.",
            )
        segment = request.params["tenant"]
        audiences = [
            f"{request.base_url}/{t}/oauth2/v2.0/token"
            for t in {segment, tenant.tenant_id, tenant.domain}
        ]
        audiences += [a.replace("/oauth2/v2.0/token", "/oauth2/token") for a in audiences]
        _check_assertion(app, assertion, audiences)
        return True
    if secret:
        _check_secret(app, secret)
        return True
    return False


def _check_secret(app: AppRegistration, secret: str) -> None:
    matching = [s for s in app.secrets if s.matches(secret)]
    if not matching:
        raise LoginError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is "
            "the client secret value, not the client secret ID, for a secret added to app "
            f"'{app.client_id}'.",
        )
    now = dt.datetime.now(dt.UTC)
    if all(s.expires <= now for s in matching):
        raise LoginError(
            401,
            "invalid_client",
            7000222,
            f"The provided client secret keys for app '{app.client_id}' are expired. Visit "
            "the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret"
            ", or consider using certificate credentials for added security: "
            "https://aka.ms/certCreds.",
        )


def _check_assertion(app: AppRegistration, assertion: str, audiences: list[str]) -> None:
    def bad(reason: str, code: int = 700027) -> LoginError:
        return LoginError(401, "invalid_client", code, reason)

    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise bad("Client assertion is not a valid JWT.", 50027) from exc
    alg = header.get("alg")
    if alg not in ("RS256", "PS256"):
        raise bad(f"Client assertion uses an unsupported signing algorithm '{alg}'.")
    # RFC 7515 says unpadded base64url; msal pads it. Entra accepts both, so compare bare.
    sent_s256 = str(header.get("x5t#S256") or "").rstrip("=")
    sent_sha1 = str(header.get("x5t") or "").rstrip("=")
    certificate: x509.Certificate | None = None
    for pem in app.certificates_pem:
        cert = x509.load_pem_x509_certificate(pem)
        der = cert.public_bytes(encoding=Encoding.DER)
        if sent_s256 == _b64url_digest(der, "sha256") or sent_sha1 == _b64url_digest(der, "sha1"):
            certificate = cert
            break
    if certificate is None:
        raise bad(
            "The certificate with identifier used to sign the client assertion is not "
            f"registered on application. [Reason - The key was not found., Thumbprint of key "
            f"used by client: '{header.get('x5t#S256') or header.get('x5t')}']"
        )
    try:
        claims = jwt.decode(
            assertion,
            certificate.public_key(),  # type: ignore[arg-type]
            algorithms=[alg],
            audience=audiences,
            options={"require": ["exp", "aud", "iss", "sub"]},
            leeway=300,  # Entra allows five minutes of clock skew
        )
    except jwt.ExpiredSignatureError as exc:
        raise bad("Client assertion is not within its valid time range.", 700024) from exc
    except jwt.InvalidAudienceError as exc:
        raise bad("Client assertion audience claim does not match Realm issuer.", 700027) from exc
    except jwt.InvalidSignatureError as exc:
        raise bad("Client assertion failed signature validation.") from exc
    except jwt.PyJWTError as exc:
        raise bad(f"Client assertion is invalid: {exc}.") from exc
    if not (claims["iss"] == claims["sub"] == app.client_id):
        raise bad(
            "Client assertion application identifier doesn't match 'client_id' parameter.",
            700021,
        )


def _b64url_digest(data: bytes, algorithm: str) -> str:
    digest = hashlib.new(algorithm, data).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
