"""Restore of what hangs off applications, service principals and devices: app extension
properties (recreate only: Graph has no update for them), federated identity credentials
(create, update), the claims mapping / token issuance / token lifetime / home realm discovery
policies linked to service principals ($ref), devices (patch only: a device cannot be
recreated by an app) and their registered owners and users ($ref)."""

from __future__ import annotations

from typing import Any

from agent.errors import WriteRejected
from agent.graph import GraphClient
from agent.kinds import KindSpec
from agent.kinds.links import short_name
from agent.restore.restorers import (
    GRAPH_ROOT,
    LINKS,
    GraphLinks,
    GraphObjects,
    link_field,
    register,
)

EXT_CREATE = ("dataType", "isMultiValued", "targetObjects")
FIC_CONTENT = ("issuer", "subject", "audiences", "description")


class _Children(GraphLinks):
    """Entities an application owns: created by POST to the collection, removed by id."""

    def remove(self, g: GraphClient, spec: KindSpec, pid: str, target: str) -> None:
        g.delete(f"{self._base(spec, pid)}/{target}")


class ExtensionProperties(_Children):
    def add(self, g: GraphClient, spec: KindSpec, pid: str, item: dict[str, Any]) -> None:
        body = {k: item[k] for k in EXT_CREATE if item.get(k) is not None}
        g.post(self._base(spec, pid), {"name": short_name(item), **body})


class FederatedCredentials(_Children):
    content = FIC_CONTENT  # an edited credential keeps its name: updated in place

    def add(self, g: GraphClient, spec: KindSpec, pid: str, item: dict[str, Any]) -> None:
        body = {k: item.get(k) for k in FIC_CONTENT}
        try:
            g.post(self._base(spec, pid), {"name": item.get("name"), **body})
        except WriteRejected as exc:
            if exc.reason != "conflict":
                raise
            g.patch(f"{self._base(spec, pid)}/{item.get('name')}", body)  # edited since


class PolicyLinks(GraphLinks):
    """A service principal holds at most one policy of each type: the one linked since is
    unlinked before the snapshot's is linked again."""

    removes_first = True

    def add(self, g: GraphClient, spec: KindSpec, pid: str, item: dict[str, Any]) -> None:
        relation = link_field(spec)
        ref = {"@odata.id": f"{GRAPH_ROOT}/policies/{relation}/{item['id']}"}
        g.post(f"{self._base(spec, pid)}/$ref", ref)


class Devices(GraphObjects):
    """Devices are registered by the device itself (Entra join / registration, Intune
    enrolment): an app can only change the administrator's settings of one that exists."""

    WRITABLE = frozenset({"accountEnabled", "displayName"})

    def cannot_restore(
        self, spec: KindSpec, then: dict[str, Any], now: dict[str, Any] | None
    ) -> str:
        if now is None:
            return "cannot be recreated: devices re-register themselves (join or enrol again)"
        return ""

    def writable(self, spec: KindSpec) -> frozenset[str]:
        return self.WRITABLE

    def why_not(self, spec: KindSpec, prop: str) -> str:
        return "reported by the device or set by Entra/Intune: not written by restore"


# Proven by tests/test_restore_app_links.py.
register(ExtensionProperties(), "applicationExtensionProperty")
register(FederatedCredentials(), "applicationFederatedCredential")
# Claims mapping and token issuance links are SSO configuration: sso.py registers them with
# the service account's role check.
register(PolicyLinks(), "servicePrincipalTokenLifetimePolicy", "servicePrincipalHomeRealmDiscoveryPolicy")  # fmt: skip
register(Devices(), "device")
register(LINKS, "deviceRegisteredOwner", "deviceRegisteredUser")
