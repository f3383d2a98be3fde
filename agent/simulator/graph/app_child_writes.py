"""Writes to the entities an application owns, as Graph v1.0 does them: directory extension
properties (create and delete only — Graph has no update for them) and federated identity
credentials (create, update by id or name, delete), with the errors the real service gives
(unknown data types and target objects, names taken, the 20-credential limit, name read-only
on update). Routes are registered by ``register_app_child_routes`` (Application.ReadWrite.All).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from agent.simulator.graph import audit_links
from agent.simulator.graph.directory import Directory
from agent.simulator.graph.errors import bad_request, not_found
from agent.simulator.graph.pipeline import Context, GraphApi
from agent.simulator.graph.write_rules import WRITE_APPS
from agent.simulator.graph.writes import check_body, conflict, json_body
from agent.simulator.httpserver import Response

Handler = Callable[[Context], Response]
EXT = "application.extensionProperties"
FIC = "application.federatedIdentityCredentials"
# extensionProperty resource page: dataType and targetObjects values.
DATA_TYPES = ("Binary", "Boolean", "DateTime", "Integer", "LargeInteger", "String")
TARGETS = ("User", "Group", "AdministrativeUnit", "Application", "Device", "Organization")
MAX_CREDENTIALS = 20  # federated identity credentials per application (documented limit)
GRAPH = "https://graph.microsoft.com/v1.0/$metadata#"


def _app(d: Directory, oid: str) -> dict[str, Any]:
    row = d.row("application", oid)
    if row is None:
        raise not_found(oid)
    return row


def create_extension(d: Directory, app_id: str, body: dict[str, Any]) -> dict[str, Any]:
    props, _ = check_body("extensionProperty", body, create=True)
    for computed in ("appDisplayName", "isSyncedFromOnPremises"):
        if computed in props:
            raise bad_request(f"Property '{computed}' is read-only and cannot be set.")
    name = str(props.get("name") or "")
    if not name:
        raise bad_request("Property name value is required but is empty or missing.")
    if props.get("dataType") not in DATA_TYPES:
        raise bad_request("Invalid value specified for property 'dataType' of resource 'ExtensionProperty'.")  # fmt: skip
    targets = props.get("targetObjects") or []
    if not targets or any(t not in TARGETS for t in targets):
        raise bad_request("Invalid value specified for property 'targetObjects' of resource 'ExtensionProperty'.")  # fmt: skip
    with d.lock:
        app = _app(d, app_id)
        full = f"extension_{str(app['appId']).replace('-', '')}_{name}"
        if any(e["name"] == full for e in d.objects.of(EXT, app_id)):
            raise conflict("name")
        row = {
            "id": str(uuid.uuid4()),
            "appDisplayName": app.get("displayName"),
            "dataType": props["dataType"],
            "isMultiValued": bool(props.get("isMultiValued", False)),
            "isSyncedFromOnPremises": False,
            "name": full,
            "targetObjects": list(targets),
        }
        audit_links.add_child(d, EXT, app_id, row)
        return dict(row)


def _find(d: Directory, relation: str, app_id: str, key: str) -> dict[str, Any]:
    row = next((c for c in d.objects.of(relation, app_id) if key in (c["id"], c.get("name"))), None)
    if row is None:
        raise not_found(key)
    return row


def delete_child(d: Directory, relation: str, app_id: str, key: str) -> None:
    with d.lock:
        _app(d, app_id)
        row = _find(d, relation, app_id, key)
        audit_links.remove_child(d, relation, app_id, row["id"])


def create_credential(d: Directory, app_id: str, body: dict[str, Any]) -> dict[str, Any]:
    props, _ = check_body("federatedIdentityCredential", body, create=True)
    for required in ("name", "issuer", "subject", "audiences"):
        if props.get(required) in (None, "", []):
            raise bad_request(f"Property {required} value is required but is empty or missing.")
    with d.lock:
        _app(d, app_id)
        have = d.objects.of(FIC, app_id)
        if any(c["name"].lower() == str(props["name"]).lower() for c in have):
            raise conflict("name")
        if len(have) >= MAX_CREDENTIALS:
            raise bad_request(  # UNCONFIRMED wording
                f"An application can have at most {MAX_CREDENTIALS} federated identity credentials."
            )
        row = {"id": str(uuid.uuid4()), "description": None, **props}
        audit_links.add_child(d, FIC, app_id, row)
        return dict(row)


def update_credential(d: Directory, app_id: str, key: str, body: dict[str, Any]) -> None:
    props, _ = check_body("federatedIdentityCredential", body, create=False)
    if "name" in props:  # federatedIdentityCredential: name "cannot be changed after creation"
        raise bad_request("Property 'name' is read-only and cannot be set.")
    with d.lock:
        _app(d, app_id)
        _find(d, FIC, app_id, key).update(props)
        audit_links.child_changed(d, FIC, app_id)


def _body(ctx: Context) -> dict[str, Any]:
    try:
        return json_body(ctx.request.json())
    except ValueError:
        return json_body(None)


def _created(ctx: Context, relation: str, row: dict[str, Any]) -> Response:
    context = f"{GRAPH}applications('{ctx.params['id']}')/{relation}/$entity"
    return Response.json({"@odata.context": context, **row}, 201)


def register_app_child_routes(api: GraphApi) -> None:
    base = "/applications/{id}"

    def post_ext(ctx: Context) -> Response:
        row = create_extension(ctx.directory, ctx.params["id"], _body(ctx))
        return _created(ctx, "extensionProperties", row)

    def post_fic(ctx: Context) -> Response:
        row = create_credential(ctx.directory, ctx.params["id"], _body(ctx))
        return _created(ctx, "federatedIdentityCredentials", row)

    def patch_fic(ctx: Context) -> Response:
        update_credential(ctx.directory, ctx.params["id"], ctx.params["key"], _body(ctx))
        return Response.empty(204)

    def deleter(relation: str) -> Handler:
        def handler(ctx: Context) -> Response:
            delete_child(ctx.directory, relation, ctx.params["id"], ctx.params["key"])
            return Response.empty(204)

        return handler

    api.add("POST", f"{base}/extensionProperties", post_ext, WRITE_APPS)
    api.add("DELETE", f"{base}/extensionProperties/{{key}}", deleter(EXT), WRITE_APPS)
    api.add("POST", f"{base}/federatedIdentityCredentials", post_fic, WRITE_APPS)
    api.add("PATCH", f"{base}/federatedIdentityCredentials/{{key}}", patch_fic, WRITE_APPS)
    api.add("DELETE", f"{base}/federatedIdentityCredentials/{{key}}", deleter(FIC), WRITE_APPS)
