"""Create, update and delete of directory objects as Graph v1.0 does them, with the errors the
real service gives (read-only, unknown and missing properties, conflicts, synced objects).

Every change goes through the ``Directory`` mutators, so the change log — and with it delta,
deletedItems and the request log — sees writes exactly as it sees generated churn.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from typing import Any

from agent.schema.csdl import load_schema
from agent.simulator.graph.churn_objects import delete_application
from agent.simulator.graph.directory import Directory
from agent.simulator.graph.errors import GraphError, bad_request, not_found
from agent.simulator.graph.props import ODATA_TYPE
from agent.simulator.graph.published_apps import published_app
from agent.simulator.graph.query import project
from agent.simulator.graph.sso_writes import check_thumbprint
from agent.simulator.graph.write_rules import (
    CREATE_ONLY,
    REQUIRED,
    RESTORE_ROLE,
    RESTORE_ROLE_KINDS,
    SYNCED_USER_WRITABLE,
    entity_type,
    read_only,
    structural,
)
from agent.simulator.world import ROLE_TEMPLATE_IDS

GRAPH = "https://graph.microsoft.com/v1.0/$metadata#"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
SYNCED = (
    "Unable to update the specified properties for on-premises mastered Directory Sync objects "
    "or objects currently undergoing migration."
)
MAIL_ENABLED_GROUP = "Cannot Update a mail-enabled security groups and or distribution list."


def json_body(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    return raw


def check_body(
    kind: str, body: dict[str, Any], *, create: bool
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(properties to store, ``name@odata.bind`` references) of a create or update body."""
    props: dict[str, Any] = {}
    binds: dict[str, list[str]] = {}
    for name, value in body.items():
        if name.endswith("@odata.bind"):
            urls = value if isinstance(value, list) else [value]
            binds[name.removesuffix("@odata.bind")] = [ref_id(u) for u in urls]
        elif name.startswith("@odata."):
            continue  # @odata.type and friends are annotations, not properties
        elif name not in structural(kind):
            raise bad_request(f"Invalid property '{name}'.")
        elif name in read_only(kind) or (not create and name in CREATE_ONLY.get(kind, ())):
            raise bad_request(f"Property '{name}' is read-only and cannot be set.")
        else:
            props[name] = value
    problems = load_schema().validate(entity_type(kind), props)
    if problems:
        name = problems[0].split(":")[0].removeprefix("$.").split(".")[0].split("[")[0]
        resource = entity_type(kind)[0].upper() + entity_type(kind)[1:]
        raise bad_request(
            f"Invalid value specified for property '{name}' of resource '{resource}'."
        )
    if create:
        for name in REQUIRED.get(kind, ()):
            if props.get(name) in (None, "", []):
                if name == "passwordProfile":
                    raise bad_request("A password must be specified to create a new user.")
                raise bad_request(f"Property {name} value is required but is empty or missing.")
    return props, binds


def ref_id(url: Any) -> str:
    """The object id at the end of an ``@odata.id`` / ``@odata.bind`` URL."""
    text = str(url or "").rstrip("/")
    last = text.rsplit("/", 1)[-1]
    match = re.search(r"\('([^']+)'\)$", last)
    oid = match.group(1) if match else last
    if not text or not _GUID.match(oid):
        raise bad_request(f"Invalid object identifier '{oid}'.", "Request_BadRequest")
    return oid


def conflict(prop: str) -> GraphError:
    err = bad_request(f"Another object with the same value for property {prop} already exists.")
    err.details = [{"target": prop, "code": "ObjectConflict"}]
    return err


def entity(kind: str, path: str, row: dict[str, Any]) -> dict[str, Any]:
    """A created object as Graph answers it: context, type, every property."""
    return {
        "@odata.context": f"{GRAPH}{path.strip('/')}/$entity",
        "@odata.type": ODATA_TYPE[kind],
        **project(kind, row, None),
    }


# Which kinds each relationship may point at (Graph answers others with a 400).
LINK_TARGETS = {
    "group.members": ("user", "group", "device", "servicePrincipal"),
    "group.owners": ("user", "servicePrincipal"),
    "application.owners": ("user", "servicePrincipal"),
    "servicePrincipal.owners": ("user", "servicePrincipal"),
    "administrativeUnit.members": ("user", "group", "device"),
    "device.registeredOwners": ("user",),
    "device.registeredUsers": ("user",),
}


def check_link_target(d: Directory, relation: str, oid: str) -> str:
    """The kind of a reference's target: 404 when it does not exist, 400 when the
    relationship cannot hold that kind."""
    kind = d.kind_of(oid)
    if kind is None:
        raise not_found(oid)
    if kind not in LINK_TARGETS[relation]:
        name = relation.split(".")[1]
        raise bad_request(
            f"Unsupported referenced-object resource identifier for link property '{name}'."
        )
    return kind


# -- per-kind rules ---------------------------------------------------------------------------


def _upn_taken(d: Directory, upn: str, except_id: str | None = None) -> bool:
    key = upn.lower()
    return any(
        r.get("userPrincipalName", "").lower() == key and r["id"] != except_id
        for _, r in d.scan("user", 0)
    )


def _check_upn(d: Directory, upn: str, except_id: str | None = None) -> None:
    domain = upn.rsplit("@", 1)[-1].lower() if "@" in upn else ""
    if domain != d.domain.lower():
        raise bad_request(
            "The domain portion of the userPrincipalName property is invalid. You must use one "
            "of the verified domain names in your organization."
        )
    if _upn_taken(d, upn, except_id):
        raise conflict("userPrincipalName")


def _password(profile: Any) -> dict[str, Any]:
    """Check the password's complexity; keep only the flags (never the password itself)."""
    password = str((profile or {}).get("password") or "")
    classes = sum(
        any(test(c) for c in password)
        for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    if len(password) < 8 or classes < 3:
        raise bad_request(
            "The specified password does not comply with password complexity requirements. "
            "Please provide a different password."
        )
    return {
        "forceChangePasswordNextSignIn": bool(profile.get("forceChangePasswordNextSignIn", True)),
        "forceChangePasswordNextSignInWithMfa": bool(
            profile.get("forceChangePasswordNextSignInWithMfa", False)
        ),
        "password": None,
    }


def _prepare_user(d: Directory, props: dict[str, Any], row: dict[str, Any] | None) -> None:
    synced = row is not None and row.get("onPremisesSyncEnabled")
    if synced and set(props) - SYNCED_USER_WRITABLE:
        raise bad_request(SYNCED)
    if "userPrincipalName" in props:
        _check_upn(d, str(props["userPrincipalName"]), row["id"] if row else None)
    if "passwordProfile" in props:
        props["passwordProfile"] = _password(props["passwordProfile"])
    if row is None:
        props.setdefault("userType", "Member")


def _prepare_group(d: Directory, props: dict[str, Any], row: dict[str, Any] | None) -> None:
    if row is not None and row.get("onPremisesSyncEnabled"):
        raise bad_request(SYNCED)
    merged = {**(row or {}), **props}
    unified = "Unified" in (merged.get("groupTypes") or [])
    if merged.get("mailEnabled") and not unified:
        # Distribution lists and mail-enabled security groups belong to Exchange Online.
        raise bad_request(MAIL_ENABLED_GROUP)
    if row is None and unified:
        nick = str(props["mailNickname"])
        address = f"{nick}@{d.domain}"
        if any(address.lower() == str(r.get("mail", "")).lower() for _, r in d.scan("group", 0)):
            raise conflict("proxyAddresses")
        props.update(mail=address, proxyAddresses=[f"SMTP:{address}"])
        props.setdefault("visibility", "Public")
    if row is None:
        props.setdefault("groupTypes", [])


def _prepare_application(d: Directory, props: dict[str, Any], row: dict[str, Any] | None) -> None:
    uris = {u.lower() for u in props.get("identifierUris") or []}
    if uris:
        for _, other in d.scan("application", 0):
            if other["id"] != (row or {}).get("id") and uris & {
                u.lower() for u in other.get("identifierUris") or []
            }:
                raise conflict("identifierUris")
    if row is None:
        props.update(appId=str(uuid.uuid4()), publisherDomain=d.domain)
        props.setdefault("signInAudience", "AzureADMyOrg")


# What the publisher's application decides for every tenant's service principal of it.
_PUBLISHED = frozenset({"appDisplayName", "appOwnerOrganizationId", "servicePrincipalType",
                        "servicePrincipalNames", "signInAudience", "appRoles",
                        "oauth2PermissionScopes", "verifiedPublisher"})  # fmt: skip


def _prepare_service_principal(
    d: Directory, props: dict[str, Any], row: dict[str, Any] | None
) -> None:
    check_thumbprint(row, props)  # a new service principal has no signing key yet
    if row is not None:
        return
    app_id = str(props["appId"])
    taken = [r for _, r in d.scan("servicePrincipal", 0) if r.get("appId") == app_id]
    if taken:
        raise GraphError(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            "The service principal cannot be created, updated, or restored because the "
            f"service principal name {app_id} is already in use.",
        )
    app = next((r for _, r in d.scan("application", 0) if r.get("appId") == app_id), None)
    known = app or next((g.row for g in d.deleted.values() if g.row.get("appId") == app_id), None)
    published = published_app(app_id) if known is None else None
    if published is not None:  # another tenant's multi-tenant app: its published values
        props.update({k: v for k, v in published.items() if k in _PUBLISHED or k not in props})
        return
    if known is None:
        raise bad_request(
            f"The appId '{app_id}' of the service principal does not reference a valid "
            "application object."
        )
    props.setdefault("displayName", known.get("displayName"))
    props.update(
        appDisplayName=known.get("displayName"),
        appOwnerOrganizationId=d.tenant_id if app else known.get("appOwnerOrganizationId"),
        servicePrincipalType="Application",
        servicePrincipalNames=sorted({app_id, *(known.get("identifierUris") or [])}),
        signInAudience=known.get("signInAudience", "AzureADMyOrg"),
    )
    props.setdefault("accountEnabled", True)
    props.setdefault("appRoles", list(known.get("appRoles") or []))


def _prepare_grant(d: Directory, props: dict[str, Any], row: dict[str, Any] | None) -> None:
    if row is not None:
        return
    consent = props["consentType"]
    if consent not in ("AllPrincipals", "Principal"):
        raise bad_request(
            "Invalid value specified for property 'consentType' of resource "
            "'OAuth2PermissionGrant'."
        )
    if consent == "Principal" and not props.get("principalId"):
        raise bad_request("Property principalId value is required but is empty or missing.")
    for name in ("clientId", "resourceId"):
        if d.row("servicePrincipal", str(props[name])) is None:
            raise not_found(str(props[name]))
    if consent == "Principal" and d.row("user", str(props["principalId"])) is None:
        raise not_found(str(props["principalId"]))
    key = (props["clientId"], consent, props.get("principalId"), props["resourceId"])
    for _, other in d.scan("oauth2PermissionGrant", 0):
        if (other["clientId"], other["consentType"], other.get("principalId"), other["resourceId"]) == key:  # fmt: skip
            raise GraphError(
                409, "Request_MultipleObjectsWithSameKeyValue", "Permission entry already exists."
            )
    # Grant ids are 43-character url-safe strings, not GUIDs.
    props["id"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()[:43]
    props.setdefault("scope", "")


PREPARE = {
    "user": _prepare_user,
    "group": _prepare_group,
    "application": _prepare_application,
    "servicePrincipal": _prepare_service_principal,
    "oauth2PermissionGrant": _prepare_grant,
}


# -- operations (callers are route handlers; they answer with the returned values) -------------


def create(d: Directory, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    props, binds = check_body(kind, body, create=True)
    with d.lock:
        prepare = PREPARE.get(kind)
        if prepare is not None:
            prepare(d, props, None)
        for relation, ids in binds.items():
            if kind != "group" or relation not in ("members", "owners"):
                raise bad_request(f"Invalid property '{relation}@odata.bind'.")
            for oid in ids:
                check_link_target(d, f"group.{relation}", oid)
        if kind == "user":
            row = d.create_user(**props)
        elif kind == "group":
            row = d.create_group(**props)
        else:
            row = d.create(kind, **props)
        for oid in binds.get("members", []):
            d.add_member(row["id"], oid)
        for oid in binds.get("owners", []):
            d.load_owner(row["id"], oid)
        return row


def update(d: Directory, kind: str, oid: str, body: dict[str, Any]) -> None:
    props, binds = check_body(kind, body, create=False)
    if binds:
        raise bad_request(f"Invalid property '{next(iter(binds))}@odata.bind'.")
    with d.lock:
        row = d.row(kind, oid)
        if row is None:
            raise not_found(oid)
        prepare = PREPARE.get(kind)
        if prepare is not None:
            prepare(d, props, row)
        if props:
            d.update(kind, oid, **props)


def delete(d: Directory, kind: str, oid: str) -> None:
    with d.lock:
        if d.row(kind, oid) is None:
            raise not_found(oid)
        if kind == "application":
            delete_application(d, oid)  # its service principal goes with it (facts file §3)
        elif kind == "group":
            d.delete_group(oid)
        elif kind == "user":
            d.delete_user(oid)
        else:
            d.delete(kind, oid)  # soft for service principals and AUs, hard otherwise


def _check_app_active(d: Directory, app_id: str) -> None:
    """A deleted service principal comes back only while its application is active: an app of
    this tenant that is not deleted, or a multi-tenant app another tenant publishes. Entra's
    "Restore or remove a recently deleted application": permanently deleting an app leaves its
    service principal in deleted items, and "the service principal can't be restored without
    having an active corresponding application". (No documented error text: this is ours.)"""
    if published_app(app_id) is not None:
        return
    if any(r.get("appId") == app_id for _, r in d.scan("application", 0)):
        return
    raise bad_request(
        "The service principal cannot be restored: its application (appId "
        f"'{app_id}') is not active. Restore the application first; a permanently deleted "
        "application cannot be restored."
    )


def check_restore(d: Directory, claims: dict[str, Any], oid: str, body: Any = None) -> None:
    """Role and conflicts a restore of a deleted item runs into (facts file §3), and the
    optional ``newUserPrincipalName`` of the restore action (v1.0 CSDL), applied here."""
    gone = d.deleted.get(oid)
    if gone is None:
        return
    role = ROLE_TEMPLATE_IDS[RESTORE_ROLE]
    if gone.kind in RESTORE_ROLE_KINDS and role not in (claims.get("wids") or []):
        raise GraphError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
    params = body if isinstance(body, dict) else {}
    unknown = set(params) - {"newUserPrincipalName", "autoReconcileProxyConflict"}
    if unknown:
        raise bad_request(f"Invalid property '{sorted(unknown)[0]}'.")
    new_upn = params.get("newUserPrincipalName")
    if gone.kind == "servicePrincipal":
        _check_app_active(d, str(gone.row.get("appId") or ""))
    if gone.kind != "user":
        return
    if new_upn:
        _check_upn(d, str(new_upn))
        gone.row["userPrincipalName"] = str(new_upn)
    elif _upn_taken(d, str(gone.row.get("userPrincipalName", ""))):
        # A new account took the name while this one was deleted (facts file §3).
        raise conflict("userPrincipalName")
