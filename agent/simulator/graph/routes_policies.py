"""Graph v1.0 read endpoints for the policy kinds (policy_store.py), through the same
pipeline as every other route (auth, permissions, throttling incl. the conditional access
rate limit, $batch): collections paged with opaque skip tokens, singletons, contained
collections (method configurations, permission grant condition sets) and the policies linked
to a service principal."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from typing import Any

from agent.schema.csdl import load_schema
from agent.simulator.graph.errors import bad_request, not_found
from agent.simulator.graph.pipeline import Context, GraphApi
from agent.simulator.graph.policy_store import SP_RELATIONS, PolicyStore
from agent.simulator.graph.query import parse_top
from agent.simulator.graph.routes import _options, _page
from agent.simulator.httpserver import Response

Handler = Callable[[Context], Response]
GRAPH = "https://graph.microsoft.com/v1.0/$metadata#"

# Application permissions that read each policy (Graph permission reference; any one is
# enough). Directory.Read.All does not read policies, except the few listed with it.
_POLICY = "Policy.Read.All"
_CA = frozenset({_POLICY, "Policy.Read.ConditionalAccess", "Policy.ReadWrite.ConditionalAccess"})
_APP_CONFIG = frozenset(
    {_POLICY, "Policy.Read.ApplicationConfiguration", "Policy.ReadWrite.ApplicationConfiguration"}
)
_DIRECTORY = frozenset({"Directory.Read.All", "Directory.ReadWrite.All"})
READS: dict[str, frozenset[str]] = {
    "namedLocation": _CA,
    "conditionalAccessPolicy": _CA,
    "authenticationStrengthPolicy": frozenset(
        {_POLICY, "Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod"}
    ),
    "authenticationMethodsPolicy": frozenset(
        {_POLICY, "Policy.Read.AuthenticationMethod", "Policy.ReadWrite.AuthenticationMethod"}
    ),
    "authorizationPolicy": frozenset({_POLICY, "Policy.ReadWrite.Authorization"}),
    "securityDefaults": frozenset({_POLICY, "Policy.ReadWrite.SecurityDefaults"}),
    "crossTenantAccessDefault": frozenset({_POLICY, "Policy.ReadWrite.CrossTenantAccess"}),
    "crossTenantAccessPartner": frozenset({_POLICY, "Policy.ReadWrite.CrossTenantAccess"}),
    "adminConsentRequestPolicy": _DIRECTORY | {_POLICY, "Policy.ReadWrite.ConsentRequest"},
    "tokenLifetimePolicy": _APP_CONFIG,
    "homeRealmDiscoveryPolicy": _APP_CONFIG,
    "activityBasedTimeoutPolicy": _APP_CONFIG,
    "claimsMappingPolicy": _APP_CONFIG,
    "tokenIssuancePolicy": _APP_CONFIG,
    "permissionGrantPolicy": frozenset(
        {"Policy.Read.PermissionGrant", "Policy.ReadWrite.PermissionGrant"}
    ),
    "groupLifecyclePolicy": _DIRECTORY,
}
# The service principal's policy links: Policy.Read.All or the app-configuration permissions.
READ_SP_POLICIES = _APP_CONFIG
PATHS = {
    "namedLocation": "/identity/conditionalAccess/namedLocations",
    "conditionalAccessPolicy": "/identity/conditionalAccess/policies",
    "authenticationStrengthPolicy": "/policies/authenticationStrengthPolicies",
    "crossTenantAccessPartner": "/policies/crossTenantAccessPolicy/partners",
    "tokenLifetimePolicy": "/policies/tokenLifetimePolicies",
    "homeRealmDiscoveryPolicy": "/policies/homeRealmDiscoveryPolicies",
    "activityBasedTimeoutPolicy": "/policies/activityBasedTimeoutPolicies",
    "claimsMappingPolicy": "/policies/claimsMappingPolicies",
    "tokenIssuancePolicy": "/policies/tokenIssuancePolicies",
    "permissionGrantPolicy": "/policies/permissionGrantPolicies",
    "groupLifecyclePolicy": "/groupLifecyclePolicies",
}
SINGLETON_PATHS = {
    "authenticationMethodsPolicy": "/policies/authenticationMethodsPolicy",
    "authorizationPolicy": "/policies/authorizationPolicy",
    "securityDefaults": "/policies/identitySecurityDefaultsEnforcementPolicy",
    "crossTenantAccessDefault": "/policies/crossTenantAccessPolicy/default",
    "adminConsentRequestPolicy": "/policies/adminConsentRequestPolicy",
}
ENTITY = {
    "securityDefaults": "identitySecurityDefaultsEnforcementPolicy",
    "crossTenantAccessDefault": "crossTenantAccessPolicyConfigurationDefault",
    "crossTenantAccessPartner": "crossTenantAccessPolicyConfigurationPartner",
}


def entity_type(kind: str) -> str:
    return ENTITY.get(kind, kind)


@cache
def _selectable(kind: str) -> frozenset[str]:
    """Properties of the kind's type and of every type derived from it."""
    schema = load_schema()
    names = set(schema.properties(entity_type(kind)))
    for derived in schema.derived_types(entity_type(kind)):
        names |= set(schema.properties(derived))
    return frozenset(names)


def _select(kind: str, raw: str | None) -> list[str] | None:
    if not raw:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for name in names:
        if name not in _selectable(kind):
            raise bad_request(
                f"Could not find a property named '{name}' on type "
                f"'microsoft.graph.{entity_type(kind)}'."
            )
    return names


def render(
    store: PolicyStore, kind: str, row: dict[str, Any], select: list[str] | None
) -> dict[str, Any]:
    """A stored row as Graph answers it: a conditional access policy shows the current state of
    the authentication strength it requires, inline."""
    item = copy.deepcopy(row)
    grant = item.get("grantControls") if kind == "conditionalAccessPolicy" else None
    if grant and grant.get("authenticationStrength"):
        strength = store.get("authenticationStrengthPolicy", grant["authenticationStrength"]["id"])
        inline = {k: v for k, v in (strength or {}).items() if k != "combinationConfigurations"}
        grant["authenticationStrength"] = inline or None
    if select is None:
        return item
    keep = {"id", "@odata.type", "tenantId", *select}
    return {k: v for k, v in item.items() if k in keep}


def list_policies(kind: str) -> Handler:
    def handler(ctx: Context) -> Response:
        opts, cursor = _options(ctx)
        select = _select(kind, opts.get("$select"))
        top = parse_top(opts.get("$top"))
        d = ctx.directory
        start = int(cursor or 0)
        with d.lock:
            rows = d.policies.rows(kind)
            items = [render(d.policies, kind, r, select) for r in rows[start : start + top]]
            more = start + top < len(rows)
        return _page(ctx, opts, items, start + top if more else None, PATHS[kind].strip("/"), None)

    return handler


def get_policy(kind: str) -> Handler:
    def handler(ctx: Context) -> Response:
        d = ctx.directory
        select = _select(kind, ctx.request.arg("$select"))
        with d.lock:
            row = d.policies.get(kind, ctx.params["id"])
            if row is None:
                raise not_found(ctx.params["id"])
            item = render(d.policies, kind, row, select)
        context = f"{GRAPH}{PATHS[kind].strip('/')}/$entity"
        return Response.json({"@odata.context": context, **item})

    return handler


def get_singleton(kind: str) -> Handler:
    def handler(ctx: Context) -> Response:
        d = ctx.directory
        select = _select(kind, ctx.request.arg("$select"))
        with d.lock:
            row = d.policies.singletons.get(kind)
            if row is None:  # a tenant state saved before policies existed
                raise not_found(kind)
            item = render(d.policies, kind, row, select)
        context = f"{GRAPH}{SINGLETON_PATHS[kind].strip('/')}/$entity"
        return Response.json({"@odata.context": context, **item})

    return handler


def method_configurations(ctx: Context) -> Response:
    d = ctx.directory
    with d.lock:
        items = copy.deepcopy(
            d.policies.singleton("authenticationMethodsPolicy")[
                "authenticationMethodConfigurations"
            ]
        )
    wanted = ctx.params.get("id")
    if wanted is not None:
        found = next((i for i in items if i["id"].lower() == wanted.lower()), None)
        if found is None:
            raise not_found(wanted)
        return Response.json(
            {
                "@odata.context": f"{GRAPH}policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity",
                **found,
            }
        )
    context = f"{GRAPH}policies/authenticationMethodsPolicy/authenticationMethodConfigurations"
    return Response.json({"@odata.context": context, "value": items})


def grant_conditions(relation: str) -> Handler:
    def handler(ctx: Context) -> Response:
        d = ctx.directory
        with d.lock:
            row = d.policies.get("permissionGrantPolicy", ctx.params["id"])
            if row is None:
                raise not_found(ctx.params["id"])
            items = copy.deepcopy(row.get(relation, []))
        context = f"{GRAPH}policies/permissionGrantPolicies('{ctx.params['id']}')/{relation}"
        return Response.json({"@odata.context": context, "value": items})

    return handler


def combination_configurations(ctx: Context) -> Response:
    d = ctx.directory
    with d.lock:
        row = d.policies.get("authenticationStrengthPolicy", ctx.params["id"])
        if row is None:
            raise not_found(ctx.params["id"])
        items = copy.deepcopy(row.get("combinationConfigurations") or [])
    context = f"{GRAPH}policies/authenticationStrengthPolicies('{ctx.params['id']}')/combinationConfigurations"  # fmt: skip
    return Response.json({"@odata.context": context, "value": items})


def sp_policies(relation: str) -> Handler:
    """The policies a service principal links to, as the policy objects themselves; links to
    a policy deleted since are not shown."""
    kind = SP_RELATIONS[relation]

    def handler(ctx: Context) -> Response:
        d = ctx.directory
        opts, _ = _options(ctx)
        select = _select(kind, opts.get("$select"))
        with d.lock:
            if d.row("servicePrincipal", ctx.params["id"]) is None:
                raise not_found(ctx.params["id"])
            ids = d.objects.targets(f"servicePrincipal.{relation}", ctx.params["id"])
            rows = [r for r in (d.policies.get(kind, i) for i in ids) if r is not None]
            items = [
                {"@odata.type": f"#microsoft.graph.{kind}", **render(d.policies, kind, r, select)}
                for r in rows
            ]
        return Response.json({"@odata.context": f"{GRAPH}{relation}", "value": items})

    return handler


def register_policy_routes(api: GraphApi) -> None:
    for kind, path in PATHS.items():
        api.add("GET", path, list_policies(kind), READS[kind])
        api.add("GET", f"{path}/{{id}}", get_policy(kind), READS[kind])
    for kind, path in SINGLETON_PATHS.items():
        api.add("GET", path, get_singleton(kind), READS[kind])
    methods = f"{SINGLETON_PATHS['authenticationMethodsPolicy']}/authenticationMethodConfigurations"
    reads = READS["authenticationMethodsPolicy"]
    api.add("GET", methods, method_configurations, reads)
    api.add("GET", f"{methods}/{{id}}", method_configurations, reads)
    for relation in ("includes", "excludes"):
        api.add(
            "GET",
            f"{PATHS['permissionGrantPolicy']}/{{id}}/{relation}",
            grant_conditions(relation),
            READS["permissionGrantPolicy"],
        )
    api.add(
        "GET",
        f"{PATHS['authenticationStrengthPolicy']}/{{id}}/combinationConfigurations",
        combination_configurations,
        READS["authenticationStrengthPolicy"],
    )
    for relation in SP_RELATIONS:
        api.add(
            "GET", f"/servicePrincipals/{{id}}/{relation}", sp_policies(relation), READ_SP_POLICIES
        )
