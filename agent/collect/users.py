"""Users and their managers.

A full read takes the users delta position first (``$deltatoken=latest``, facts file §2), then
reads two short chains side by side: the users from the plain collection (``$top=999``: a page
of 999 for 1 RU, where a delta page holds 100) and the managers from a delta round that selects
only ``manager`` (``manager@delta``: no request per user). The position taken first is the one
stored, so every change made while the reads ran comes with the next incremental round
(replaying a change already read is harmless: the newest state wins).

An incremental run reads the users delta from that position with ``$select=…,manager``: only
the users whose tracked properties or manager changed.

A list read shows an unset property as null or [] where a delta item leaves it out; both are
stored with them (``with_unset``), so a user reads the same either way (incremental equals
full).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.collect.base import CollectContext, Stager, side_by_side, stage_listing, with_unset
from agent.collect.prefetch import CHAIN_DEPTH, prefetched
from agent.db.catalog import KindResult
from agent.graph.client import DeltaRound

USER_KINDS = ("user", "userManager")
LIST_PAGE = "999"  # facts file §2: /users pages up to 999


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
    params = {"$select": ",".join(select)}
    users = ctx.stager("user") if spec else None
    managers = ctx.stager("userManager") if ctx.wants("userManager") else None
    stored = _shared_link(ctx, names)
    if stored is None:
        link: str | None = ctx.graph.delta_position("/users/delta", params=params)
        _read_in_full(ctx, users, managers)
        full = True
    else:
        round_ = ctx.graph.delta("/users/delta", params=params, delta_link=stored)
        _read_round(ctx, round_, users, managers)
        link, full = round_.delta_link, round_.full  # a rejected link made it a full round
    return {
        name: stager.finish(full_listing=full, delta_link=link)
        for name, stager in (("user", users), ("userManager", managers))
        if stager is not None
    }


def _read_in_full(ctx: CollectContext, users: Stager | None, managers: Stager | None) -> None:
    tasks: list[Callable[[], None]] = []
    if users is not None:
        tasks.append(lambda: _list_users(ctx, users))
    if managers is not None:
        tasks.append(lambda: _all_managers(ctx, managers))
    side_by_side(tasks)


def _list_users(ctx: CollectContext, stager: Stager) -> None:
    params = {"$select": ",".join(stager.kind.select), "$top": LIST_PAGE}
    stage_listing(ctx, stager, stager.kind.path or "/users", params, "user")


def _all_managers(ctx: CollectContext, stager: Stager) -> None:
    round_ = ctx.graph.delta("/users/delta", params={"$select": "id,manager"})
    done = 0
    for page in prefetched(round_.pages(), CHAIN_DEPTH):
        _stage_managers(ctx, stager, page.items, full=True)
        done += len(page.items)
        ctx.report("userManager", done)


def _read_round(
    ctx: CollectContext, round_: DeltaRound, users: Stager | None, managers: Stager | None
) -> None:
    done = 0
    for page in prefetched(round_.pages()):
        if managers is not None:
            _stage_managers(ctx, managers, page.items, round_.full)
        if users is not None:
            for item in page.items:
                if "@removed" in item:  # soft or hard deleted: gone from the live state
                    users.remove(item["id"])
                else:
                    users.put(with_unset(users.kind, item))
            users.flush()
        done += len(page.items)
        ctx.report("user", done)


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
    if gone and not full:
        stored = ctx.catalog.current_blobs(ctx.tenant, stager.kind.name, gone)
        for user_id in gone:
            if user_id in stored:
                stager.remove(user_id)
    stager.flush()
