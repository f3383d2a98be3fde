"""Create, update and delete of the policy kinds (policy_store.py) as Graph v1.0 does them.

Bodies are checked by ``writes.check_body`` against the CSDL and write_rules' read-only /
create-only / required tables (one validator for every write). On top of that, the rules Graph
states for policies: a conditional access policy may only name users, groups, roles, named
locations, applications and authentication strengths that exist; a named location or strength
a policy uses cannot be deleted; built-in strengths are read-only; a service principal holds
at most one policy of each type. Error texts marked UNCONFIRMED follow the documented wording
where the exact body was not found. Callers are route handlers (routes_policy_writes.py).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from agent.schema.csdl import load_schema
from agent.simulator.graph.audit_links import link, policy_deleted, unlink
from agent.simulator.graph.directory import Directory, iso
from agent.simulator.graph.errors import GraphError, bad_request, not_found
from agent.simulator.graph.policy_store import COLLECTIONS, KEYS, SP_RELATIONS, key_of
from agent.simulator.graph.writes import check_body, ref_id
from agent.simulator.world import ROLE_TEMPLATE_IDS

NAMED_TYPES = {
    "#microsoft.graph.ipNamedLocation": "ipNamedLocation",
    "#microsoft.graph.countryNamedLocation": "countryNamedLocation",
}
# Values a conditional access condition takes beside object ids.
_USER_WORDS = frozenset({"All", "None", "GuestsOrExternalUsers"})
_APP_WORDS = frozenset({"All", "None", "Office365", "MicrosoftAdminPortals"})
_LOCATION_WORDS = frozenset({"All", "AllTrusted"})
BUILT_IN = "builtIn"


def _refused(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def check_kind(kind: str, body: dict[str, Any], row: dict[str, Any] | None) -> str:
    """The write_rules kind a body is checked as: a named location by its derived type, which
    a create must name (Graph cannot create the abstract namedLocation)."""
    if kind != "namedLocation":
        return kind
    odata = (row or {}).get("@odata.type") or body.get("@odata.type")
    if odata and not str(odata).startswith("#"):
        odata = f"#{odata}"
    if odata not in NAMED_TYPES:
        raise _refused(
            "1007: Incoming NamedLocation object is null or does not match the schema of "
            "NamedLocation type. Specify @odata.type as #microsoft.graph.ipNamedLocation or "
            "#microsoft.graph.countryNamedLocation."
        )  # UNCONFIRMED: 1007 is Graph's schema-mismatch code for conditional access writes
    if row is not None and body.get("@odata.type") not in (None, odata, odata[1:]):
        raise bad_request("The @odata.type of a named location cannot be changed.")
    return NAMED_TYPES[odata]


# -- conditional access references ------------------------------------------------------------


def _missing(what: str, oid: str, code: int) -> GraphError:
    # 1040 is Graph's answer for a named location; users, groups, roles, apps and strengths
    # follow the same form (UNCONFIRMED codes).
    return _refused(f"{code}: {what} with id {oid} does not exist in the directory.")


def check_ca_references(d: Directory, policy: dict[str, Any]) -> None:
    """Every object a conditional access policy names must exist (Graph answers 400)."""
    conditions = policy.get("conditions") or {}
    users = conditions.get("users") or {}
    definitions = d.tenant_config.role_definitions.values()
    role_ids = set(ROLE_TEMPLATE_IDS.values()) | {r.get("templateId") for r in definitions}
    role_ids |= {r["id"] for r in definitions}
    for field, kind, label, code in (
        ("includeUsers", "user", "User", 1041),
        ("excludeUsers", "user", "User", 1041),
        ("includeGroups", "group", "Group", 1042),
        ("excludeGroups", "group", "Group", 1042),
    ):
        for oid in users.get(field) or ():
            if oid not in _USER_WORDS and d.row(kind, str(oid)) is None:
                raise _missing(label, str(oid), code)
    for field in ("includeRoles", "excludeRoles"):
        for oid in users.get(field) or ():
            if oid not in role_ids:
                raise _missing("Role", str(oid), 1043)
    apps = conditions.get("applications") or {}
    app_ids = {r.get("appId") for _, r in d.scan("servicePrincipal", 0)}
    app_ids |= {r.get("appId") for _, r in d.scan("application", 0)}
    for field in ("includeApplications", "excludeApplications"):
        for app in apps.get(field) or ():
            if app not in _APP_WORDS and app not in app_ids:
                raise _missing("Application", str(app), 1044)
    locations = conditions.get("locations") or {}
    for field in ("includeLocations", "excludeLocations"):
        for loc in locations.get(field) or ():
            if loc not in _LOCATION_WORDS and d.policies.get("namedLocation", str(loc)) is None:
                raise _missing("NamedLocation", str(loc), 1040)
    grant = policy.get("grantControls") or {}
    strength = grant.get("authenticationStrength")
    if strength:
        sid = str(strength.get("id") or "")
        if d.policies.get("authenticationStrengthPolicy", sid) is None:
            raise _missing("AuthenticationStrengthPolicy", sid, 1045)
        if "mfa" in (grant.get("builtInControls") or ()):
            raise _refused(
                "1108: Authentication strengths cannot be used alongside the MFA built-in control."
            )


def _in_use(d: Directory, kind: str, key: str) -> bool:
    for row in d.policies.rows("conditionalAccessPolicy"):
        if kind == "namedLocation":
            locs = (row.get("conditions") or {}).get("locations") or {}
            if key in (locs.get("includeLocations") or ()) or key in (
                locs.get("excludeLocations") or ()
            ):
                return True
        strength = (row.get("grantControls") or {}).get("authenticationStrength") or {}
        if kind == "authenticationStrengthPolicy" and strength.get("id") == key:
            return True
    return False


# -- collections ------------------------------------------------------------------------------


def _defaults(check: str, row: dict[str, Any]) -> None:
    """Graph answers every property of a new policy; those not sent are null (or empty),
    deletedDateTime of a directory object (claims mapping and the other sts policies) too."""
    schema = load_schema()
    directory_object = schema.is_assignable(_type(check), "directoryObject")
    for name, prop in schema.properties(_type(check)).items():
        if name == "deletedDateTime" and not directory_object:
            continue  # conditional access' soft-delete stamp: generated policies lack it too
        if not prop.navigation and name != "createdDateTime":
            row.setdefault(name, [] if prop.collection else None)


def _prepare(d: Directory, kind: str, props: dict[str, Any], row: dict[str, Any] | None) -> None:
    merged = {**(row or {}), **props}
    if kind == "conditionalAccessPolicy":
        check_ca_references(d, merged)
    elif kind == "authenticationStrengthPolicy" and row is None:
        props.update(policyType="custom", requirementsSatisfied="mfa")
        props.setdefault("combinationConfigurations", [])
    elif kind == "permissionGrantPolicy" and row is None:
        props.setdefault("includes", [])
        props.setdefault("excludes", [])


def create(d: Directory, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    check = check_kind(kind, body, None)
    props, binds = check_body(check, body, create=True)
    if binds:
        raise bad_request(f"Invalid property '{next(iter(binds))}@odata.bind'.")
    with d.lock:
        _prepare(d, kind, props, None)
        row: dict[str, Any] = {}
        if kind == "namedLocation":
            row["@odata.type"] = f"#microsoft.graph.{check}"
        key = KEYS.get(kind, "id")
        if key == "id" and kind != "permissionGrantPolicy":
            row["id"] = str(uuid.uuid4())
        row.update(copy.deepcopy(props))
        _defaults(check, row)
        if d.policies.get(kind, key_of(kind, row)) is not None:
            raise GraphError(
                409,
                "Request_MultipleObjectsWithSameKeyValue",
                f"An object with the same {key} '{key_of(kind, row)}' already exists.",
            )  # UNCONFIRMED wording
        return d.policies.create(kind, row, iso(d.now()))


def _row(d: Directory, kind: str, key: str) -> dict[str, Any]:
    row = d.policies.get(kind, key)
    if row is None:
        raise not_found(key)
    return row


def _built_in(kind: str, row: dict[str, Any], verb: str) -> None:
    if kind == "authenticationStrengthPolicy" and row.get("policyType") == BUILT_IN:
        raise _refused(
            f"Built-in authentication strength policies cannot be {verb}."
        )  # UNCONFIRMED


def update(d: Directory, kind: str, key: str, body: dict[str, Any]) -> None:
    with d.lock:
        row = _row(d, kind, key)
        _built_in(kind, row, "updated")
        props, binds = check_body(check_kind(kind, body, row), body, create=False)
        if binds:
            raise bad_request(f"Invalid property '{next(iter(binds))}@odata.bind'.")
        _prepare(d, kind, props, row)
        d.policies.update(kind, key, props, iso(d.now()))


def delete(d: Directory, kind: str, key: str) -> None:
    with d.lock:
        row = _row(d, kind, key)
        _built_in(kind, row, "deleted")
        if kind in ("namedLocation", "authenticationStrengthPolicy") and _in_use(d, kind, key):
            what = "NamedLocation" if kind == "namedLocation" else "AuthenticationStrengthPolicy"
            raise _refused(
                f"{what} with id {key} is referenced by one or more conditional access policies "
                "and cannot be deleted. Remove it from those policies first."
            )  # UNCONFIRMED wording; the refusal itself is documented
        gone = d.policies.delete(kind, key)
        if kind in SP_RELATIONS.values():
            policy_deleted(d, kind, key, gone.get("displayName"))
        for relation, linked in SP_RELATIONS.items():  # no service principal keeps a dead link
            if linked == kind:
                name = f"servicePrincipal.{relation}"
                for sp_id, targets in list(d.objects.links[name].items()):
                    if key in targets:
                        d.objects.unlink(name, sp_id, key)


# -- singletons and contained collections -----------------------------------------------------


def update_singleton(d: Directory, kind: str, body: dict[str, Any], *, replace: bool) -> None:
    """PATCH (or PUT, which replaces every writable property) of a tenant-wide policy."""
    props, binds = check_body(kind, body, create=False)
    if binds:
        raise bad_request(f"Invalid property '{next(iter(binds))}@odata.bind'.")
    with d.lock:
        row = d.policies.singletons.get(kind)
        if row is None:
            raise not_found(kind)
        if replace:
            for name, prop in load_schema().properties(_type(kind)).items():
                keep = name in props or name in ("id", "version")
                if not prop.navigation and name in row and not keep:
                    props[name] = [] if prop.collection else None
            if "version" in row:
                props["version"] = int(row.get("version") or 0) + 1
        d.policies.update(kind, None, props, iso(d.now()))


def _type(kind: str) -> str:
    from agent.simulator.graph.write_rules import entity_type

    return entity_type(kind)


def update_method_configuration(d: Directory, method_id: str, body: dict[str, Any]) -> None:
    """PATCH one authentication method configuration: checked as its derived type. The
    contained includeTargets are set by value in the same PATCH (the update pages' bodies)."""
    with d.lock:
        policy = d.policies.singleton("authenticationMethodsPolicy")
        configs = policy["authenticationMethodConfigurations"]
        found = next((c for c in configs if c["id"].lower() == method_id.lower()), None)
        if found is None:
            raise not_found(method_id)
        derived = str(found.get("@odata.type", "")).rsplit(".", 1)[-1]
        body = dict(body)
        targets = body.pop("includeTargets", None)
        props, _ = check_body(derived or "authenticationMethodConfiguration", body, create=False)
        if targets is not None:
            if not isinstance(targets, list) or not all(
                isinstance(t, dict) and t.get("id") and t.get("targetType") for t in targets
            ):
                raise bad_request("Invalid value specified for property 'includeTargets'.")
            props["includeTargets"] = targets
        found.update(copy.deepcopy(props))
        d.policies.update("authenticationMethodsPolicy", None, {}, iso(d.now()))


def update_allowed_combinations(d: Directory, key: str, body: dict[str, Any]) -> dict[str, Any]:
    """The updateAllowedCombinations action: the only way to change a custom strength's
    allowedCombinations (PATCH refuses them); answers updateAllowedCombinationsResult."""
    combos = body.get("allowedCombinations")
    if set(body) != {"allowedCombinations"} or not isinstance(combos, list) or not combos:
        raise bad_request("Property allowedCombinations value is required but is empty or missing.")
    problems = load_schema().validate(
        "authenticationStrengthPolicy", {"allowedCombinations": combos}
    )
    if problems:
        raise bad_request(
            "Invalid value specified for property 'allowedCombinations' of resource "
            "'AuthenticationStrengthPolicy'."
        )
    with d.lock:
        row = _row(d, "authenticationStrengthPolicy", key)
        _built_in("authenticationStrengthPolicy", row, "updated")
        previous = list(row.get("allowedCombinations") or [])
        d.policies.update("authenticationStrengthPolicy", key, {"allowedCombinations": combos}, iso(d.now()))  # fmt: skip
        using = [
            p["id"]
            for p in d.policies.rows("conditionalAccessPolicy")
            if ((p.get("grantControls") or {}).get("authenticationStrength") or {}).get("id") == key
        ]
    return {
        "additionalInformation": None,
        "conditionalAccessReferences": using,
        "currentCombinations": list(combos),
        "previousCombinations": previous,
    }


def add_combination_configuration(d: Directory, key: str, body: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """POST …/combinationConfigurations of a custom strength: a derived type must be named."""
    derived = str(body.get("@odata.type") or "").lstrip("#").rsplit(".", 1)[-1]
    if derived not in ("fido2CombinationConfiguration", "x509CertificateCombinationConfiguration"):
        raise bad_request("Specify @odata.type of the combination configuration.")
    props, _ = check_body(derived, body, create=True)
    if not props.get("appliesToCombinations"):
        raise bad_request("Property appliesToCombinations value is required but is empty or missing.")  # fmt: skip
    with d.lock:
        row = _row(d, "authenticationStrengthPolicy", key)
        _built_in("authenticationStrengthPolicy", row, "updated")
        item = {"@odata.type": f"#microsoft.graph.{derived}", "id": str(uuid.uuid4()), **copy.deepcopy(props)}  # fmt: skip
        row.setdefault("combinationConfigurations", []).append(item)
        d.policies.update("authenticationStrengthPolicy", key, {}, iso(d.now()))
        return item


def add_condition_set(d: Directory, policy_id: str, relation: str, body: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    props, _ = check_body("permissionGrantConditionSet", body, create=True)
    with d.lock:
        row = _row(d, "permissionGrantPolicy", policy_id)
        item = {"id": str(uuid.uuid4()), **copy.deepcopy(props)}
        _defaults("permissionGrantConditionSet", item)
        row.setdefault(relation, []).append(item)
        return item


def remove_condition_set(d: Directory, policy_id: str, relation: str, set_id: str) -> None:
    with d.lock:
        row = _row(d, "permissionGrantPolicy", policy_id)
        items = row.get(relation) or []
        if not any(i["id"] == set_id for i in items):
            raise not_found(set_id)
        row[relation] = [i for i in items if i["id"] != set_id]


# -- service principal policy links -----------------------------------------------------------


def link_policy(d: Directory, sp_id: str, relation: str, body: Any) -> None:
    kind = SP_RELATIONS[relation]
    if not isinstance(body, dict) or "@odata.id" not in body:
        raise bad_request("Invalid request body: @odata.id expected.")
    policy_id = ref_id(body["@odata.id"])
    with d.lock:
        if d.row("servicePrincipal", sp_id) is None:
            raise not_found(sp_id)
        if d.policies.get(kind, policy_id) is None:
            raise not_found(policy_id)
        links = d.objects.links[f"servicePrincipal.{relation}"].get(sp_id, set())
        if policy_id in links:
            raise bad_request(
                "One or more added object references already exist for the following modified "
                f"properties: '{relation}'."
            )
        if links:  # one policy of each type per service principal (documented)
            raise _refused(
                f"A service principal can have only one {kind}; remove the assigned one first."
            )  # UNCONFIRMED wording
        link(d, f"servicePrincipal.{relation}", sp_id, policy_id)


def unlink_policy(d: Directory, sp_id: str, relation: str, policy_id: str) -> None:
    with d.lock:
        if d.row("servicePrincipal", sp_id) is None:
            raise not_found(sp_id)
        name = f"servicePrincipal.{relation}"
        if policy_id not in d.objects.links[name].get(sp_id, set()):
            raise not_found(policy_id)
        unlink(d, name, sp_id, policy_id)


__all__ = ["COLLECTIONS", "create", "delete", "update", "update_singleton"]
