"""Graph v1.0 read endpoints for users, groups, their relationships and deleted items."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import Any

from agent.simulator.graph.delta import DeltaRequest
from agent.simulator.graph.directory import Directory, DirectoryError
from agent.simulator.graph.errors import GraphError, bad_request, not_found
from agent.simulator.graph.permissions import DELETED_READ, DELETED_WRITE
from agent.simulator.graph.pipeline import (
    READ_GROUPS,
    READ_USERS,
    WRITE_GROUPS,
    WRITE_USERS,
    Context,
    GraphApi,
)
from agent.simulator.graph.props import ODATA_TYPE, is_property
from agent.simulator.graph.props_objects import RESTORABLE
from agent.simulator.graph.query import (
    parse_expand,
    parse_filter,
    parse_select,
    parse_top,
    project,
    seal,
    unseal,
)
from agent.simulator.graph.writes import check_restore
from agent.simulator.httpserver import Response

EXPAND_PAGE = 100  # facts file §1: $expand drops the page size to 100 …
EXPAND_ITEMS = 20  # … and expanded collections stop at 20 with no nextLink
CAST = {"microsoft.graph.user": "user", "microsoft.graph.group": "group"}
DELETED_CAST = {**CAST, **{f"microsoft.graph.{k}": k for k in RESTORABLE}}
OPTIONS = ("$select", "$top", "$filter", "$expand", "$count")


def _options(ctx: Context) -> tuple[dict[str, str], Any]:
    """Query options of this request, or those sealed in its $skiptoken, and the cursor."""
    token = next((v[-1] for k, v in ctx.request.query.items() if k.lower() == "$skiptoken"), None)
    if token is None:
        opts = {k: v[-1] for k, v in ctx.request.query.items() if k in OPTIONS}
        return opts, None
    state = unseal(ctx.directory.token_key, token)
    if state is None or state.get("path") != ctx.path:
        raise bad_request("Invalid $skiptoken.", "Request_BadRequest")
    return dict(state["opts"]), state["cursor"]


def _check_count(ctx: Context, opts: dict[str, str]) -> bool:
    if opts.get("$count", "").lower() != "true":
        return False
    if ctx.request.headers.get("consistencylevel", "").lower() != "eventual":
        raise bad_request("$count is not currently supported.")  # facts file §2: needs the header
    return True


def _page(
    ctx: Context,
    opts: dict[str, str],
    items: list[dict[str, Any]],
    cursor: Any,
    context: str,
    count: int | None,
) -> Response:
    body: dict[str, Any] = {
        "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{context}"
    }
    if count is not None:
        body["@odata.count"] = count
    body["value"] = items
    if cursor is not None:
        token = seal(ctx.directory.token_key, {"path": ctx.path, "opts": opts, "cursor": cursor})
        body["@odata.nextLink"] = f"{ctx.request.base_url}/v1.0{ctx.path}?$skiptoken={token}"
    return Response.json(body)


def _typed(
    d: Directory, oid: str, select: list[str] | None, *, annotate: bool = True
) -> dict[str, Any] | None:
    kind = d.kind_of(oid)
    row = d.row(kind, oid) if kind else None
    if kind is None or row is None:
        return None
    names = [n for n in select if is_property(kind, n)] if select is not None else None
    item = project(kind, row, names)
    return {"@odata.type": ODATA_TYPE[kind], **item} if annotate else item


def _select_any(raw: str | None) -> list[str] | None:
    """$select on a directoryObject collection: a property of users or of groups."""
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for name in names:
        if not (is_property("user", name) or is_property("group", name)):
            raise bad_request(
                f"Could not find a property named '{name}' on type 'Microsoft.DirectoryServices.DirectoryObject'."
            )
    return names


# -- collections of users or groups -----------------------------------------------------


def list_objects(kind: str) -> Callable[[Context], Response]:
    def handler(ctx: Context) -> Response:
        opts, cursor = _options(ctx)
        select = parse_select(kind, opts.get("$select"))
        expand = parse_expand(kind, opts.get("$expand"))
        top = parse_top(opts.get("$top"))
        if expand and kind == "group":
            top = min(top, EXPAND_PAGE)
        match = parse_filter(kind, opts.get("$filter"))
        want_count = _check_count(ctx, opts)
        d = ctx.directory
        picked: list[tuple[dict[str, Any], Any]] = []  # (a copy of the row, its expansion)
        next_cursor = None
        with d.lock:  # held to copy the page's rows; their items are built after it
            rows = (r for r in d.scan(kind, int(cursor or 0)) if match is None or match(r[1]))
            for pos, row in rows:
                if len(picked) == top:
                    next_cursor = pos
                    break
                value = (
                    _expanded(d, kind, row["id"], expand.name, expand.select) if expand else None
                )
                picked.append((dict(row), value))
            count = None
            if want_count and cursor is None:
                count = sum(1 for _, r in d.scan(kind, 0) if match is None or match(r))
        items = page_items(kind, picked, select, expand.name if expand else None)
        return _page(ctx, opts, items, next_cursor, f"{kind}s", count)

    return handler


def page_items(
    kind: str, picked: list[tuple[dict[str, Any], Any]], select: Any, expanded: str | None
) -> list[dict[str, Any]]:
    """A list page's items from the rows copied under the lock (built after it is released),
    each with its expanded relationship when there is one."""
    items: list[dict[str, Any]] = []
    for row, value in picked:
        item = project(kind, row, select)
        if expanded:
            item[expanded] = value
        items.append(item)
    return items


def _expanded(d: Directory, kind: str, oid: str, name: str, select: list[str]) -> Any:
    if kind == "user":  # manager
        manager = d.manager.get(oid)
        return _typed(d, manager, select) if manager else None
    ids = d.sorted_members(oid) if name == "members" else sorted(d.owners_of.get(oid, ()))
    return [t for t in (_typed(d, m, select) for m in ids[:EXPAND_ITEMS]) if t]


def get_object(kind: str) -> Callable[[Context], Response]:
    def handler(ctx: Context) -> Response:
        d = ctx.directory
        key = ctx.params["id"]
        select = parse_select(kind, ctx.request.arg("$select"))
        expand = parse_expand(kind, ctx.request.arg("$expand"))
        with d.lock:
            row = d.row(kind, key)
            if row is None and kind == "user":
                row = next(
                    (
                        r
                        for _, r in d.scan("user", 0)
                        if r.get("userPrincipalName", "").lower() == key.lower()
                    ),
                    None,
                )
            if row is None:
                raise not_found(key)
            item = project(kind, row, select)
            if expand:
                value = _expanded(d, kind, row["id"], expand.name, expand.select)
                if value is not None:
                    item[expand.name] = value
        return Response.json(
            {
                "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{kind}s/$entity",
                **item,
            }
        )

    return handler


def count_objects(kind: str) -> Callable[[Context], Response]:
    def handler(ctx: Context) -> Response:
        if ctx.request.headers.get("consistencylevel", "").lower() != "eventual":
            raise bad_request("Count is not currently supported.")  # facts file §2
        match = parse_filter(kind, ctx.request.arg("$filter"))
        d = ctx.directory
        with d.lock:
            n = sum(1 for _, r in d.scan(kind, 0) if match is None or match(r))
        return Response(200, str(n).encode(), {"Content-Type": "text/plain"})

    return handler


def get_manager(ctx: Context) -> Response:
    d = ctx.directory
    with d.lock:
        if d.row("user", ctx.params["id"]) is None:
            raise not_found(ctx.params["id"])
        manager = d.manager.get(ctx.params["id"])
        item = _typed(d, manager, _select_any(ctx.request.arg("$select"))) if manager else None
    if item is None:
        raise not_found("manager")
    return Response.json(
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects/$entity",
            **item,
        }
    )


# -- relationships of a group -------------------------------------------------------------


def relationship(name: str, cast: str | None = None) -> Callable[[Context], Response]:
    """members, owners, transitiveMembers (optionally cast to users or groups)."""

    def handler(ctx: Context) -> Response:
        d = ctx.directory
        gid = ctx.params["id"]
        opts, cursor = _options(ctx)
        top = parse_top(opts.get("$top"))
        select = _select_any(opts.get("$select"))
        want_count = _check_count(ctx, opts)
        with d.lock:
            if d.row("group", gid) is None:
                raise not_found(gid)
            # members: the group's sorted ids, kept between pages (not sorted per page)
            ids = d.sorted_members(gid) if name == "members" else sorted(_related(d, gid, name))
            if cast:
                ids = [i for i in ids if d.kind_of(i) == CAST[cast]]
            start = bisect.bisect_right(ids, cursor) if cursor else 0
            chunk = ids[start : start + top]
            items = [t for t in (_typed(d, i, select, annotate=cast is None) for i in chunk) if t]
            more = start + top < len(ids)
        context = f"{cast.split('.')[-1]}s" if cast else "directoryObjects"
        count = len(ids) if want_count and cursor is None else None
        return _page(ctx, opts, items, chunk[-1] if more else None, context, count)

    return handler


def _related(d: Directory, gid: str, name: str) -> Iterable[str]:
    if name == "owners":
        return d.owners_of.get(gid, set())
    if name == "members":
        return d.members_of.get(gid, set())
    seen: set[str] = set()
    todo = [gid]
    while todo:
        for member in d.members_of.get(todo.pop(), ()):
            if member not in seen and member != gid:
                seen.add(member)
                if member in d.members_of:
                    todo.append(member)
    return seen


# -- delta --------------------------------------------------------------------------------


def delta(kind: str, path: str | None = None) -> Callable[[Context], Response]:
    """Delta exactly as users/groups (facts file §2): full round, deltaLink, @removed; ``path``
    is the delta function's own path when it is not the kind's default."""

    def handler(ctx: Context) -> Response:
        req = DeltaRequest(
            ctx.directory,
            kind,
            ctx.request.query,
            ctx.request.headers,
            ctx.request.base_url,
            ctx.faults.expire_delta_tokens,
            path,
        )
        return Response.json(req.page())

    return handler


# -- deleted items (facts file §3) --------------------------------------------------------


def deleted_list(ctx: Context) -> Response:
    cast = ctx.params["cast"]
    kind = DELETED_CAST.get(cast)
    if kind is None:
        if cast in ctx.directory.deleted:  # /directory/deletedItems/{id}
            ctx.params["id"] = cast
            return deleted_get(ctx)
        raise not_found(cast)
    opts, cursor = _options(ctx)
    top = parse_top(opts.get("$top"))
    select = parse_select(kind, opts.get("$select"))
    want_count = _check_count(ctx, opts)
    d = ctx.directory
    entries = sorted(d.deleted_items(kind), key=lambda e: e[0])
    ids = [oid for oid, _ in entries]
    start = bisect.bisect_right(ids, cursor) if cursor else 0
    chunk = entries[start : start + top]
    items = [_deleted_item(kind, gone.row, select) for _, gone in chunk]
    more = start + top < len(entries)
    count = len(entries) if want_count and cursor is None else None
    return _page(
        ctx, opts, items, chunk[-1][0] if more else None, f"directory/deletedItems/{cast}", count
    )


def _deleted_item(kind: str, row: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    names = [*(select or []), "deletedDateTime"] if select is not None else None
    item = project(kind, row, names)
    item["deletedDateTime"] = row.get("deletedDateTime")
    return item


def cast_required(ctx: Context) -> Response:
    # Facts file §3: listing deleted items needs the type cast segment.
    raise bad_request(
        "The type cast segment is required: /directory/deletedItems/microsoft.graph.{user|group|application|servicePrincipal|administrativeUnit}.",
        "Request_BadRequest",
    )


def deleted_get(ctx: Context) -> Response:
    gone = ctx.directory.deleted.get(ctx.params["id"])
    if gone is None:
        raise not_found(ctx.params["id"])
    item = _deleted_item(gone.kind, gone.row, parse_select(gone.kind, ctx.request.arg("$select")))
    return Response.json({"@odata.type": ODATA_TYPE[gone.kind], **item})


def deleted_restore(ctx: Context) -> Response:
    d = ctx.directory
    oid = ctx.params["id"]
    with d.lock:
        gone = d.deleted.get(oid)
        if gone is None:
            raise not_found(oid)
        try:
            params = ctx.request.json()
        except ValueError:
            params = None
        check_restore(d, ctx.claims, oid, params)  # role, UPN conflict, new UPN (writes.py)
        row = d.restore_deleted(oid)
        kind = gone.kind
    body = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects/$entity",
        "@odata.type": ODATA_TYPE[kind],
        **project(kind, row, None),
    }
    return Response.json(body)


def deleted_purge(ctx: Context) -> Response:
    try:
        ctx.directory.purge_deleted(ctx.params["id"])
    except DirectoryError:
        raise not_found(ctx.params["id"]) from None
    return Response.empty(204)


def _deleted_needs(write: bool) -> Callable[[Context], frozenset[str]]:
    def needs(ctx: Context) -> frozenset[str]:
        kind = DELETED_CAST.get(ctx.params.get("cast", ""))
        if kind is None:
            gone = ctx.directory.deleted.get(ctx.params.get("id", ""))
            kind = gone.kind if gone else "user"
        if kind in DELETED_READ:  # applications, service principals, AUs
            return DELETED_WRITE[kind] if write else DELETED_READ[kind]
        if write:
            return WRITE_USERS if kind == "user" else WRITE_GROUPS
        return READ_USERS if kind == "user" else READ_GROUPS

    return needs


def register_routes(api: GraphApi) -> None:
    from agent.simulator.graph.batch import batch

    for kind, reads in (("user", READ_USERS), ("group", READ_GROUPS)):
        api.add("GET", f"/{kind}s", list_objects(kind), reads)
        api.add("GET", f"/{kind}s/delta", delta(kind), reads)
        api.add("GET", f"/{kind}s/$count", count_objects(kind), reads)
        api.add("GET", f"/{kind}s/{{id}}", get_object(kind), reads)
    api.add("GET", "/users/{id}/manager", get_manager, READ_USERS)
    for name in ("members", "owners", "transitiveMembers"):
        api.add("GET", f"/groups/{{id}}/{name}", relationship(name), READ_GROUPS)
        for cast in CAST:
            api.add("GET", f"/groups/{{id}}/{name}/{cast}", relationship(name, cast), READ_GROUPS)
    api.add("GET", "/directory/deletedItems/{cast}", deleted_list, _deleted_needs(False))
    api.add("GET", "/directory/deletedItems", cast_required, READ_USERS | READ_GROUPS)
    api.add("POST", "/directory/deletedItems/{id}/restore", deleted_restore, _deleted_needs(True))
    api.add("DELETE", "/directory/deletedItems/{id}", deleted_purge, _deleted_needs(True))
    api.add("POST", "/$batch", batch, frozenset())  # each item is checked on its own
    from agent.simulator.graph.routes_objects import register_object_routes

    register_object_routes(api)  # applications, service principals, devices, AUs, roles, …
    from agent.simulator.graph.routes_tenant import register_tenant_routes

    register_tenant_routes(api)  # role management, group settings, organization, domains
    from agent.simulator.graph.routes_audit import register_audit_routes

    register_audit_routes(api)  # audit and sign-in logs
    from agent.simulator.graph.routes_writes import register_write_routes

    register_write_routes(api)  # creates, updates, deletes, $ref links, assignments
    from agent.simulator.graph.routes_policies import register_policy_routes

    register_policy_routes(api)  # conditional access and every other policy kind
    from agent.simulator.graph.routes_policy_writes import register_policy_write_routes

    register_policy_write_routes(api)  # their creates, updates, deletes and SP links
    from agent.simulator.graph.routes_role_writes import register_role_write_routes

    register_role_write_routes(api)  # role definitions, assignments, PIM schedule requests
    from agent.simulator.graph.app_child_writes import register_app_child_routes

    register_app_child_routes(api)  # app extension properties, federated credentials
    from agent.simulator.graph.licences import register_licence_routes

    register_licence_routes(api)  # users' and groups' assignLicense
    from agent.simulator.graph.routes_tenant_writes import register_tenant_write_routes

    register_tenant_write_routes(api)  # settings, organization, branding, domains, SAML certs


__all__ = ["GraphError", "register_routes"]
