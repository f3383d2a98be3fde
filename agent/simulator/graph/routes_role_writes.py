"""Graph v1.0 write endpoints of directory role management (role_writes.py): role definitions,
role assignments and PIM eligibility schedule requests, through the shared pipeline (token,
permission, RU throttling, the write quota, $batch items one by one).

Permissions (facts file §4; each API's permission table): RoleManagement.ReadWrite.Directory
for definitions and assignments — Directory.ReadWrite.All does not grant role management;
PIM schedule requests also take RoleEligibilitySchedule.ReadWrite.Directory and answer a
tenant without Entra ID P2 / ID Governance with AadPremiumLicenseRequired, as PIM reads do.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.simulator.graph import role_writes
from agent.simulator.graph.pipeline import Context, GraphApi
from agent.simulator.graph.routes_tenant import RM, check_pim_licence
from agent.simulator.graph.writes import json_body
from agent.simulator.httpserver import Response

Handler = Callable[[Context], Response]
GRAPH = "https://graph.microsoft.com/v1.0/$metadata#"
WRITE_ROLES = frozenset({"RoleManagement.ReadWrite.Directory"})
WRITE_ELIGIBILITY = WRITE_ROLES | {"RoleEligibilitySchedule.ReadWrite.Directory"}


def _body(ctx: Context) -> dict[str, object]:
    try:
        raw = ctx.request.json()
    except ValueError:
        raw = None
    return json_body(raw)


def _created(what: str, row: dict[str, object]) -> Response:
    context = f"{GRAPH}roleManagement/directory/{what}/$entity"
    return Response.json({"@odata.context": context, **row}, 201)


def create_definition(ctx: Context) -> Response:
    return _created("roleDefinitions", role_writes.create_definition(ctx.directory, _body(ctx)))


def update_definition(ctx: Context) -> Response:
    role_writes.update_definition(ctx.directory, ctx.params["id"], _body(ctx))
    return Response.empty(204)


def delete_definition(ctx: Context) -> Response:
    role_writes.delete_definition(ctx.directory, ctx.params["id"])
    return Response.empty(204)


def create_assignment(ctx: Context) -> Response:
    return _created("roleAssignments", role_writes.create_assignment(ctx.directory, _body(ctx)))


def delete_assignment(ctx: Context) -> Response:
    role_writes.delete_assignment(ctx.directory, ctx.params["id"])
    return Response.empty(204)


def eligibility_request(ctx: Context) -> Response:
    check_pim_licence(ctx)
    row = role_writes.eligibility_request(ctx.directory, _body(ctx))
    return _created("roleEligibilityScheduleRequests", row)


def register_role_write_routes(api: GraphApi) -> None:
    api.add("POST", f"{RM}/roleDefinitions", create_definition, WRITE_ROLES)
    api.add("PATCH", f"{RM}/roleDefinitions/{{id}}", update_definition, WRITE_ROLES)
    api.add("DELETE", f"{RM}/roleDefinitions/{{id}}", delete_definition, WRITE_ROLES)
    api.add("POST", f"{RM}/roleAssignments", create_assignment, WRITE_ROLES)
    api.add("DELETE", f"{RM}/roleAssignments/{{id}}", delete_assignment, WRITE_ROLES)
    api.add("POST", f"{RM}/roleEligibilityScheduleRequests", eligibility_request, WRITE_ELIGIBILITY)
