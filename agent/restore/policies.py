"""Restorers of the Entra policy kinds (agent/kinds/entra_config.py POLICY_KINDS).

Collections (conditional access, named locations, strengths, cross-tenant partners, token /
HRD / timeout / claims / issuance, permission grant and group lifecycle policies) are PATCHed
and, when gone, POSTed again (policies have no recycle bin). Tenant-wide singletons are only
ever PATCHed (the admin consent request policy is PUT, as documented). Where Graph writes a
part through its own call, the restorer does it: a strength's allowedCombinations through
updateAllowedCombinations and its combination configurations by POST; each authentication
method configuration by its own PATCH; a permission grant policy's include / exclude condition
sets by POST and DELETE. Built-in strengths and permission grant policies are Microsoft's:
skipped with that reason. References to users, groups, roles, named locations and strengths
are declared on the kinds (``references``) and handled by the plan.

Read-only and create-only properties follow the v1.0 resource pages.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from agent.graph import GraphClient
from agent.kinds import BY_NAME, KindSpec
from agent.kinds.entra_config import POLICY_KINDS
from agent.restore import properties
from agent.restore.restorers import GraphObjects, register
from agent.schema.csdl import load_schema

_STAMPS = frozenset(
    {"id", "createdDateTime", "modifiedDateTime", "deletedDateTime", "lastModifiedDateTime"}
)
READ_ONLY: dict[str, frozenset[str]] = {
    "conditionalAccessPolicy": _STAMPS | {"templateId"},
    "authenticationStrengthPolicy": _STAMPS | {"policyType", "requirementsSatisfied"},
    "authenticationMethodsPolicy": _STAMPS | {"policyVersion"},
    "crossTenantAccessDefault": frozenset({"id", "isServiceDefault"}),
    "crossTenantAccessPartner": frozenset({"isInMultiTenantOrganization"}),
    "adminConsentRequestPolicy": frozenset({"id", "version"}),
}
CREATE_ONLY: dict[str, frozenset[str]] = {
    "crossTenantAccessPartner": frozenset({"tenantId"}),
    "permissionGrantPolicy": frozenset({"id"}),
}
# Contained parts written by calls of their own (see the module docstring).
PARTS: dict[str, frozenset[str]] = {
    "authenticationStrengthPolicy": frozenset({"combinationConfigurations"}),
    "authenticationMethodsPolicy": frozenset({"authenticationMethodConfigurations"}),
    "permissionGrantPolicy": frozenset({"includes", "excludes"}),
}
# Derived types a kind's objects take (a named location is an IP or a country location).
DERIVED = {"namedLocation": ("ipNamedLocation", "countryNamedLocation")}
BUILT_IN_GRANT_PREFIX = "microsoft-"
# Condition sets and combination configurations get new ids when written again: compared by
# content.
BY_CONTENT = {
    "permissionGrantPolicy": ("includes", "excludes"),
    "authenticationStrengthPolicy": ("combinationConfigurations",),
}


@cache
def _writable_of(kind: str) -> frozenset[str]:
    spec = BY_NAME[kind]
    types = DERIVED.get(kind, (spec.entity_type or kind,))
    csdl: set[str] = set()
    for entity in types:
        csdl |= load_schema().writable_properties(entity)
    return frozenset(
        (csdl - READ_ONLY.get(kind, _STAMPS) - CREATE_ONLY.get(kind, frozenset()))
        | PARTS.get(kind, frozenset())
    )


def _content(items: Any) -> list[str]:
    """Items compared by content: without their ids and null values, sorted."""
    out = []
    for item in items or []:
        if isinstance(item, dict):
            item = {k: v for k, v in item.items() if k != "id" and v is not None}
        out.append(json.dumps(item, sort_keys=True))
    return sorted(out)


def _body(item: dict[str, Any], allowed: frozenset[str] | None = None) -> dict[str, Any]:
    """A contained item as a create body: no id, no nulls, annotations kept."""
    return {
        k: v
        for k, v in item.items()
        if k != "id" and v is not None and (allowed is None or k in allowed or k[0] == "@")
    }


class Policies(GraphObjects):
    """Policy collections."""

    def write_permissions(self, spec: KindSpec) -> tuple[str, ...]:
        return spec.write_permissions  # Directory.ReadWrite.All writes no policy

    def writable(self, spec: KindSpec) -> frozenset[str]:
        return _writable_of(spec.name)

    def creatable(self, spec: KindSpec) -> frozenset[str]:
        extra = {"@odata.type"} if spec.name in DERIVED else set()
        return _writable_of(spec.name) | CREATE_ONLY.get(spec.name, frozenset()) | extra

    def why_not(self, spec: KindSpec, prop: str) -> str:
        if prop in CREATE_ONLY.get(spec.name, ()):
            return properties.WHY_CREATE_ONLY
        return properties.WHY_READ_ONLY

    def cannot_restore(
        self, spec: KindSpec, then: dict[str, Any], now: dict[str, Any] | None
    ) -> str:
        if spec.name == "authenticationStrengthPolicy" and then.get("policyType") == "builtIn":
            return "built-in authentication strength: Microsoft manages it (read-only)"
        if spec.name == "permissionGrantPolicy" and str(then.get("id", "")).startswith(
            BUILT_IN_GRANT_PREFIX
        ):
            return "built-in permission grant policy: Microsoft manages it (read-only)"
        return ""

    def comparable(self, spec: KindSpec, obj: dict[str, Any]) -> dict[str, Any]:
        names = BY_CONTENT.get(spec.name, ())
        if not names:
            return obj
        return {k: (_content(v) if k in names else v) for k, v in obj.items()}

    def patch(self, g: GraphClient, spec: KindSpec, oid: str, body: dict[str, Any]) -> None:
        self.update(g, spec, oid, body, {})

    def update(
        self, g: GraphClient, spec: KindSpec, oid: str, body: dict[str, Any], then: dict[str, Any]
    ) -> None:
        body = dict(body)
        parts = {k: body.pop(k) for k in PARTS.get(spec.name, ()) if k in body}
        combos = body.pop("allowedCombinations", None)
        if spec.name in DERIVED and body and then.get("@odata.type"):
            body["@odata.type"] = then["@odata.type"]  # a named location's PATCH names it
        if body:
            g.patch(self.path(spec, oid), body)
        if combos is not None:  # not PATCHable: its own action
            g.post(
                f"{self.path(spec, oid)}/updateAllowedCombinations",
                {"allowedCombinations": combos},
            )
        for name, wanted in parts.items():
            self._sync_items(g, f"{self.path(spec, oid)}/{name}", wanted or [], spec)

    def create(self, g: GraphClient, spec: KindSpec, body: dict[str, Any]) -> dict[str, Any]:
        body = dict(body)
        parts = {k: body.pop(k) for k in PARTS.get(spec.name, ()) if k in body}
        created = g.post(spec.path or "", body)
        new = str(created.get(spec.key) or body.get(spec.key) or "")
        for name, items in parts.items():
            for item in items or []:
                g.post(f"{self.path(spec, new)}/{name}", _body(item))
        return created

    def _sync_items(
        self, g: GraphClient, base: str, wanted: list[dict[str, Any]], spec: KindSpec
    ) -> None:
        """Make a contained collection hold ``wanted`` (by content): add what is missing;
        condition sets that are not wanted are deleted (combination configurations are only
        added: a strength keeps extra ones, verify reports them)."""
        present = g.get_json(base).get("value") or []
        have = {_content([i])[0]: i for i in present}
        want = {_content([i])[0]: i for i in wanted}
        for key in want.keys() - have.keys():
            g.post(base, _body(want[key]))
        if spec.name == "permissionGrantPolicy":
            for key in have.keys() - want.keys():
                g.delete(f"{base}/{have[key]['id']}")


class Singletons(Policies):
    """Tenant-wide policies: only ever updated, at their own path."""

    def path(self, spec: KindSpec, oid: str) -> str:
        return spec.path or ""

    def cannot_restore(
        self, spec: KindSpec, then: dict[str, Any], now: dict[str, Any] | None
    ) -> str:
        if now is None:
            return "not in the live read: a tenant-wide setting is only ever updated, never created"
        return ""

    def create(self, g: GraphClient, spec: KindSpec, body: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("a tenant-wide policy is never recreated")  # the plan skips it

    def update(
        self, g: GraphClient, spec: KindSpec, oid: str, body: dict[str, Any], then: dict[str, Any]
    ) -> None:
        body = dict(body)
        methods = body.pop("authenticationMethodConfigurations", None)
        if spec.name == "adminConsentRequestPolicy" and then:
            # Documented as PUT: every writable property, or Graph resets the ones left out.
            writable = self.writable(spec)
            g.put(self.path(spec, oid), {k: v for k, v in then.items() if k in writable})
        elif body:
            g.patch(self.path(spec, oid), body)
        if methods is not None:
            self._patch_methods(g, spec, methods)

    def _patch_methods(self, g: GraphClient, spec: KindSpec, wanted: list[dict[str, Any]]) -> None:
        """One PATCH per method configuration that differs, naming its derived type."""
        base = f"{spec.path}/authenticationMethodConfigurations"
        present = {str(c.get("id")).lower(): c for c in g.get_json(base).get("value") or []}
        for config in wanted:
            now = present.get(str(config.get("id")).lower(), {})
            odata = str(config.get("@odata.type") or now.get("@odata.type") or "")
            allowed = method_writable(odata.rsplit(".", 1)[-1])
            body = {k: v for k, v in config.items() if k in allowed and now.get(k) != v}
            if body:
                g.patch(f"{base}/{config['id']}", {"@odata.type": odata, **body})


@cache
def method_writable(entity: str) -> frozenset[str]:
    """A method configuration's PATCH: its type's properties and its includeTargets."""
    csdl = load_schema().writable_properties(entity or "authenticationMethodConfiguration")
    return frozenset((csdl - {"id"}) | {"includeTargets"})


POLICIES, SINGLETONS = Policies(), Singletons()
for _spec in POLICY_KINDS:
    register(SINGLETONS if _spec.singleton else POLICIES, _spec.name)
