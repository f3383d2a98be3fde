"""The simulated Entra ID login endpoint: OIDC discovery, keys, token endpoint, user realm.

Behaves as login.microsoftonline.com is documented and observed to behave for the flows the
agent uses (client credentials with a secret or a certificate assertion, and ROPC for a service
account), including the exact error body shape and AADSTS codes, so the agent's error mapping is
exercised against the same answers the real cloud gives.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from agent.simulator.httpserver import Request, Response, Router
from agent.simulator.tokens import GRAPH_APP_ID, GRAPH_RESOURCE, PORTAL_RESOURCE, TokenIssuer
from agent.simulator.world import AppRegistration, SimTenant, World

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
EXCHANGE_RESOURCE = "https://outlook.office365.com"
_KNOWN_RESOURCES = {
    GRAPH_RESOURCE: GRAPH_RESOURCE,
    GRAPH_APP_ID: GRAPH_RESOURCE,
    EXCHANGE_RESOURCE: EXCHANGE_RESOURCE,
    PORTAL_RESOURCE: PORTAL_RESOURCE,
}
# Delegated scopes a user token carries per resource (Graph's come from the app's consent).
_DELEGATED_SCOPES = {PORTAL_RESOURCE: "user_impersonation"}
_OIDC_SCOPES = {"openid", "profile", "offline_access", "email"}
_NO_CACHE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


@dataclass
class LoginError(Exception):
    """An Entra error answer: OAuth error code, HTTP status, AADSTS number and its text."""

    status: int
    error: str
    aadsts: int
    text: str


def _error_response(request: Request, err: LoginError) -> Response:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = str(uuid.uuid4())
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    body = {
        "error": err.error,
        "error_description": f"AADSTS{err.aadsts}: {err.text} Trace ID: {trace_id} "
        f"Correlation ID: {correlation_id} Timestamp: {now}",
        "error_codes": [err.aadsts],
        "timestamp": now,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={err.aadsts}",
    }
    response = Response.json(
        body, err.status, {"Content-Type": "application/json; charset=utf-8", **_NO_CACHE}
    )
    response.note["aadsts"] = err.aadsts
    return response


def _unknown_tenant(segment: str, error: str = "invalid_request") -> LoginError:
    return LoginError(
        400,
        error,
        90002,
        f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud. Check with your subscription administrator, this "
        "may happen if there are no active subscriptions for the tenant.",
    )


def _b64url_digest(data: bytes, algorithm: str) -> str:
    digest = hashlib.new(algorithm, data).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _service_principal_id(tenant: SimTenant, app_id: str) -> str:
    # Stable per tenant + app, as a service principal's object id is.
    return str(uuid.uuid5(uuid.UUID(int=0), f"sp:{tenant.tenant_id}:{app_id.lower()}"))


class _TokenEndpoint:
    def __init__(self, world: World, issuer: TokenIssuer) -> None:
        self.world = world
        self.issuer = issuer

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def _client_id(request: Request, form: dict[str, str]) -> tuple[str, str | None]:
        """client_id and client_secret from the body or an HTTP Basic header."""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                return unquote(user), unquote(password)
            except (ValueError, UnicodeDecodeError):
                pass
        return form.get("client_id", ""), form.get("client_secret")

    @staticmethod
    def _resource(scope: str, *, client_credentials: bool) -> str:
        scopes = scope.split()
        resource_scopes = [s for s in scopes if s not in _OIDC_SCOPES]
        if client_credentials and (
            len(resource_scopes) != 1 or not resource_scopes[0].endswith("/.default")
        ):
            raise LoginError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        if not resource_scopes:
            return GRAPH_RESOURCE
        first = resource_scopes[0]
        resource = first.rsplit("/", 1)[0] if "/" in first else GRAPH_RESOURCE
        known = _KNOWN_RESOURCES.get(resource.rstrip("/"))
        if known is None:
            raise LoginError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant. This "
                "can happen if the application has not been installed by the administrator of "
                "the tenant or consented to by any user in the tenant.",
            )
        return known

    def _check_secret(self, app: AppRegistration, secret: str) -> None:
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

    def _check_assertion(self, app: AppRegistration, assertion: str, audiences: list[str]) -> None:
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
            if sent_s256 == _b64url_digest(der, "sha256") or sent_sha1 == _b64url_digest(
                der, "sha1"
            ):
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
            raise bad(
                "Client assertion audience claim does not match Realm issuer.", 700027
            ) from exc
        except jwt.InvalidSignatureError as exc:
            raise bad("Client assertion failed signature validation.") from exc
        except jwt.PyJWTError as exc:
            raise bad(f"Client assertion is invalid: {exc}.") from exc
        if not (claims["iss"] == claims["sub"] == app.client_id):
            raise bad(
                "Client assertion application identifier doesn't match 'client_id' parameter.",
                700021,
            )

    # --- the endpoint --------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        try:
            return self._token(request)
        except LoginError as err:
            return _error_response(request, err)

    def _token(self, request: Request) -> Response:
        segment = request.params["tenant"]
        tenant = self.world.find(segment)
        if tenant is None:
            raise _unknown_tenant(segment)
        form = request.form()
        grant = form.get("grant_type", "")
        client_id, secret = self._client_id(request, form)
        if not client_id:
            raise LoginError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        app = next((a for k, a in tenant.apps.items() if k.lower() == client_id.lower()), None)
        if app is None:
            raise LoginError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant.display_name}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in "
                "the tenant. You may have sent your authentication request to the wrong tenant.",
            )
        handlers: dict[
            str,
            Callable[[Request, SimTenant, AppRegistration, dict[str, str], str | None], Response],
        ] = {
            "client_credentials": self._client_credentials,
            "password": self._password,
        }
        handler = handlers.get(grant)
        if handler is None:
            raise LoginError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        response = handler(request, tenant, app, form, secret)
        response.note.update({"app_id": app.client_id, "grant": grant})
        return response

    def _authenticate_client(
        self,
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
            self._check_assertion(app, assertion, audiences)
            return True
        if secret:
            self._check_secret(app, secret)
            return True
        return False

    def _client_credentials(
        self,
        request: Request,
        tenant: SimTenant,
        app: AppRegistration,
        form: dict[str, str],
        secret: str | None,
    ) -> Response:
        resource = self._resource(form.get("scope", ""), client_credentials=True)
        if not self._authenticate_client(request, tenant, app, form, secret):
            raise LoginError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        lifetime = 3599
        token = self.issuer.issue(
            tenant=tenant,
            audience=resource,
            app_id=app.client_id,
            subject=_service_principal_id(tenant, app.client_id),
            roles=list(app.graph_permissions),
            wids=list(app.directory_roles),
            lifetime_s=lifetime,
        )
        body = {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }
        return Response.json(
            body, 200, {"Content-Type": "application/json; charset=utf-8", **_NO_CACHE}
        )

    def _password(
        self,
        request: Request,
        tenant: SimTenant,
        app: AppRegistration,
        form: dict[str, str],
        secret: str | None,
    ) -> Response:
        scope = form.get("scope", "")
        resource = self._resource(scope, client_credentials=False)
        authenticated = self._authenticate_client(request, tenant, app, form, secret)
        if not authenticated and not app.public_client:
            raise LoginError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        username = form.get("username", "")
        account = tenant.accounts.get(username.lower())
        if account is None:
            raise LoginError(
                400,
                "invalid_grant",
                50034,
                f"The user account {{EmailHidden}} does not exist in the {tenant.tenant_id} "
                "directory. To sign into this application, the account must be added to the "
                "directory.",
            )
        if not account.password_matches(form.get("password", "")):
            raise LoginError(
                400,
                "invalid_grant",
                50126,
                "Error validating credentials due to invalid username or password.",
            )
        if account.mfa_required:
            raise LoginError(
                400,
                "invalid_grant",
                50076,
                "Due to a configuration change made by your administrator, or because you moved "
                "to a new location, you must use multi-factor authentication to access "
                f"'{resource}'.",
            )
        lifetime = 3599
        granted = _DELEGATED_SCOPES.get(resource) or " ".join(app.graph_permissions) or "User.Read"
        token = self.issuer.issue(
            tenant=tenant,
            audience=resource,
            app_id=app.client_id,
            subject=account.object_id,
            wids=list(account.directory_roles),
            scp=granted,
            upn=account.username,
            lifetime_s=lifetime,
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(f"{resource}/{p}" for p in granted.split()),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }
        if "openid" in scope.split():
            body["id_token"] = self.issuer.issue_id_token(
                issuer=_issuer(request.base_url, tenant),
                tenant=tenant,
                client_id=app.client_id,
                oid=account.object_id,
                username=account.username,
            )
        if form.get("client_info") == "1":
            info = json.dumps({"uid": account.object_id, "utid": tenant.tenant_id})
            body["client_info"] = base64.urlsafe_b64encode(info.encode()).rstrip(b"=").decode()
        return Response.json(
            body, 200, {"Content-Type": "application/json; charset=utf-8", **_NO_CACHE}
        )


def _issuer(base_url: str, tenant: SimTenant) -> str:
    return f"{base_url}/{tenant.tenant_id}/v2.0"


def _openid_configuration(world: World) -> Callable[[Request], Response]:
    def handler(request: Request) -> Response:
        segment = request.params["tenant"]
        tenant = world.find(segment)
        if tenant is None:
            return _error_response(request, _unknown_tenant(segment, "invalid_tenant"))
        root = f"{request.base_url}/{tenant.tenant_id}"
        doc = {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": _issuer(request.base_url, tenant),
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "msgraph_host": "graph.microsoft.com",
        }
        return Response.json(doc, 200, {"Content-Type": "application/json; charset=utf-8"})

    return handler


def _keys(world: World, issuer: TokenIssuer) -> Callable[[Request], Response]:
    def handler(request: Request) -> Response:
        segment = request.params["tenant"]
        if world.find(segment) is None:
            return _error_response(request, _unknown_tenant(segment, "invalid_tenant"))
        return Response.json(
            issuer.jwks(), 200, {"Content-Type": "application/json; charset=utf-8"}
        )

    return handler


def _userrealm(world: World) -> Callable[[Request], Response]:
    def handler(request: Request) -> Response:
        username = unquote(request.params["username"])
        domain = username.rpartition("@")[2].lower()
        known = any(t.domain.lower() == domain for t in world.tenants())
        body: dict[str, Any] = {"ver": "1.0", "cloud_instance_name": "microsoftonline.com"}
        if known:
            body.update(
                {
                    "account_type": "Managed",
                    "domain_name": domain,
                    "cloud_audience_urn": "urn:federation:MicrosoftOnline",
                }
            )
        else:
            body["account_type"] = "Unknown"
        return Response.json(body, 200, {"Content-Type": "application/json; charset=utf-8"})

    return handler


def register_login_routes(router: Router, world: World, issuer: TokenIssuer) -> None:
    """Serve login.microsoftonline.com's endpoints for every tenant in ``world``."""
    router.add("GET", "/common/userrealm/{username}", _userrealm(world))
    router.add(
        "GET", "/{tenant}/v2.0/.well-known/openid-configuration", _openid_configuration(world)
    )
    router.add("GET", "/{tenant}/discovery/v2.0/keys", _keys(world, issuer))
    router.add("POST", "/{tenant}/oauth2/v2.0/token", _TokenEndpoint(world, issuer))
