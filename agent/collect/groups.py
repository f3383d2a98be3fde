"""Groups and their members through Graph's groups delta.

``$select=…,members`` makes the delta carry ``members@delta``: in a full round every member,
in an incremental round only the added and removed ones. A big group repeats across pages and
must be merged (facts file §2), so a round is gathered in scratch space first, then turned
into one group object and one membership object per group.

A full read takes the position first (``$deltatoken=latest``), then reads the groups from the
collection (pages of 999) beside a delta round selecting only ``members``; the stored position
is the one taken first, so changes made during the read come with the next incremental round.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from agent.collect.base import CollectContext, Stager, side_by_side, stage_listing, with_unset
from agent.collect.parent_rounds import ParentRound
from agent.collect.prefetch import CHAIN_DEPTH, prefetched
from agent.collect.scratch import GroupScratch
from agent.db.catalog import KindResult
from agent.graph.client import DeltaRound

LIST_PAGE = "999"  # facts file §2: directory collections page up to 999

MEMBERS_BATCH = 200


def collect_groups(ctx: CollectContext) -> dict[str, KindResult]:
    spec = ctx.kind("group") if ctx.wants("group") else None
    select = list(spec.select) if spec else ["id", "displayName"]
    want_members = ctx.wants("groupMember")
    if want_members:
        select.append("members")
    params = {"$select": ",".join(select)}
    # Both kinds share one delta position: they are read by the same round.
    position_kind = "group" if spec else "groupMember"
    stored = ctx.delta_link(position_kind)
    groups = ctx.stager("group") if spec else None
    members = ctx.stager("groupMember") if want_members else None
    rounds = ctx.parent_rounds if ctx.parent_rounds and ctx.parent_rounds.wanted("group") else None
    if stored is None:
        position = ctx.graph.delta_position("/groups/delta", params=params)
        if rounds is not None:  # group owners take this position for their own
            rounds.publish("group", ParentRound(position, position, full=True))
        link: str | None = position
        _read_in_full(ctx, groups, members)
        full = True
    else:
        round_ = ctx.graph.delta("/groups/delta", params=params, delta_link=stored)
        shown = ParentRound(stored, "", full=False) if rounds is not None else None
        _read_round(ctx, round_, groups, members, shown)
        link, full = round_.delta_link, round_.full  # a rejected link made it a full round
        if rounds is not None and shown is not None and link:
            shown.end, shown.full = link, full
            rounds.publish("group", shown)

    results: dict[str, KindResult] = {}
    if groups:
        results["group"] = groups.finish(full_listing=full, delta_link=link)
    if members:
        results["groupMember"] = members.finish(
            full_listing=full, delta_link=link if not groups else None
        )
    return results


def _read_in_full(ctx: CollectContext, groups: Stager | None, members: Stager | None) -> None:
    """The groups from the collection (pages of 999) beside a delta round that selects only
    ``members`` (the membership approach: members@delta, 1,000 edges a page)."""
    tasks: list[Callable[[], None]] = []
    if groups is not None:
        tasks.append(lambda: _list_groups(ctx, groups))
    if members is not None:
        round_ = ctx.graph.delta("/groups/delta", params={"$select": "id,members"})
        tasks.append(lambda: _read_round(ctx, round_, None, members))
    side_by_side(tasks)


def _list_groups(ctx: CollectContext, stager: Stager) -> None:
    params = {"$select": ",".join(stager.kind.select), "$top": LIST_PAGE}
    stage_listing(ctx, stager, stager.kind.path or "/groups", params, "group")


def _read_round(
    ctx: CollectContext,
    round_: DeltaRound,
    groups: Stager | None,
    members: Stager | None,
    shown: ParentRound | None = None,
) -> None:
    # A full read's members round: a group's list is whole once the round has moved past it
    # (a big group continues at the top of the next page), so it is staged then, beside the
    # chain of pages, not after the last page. A group the round shows again later (Graph may
    # repeat one) is staged again at the end, and the later staging wins at commit.
    early = members if groups is None and round_.full else None
    with GroupScratch(ctx.scratch_dir) as scratch:
        if early is not None:
            scratch.index()  # member lists are read back while the round goes on
        seen = 0
        open_ids: set[str] = set()  # the last page's groups: they may continue
        for page in prefetched(round_.pages(), CHAIN_DEPTH):
            scratch.add_groups(page.items)
            page_ids: set[str] = set()
            for item in page.items:
                if "@removed" not in item:
                    page_ids.add(item["id"])
                if shown is not None and not round_.full:
                    shown.note(item)
            if early is not None:
                done = sorted(open_ids - page_ids)
                for group_id in done:
                    early.put_canonical_parts(group_id, partial(scratch.membership_parts, group_id))
                scratch.mark_staged(*done)
                early.flush()
                open_ids = page_ids
            seen += len(page.items)
            ctx.report("group" if groups else "groupMember", seen)
            ctx.checkpoint()
        scratch.index()
        _stage_round(ctx, scratch, round_.full, groups, members)
        if early is not None:  # a group staged twice is one object
            early.result.succeeded -= scratch.staged_again


def _stage_round(
    ctx: CollectContext,
    scratch: GroupScratch,
    full: bool,
    groups: Stager | None,
    members: Stager | None,
) -> None:
    pending: list[tuple[str, dict[str, Any], bool]] = []
    for group_id, props, removed, has_members in scratch.groups():
        if removed is not None:
            # Owners need no removal here: they are listed in full every run.
            for stager in (groups, members):
                if stager:
                    stager.remove(group_id)
            continue
        pending.append((group_id, props, has_members))
        if len(pending) >= MEMBERS_BATCH:
            _stage_batch(ctx, scratch, full, pending, groups, members)
            pending = []
    if pending:
        _stage_batch(ctx, scratch, full, pending, groups, members)


def _stage_batch(
    ctx: CollectContext,
    scratch: GroupScratch,
    full: bool,
    batch: list[tuple[str, dict[str, Any], bool]],
    groups: Stager | None,
    members: Stager | None,
) -> None:
    ids = [group_id for group_id, _, _ in batch]
    # Incremental rounds carry only what changed: merge it over the last committed version.
    prev_groups = ctx.previous("group", ids) if groups and not full else {}
    # Member lists are loaded one group at a time, and only for groups whose members changed:
    # a tenant-wide group's list is the largest object of a backup.
    prev_members = (
        ctx.catalog.current_blobs(ctx.tenant, "groupMember", ids) if members and not full else {}
    )
    for group_id, props, has_members in batch:
        if groups and (full or set(props) - {"id", "@odata.type"}):
            groups.put(with_unset(groups.kind, {**prev_groups.get(group_id, {}), **props}))
        # A group new since the last round gets a membership object even with no members.
        if members and (full or has_members or group_id not in prev_members):
            if not full and group_id in prev_members:
                read = partial(ctx.repo.canonical_parts, prev_members[group_id])
                scratch.load_previous(group_id, read)
            # In parts, read twice when large: never a whole copy of a tenant-wide list.
            members.put_canonical_parts(group_id, partial(scratch.membership_parts, group_id))
            scratch.forget_previous(group_id)
    for stager in (groups, members):
        if stager:
            stager.flush()
