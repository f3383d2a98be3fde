"""Users through Graph's users delta: a full round on the first run, changes afterwards."""

from __future__ import annotations

from agent.collect.base import CollectContext
from agent.db.catalog import KindResult


def collect_users(ctx: CollectContext) -> dict[str, KindResult]:
    kind = ctx.kind("user")
    stager = ctx.stager("user")
    round_ = ctx.graph.delta(
        "/users/delta",
        params={"$select": ",".join(kind.select)},
        delta_link=ctx.delta_link("user"),
    )
    done = 0
    for page in round_.pages():
        for item in page.items:
            if "@removed" in item:
                # Soft-deleted ("changed") and permanently deleted users both leave the
                # directory's live state; the deletedItems kind records what can be undeleted.
                stager.remove(item["id"])
            else:
                stager.put(item)
        done += len(page.items)
        ctx.report("user", done)
        stager.flush()
    return {"user": stager.finish(full_listing=round_.full, delta_link=round_.delta_link)}
