"""The simulated token endpoint (/{tenant}/oauth2/v2.0/token): client credentials with a
secret or a certificate assertion, and ROPC for a service account (MFA, wrong password, unknown
user answered with Entra's AADSTS codes). Tokens are RS256 JWTs with roles / wids / scp."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

from agent.simulator.httpserver import Request, Response
from agent.simulator.login_credentials import authenticate_client, client_id_of
from agent.simulator.login_errors import (
    NO_CACHE,
    LoginError,
    error_response,
    missing_credential,
    unknown_tenant,
)
from agent.simulator.tokens import GRAPH_APP_ID, GRAPH_RESOURCE, PORTAL_RESOURCE, TokenIssuer
from agent.simulator.world import AppRegistration, SimTenant, World

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


def issuer_url(base_url: str, tenant: SimTenant) -> str:
    """The issuer of a tenant's tokens (and of its OIDC discovery document)."""
    return f"{base_url}/{tenant.tenant_id}/v2.0"


def _service_principal_id(tenant: SimTenant, app_id: str) -> str:
    # Stable per tenant + app, as a service principal's object id is.
    return str(uuid.uuid5(uuid.UUID(int=0), f"sp:{tenant.tenant_id}:{app_id.lower()}"))


class TokenEndpoint:
    def __init__(self, world: World, issuer: TokenIssuer) -> None:
        self.world = world
        self.issuer = issuer

    # --- the endpoint --------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        try:
            return self._token(request)
        except LoginError as err:
            return error_response(request, err)

    def _token(self, request: Request) -> Response:
        segment = request.params["tenant"]
        tenant = self.world.find(segment)
        if tenant is None:
            raise unknown_tenant(segment)
        form = request.form()
        grant = form.get("grant_type", "")
        client_id, secret = client_id_of(request, form)
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

    def _client_credentials(
        self,
        request: Request,
        tenant: SimTenant,
        app: AppRegistration,
        form: dict[str, str],
        secret: str | None,
    ) -> Response:
        resource = self._resource(form.get("scope", ""), client_credentials=True)
        if not authenticate_client(request, tenant, app, form, secret):
            raise missing_credential()
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
            body, 200, {"Content-Type": "application/json; charset=utf-8", **NO_CACHE}
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
        authenticated = authenticate_client(request, tenant, app, form, secret)
        if not authenticated and not app.public_client:
            raise missing_credential()
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
                issuer=issuer_url(request.base_url, tenant),
                tenant=tenant,
                client_id=app.client_id,
                oid=account.object_id,
                username=account.username,
            )
        if form.get("client_info") == "1":
            info = json.dumps({"uid": account.object_id, "utid": tenant.tenant_id})
            body["client_info"] = base64.urlsafe_b64encode(info.encode()).rstrip(b"=").decode()
        return Response.json(
            body, 200, {"Content-Type": "application/json; charset=utf-8", **NO_CACHE}
        )
