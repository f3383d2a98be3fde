"""Licence assignment as Entra does it: direct licences (POST /users/{id}/assignLicense) and
group-based licences (POST /groups/{id}/assignLicense) that every user member inherits.

A user row keeps ``licenseAssignmentStates`` — one entry per licence and source
(``assignedByGroup`` null for a direct one) — and ``assignedLicenses``, the effective set
computed from them (one per SKU), as Graph shows both. Changes go through ``Directory.update``
so users delta sees them. Entra applies group licences asynchronously; here they apply at the
write, to the group's direct user members (and to a user added to or removed from a licensed
group through Graph, writes_links.py). Errors are the service's: unknown SKU, no usage
location, no units left, removing a licence the user does not hold directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.simulator.graph.directory import Directory, iso
from agent.simulator.graph.errors import GraphError, bad_request, not_found
from agent.simulator.graph.generator import EPOCH
from agent.simulator.graph.pipeline import Context, GraphApi
from agent.simulator.graph.query import project
from agent.simulator.httpserver import Response

_DIR = "Directory.ReadWrite.All"
WRITE_USER_LICENCES = frozenset({"LicenseAssignment.ReadWrite.All", "User.ReadWrite.All", _DIR})
WRITE_GROUP_LICENCES = frozenset({"LicenseAssignment.ReadWrite.All", "Group.ReadWrite.All", _DIR})
GRAPH = "https://graph.microsoft.com/v1.0/$metadata#"


def state(sku: str, plans: list[str], group: str | None, when: float) -> dict[str, Any]:
    return {
        "assignedByGroup": group,
        "disabledPlans": list(plans),
        "error": "None",
        "lastUpdatedDateTime": iso(when),
        "skuId": sku,
        "state": "Active",
    }


def set_states(row: dict[str, Any], states: list[dict[str, Any]]) -> dict[str, Any]:
    """The two licence properties of a user row from its states (sorted: direct first)."""
    ordered = sorted(states, key=lambda s: (s["skuId"], s["assignedByGroup"] or ""))
    effective: dict[str, dict[str, Any]] = {}
    for s in ordered:
        effective.setdefault(s["skuId"], {"disabledPlans": s["disabledPlans"], "skuId": s["skuId"]})
    return {"licenseAssignmentStates": ordered, "assignedLicenses": list(effective.values())}


def seed_states(row: dict[str, Any], direct: list[str], groups: dict[str, str]) -> None:
    """Generator: licences given at generation time (``groups``: SKU → licensing group)."""
    states = [state(s, [], None, EPOCH) for s in direct]
    states += [state(s, [], g, EPOCH) for s, g in groups.items()]
    row.update(set_states(row, states))


def _units_left(d: Directory, sku_id: str) -> bool:
    sku = next(s for s in d.objects.skus if s["skuId"] == sku_id)
    used = sum(
        any(lic["skuId"] == sku_id for lic in r.get("assignedLicenses") or ())
        for _, r in d.scan("user", 0)
    )
    sku["consumedUnits"] = used
    return used < int((sku.get("prepaidUnits") or {}).get("enabled") or 0)


def _body(raw: Any) -> tuple[list[dict[str, Any]], list[str]]:
    if not isinstance(raw, dict) or "addLicenses" not in raw or "removeLicenses" not in raw:
        # assignLicense: both parameters are required (an empty collection is allowed)
        raise bad_request("Invalid request body: addLicenses and removeLicenses are required.")
    add = [a for a in raw["addLicenses"] or [] if isinstance(a, dict)]
    return add, [str(r) for r in raw["removeLicenses"] or []]


def _check_skus(d: Directory, skus: list[str]) -> None:
    known = {s["skuId"] for s in d.objects.skus}
    for sku in skus:
        if sku not in known:
            raise bad_request(f"License {sku} does not correspond to a valid company License.")


def _apply(
    d: Directory, uid: str, group: str | None, add: list[dict[str, Any]], remove: list[str]
) -> None:
    """Change the user's states from ``group`` (None: direct) — caller holds the lock."""
    row = d.row("user", uid)
    if row is None:
        return
    states = list(row.get("licenseAssignmentStates") or ())
    mine = {s["skuId"]: s for s in states if s["assignedByGroup"] == group}
    for sku in remove:
        if group is None and sku not in mine:
            raise bad_request("User does not have a corresponding license.")
        mine.pop(sku, None)
    now = d.now()
    for lic in add:
        sku = str(lic.get("skuId"))
        holds = any(x["skuId"] == sku for x in row.get("assignedLicenses") or ())
        if not holds and not _units_left(d, sku):
            raise bad_request(f"Subscription {sku} does not have any available licenses.")
        mine[sku] = state(sku, list(lic.get("disabledPlans") or []), group, now)
    others = [s for s in states if s["assignedByGroup"] != group]
    d.update("user", uid, **set_states(row, others + list(mine.values())))


def assign_user(d: Directory, uid: str, raw: Any) -> dict[str, Any]:
    add, remove = _body(raw)
    with d.lock:
        row = d.row("user", uid)
        if row is None:
            raise not_found(uid)
        _check_skus(d, [str(a.get("skuId")) for a in add] + remove)
        if add and not row.get("usageLocation"):
            raise bad_request(
                "License assignment cannot be done for user with invalid usage location."
            )
        _apply(d, uid, None, add, remove)
        return dict(d.row("user", uid) or {})


def assign_group(d: Directory, gid: str, raw: Any) -> dict[str, Any]:
    add, remove = _body(raw)
    with d.lock:
        row = d.row("group", gid)
        if row is None:
            raise not_found(gid)
        _check_skus(d, [str(a.get("skuId")) for a in add] + remove)
        if add and not row.get("securityEnabled"):
            raise bad_request("Licenses can only be assigned to security groups.")  # UNCONFIRMED
        have = {lic["skuId"]: lic for lic in row.get("assignedLicenses") or ()}
        for sku in remove:
            if sku not in have:
                raise bad_request("Group does not have a corresponding license.")
            del have[sku]
        for lic in add:
            sku = str(lic["skuId"])
            have[sku] = {"disabledPlans": list(lic.get("disabledPlans") or []), "skuId": sku}
        d.update("group", gid, assignedLicenses=sorted(have.values(), key=lambda x: x["skuId"]))
        for member in sorted(d.members_of.get(gid, ())):
            if d.kind_of(member) == "user":
                inherit(d, gid, member)
        return dict(d.row("group", gid) or {})


def inherit(d: Directory, gid: str, uid: str) -> None:
    """Make user ``uid``'s states from group ``gid`` match the group's licences and its
    membership (caller holds the lock); a user over the SKU's units gets an error state."""
    group = d.row("group", gid) or {}
    member = uid in d.members_of.get(gid, ())
    row = d.row("user", uid)
    if row is None:
        return
    want = {lic["skuId"]: lic for lic in group.get("assignedLicenses") or ()} if member else {}
    states = list(row.get("licenseAssignmentStates") or ())
    have = {s["skuId"] for s in states if s["assignedByGroup"] == gid}
    if have == set(want) and all(
        s["disabledPlans"] == want[s["skuId"]]["disabledPlans"]
        for s in states
        if s["assignedByGroup"] == gid
    ):
        return
    others = [s for s in states if s["assignedByGroup"] != gid]
    fresh = [state(k, v["disabledPlans"], gid, d.now()) for k, v in want.items()]
    d.update("user", uid, **set_states(row, others + fresh))


def _answer(kind: str, path: str, row: dict[str, Any]) -> Response:
    context = f"{GRAPH}{path}/$entity"
    return Response.json({"@odata.context": context, **project(kind, row, None)})


def register_licence_routes(api: GraphApi) -> None:
    def handler(kind: str) -> Callable[[Context], Response]:
        def run(ctx: Context) -> Response:
            try:
                raw = ctx.request.json()
            except ValueError as exc:
                raise GraphError(
                    400, "BadRequest", "Empty Payload. JSON content expected."
                ) from exc
            assign = assign_user if kind == "user" else assign_group
            return _answer(kind, f"{kind}s", assign(ctx.directory, ctx.params["id"], raw))

        return run

    api.add("POST", "/users/{id}/assignLicense", handler("user"), WRITE_USER_LICENCES)
    api.add("POST", "/groups/{id}/assignLicense", handler("group"), WRITE_GROUP_LICENCES)
