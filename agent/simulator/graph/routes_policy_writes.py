"""Graph v1.0 write endpoints of the policy kinds, through the same pipeline as every other
route: token, permission, resource units, the conditional access 1 request/s rate (it matches
by path, so writes count), the write quota and $batch items one by one. The work and the
errors are in policy_writes.py.

Permissions are the documented least-privileged application permissions. Where the docs ask
for two at once (conditional access policies and named locations: Policy.Read.All and
Policy.ReadWrite.ConditionalAccess; a service principal's policy links: Policy.Read.All or
Policy.ReadWrite.ApplicationConfiguration, and Application.ReadWrite.All), the route checks the
first and the handler the second.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.simulator.graph import policy_writes as pw
from agent.simulator.graph.errors import GraphError
from agent.simulator.graph.pipeline import Context, GraphApi
from agent.simulator.graph.policy_store import SP_RELATIONS
from agent.simulator.graph.routes_policies import GRAPH, PATHS, SINGLETON_PATHS, render
from agent.simulator.graph.writes import json_body
from agent.simulator.httpserver import Response

Handler = Callable[[Context], Response]
_CA = frozenset({"Policy.ReadWrite.ConditionalAccess"})
_APP_CONFIG = frozenset({"Policy.ReadWrite.ApplicationConfiguration"})
WRITES: dict[str, frozenset[str]] = {
    "namedLocation": _CA,
    "conditionalAccessPolicy": _CA,
    "authenticationStrengthPolicy": _CA | {"Policy.ReadWrite.AuthenticationMethod"},
    "authenticationMethodsPolicy": frozenset({"Policy.ReadWrite.AuthenticationMethod"}),
    "authorizationPolicy": frozenset({"Policy.ReadWrite.Authorization"}),
    "securityDefaults": frozenset({"Policy.ReadWrite.SecurityDefaults"}),
    "crossTenantAccessDefault": frozenset({"Policy.ReadWrite.CrossTenantAccess"}),
    "crossTenantAccessPartner": frozenset({"Policy.ReadWrite.CrossTenantAccess"}),
    "adminConsentRequestPolicy": frozenset({"Policy.ReadWrite.ConsentRequest"}),
    "tokenLifetimePolicy": _APP_CONFIG,
    "homeRealmDiscoveryPolicy": _APP_CONFIG,
    "activityBasedTimeoutPolicy": _APP_CONFIG,
    "claimsMappingPolicy": _APP_CONFIG,
    "tokenIssuancePolicy": _APP_CONFIG,
    "permissionGrantPolicy": frozenset({"Policy.ReadWrite.PermissionGrant"}),
    "groupLifecyclePolicy": frozenset({"Directory.ReadWrite.All"}),
}
# The second permission some writes need (see the module docstring).
ALSO: dict[str, frozenset[str]] = {
    # Create and update pages: "Policy.Read.All and Policy.ReadWrite.ConditionalAccess", or
    # (higher privileged) Application.Read.All in place of Policy.Read.All.
    "conditionalAccessPolicy": frozenset({"Policy.Read.All", "Application.Read.All"}),
    # Named locations' create and update pages: "Policy.Read.All and Policy.ReadWrite.
    # ConditionalAccess", nothing in place of Policy.Read.All.
    "namedLocation": frozenset({"Policy.Read.All"}),
}
SP_LINK_NEEDS = frozenset({"Policy.Read.All", "Policy.ReadWrite.ApplicationConfiguration"})
SP_LINK_ALSO = frozenset({"Application.ReadWrite.All", "Directory.ReadWrite.All"})


def _denied() -> GraphError:
    return GraphError(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def _also(ctx: Context, needs: frozenset[str] | None) -> None:
    if needs and not set(ctx.claims.get("roles") or ()) & needs:
        raise _denied()


def _body(ctx: Context) -> dict[str, object]:
    try:
        raw = ctx.request.json()
    except ValueError:
        raw = None
    return json_body(raw)


def create(kind: str) -> Handler:
    def handler(ctx: Context) -> Response:
        _also(ctx, ALSO.get(kind))
        row = pw.create(ctx.directory, kind, _body(ctx))
        with ctx.directory.lock:
            item = render(ctx.directory.policies, kind, row, None)
        context = f"{GRAPH}{PATHS[kind].strip('/')}/$entity"
        return Response.json({"@odata.context": context, **item}, 201)

    return handler


def update(kind: str) -> Handler:
    def handler(ctx: Context) -> Response:
        _also(ctx, ALSO.get(kind))
        pw.update(ctx.directory, kind, ctx.params["id"], _body(ctx))
        return Response.empty(204)

    return handler


def delete(kind: str) -> Handler:
    def handler(ctx: Context) -> Response:
        pw.delete(ctx.directory, kind, ctx.params["id"])
        return Response.empty(204)

    return handler


def update_singleton(kind: str, *, replace: bool) -> Handler:
    def handler(ctx: Context) -> Response:
        pw.update_singleton(ctx.directory, kind, _body(ctx), replace=replace)
        return Response.empty(204)

    return handler


def update_method(ctx: Context) -> Response:
    pw.update_method_configuration(ctx.directory, ctx.params["id"], _body(ctx))
    return Response.empty(204)


def update_allowed_combinations(ctx: Context) -> Response:
    result = pw.update_allowed_combinations(ctx.directory, ctx.params["id"], _body(ctx))
    context = f"{GRAPH}$metadata#microsoft.graph.updateAllowedCombinationsResult"
    return Response.json({"@odata.context": context, **result})


def add_combination_configuration(ctx: Context) -> Response:
    item = pw.add_combination_configuration(ctx.directory, ctx.params["id"], _body(ctx))
    context = f"{GRAPH}policies/authenticationStrengthPolicies('{ctx.params['id']}')/combinationConfigurations/$entity"  # fmt: skip
    return Response.json({"@odata.context": context, **item}, 201)


def add_condition_set(relation: str) -> Handler:
    def handler(ctx: Context) -> Response:
        item = pw.add_condition_set(ctx.directory, ctx.params["id"], relation, _body(ctx))
        context = f"{GRAPH}policies/permissionGrantPolicies('{ctx.params['id']}')/{relation}/$entity"  # fmt: skip
        return Response.json({"@odata.context": context, **item}, 201)

    return handler


def remove_condition_set(relation: str) -> Handler:
    def handler(ctx: Context) -> Response:
        p = ctx.params
        pw.remove_condition_set(ctx.directory, p["id"], relation, p["set"])
        return Response.empty(204)

    return handler


def link_policy(relation: str) -> Handler:
    def handler(ctx: Context) -> Response:
        _also(ctx, SP_LINK_ALSO)
        try:
            raw = ctx.request.json()
        except ValueError:
            raw = None
        pw.link_policy(ctx.directory, ctx.params["id"], relation, raw)
        return Response.empty(204)

    return handler


def unlink_policy(relation: str) -> Handler:
    def handler(ctx: Context) -> Response:
        _also(ctx, SP_LINK_ALSO)
        p = ctx.params
        pw.unlink_policy(ctx.directory, p["id"], relation, p["policy"])
        return Response.empty(204)

    return handler


def register_policy_write_routes(api: GraphApi) -> None:
    for kind, path in PATHS.items():
        needs = WRITES[kind]
        api.add("POST", path, create(kind), needs)
        api.add("PATCH", f"{path}/{{id}}", update(kind), needs)
        api.add("DELETE", f"{path}/{{id}}", delete(kind), needs)
    for kind, path in SINGLETON_PATHS.items():
        replace = kind == "adminConsentRequestPolicy"  # documented as PUT
        api.add("PUT" if replace else "PATCH", path, update_singleton(kind, replace=replace), WRITES[kind])  # fmt: skip
    methods = f"{SINGLETON_PATHS['authenticationMethodsPolicy']}/authenticationMethodConfigurations"
    api.add("PATCH", f"{methods}/{{id}}", update_method, WRITES["authenticationMethodsPolicy"])
    strengths, needs = PATHS["authenticationStrengthPolicy"], WRITES["authenticationStrengthPolicy"]
    api.add("POST", f"{strengths}/{{id}}/updateAllowedCombinations", update_allowed_combinations, needs)  # fmt: skip
    api.add("POST", f"{strengths}/{{id}}/combinationConfigurations", add_combination_configuration, needs)  # fmt: skip
    grants = PATHS["permissionGrantPolicy"]
    for relation in ("includes", "excludes"):
        needs = WRITES["permissionGrantPolicy"]
        api.add("POST", f"{grants}/{{id}}/{relation}", add_condition_set(relation), needs)
        api.add("DELETE", f"{grants}/{{id}}/{relation}/{{set}}", remove_condition_set(relation), needs)  # fmt: skip
    for relation in SP_RELATIONS:
        base = f"/servicePrincipals/{{id}}/{relation}"
        api.add("POST", f"{base}/$ref", link_policy(relation), SP_LINK_NEEDS)
        api.add("DELETE", f"{base}/{{policy}}/$ref", unlink_policy(relation), SP_LINK_NEEDS)
