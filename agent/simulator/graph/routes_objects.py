"""Graph v1.0 read endpoints for applications, service principals, app role assignments,
delegated grants, administrative units, devices, BitLocker keys, directory roles and
subscribed SKUs — through the same pipeline as users and groups (auth, permissions, RU
throttling, paging with opaque skip tokens, $select, $top, $batch)."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from itertools import islice
from typing import Any

from agent.simulator.graph.directory import Directory
from agent.simulator.graph.errors import bad_request, not_found
from agent.simulator.graph.permissions import (
    READ_APPS,
    READ_AUS,
    READ_BITLOCKER_BASIC,
    READ_BITLOCKER_KEY,
    READ_DEVICES,
    READ_GRANTS,
    READ_ROLES,
    READ_SKUS,
)
from agent.simulator.graph.pipeline import READ_GROUPS, READ_USERS, Context, GraphApi
from agent.simulator.graph.props import ODATA_TYPE, SCALARS, is_property
from agent.simulator.graph.query import (
    parse_expand,
    parse_filter,
    parse_select,
    parse_top,
    project,
)
from agent.simulator.graph.routes import (
    EXPAND_ITEMS,
    EXPAND_PAGE,
    _check_count,
    _options,
    _page,
    delta,
    page_items,
)
from agent.simulator.httpserver import Response

Handler = Callable[[Context], Response]
# Where each kind lives under /v1.0 (administrative units: only under /directory in the
# v1.0 CSDL, which is also where its delta function is bound).
PATHS = {
    "application": "/applications",
    "servicePrincipal": "/servicePrincipals",
    "device": "/devices",
    "administrativeUnit": "/directory/administrativeUnits",
    "oauth2PermissionGrant": "/oauth2PermissionGrants",
    "directoryRole": "/directoryRoles",
}
READS = {
    "application": READ_APPS,
    "servicePrincipal": READ_APPS,
    "device": READ_DEVICES,
    "administrativeUnit": READ_AUS,
    "oauth2PermissionGrant": READ_GRANTS,
    "directoryRole": READ_ROLES,
}
GRAPH = "https://graph.microsoft.com/v1.0/$metadata#"


def _context(path: str) -> str:
    return path.strip("/")


def _entity(kind: str, item: dict[str, Any]) -> Response:
    return Response.json({"@odata.context": f"{GRAPH}{_context(PATHS[kind])}/$entity", **item})


def _live(d: Directory, kind: str, oid: str) -> dict[str, Any]:
    row = d.row(kind, oid)
    if row is None:
        raise not_found(oid)
    return row


# -- collections ---------------------------------------------------------------------------


def list_kind(kind: str, *, paged: bool = True) -> Handler:
    def handler(ctx: Context) -> Response:
        opts, cursor = _options(ctx)
        select = parse_select(kind, opts.get("$select"))
        # Facts file §2: directoryRoles does not page.
        top = parse_top(opts.get("$top")) if paged else None
        expand = parse_expand(kind, opts.get("$expand"))
        if expand and top is not None:
            top = min(top, EXPAND_PAGE)  # facts file §1: $expand pages by 100 …
        match = parse_filter(kind, opts.get("$filter"))
        want_count = _check_count(ctx, opts)
        d = ctx.directory
        picked: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []  # (row copy, expansion)
        next_cursor = None
        with d.lock:  # held to copy the page's rows; their items are built after it
            for pos, row in d.scan(kind, int(cursor or 0)):
                if match is not None and not match(row):
                    continue
                if len(picked) == top:
                    next_cursor = pos
                    break
                value: list[dict[str, Any]] = []
                if expand:  # … with at most 20 related objects each and no nextLink for them
                    targets = d.objects.sorted_targets(f"{kind}.{expand.name}", row["id"])
                    live = (t for t in (_typed(d, t, expand.select) for t in targets) if t)
                    value = list(islice(live, EXPAND_ITEMS))
                picked.append((dict(row), value))
            count = None
            if want_count and cursor is None:
                count = sum(1 for _, r in d.scan(kind, 0) if match is None or match(r))
        items = page_items(kind, picked, select, expand.name if expand else None)
        return _page(ctx, opts, items, next_cursor, _context(PATHS[kind]), count)

    return handler


def get_kind(kind: str) -> Handler:
    def handler(ctx: Context) -> Response:
        d = ctx.directory
        select = parse_select(kind, ctx.request.arg("$select"))
        with d.lock:
            item = project(kind, _live(d, kind, ctx.params["id"]), select)
        return _entity(kind, item)

    return handler


# -- relationships: directory objects linked to one object -----------------------------------


def _select_objects(raw: str | None) -> list[str] | None:
    """$select on a directoryObject collection: a property of any directory object kind."""
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for name in names:
        if not any(is_property(kind, name) for kind in SCALARS):
            raise bad_request(
                f"Could not find a property named '{name}' on type 'Microsoft.DirectoryServices.DirectoryObject'."
            )
    return names


def _typed(d: Directory, oid: str, select: list[str] | None) -> dict[str, Any] | None:
    kind = d.kind_of(oid)
    row = d.row(kind, oid) if kind else None
    if kind is None or row is None:
        return None  # deleted: hidden until it is restored
    return _typed_row(kind, row, select)


def _typed_row(kind: str, row: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    names = [n for n in select if is_property(kind, n)] if select is not None else None
    return {"@odata.type": ODATA_TYPE[kind], **project(kind, row, names)}


def _paged_ids(
    ctx: Context,
    ids: list[str],
    make: Callable[[str, list[str] | None], dict[str, Any] | None],
    select: list[str] | None,
    context: str,
) -> Response:
    """Page sorted ids with an id cursor (stable while objects come and go)."""
    opts, cursor = _options(ctx)
    top = parse_top(opts.get("$top"))
    want_count = _check_count(ctx, opts)
    start = bisect.bisect_right(ids, cursor) if cursor else 0
    chunk = ids[start : start + top]
    items = [t for t in (make(i, select) for i in chunk) if t]
    more = start + top < len(ids)
    count = len(ids) if want_count and cursor is None else None
    return _page(ctx, opts, items, chunk[-1] if more else None, context, count)


def linked(kind: str, relation: str) -> Handler:
    """owners, members, registeredOwners, registeredUsers of one object.

    Links to deleted objects stay stored and are hidden (objects.py): the page walks the
    sorted targets from its cursor and skips hidden ones as it goes, so a page costs its own
    size, not the whole list (only $count, on the first page, counts every live target)."""

    def handler(ctx: Context) -> Response:
        d = ctx.directory
        opts, cursor = _options(ctx)
        select = _select_objects(opts.get("$select"))
        with d.lock:
            _live(d, kind, ctx.params["id"])
            top = parse_top(opts.get("$top"))
            want_count = _check_count(ctx, opts)
            targets = d.objects.sorted_targets(f"{kind}.{relation}", ctx.params["id"])
            picked: list[tuple[str, dict[str, Any]]] = []  # (kind, a copy of the row)
            more = False
            start = bisect.bisect_right(targets, cursor) if cursor else 0
            for index in range(start, len(targets)):
                oid = targets[index]
                target = d.kind_of(oid)
                row = d.row(target, oid) if target else None
                if target is None or row is None:
                    continue  # deleted: hidden until it is restored
                if len(picked) == top:
                    more = True
                    break
                picked.append((target, dict(row)))
            count = None
            if want_count and cursor is None:
                count = sum(1 for t in targets if d.kind_of(t) is not None)
        items = [_typed_row(target, row, select) for target, row in picked]
        last = picked[-1][1]["id"] if more else None
        return _page(ctx, opts, items, last, "directoryObjects", count)

    return handler


def linked_one(kind: str, relation: str) -> Handler:
    """One member of an administrative unit ("Get a member": the user, group or device, or
    404 when it is not a member)."""

    def handler(ctx: Context) -> Response:
        d = ctx.directory
        select = _select_objects(ctx.request.arg("$select"))
        member = ctx.params["member"]
        with d.lock:
            _live(d, kind, ctx.params["id"])
            linked = member in d.objects.links[f"{kind}.{relation}"].get(ctx.params["id"], ())
            item = _typed(d, member, select) if linked else None
        if item is None:
            raise not_found(member)
        return Response.json({"@odata.context": f"{GRAPH}directoryObjects/$entity", **item})

    return handler


def children(kind: str, relation: str, child: str) -> Handler:
    """Entities owned by one object: extension properties, federated credentials, scoped
    role members."""

    def handler(ctx: Context) -> Response:
        d = ctx.directory
        opts, _ = _options(ctx)
        select = parse_select(child, opts.get("$select"))
        with d.lock:
            _live(d, kind, ctx.params["id"])
            rows = {r["id"]: r for r in d.objects.of(f"{kind}.{relation}", ctx.params["id"])}
        return _paged_ids(
            ctx,
            sorted(rows),
            lambda i, s: project(child, rows[i], s),
            select,
            f"{_context(PATHS[kind])}('{ctx.params['id']}')/{relation}",
        )

    return handler


def assignments(parent: str, side: str) -> Handler:
    """appRoleAssignments (the parent is the principal) or appRoleAssignedTo (the resource)."""

    def handler(ctx: Context) -> Response:
        d = ctx.directory
        oid = ctx.params["id"]
        opts, _ = _options(ctx)
        select = parse_select("appRoleAssignment", opts.get("$select"))
        store = d.objects
        with d.lock:
            _live(d, parent, oid)
            index = store.by_principal if side == "principal" else store.by_resource
            rows = {
                a: store.assignments[a]
                for a in index.get(oid, ())
                if d.kind_of(store.assignments[a]["principalId"])
                and d.kind_of(store.assignments[a]["resourceId"])
            }
        return _paged_ids(
            ctx,
            sorted(rows),
            lambda i, s: project("appRoleAssignment", rows[i], s),
            select,
            "appRoleAssignments",
        )

    return handler


# -- BitLocker recovery keys --------------------------------------------------------------


def bitlocker_list(ctx: Context) -> Response:
    opts, _ = _options(ctx)
    select = parse_select("bitlockerRecoveryKey", opts.get("$select"))
    if select and "key" in select:  # the key only comes from GET …/recoveryKeys/{id}
        raise bad_request("$select=key is supported only when reading one recovery key.")
    match = parse_filter("bitlockerRecoveryKey", opts.get("$filter"))
    d = ctx.directory
    with d.lock:
        keys = {k: r for k, r in d.objects.bitlocker_keys.items() if match is None or match(r)}
    return _paged_ids(
        ctx,
        sorted(keys),
        lambda i, s: project("bitlockerRecoveryKey", keys[i], s),
        select,
        "informationProtection/bitlocker/recoveryKeys",
    )


def bitlocker_get(ctx: Context) -> Response:
    d = ctx.directory
    select = parse_select("bitlockerRecoveryKey", ctx.request.arg("$select"))
    with d.lock:
        row = d.objects.bitlocker_keys.get(ctx.params["id"])
        if row is None:
            raise not_found(ctx.params["id"])
        item = project("bitlockerRecoveryKey", row, select)
    response = Response.json(
        {"@odata.context": f"{GRAPH}informationProtection/bitlocker/recoveryKeys/$entity", **item}
    )
    if "key" in item:  # reading a key is audited (Entra writes an audit log entry)
        response.note["audit"] = f"bitlocker key read: {row['id']} of device {row['deviceId']}"
    return response


def _needs_key(ctx: Context) -> frozenset[str]:
    select = ctx.request.arg("$select") or ""
    wants_key = "key" in (n.strip() for n in select.split(","))
    return READ_BITLOCKER_KEY if wants_key else READ_BITLOCKER_BASIC


def subscribed_skus(ctx: Context) -> Response:
    select = parse_select("subscribedSku", ctx.request.arg("$select"))
    d = ctx.directory
    with d.lock:
        items = [project("subscribedSku", r, select) for r in d.objects.skus]
    return Response.json({"@odata.context": f"{GRAPH}subscribedSkus", "value": items})


# -- registration ---------------------------------------------------------------------------


def register_object_routes(api: GraphApi) -> None:
    for kind, path in PATHS.items():
        reads = READS[kind]
        api.add("GET", path, list_kind(kind, paged=kind != "directoryRole"), reads)
        api.add("GET", f"{path}/delta", delta(kind, f"{path}/delta"), reads)
        api.add("GET", f"{path}/{{id}}", get_kind(kind), reads)
    # Graph documents GET /administrativeUnits/delta too; answer it with the same round.
    api.add(
        "GET",
        "/administrativeUnits/delta",
        delta("administrativeUnit", "/directory/administrativeUnits/delta"),
        READ_AUS,
    )
    for kind, relation in (
        ("application", "owners"),
        ("servicePrincipal", "owners"),
        ("administrativeUnit", "members"),
        ("device", "registeredOwners"),
        ("device", "registeredUsers"),
        ("directoryRole", "members"),
    ):
        api.add("GET", f"{PATHS[kind]}/{{id}}/{relation}", linked(kind, relation), READS[kind])
    unit_member = f"{PATHS['administrativeUnit']}/{{id}}/members/{{member}}"
    api.add(
        "GET", unit_member, linked_one("administrativeUnit", "members"), READS["administrativeUnit"]
    )
    for kind, relation, child in (
        ("application", "extensionProperties", "extensionProperty"),
        ("application", "federatedIdentityCredentials", "federatedIdentityCredential"),
        ("administrativeUnit", "scopedRoleMembers", "scopedRoleMembership"),
    ):
        api.add(
            "GET", f"{PATHS[kind]}/{{id}}/{relation}", children(kind, relation, child), READS[kind]
        )
    sp = "/servicePrincipals/{id}"
    api.add(
        "GET", f"{sp}/appRoleAssignments", assignments("servicePrincipal", "principal"), READ_APPS
    )
    api.add(
        "GET", f"{sp}/appRoleAssignedTo", assignments("servicePrincipal", "resource"), READ_APPS
    )
    api.add("GET", "/users/{id}/appRoleAssignments", assignments("user", "principal"), READ_USERS)
    api.add(
        "GET", "/groups/{id}/appRoleAssignments", assignments("group", "principal"), READ_GROUPS
    )
    keys = "/informationProtection/bitlocker/recoveryKeys"
    api.add("GET", keys, bitlocker_list, READ_BITLOCKER_BASIC)
    api.add("GET", f"{keys}/{{id}}", bitlocker_get, _needs_key)
    api.add("GET", "/subscribedSkus", subscribed_skus, READ_SKUS)
