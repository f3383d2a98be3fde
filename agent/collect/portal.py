"""Groups general settings through the admin portal's API (agent/portal.py)."""

from __future__ import annotations

from agent.collect.base import CollectContext
from agent.db.catalog import KindResult

SINGLETON_ID = "groupsGeneralSettings"


def collect_groups_general_settings(ctx: CollectContext) -> dict[str, KindResult]:
    assert ctx.portal is not None  # the job skips portal kinds without a service account
    stager = ctx.stager("groupsGeneralSettings")
    settings = ctx.portal.groups_general_settings()
    stager.put({"id": SINGLETON_ID, **settings})
    return {"groupsGeneralSettings": stager.finish(full_listing=True)}
