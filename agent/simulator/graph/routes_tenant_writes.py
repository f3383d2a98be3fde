"""Graph v1.0 write endpoints of the tenant configuration (tenant_writes.py) and the SAML
signing certificate action (sso_writes.py), through the shared pipeline: token, documented
application permission, resource units, the write quota and $batch items one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.simulator.graph import sso_writes
from agent.simulator.graph import tenant_writes as tw
from agent.simulator.graph.pipeline import Context, GraphApi
from agent.simulator.graph.routes_tenant import GRAPH, _locale, _organization
from agent.simulator.graph.writes import json_body
from agent.simulator.httpserver import Response

Handler = Callable[[Context], Response]
_DIR = "Directory.ReadWrite.All"
# Least privileged first (each API's permission table; facts file §4).
WRITE_SETTINGS = frozenset({"GroupSettings.ReadWrite.All", _DIR})
WRITE_ORGANIZATION = frozenset({"Organization.ReadWrite.All"})
WRITE_BRANDING = frozenset({"OrganizationalBranding.ReadWrite.All", "Organization.ReadWrite.All"})
WRITE_DOMAINS = frozenset({"Domain.ReadWrite.All", _DIR})
WRITE_APPS = frozenset({"Application.ReadWrite.All", _DIR})


def _body(ctx: Context) -> dict[str, Any]:
    try:
        raw = ctx.request.json()
    except ValueError:
        raw = None
    return json_body(raw)


def _created(context: str, row: dict[str, Any]) -> Response:
    return Response.json({"@odata.context": f"{GRAPH}{context}/$entity", **row}, 201)


def create_setting(ctx: Context) -> Response:
    return _created("groupSettings", tw.create_setting(ctx.directory, _body(ctx)))


def update_setting(ctx: Context) -> Response:
    tw.update_setting(ctx.directory, ctx.params["id"], _body(ctx))
    return Response.empty(204)


def delete_setting(ctx: Context) -> Response:
    tw.delete_setting(ctx.directory, ctx.params["id"])
    return Response.empty(204)


def update_organization(ctx: Context) -> Response:
    tw.update_organization(ctx.directory, ctx.params["id"], _body(ctx))
    return Response.empty(204)


def update_branding(localized: bool) -> Handler:
    def handler(ctx: Context) -> Response:
        _organization(ctx)
        locale = _locale(ctx, ctx.params.get("locale") if localized else None)
        tw.update_branding(ctx.directory, locale, _body(ctx))
        return Response.empty(204)

    return handler


def create_localization(ctx: Context) -> Response:
    org = _organization(ctx)
    row = tw.create_localization(ctx.directory, _body(ctx))
    return _created(f"organization('{org['id']}')/branding/localizations", row)


def delete_localization(ctx: Context) -> Response:
    _organization(ctx)
    tw.delete_localization(ctx.directory, _locale(ctx, ctx.params["locale"]))
    return Response.empty(204)


def put_stream(localized: bool) -> Handler:
    def handler(ctx: Context) -> Response:
        _organization(ctx)
        locale = _locale(ctx, ctx.params.get("locale") if localized else None)
        content_type = ctx.request.headers.get("content-type", "")
        tw.put_stream(ctx.directory, locale, ctx.params["stream"], content_type, ctx.request.body)
        return Response.empty(204)

    return handler


def create_domain(ctx: Context) -> Response:
    return _created("domains", tw.create_domain(ctx.directory, _body(ctx)))


def update_domain(ctx: Context) -> Response:
    tw.update_domain(ctx.directory, ctx.params["id"], _body(ctx))
    return Response.empty(204)


def delete_domain(ctx: Context) -> Response:
    tw.delete_domain(ctx.directory, ctx.params["id"])
    return Response.empty(204)


def verify_domain(ctx: Context) -> Response:
    row = tw.verify_domain(ctx.directory, ctx.params["id"])
    return Response.json({"@odata.context": f"{GRAPH}domains/$entity", **row})


def verification_records(ctx: Context) -> Response:
    rows = tw.verification_records(ctx.directory, ctx.params["id"])
    context = f"{GRAPH}domains('{ctx.params['id']}')/verificationDnsRecords"
    return Response.json({"@odata.context": context, "value": rows})


def add_signing_certificate(ctx: Context) -> Response:
    try:
        raw = ctx.request.json()
    except ValueError:
        raw = None
    return Response.json(
        sso_writes.add_token_signing_certificate(ctx.directory, ctx.params["id"], raw)
    )


def register_tenant_write_routes(api: GraphApi) -> None:
    api.add("POST", "/groupSettings", create_setting, WRITE_SETTINGS)
    api.add("PATCH", "/groupSettings/{id}", update_setting, WRITE_SETTINGS)
    api.add("DELETE", "/groupSettings/{id}", delete_setting, WRITE_SETTINGS)
    api.add("PATCH", "/organization/{id}", update_organization, WRITE_ORGANIZATION)
    branding = "/organization/{id}/branding"
    api.add("PATCH", branding, update_branding(False), WRITE_BRANDING)
    api.add("POST", f"{branding}/localizations", create_localization, WRITE_BRANDING)
    api.add("PATCH", f"{branding}/localizations/{{locale}}", update_branding(True), WRITE_BRANDING)
    api.add("DELETE", f"{branding}/localizations/{{locale}}", delete_localization, WRITE_BRANDING)
    api.add("PUT", f"{branding}/localizations/{{locale}}/{{stream}}", put_stream(True), WRITE_BRANDING)  # fmt: skip
    api.add("PUT", f"{branding}/{{stream}}", put_stream(False), WRITE_BRANDING)
    api.add("POST", "/domains", create_domain, WRITE_DOMAINS)
    api.add("PATCH", "/domains/{id}", update_domain, WRITE_DOMAINS)
    api.add("DELETE", "/domains/{id}", delete_domain, WRITE_DOMAINS)
    api.add("POST", "/domains/{id}/verify", verify_domain, WRITE_DOMAINS)
    api.add("GET", "/domains/{id}/verificationDnsRecords", verification_records,
            frozenset({"Domain.Read.All", "Domain.ReadWrite.All", "Directory.Read.All", _DIR}))  # fmt: skip
    api.add("POST", "/servicePrincipals/{id}/addTokenSigningCertificate", add_signing_certificate, WRITE_APPS)  # fmt: skip
