"""Restore of Groups general settings (self-service group management and the other "Groups >
General" toggles) through the admin portal's API with the tenant's service account.

The API takes the whole object (agent/portal.py): restore reads the live settings, puts the
snapshot's values of the properties that differ over them and PUTs the result. The seed
requires the service account to hold Cloud Application Administrator for this (Global
Administrator also does); the plan checks the account's roles (dry run included) and skips the
settings with that reason, and the portal itself answers 403 without it.
"""

from __future__ import annotations

from typing import Any

from agent.graph import GraphClient
from agent.kinds import KindSpec
from agent.portal import SSGM_FIELDS, SSGM_READ_ONLY
from agent.restore.actions import Action
from agent.restore.restorers import GraphObjects, register
from agent.restore.session import RestoreSession, current, refuse

ROLE = "Cloud Application Administrator"


class PortalSettings(GraphObjects):
    def writable(self, spec: KindSpec) -> frozenset[str]:
        return frozenset(SSGM_FIELDS) - SSGM_READ_ONLY

    def creatable(self, spec: KindSpec) -> frozenset[str]:
        return self.writable(spec)

    def why_not(self, spec: KindSpec, prop: str) -> str:
        return "read-only: the admin portal sets it"

    def check(self, actions: list[Action], session: RestoreSession) -> None:
        why = session.missing_account_role(ROLE)
        for action in actions if why else ():
            refuse(action, f"Groups general settings: {why}")

    def read(self, g: GraphClient, spec: KindSpec, oid: str) -> dict[str, Any]:
        return {"id": oid, **current().portal().groups_general_settings()}

    def patch(self, g: GraphClient, spec: KindSpec, oid: str, body: dict[str, Any]) -> None:
        portal = current().portal()
        now = portal.groups_general_settings()
        portal.set_groups_general_settings({**now, **body})

    def create(self, g: GraphClient, spec: KindSpec, body: dict[str, Any]) -> dict[str, Any]:
        # A tenant always has these settings: "recreate" is a write of every value.
        self.patch(g, spec, str(spec.name), body)
        return {"id": spec.name}


register(PortalSettings(), "groupsGeneralSettings")
