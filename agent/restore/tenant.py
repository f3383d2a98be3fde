"""Restore of the tenant configuration Graph writes by plain PATCH/POST: group settings
(directory settings from templates), the organization and domains.

- groupSetting: PATCH of ``values``; a deleted setting is created again from its
  ``templateId`` (new id; a setting recreated by an earlier restore is matched by template).
- organization: PATCH of the five properties organization-update takes; the rest is read-only
  (onPremisesSyncEnabled is never written by a restore: it switches directory sync).
- domain: PATCH of authenticationType, isDefault, supportedServices and the password windows.
  A removed domain is added again, but Entra lets it carry services or become the default only
  once it is verified by a DNS TXT record: restore adds it, reads the record Entra asks for and
  reports "needs verification"; the next restore verifies it (POST verify) and writes the rest.
"""

from __future__ import annotations

from typing import Any

from agent.errors import AgentError
from agent.graph import GraphClient
from agent.kinds import KindSpec
from agent.restore.restorers import GraphObjects, register
from agent.restore.session import current

VERIFY_AGAIN = "then run this restore again: it verifies the domain and restores the rest"


class Domains(GraphObjects):
    def creatable(self, spec: KindSpec) -> frozenset[str]:
        # A new domain takes only its name; the rest needs verification first.
        return frozenset({"id", "isVerified", *self.writable(spec)})

    def create(self, g: GraphClient, spec: KindSpec, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body["id"])
        created = g.post("/domains", {"id": name})
        rest = {k: v for k, v in body.items() if k in self.writable(spec) and v is not None}
        if body.get("isVerified") and not created.get("isVerified"):
            self._needs_verification(g, spec, name, rest)
        elif rest:  # verified at once (a subdomain of a verified domain) or never was
            self.patch(g, spec, name, rest)
        return created

    def patch(self, g: GraphClient, spec: KindSpec, oid: str, body: dict[str, Any]) -> None:
        needs_verified = bool(body.get("supportedServices")) or body.get("isDefault") is True
        if needs_verified and not g.get_json(f"/domains/{oid}").get("isVerified"):
            try:
                g.post(f"/domains/{oid}/verify")
            except AgentError:
                self._needs_verification(g, spec, oid, body)
                return
        g.patch(f"/domains/{oid}", body)

    def _needs_verification(
        self, g: GraphClient, spec: KindSpec, name: str, body: dict[str, Any]
    ) -> None:
        records = g.get_json(f"/domains/{name}/verificationDnsRecords").get("value", [])
        txt = next((r.get("text") for r in records if r.get("recordType") == "Txt"), None)
        record = f"the TXT record {txt}" if txt else "the TXT record Entra shows for it"
        why = f"needs verification: add {record} to the DNS zone of {name}, {VERIFY_AGAIN}"
        session = current()
        session.remark(spec.name, name, "isVerified", why)
        for prop in body:
            if prop in self.writable(spec):
                session.remark(spec.name, name, prop, f"written once the domain is verified ({why})")  # fmt: skip


class Organization(GraphObjects):
    def write_permissions(self, spec: KindSpec) -> tuple[str, ...]:
        return spec.write_permissions  # organization-update takes no Directory.ReadWrite.All


GROUP_SETTINGS, ORGANIZATION, DOMAINS = GraphObjects(), Organization(), Domains()
register(GROUP_SETTINGS, "groupSetting")
register(ORGANIZATION, "organization")
register(DOMAINS, "domain")
