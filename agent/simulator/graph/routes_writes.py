"""Graph v1.0 write endpoints for users, groups, memberships, owners, managers, applications,
service principals, app role assignments, delegated grants, administrative units and devices.

Each route runs through the same pipeline as reads (token, permission, RU throttling, the
write quota, $batch items one by one); the work and the errors are in writes.py and
writes_links.py.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.simulator.graph import writes, writes_links
from agent.simulator.graph.errors import GraphError
from agent.simulator.graph.pipeline import Context, GraphApi
from agent.simulator.graph.routes_objects import PATHS
from agent.simulator.graph.write_rules import (
    WRITE_APPS,
    WRITE_ASSIGNMENTS,
    WRITE_AUS,
    WRITE_DEVICES,
    WRITE_MEMBERS,
    WRITE_USERS,
    WRITES,
)
from agent.simulator.httpserver import Response

Handler = Callable[[Context], Response]
ROLE_GROUPS = "RoleManagement.ReadWrite.Directory"
KIND_PATHS = {"user": "/users", "group": "/groups", **PATHS}
WRITABLE = ("user", "group", "application", "servicePrincipal", "administrativeUnit",
            "oauth2PermissionGrant", "device")  # fmt: skip
# (kind, relationship, permissions) of the $ref collections.
LINKS = (
    ("group", "members", WRITE_MEMBERS),
    ("group", "owners", WRITE_MEMBERS),
    ("application", "owners", WRITE_APPS),
    ("servicePrincipal", "owners", WRITE_APPS),
    ("administrativeUnit", "members", WRITE_AUS),
    ("device", "registeredOwners", WRITE_DEVICES),
    ("device", "registeredUsers", WRITE_DEVICES),
)


def _body(ctx: Context) -> object:
    try:
        return ctx.request.json()
    except ValueError:
        return None


def _role_assignable(ctx: Context, assignable: bool) -> None:
    """Role-assignable groups: creating one and changing its members or owners also needs
    RoleManagement.ReadWrite.Directory (group-post-groups, group-post-members)."""
    if assignable and ROLE_GROUPS not in (ctx.claims.get("roles") or []):
        raise GraphError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )


def create(kind: str) -> Handler:
    def handler(ctx: Context) -> Response:
        body = writes.json_body(_body(ctx))
        _role_assignable(ctx, kind == "group" and body.get("isAssignableToRole") is True)
        row = writes.create(ctx.directory, kind, body)
        return Response.json(writes.entity(kind, KIND_PATHS[kind], row), 201)

    return handler


def update(kind: str) -> Handler:
    def handler(ctx: Context) -> Response:
        writes.update(ctx.directory, kind, ctx.params["id"], writes.json_body(_body(ctx)))
        return Response.empty(204)

    return handler


def delete(kind: str) -> Handler:
    def handler(ctx: Context) -> Response:
        writes.delete(ctx.directory, kind, ctx.params["id"])
        return Response.empty(204)

    return handler


def _group_assignable(ctx: Context, kind: str) -> bool:
    if kind != "group":
        return False
    with ctx.directory.lock:
        row = ctx.directory.row("group", ctx.params["id"])
        return bool(row and row.get("isAssignableToRole"))


def add_link(kind: str, relation: str) -> Handler:
    def handler(ctx: Context) -> Response:
        _role_assignable(ctx, _group_assignable(ctx, kind))
        writes_links.add_link(ctx.directory, kind, relation, ctx.params["id"], _body(ctx))
        return Response.empty(204)

    return handler


def remove_link(kind: str, relation: str) -> Handler:
    def handler(ctx: Context) -> Response:
        _role_assignable(ctx, _group_assignable(ctx, kind))
        d, p = ctx.directory, ctx.params
        writes_links.remove_link(d, kind, relation, p["id"], p["target"])
        return Response.empty(204)

    return handler


def put_manager(ctx: Context) -> Response:
    writes_links.set_manager(ctx.directory, ctx.params["id"], _body(ctx))
    return Response.empty(204)


def delete_manager(ctx: Context) -> Response:
    writes_links.remove_manager(ctx.directory, ctx.params["id"])
    return Response.empty(204)


def add_assignment(resource_side: bool) -> Handler:
    def handler(ctx: Context) -> Response:
        row = writes_links.add_assignment(
            ctx.directory, resource_side, ctx.params["id"], _body(ctx)
        )
        context = "https://graph.microsoft.com/v1.0/$metadata#appRoleAssignments/$entity"
        return Response.json({"@odata.context": context, **row}, 201)

    return handler


def remove_assignment(resource_side: bool) -> Handler:
    def handler(ctx: Context) -> Response:
        d, p = ctx.directory, ctx.params
        writes_links.remove_assignment(d, resource_side, p["id"], p["assignment"])
        return Response.empty(204)

    return handler


def register_write_routes(api: GraphApi) -> None:
    for kind in WRITABLE:
        path, needs = KIND_PATHS[kind], WRITES[kind]
        api.add("POST", path, create(kind), needs)
        api.add("PATCH", f"{path}/{{id}}", update(kind), needs)
        api.add("DELETE", f"{path}/{{id}}", delete(kind), needs)
    for kind, relation, needs in LINKS:
        base = f"{KIND_PATHS[kind]}/{{id}}/{relation}"
        api.add("POST", f"{base}/$ref", add_link(kind, relation), needs)
        api.add("DELETE", f"{base}/{{target}}/$ref", remove_link(kind, relation), needs)
    api.add("PUT", "/users/{id}/manager/$ref", put_manager, WRITE_USERS)
    api.add("DELETE", "/users/{id}/manager/$ref", delete_manager, WRITE_USERS)
    sp = "/servicePrincipals/{id}"
    for base, resource_side in (
        (f"{sp}/appRoleAssignedTo", True),
        (f"{sp}/appRoleAssignments", False),
        ("/users/{id}/appRoleAssignments", False),
        ("/groups/{id}/appRoleAssignments", False),
    ):
        api.add("POST", base, add_assignment(resource_side), WRITE_ASSIGNMENTS)
        api.add(
            "DELETE", f"{base}/{{assignment}}", remove_assignment(resource_side), WRITE_ASSIGNMENTS
        )
