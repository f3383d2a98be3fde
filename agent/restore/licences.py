"""Users and groups with their licences: the directory object is written as any other
(GraphObjects), and its licences with POST /{users|groups}/{id}/assignLicense, after the
object's own PATCH or POST so a user's usageLocation (which a licence needs) is set first.

Only a user's direct licences are written: ``licenseAssignmentStates`` says which of its
``assignedLicenses`` came from a group (``assignedByGroup``), and those come back when the
group's own licences and members are restored. A SKU the tenant no longer subscribes to is
refused by Graph and reported; restore buys nothing.
"""

from __future__ import annotations

from typing import Any

from agent.graph import GraphClient
from agent.kinds import KindSpec
from agent.restore.restorers import GraphObjects, register

LICENCES = ("assignedLicenses", "licenseAssignmentStates")


def direct(obj: dict[str, Any]) -> dict[str, list[str]]:
    """SKU → disabled plans of the licences assigned to the object itself (not by a group)."""
    states = obj.get("licenseAssignmentStates")
    if isinstance(states, list):  # a user: the states tell direct from inherited
        items = [s for s in states if isinstance(s, dict) and not s.get("assignedByGroup")]
    else:  # a group (every licence is its own), or a snapshot without states
        items = [x for x in obj.get("assignedLicenses") or () if isinstance(x, dict)]
    return {str(x["skuId"]): sorted(x.get("disabledPlans") or []) for x in items}


class LicensedObjects(GraphObjects):
    def writable(self, spec: KindSpec) -> frozenset[str]:
        own = frozenset(LICENCES if spec.name == "user" else LICENCES[:1])
        return super().writable(spec) | own

    def cloud_writable(self, spec: KindSpec) -> frozenset[str]:
        """What Graph writes on an object synced from on-premises AD: licences, and a
        user's usage location (cloud-only properties)."""
        return frozenset({"usageLocation", *LICENCES}) & self.writable(spec)

    def creatable(self, spec: KindSpec) -> frozenset[str]:
        return super().creatable(spec) | self.writable(spec)

    def patch(self, g: GraphClient, spec: KindSpec, oid: str, body: dict[str, Any]) -> None:
        rest = {k: v for k, v in body.items() if k not in LICENCES}
        if rest:
            super().patch(g, spec, oid, rest)
        if any(k in body for k in LICENCES):
            wanted = {k: body[k] for k in LICENCES if k in body}
            self._assign(g, spec, oid, direct(wanted))

    def create(self, g: GraphClient, spec: KindSpec, body: dict[str, Any]) -> dict[str, Any]:
        created = super().create(g, spec, {k: v for k, v in body.items() if k not in LICENCES})
        wanted = direct({k: body[k] for k in LICENCES if k in body})
        if wanted:
            self._assign(g, spec, str(created["id"]), wanted)
        return created

    def _assign(
        self, g: GraphClient, spec: KindSpec, oid: str, wanted: dict[str, list[str]]
    ) -> None:
        """Make the object's own licences ``wanted``: add what is missing or has other
        disabled plans, remove what it holds beyond them; nothing when they match."""
        fields = ",".join(LICENCES if spec.name == "user" else LICENCES[:1])
        present = direct(g.get_json(self.path(spec, oid), {"$select": fields}))
        add = [
            {"skuId": sku, "disabledPlans": plans}
            for sku, plans in sorted(wanted.items())
            if present.get(sku) != plans
        ]
        remove = sorted(present.keys() - wanted.keys())
        if add or remove:
            g.post(f"{self.path(spec, oid)}/assignLicense", {"addLicenses": add, "removeLicenses": remove})  # fmt: skip


# Proven by tests/test_restore_e2e.py (objects) and tests/test_restore_licences.py.
register(LicensedObjects(), "group")  # users: agent/restore/users.py
