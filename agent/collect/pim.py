"""PIM role eligibility: a plain list read, except that Graph refuses it (400
AadPremiumLicenseRequired) in tenants without Microsoft Entra ID P2 or ID Governance. That
is a fact about the tenant, not a failure: the kind is skipped and says why."""

from __future__ import annotations

from agent.collect.base import CollectContext
from agent.collect.graph_generic import collect_list
from agent.db.catalog import KindResult
from agent.errors import GraphError

NOT_LICENSED = "not licensed (needs Microsoft Entra ID P2 or ID Governance)"


def collect_pim(ctx: CollectContext) -> dict[str, KindResult]:
    try:
        return collect_list(ctx)
    except GraphError as exc:
        if exc.graph_code != "AadPremiumLicenseRequired":
            raise
        for kind in ctx.kinds:
            ctx.log("warning", f"Skipped {kind.name}: {NOT_LICENSED}.", kind=kind.name)
        return {
            k.name: KindResult(kind=k.name, status="skipped", mode="full", reason=NOT_LICENSED)
            for k in ctx.kinds
        }
