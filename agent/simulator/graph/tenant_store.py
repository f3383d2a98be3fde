"""Tenant-wide configuration of a simulated tenant: the RBAC view of directory roles (role
definitions, assignments, PIM eligibility), group setting templates and settings, the
organization with its company branding (text and images), and domains.

None of these kinds has a delta function, so nothing here goes through the change log:
clients read them in full. Rows are stored as Graph serialises them (set properties only).

Role assignments of built-in roles are not stored twice: they are the members of the
activated directory roles (tenant scope "/") and the scoped role members of administrative
units ("/administrativeUnits/{id}"), read live from the ``ObjectStore``, so a change to a
role's members shows in ``/roleManagement/directory/roleAssignments`` as it does in Entra.
Only assignments of custom roles are kept here.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.simulator.graph.directory import Directory

# Edm.Stream properties of organizationalBrandingProperties (CSDL) and the segment of their
# relative CDN URL.
BRANDING_STREAMS: dict[str, str] = {
    "backgroundImage": "illustration",
    "bannerLogo": "bannerlogo",
    "customCSS": "customcss",
    "favicon": "favicon",
    "headerLogo": "headerlogo",
    "squareLogo": "tilelogo",
    "squareLogoDark": "tilelogodark",
}
DEFAULT_LOCALE = "0"  # the default branding's id (Graph also accepts "default")


def assignment_id(role_id: str, principal_id: str, scope: str) -> str:
    """Entra's id of an active assignment: base64url of the role and principal GUIDs (as
    stored, little-endian) and a suffix; AU-scoped ones also carry the unit."""
    parts = [role_id, principal_id] + ([scope.rsplit("/", 1)[-1]] if scope != "/" else [])
    raw = b"".join(uuid.UUID(p).bytes_le for p in parts)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "-1"


@dataclass
class TenantStore:
    role_definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    custom_assignments: dict[str, dict[str, Any]] = field(default_factory=dict)
    eligibility: dict[str, dict[str, Any]] = field(default_factory=dict)
    setting_templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    organization: dict[str, Any] = field(default_factory=dict)
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    branding: dict[str, dict[str, Any]] = field(default_factory=dict)  # locale -> text
    images: dict[str, dict[str, bytes]] = field(default_factory=dict)  # locale -> stream -> bytes
    # The tenant's public DNS as domain verification sees it: domain -> TXT values.
    dns_txt: dict[str, list[str]] = field(default_factory=dict)

    # -- role assignments: built-in ones derived from role members ------------------------

    def role_assignments(self, d: Directory) -> dict[str, dict[str, Any]]:
        """Every active assignment whose principal (and scope) is live, by id. Caller holds
        the directory lock."""
        out: dict[str, dict[str, Any]] = {}

        def add(role_def: str, principal: str, scope: str) -> None:
            if d.kind_of(principal) is None or role_def not in self.role_definitions:
                return  # a deleted principal's assignments come back with it
            aid = assignment_id(role_def, principal, scope)
            out[aid] = {
                "id": aid,
                "directoryScopeId": scope,
                "principalId": principal,
                "roleDefinitionId": role_def,
            }

        store = d.objects
        template_of: dict[str, str] = {}
        for _, role in d.scan("directoryRole", 0):
            template_of[role["id"]] = role["roleTemplateId"]
            for member in store.targets("directoryRole.members", role["id"]):
                add(role["roleTemplateId"], member, "/")
        for _, unit in d.scan("administrativeUnit", 0):
            for scoped in store.of("administrativeUnit.scopedRoleMembers", unit["id"]):
                template = template_of.get(scoped["roleId"])
                if template:
                    add(
                        template,
                        scoped["roleMemberInfo"]["id"],
                        f"/administrativeUnits/{unit['id']}",
                    )
        for row in self.custom_assignments.values():
            scope = row["directoryScopeId"]
            unit = scope.removeprefix("/administrativeUnits/")
            if scope == "/" or d.row("administrativeUnit", unit) is not None:
                add(row["roleDefinitionId"], row["principalId"], scope)
        return out

    def live_eligibility(self, d: Directory) -> dict[str, dict[str, Any]]:
        return {
            k: r
            for k, r in self.eligibility.items()
            if d.kind_of(r["principalId"]) is not None
            and r["roleDefinitionId"] in self.role_definitions
        }

    # -- organization ---------------------------------------------------------------------

    def organization_row(self) -> dict[str, Any]:
        """The organization with verifiedDomains computed from the verified domains."""
        if not self.organization:
            return {}
        verified = [
            {
                "capabilities": "Email, OfficeCommunicationsOnline"
                if "Email" in dom.get("supportedServices", [])
                else "None",
                "isDefault": dom["isDefault"],
                "isInitial": dom["isInitial"],
                "name": dom["id"],
                "type": dom["authenticationType"],
            }
            for dom in self.domains.values()
            if dom["isVerified"]
        ]
        return {**self.organization, "verifiedDomains": verified}

    # -- persistence ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "role_definitions": list(self.role_definitions.values()),
            "custom_assignments": list(self.custom_assignments.values()),
            "eligibility": list(self.eligibility.values()),
            "setting_templates": list(self.setting_templates.values()),
            "group_settings": list(self.group_settings.values()),
            "organization": self.organization,
            "domains": list(self.domains.values()),
            "branding": self.branding,
            "images": {
                loc: {s: base64.b64encode(b).decode() for s, b in streams.items()}
                for loc, streams in self.images.items()
            },
            "dns_txt": self.dns_txt,
        }

    @classmethod
    def from_json(cls, state: dict[str, Any] | None) -> TenantStore:
        state = state or {}

        def by_id(name: str) -> dict[str, dict[str, Any]]:
            return {r["id"]: r for r in state.get(name, [])}

        return cls(
            role_definitions=by_id("role_definitions"),
            custom_assignments=by_id("custom_assignments"),
            eligibility=by_id("eligibility"),
            setting_templates=by_id("setting_templates"),
            group_settings=by_id("group_settings"),
            organization=dict(state.get("organization", {})),
            domains=by_id("domains"),
            branding=dict(state.get("branding", {})),
            images={
                loc: {s: base64.b64decode(b) for s, b in streams.items()}
                for loc, streams in state.get("images", {}).items()
            },
            dns_txt={k: list(v) for k, v in state.get("dns_txt", {}).items()},
        )
