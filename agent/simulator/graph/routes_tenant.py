"""Graph v1.0 read endpoints for the tenant configuration (tenant_store.py): role
definitions, role assignments and PIM eligibility under /roleManagement/directory, group
setting templates and settings, the organization and its branding (text and image
streams), and domains — through the shared pipeline (auth, RU throttling, $batch)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jwt

from agent.simulator.graph.errors import GraphError, bad_request, not_found
from agent.simulator.graph.permissions import DIRECTORY_READ, READ_ROLES
from agent.simulator.graph.pipeline import Context, GraphApi
from agent.simulator.graph.query import parse_filter, parse_select, project
from agent.simulator.graph.routes import _options, _page
from agent.simulator.graph.routes_objects import _paged_ids
from agent.simulator.graph.tenant_store import BRANDING_STREAMS, DEFAULT_LOCALE, TenantStore
from agent.simulator.httpserver import Response

Handler = Callable[[Context], Response]
GRAPH = "https://graph.microsoft.com/v1.0/$metadata#"
RM = "/roleManagement/directory"

# Facts file §4 and each API's permission table (application permissions).
# PIM reads do not accept Directory.Read.All or RoleManagement.Read.All.
READ_ELIGIBILITY = frozenset(
    {
        "RoleEligibilitySchedule.Read.Directory",
        "RoleEligibilitySchedule.ReadWrite.Directory",
        "RoleManagement.Read.Directory",
        "RoleManagement.ReadWrite.Directory",
    }
)
READ_SETTINGS = DIRECTORY_READ | {"GroupSettings.Read.All", "GroupSettings.ReadWrite.All"}
READ_ORGANIZATION = DIRECTORY_READ | {"Organization.Read.All", "Organization.ReadWrite.All"}
READ_DOMAINS = DIRECTORY_READ | {"Domain.Read.All", "Domain.ReadWrite.All"}
READ_BRANDING = frozenset(
    {
        "OrganizationalBranding.Read.All",
        "OrganizationalBranding.ReadWrite.All",
        "Organization.Read.All",
        "Organization.ReadWrite.All",
    }
)
CONTENT_TYPES = {"customCSS": "text/css"}  # every other stream is an image


def _store(ctx: Context) -> TenantStore:
    return ctx.directory.tenant_config


def _list(
    ctx: Context, kind: str, rows: list[dict[str, Any]], context: str, *, paged: bool
) -> Response:
    """A collection: $select and $filter; paged by id when Graph pages it."""
    opts, _ = _options(ctx)
    select = parse_select(kind, opts.get("$select"))
    match = parse_filter(kind, opts.get("$filter"))
    chosen = {r["id"]: r for r in rows if match is None or match(r)}
    if paged:
        return _paged_ids(
            ctx, sorted(chosen), lambda i, s: project(kind, chosen[i], s), select, context
        )
    items = [project(kind, r, select) for r in chosen.values()]
    return _page(ctx, opts, items, None, context, None)


def _one(kind: str, row: dict[str, Any] | None, key: str, context: str, ctx: Context) -> Response:
    if row is None:
        raise not_found(key)
    item = project(kind, row, parse_select(kind, ctx.request.arg("$select")))
    return Response.json({"@odata.context": f"{GRAPH}{context}/$entity", **item})


# -- role management -------------------------------------------------------------------------


def _rows(ctx: Context, what: str) -> dict[str, dict[str, Any]]:
    d, store = ctx.directory, _store(ctx)
    with d.lock:
        if what == "roleDefinitions":
            return dict(store.role_definitions)
        if what == "roleAssignments":
            return store.role_assignments(d)
        return store.live_eligibility(d)


ROLE_KINDS = {
    "roleDefinitions": "unifiedRoleDefinition",
    "roleAssignments": "unifiedRoleAssignment",
    "roleEligibilitySchedules": "unifiedRoleEligibilitySchedule",
}


# Service plans that license PIM (Microsoft Entra ID P2; ID Governance).
PIM_PLANS = frozenset({"AAD_PREMIUM_P2", "Entra_Identity_Governance"})


def _check_pim(ctx: Context, what: str) -> None:
    """PIM answers a missing permission with its own body (a JSON string in the message),
    and refuses tenants without a P2 / ID Governance licence."""
    if what != "roleEligibilitySchedules":
        return
    token = ctx.request.headers.get("authorization", "")[7:].strip()
    roles = set(jwt.decode(token, options={"verify_signature": False}).get("roles") or ())
    if not roles & READ_ELIGIBILITY:
        inner = {
            "errorCode": "PermissionScopeNotGranted",
            "message": "Authorization failed due to missing permission scope "
            + ",".join(sorted(READ_ELIGIBILITY))
            + ".",
            "instanceAnnotations": [],
        }
        raise GraphError(403, "UnknownError", json.dumps(inner, separators=(",", ":")))
    check_pim_licence(ctx)


def check_pim_licence(ctx: Context) -> None:
    """PIM reads and schedule requests refuse a tenant without P2 / ID Governance."""
    with ctx.directory.lock:
        licensed = any(
            plan.get("servicePlanName") in PIM_PLANS
            for sku in ctx.directory.objects.skus
            if sku.get("capabilityStatus") == "Enabled"
            for plan in sku.get("servicePlans", ())
        )
    if not licensed:
        raise GraphError(
            400,
            "AadPremiumLicenseRequired",
            "The tenant needs to have Microsoft Entra ID P2 or Microsoft Entra ID Governance "
            "license.",
        )


def role_list(what: str) -> Handler:
    def handler(ctx: Context) -> Response:
        _check_pim(ctx, what)
        # Graph returns every role definition in one page; assignments and schedules page.
        paged = what != "roleDefinitions"
        rows = list(_rows(ctx, what).values())
        return _list(ctx, ROLE_KINDS[what], rows, f"roleManagement/directory/{what}", paged=paged)

    return handler


def role_get(what: str) -> Handler:
    def handler(ctx: Context) -> Response:
        _check_pim(ctx, what)
        key = ctx.params["id"]
        return _one(
            ROLE_KINDS[what],
            _rows(ctx, what).get(key),
            key,
            f"roleManagement/directory/{what}",
            ctx,
        )

    return handler


# -- group settings --------------------------------------------------------------------------


def settings_list(kind: str, attr: str, path: str) -> Handler:
    def handler(ctx: Context) -> Response:
        with ctx.directory.lock:
            rows = list(getattr(_store(ctx), attr).values())
        return _list(ctx, kind, rows, path, paged=False)

    return handler


def settings_get(kind: str, attr: str, path: str) -> Handler:
    def handler(ctx: Context) -> Response:
        key = ctx.params["id"]
        with ctx.directory.lock:
            row = getattr(_store(ctx), attr).get(key)
        return _one(kind, row, key, path, ctx)

    return handler


# -- organization and domains ---------------------------------------------------------------


def organization_list(ctx: Context) -> Response:
    with ctx.directory.lock:
        row = _store(ctx).organization_row()
    return _list(ctx, "organization", [row] if row else [], "organization", paged=False)


def _organization(ctx: Context) -> dict[str, Any]:
    with ctx.directory.lock:
        row = _store(ctx).organization_row()
    if not row or row["id"].lower() != ctx.params["id"].lower():
        raise not_found(ctx.params["id"])
    return row


def organization_get(ctx: Context) -> Response:
    return _one("organization", _organization(ctx), ctx.params["id"], "organization", ctx)


def domains_list(ctx: Context) -> Response:
    with ctx.directory.lock:
        rows = list(_store(ctx).domains.values())
    return _list(ctx, "domain", rows, "domains", paged=False)


def domains_get(ctx: Context) -> Response:
    key = ctx.params["id"]
    with ctx.directory.lock:
        row = next((r for i, r in _store(ctx).domains.items() if i.lower() == key.lower()), None)
    return _one("domain", row, key, "domains", ctx)


# -- branding ------------------------------------------------------------------------------


def _locale(ctx: Context, raw: str | None) -> str:
    return DEFAULT_LOCALE if raw in (None, "", "0", "default") else str(raw)


def _branding_missing() -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        "Resource 'branding' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def branding_get(ctx: Context) -> Response:
    """The default branding, or the localization the Accept-Language header names."""
    org = _organization(ctx)
    wanted = _locale(ctx, ctx.request.headers.get("accept-language"))
    with ctx.directory.lock:
        branding = _store(ctx).branding
        row = branding.get(wanted) or branding.get(DEFAULT_LOCALE)
        if row is None:
            raise _branding_missing()  # documented: 404 when no default branding exists
        item = project(
            "organizationalBranding",
            row,
            parse_select("organizationalBranding", ctx.request.arg("$select")),
        )
    context = f"{GRAPH}organization('{org['id']}')/branding/$entity"
    return Response.json({"@odata.context": context, **item})


def localizations_list(ctx: Context) -> Response:
    org = _organization(ctx)
    with ctx.directory.lock:
        rows = list(_store(ctx).branding.values())
    return _list(
        ctx,
        "organizationalBrandingLocalization",
        rows,
        f"organization('{org['id']}')/branding/localizations",
        paged=False,
    )


def localization_get(ctx: Context) -> Response:
    org = _organization(ctx)
    locale = _locale(ctx, ctx.params["locale"])
    with ctx.directory.lock:
        row = _store(ctx).branding.get(locale)
    return _one(
        "organizationalBrandingLocalization",
        row,
        ctx.params["locale"],
        f"organization('{org['id']}')/branding/localizations",
        ctx,
    )


def stream(localized: bool) -> Handler:
    def handler(ctx: Context) -> Response:
        _organization(ctx)
        name = ctx.params["stream"]
        if name not in BRANDING_STREAMS:
            raise bad_request(f"Resource not found for the segment '{name}'.", "BadRequest")
        locale = _locale(ctx, ctx.params.get("locale"))
        with ctx.directory.lock:
            store = _store(ctx)
            if locale not in store.branding:
                raise _branding_missing() if locale == DEFAULT_LOCALE else not_found(locale)
            data = store.images.get(locale, {}).get(name)
        if data is None:
            # Documented (organizationalBrandingLocalization-get, example 4): an image that
            # is not set answers 200 with an empty object.
            return Response.json({})
        return Response(200, data, {"Content-Type": CONTENT_TYPES.get(name, "image/png")})

    return handler


def register_tenant_routes(api: GraphApi) -> None:
    for what in ROLE_KINDS:
        reads = frozenset() if what == "roleEligibilitySchedules" else READ_ROLES
        api.add("GET", f"{RM}/{what}", role_list(what), reads)
        api.add("GET", f"{RM}/{what}/{{id}}", role_get(what), reads)
    for kind, attr, path in (
        ("groupSettingTemplate", "setting_templates", "groupSettingTemplates"),
        ("groupSetting", "group_settings", "groupSettings"),
    ):
        api.add("GET", f"/{path}", settings_list(kind, attr, path), READ_SETTINGS)
        api.add("GET", f"/{path}/{{id}}", settings_get(kind, attr, path), READ_SETTINGS)
    api.add("GET", "/organization", organization_list, READ_ORGANIZATION)
    api.add("GET", "/organization/{id}", organization_get, READ_ORGANIZATION)
    branding = "/organization/{id}/branding"
    api.add("GET", branding, branding_get, READ_BRANDING)
    api.add("GET", f"{branding}/localizations", localizations_list, READ_BRANDING)
    api.add("GET", f"{branding}/localizations/{{locale}}", localization_get, READ_BRANDING)
    api.add("GET", f"{branding}/localizations/{{locale}}/{{stream}}", stream(True), READ_BRANDING)
    api.add("GET", f"{branding}/{{stream}}", stream(False), READ_BRANDING)
    api.add("GET", "/domains", domains_list, READ_DOMAINS)
    api.add("GET", "/domains/{id}", domains_get, READ_DOMAINS)
