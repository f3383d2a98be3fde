"""The simulated Entra ID login endpoint: OIDC discovery, keys, token endpoint, user realm.

Behaves as login.microsoftonline.com is documented and observed to behave for the flows the
agent uses (client credentials with a secret or a certificate assertion, and ROPC for a service
account), including the exact error body shape and AADSTS codes, so the agent's error mapping is
exercised against the same answers the real cloud gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from agent.simulator.httpserver import Request, Response, Router
from agent.simulator.login_errors import error_response, unknown_tenant
from agent.simulator.login_token import TokenEndpoint, issuer_url
from agent.simulator.tokens import TokenIssuer
from agent.simulator.world import World


def _openid_configuration(world: World) -> Callable[[Request], Response]:
    def handler(request: Request) -> Response:
        segment = request.params["tenant"]
        tenant = world.find(segment)
        if tenant is None:
            return error_response(request, unknown_tenant(segment, "invalid_tenant"))
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
            "issuer": issuer_url(request.base_url, tenant),
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
            return error_response(request, unknown_tenant(segment, "invalid_tenant"))
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
    router.add("POST", "/{tenant}/oauth2/v2.0/token", TokenEndpoint(world, issuer))
