"""Users and their managers through one Graph users delta round.

``$select=…,manager`` makes the users delta carry ``manager@delta`` (facts file §2), so the
manager costs no request of its own and stays incremental: a full round names every user's
manager, an incremental round only the users whose manager (or other tracked property)
changed. Users repeat nowhere (a manager is single-valued), so items are staged as they come.
"""

from __future__ import annotations

from typing import Any

from agent.collect.base import CollectContext, Stager
from agent.collect.prefetch import prefetched
from agent.db.catalog import KindResult

USER_KINDS = ("user", "userManager")


def _shared_link(ctx: CollectContext, names: list[str]) -> str | None:
    """The round's stored position: only when every kind read from it holds the same one
    (a kind newly in scope, or a link made for another $select, means a full round)."""
    links = {ctx.delta_link(name) for name in names}
    return links.pop() if len(links) == 1 else None


def manager_from(item: dict[str, Any]) -> dict[str, str] | None:
    """The manager a delta item names, or None when it has none (any more)."""
    for entry in item.get("manager@delta") or ():
        if "@removed" not in entry:
            return {"id": entry["id"], "@odata.type": entry.get("@odata.type", "")}
    return None


def collect_users(ctx: CollectContext) -> dict[str, KindResult]:
    names = [name for name in USER_KINDS if ctx.wants(name)]
    spec = ctx.kind("user") if ctx.wants("user") else None
    select = list(spec.select) if spec else ["id"]
    if ctx.wants("userManager"):
        select.append("manager")
    round_ = ctx.graph.delta(
        "/users/delta",
        params={"$select": ",".join(select)},
        delta_link=_shared_link(ctx, names),
    )
    users = ctx.stager("user") if spec else None
    managers = ctx.stager("userManager") if ctx.wants("userManager") else None
    done = 0
    for page in prefetched(round_.pages()):
        if managers is not None:
            _stage_managers(ctx, managers, page.items, round_.full)
        if users is not None:
            for item in page.items:
                if "@removed" in item:  # soft or hard deleted: gone from the live state
                    users.remove(item["id"])
                else:
                    users.put(item)
            users.flush()
        done += len(page.items)
        ctx.report("user", done)
    return {
        name: stager.finish(full_listing=round_.full, delta_link=round_.delta_link)
        for name, stager in (("user", users), ("userManager", managers))
        if stager is not None
    }


def _stage_managers(
    ctx: CollectContext, stager: Stager, items: list[dict[str, Any]], full: bool
) -> None:
    # An incremental item without manager@delta did not change its manager; one whose
    # manager went away removes the stored object, if there is one.
    gone: list[str] = []
    for item in items:
        if "@removed" in item:
            gone.append(item["id"])
        elif "manager@delta" in item or full:
            manager = manager_from(item)
            if manager is not None:
                stager.put({"userId": item["id"], "manager": manager})
            elif not full:
                gone.append(item["id"])
    if gone:
        stored = ctx.catalog.current_blobs(ctx.tenant, stager.kind.name, gone)
        for user_id in gone:
            if user_id in stored:
                stager.remove(user_id)
    stager.flush()
