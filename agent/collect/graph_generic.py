"""Collectors driven entirely by a kind's declaration (path, delta path, relation).

Most Entra kinds need no code of their own: a delta function, a plain collection or
singleton, or a relationship of a parent collection. Kinds with real quirks (groups and
their members) have their own collector.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from functools import partial
from typing import Any

from agent.collect import audit_relation
from agent.collect.audit_feed import AuditUnavailable
from agent.collect.base import CollectContext, Stager, clean, stage_listing, with_unset
from agent.collect.first_pages import request_params
from agent.collect.parent_rounds import ParentRound
from agent.collect.prefetch import CHAIN_DEPTH, prefetched
from agent.collect.scratch import RelationScratch
from agent.db.catalog import KindResult
from agent.graph.client import BatchRequest, Page
from agent.kinds.spec import Incremental, KindSpec

# Graph stops expanded collections at 20 items with no nextLink (facts file §1).
EXPAND_LIMIT = 20
EXPAND_PAGE = "100"
LIST_PAGE = "999"  # the largest page a directory collection serves (facts file §2)
TAIL_WORKERS = 4  # relationships longer than a page, continued side by side
DIRECTORY_OBJECT = "#microsoft.graph.directoryObject"


def _select(kind: KindSpec) -> dict[str, str]:
    return request_params(kind)


def collect_delta(ctx: CollectContext) -> dict[str, KindResult]:
    """Kinds with a Graph delta function. A full read takes the delta position first
    ($deltatoken=latest) and then lists the collection in pages of 999 (a delta page holds
    100); the next run reads only the changes since that position, which include every change
    made while the list was read."""
    results: dict[str, KindResult] = {}
    for kind in ctx.kinds:
        assert kind.delta_path, f"{kind.name} declares no delta_path"
        stager = ctx.stager(kind.name)
        stored = ctx.delta_link(kind.name)
        rounds = (
            ctx.parent_rounds if ctx.parent_rounds and ctx.parent_rounds.wanted(kind.name) else None
        )
        if stored is None and kind.path:
            link = ctx.graph.delta_position(kind.delta_path, params=_select(kind))
            if rounds is not None:  # relationship kinds take this position for their own
                rounds.publish(kind.name, ParentRound(link, link, full=True))
            params = {**_select(kind), **({"$top": LIST_PAGE} if kind.pages else {})}
            stage_listing(ctx, stager, kind.path, params, kind.name)
            results[kind.name] = stager.finish(full_listing=True, delta_link=link)
            continue
        round_ = ctx.graph.delta(kind.delta_path, params=_select(kind), delta_link=stored)
        done = 0
        shown = ParentRound(stored or "", "", full=False)
        for page in prefetched(round_.pages()):
            for item in page.items:
                if "@removed" in item:
                    # Soft-deleted ("changed") and permanently deleted objects both leave the
                    # live state; deletedItems kinds record what can still be undeleted.
                    stager.remove(item["id"])
                else:
                    stager.put(with_unset(kind, item))
                if rounds is not None and not round_.full:
                    shown.note(item)
            done += len(page.items)
            ctx.report(kind.name, done)
            stager.flush()
        if rounds is not None and round_.delta_link:
            shown.end, shown.full = round_.delta_link, round_.full or not stored
            rounds.publish(kind.name, shown)
        results[kind.name] = stager.finish(full_listing=round_.full, delta_link=round_.delta_link)
    return results


def collect_list(ctx: CollectContext) -> dict[str, KindResult]:
    """Kinds without delta: read in full every run; only changed objects become versions.
    The first page comes from the job's shared $batch of list kinds when it holds it."""
    results: dict[str, KindResult] = {}
    for kind in ctx.kinds:
        assert kind.path, f"{kind.name} declares no path"
        stager = ctx.stager(kind.name)
        first = ctx.first_pages.take(kind) if ctx.first_pages is not None else None
        if kind.singleton:
            if first is None:
                first = ctx.graph.get_json(kind.path, params=_select(kind) or None)
            # Some singletons come without an id (the cross-tenant access default): the
            # stager names them after the kind.
            stager.put(_completed(ctx, kind, kind.path, first))
        else:
            done = 0
            for page in prefetched(_pages_from(ctx, kind, first)):
                for item in page.items:
                    stager.put(_completed(ctx, kind, f"{kind.path}/{item[kind.key]}", item))
                done += len(page.items)
                ctx.report(kind.name, done)
                stager.flush()
        results[kind.name] = stager.finish(full_listing=True)
    return results


def _pages_from(
    ctx: CollectContext, kind: KindSpec, first: dict[str, Any] | None
) -> Iterator[Page]:
    """The kind's pages: from its first answer (read in the shared $batch) when given."""
    assert kind.path
    if first is None:
        yield from ctx.graph.pages(kind.path, params=_select(kind) or None)
        return
    items = first.get("value")
    next_link = first.get("@odata.nextLink")
    raw = {k: v for k, v in first.items() if k != "value"}
    yield Page(items if isinstance(items, list) else [], next_link, None, raw)
    if next_link:
        yield from ctx.graph.pages(str(next_link))


def _completed(
    ctx: CollectContext, kind: KindSpec, url: str, item: dict[str, Any]
) -> dict[str, Any]:
    """The object with every contained collection the kind declares; one Graph left out is
    read from ``{url}/{name}``."""
    for name in kind.contained:
        if name not in item:
            item[name] = [i for page in ctx.graph.pages(f"{url}/{name}") for i in page.items]
    return item


def relation_object(kind: KindSpec, parent_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """One object per parent: the related objects sorted by id, so equal sets store once.

    Links keep id and type; kinds whose related items are entities of their own (e.g.
    appRoleAssignments) keep each item whole.
    """
    assert kind.relation
    if kind.relation_full_items:
        related = sorted((clean(item) for item in items), key=lambda i: str(i.get("id")))
    else:
        types = {o["id"]: o.get("@odata.type", DIRECTORY_OBJECT) for o in items}
        related = [{"id": oid, "@odata.type": types[oid]} for oid in sorted(types)]
    return {kind.key: parent_id, kind.relation: related}


def _relation_reads(kind: KindSpec, parent_ids: Iterable[str]) -> Iterator[BatchRequest]:
    query = "" if kind.relation_full_items else "?$select=id&$top=999"
    for parent_id in parent_ids:
        url = f"{kind.path}/{parent_id}/{kind.relation}{query}"
        yield BatchRequest(id=parent_id, method="GET", url=url)


def collect_relation(ctx: CollectContext) -> dict[str, KindResult]:
    """A relationship of every object of a parent collection (e.g. group owners).

    With ``relation_expand``: ``GET {path}?$select=id&$expand={relation}($select=id)`` returns
    100 parents a page with up to 20 related objects each, and only parents showing 20 need a
    follow-up read of the whole relationship. Otherwise every parent's relationship is read
    in $batch requests of 20. Kinds kept through the directory audit log (incremental =
    audit) re-read only the parents that may have changed (agent/collect/audit_relation.py).
    """
    results: dict[str, KindResult] = {}
    for kind in ctx.kinds:
        assert kind.path and kind.relation, f"{kind.name} declares no path/relation"
        stager = ctx.stager(kind.name)
        if kind.incremental == Incremental.AUDIT:
            results[kind.name] = _audited(ctx, kind, stager)
        else:
            _read_all(ctx, kind, stager)
            results[kind.name] = stager.finish(full_listing=True)
    return results


def _audited(ctx: CollectContext, kind: KindSpec, stager: Stager) -> KindResult:
    """Incremental through the audit log when possible, else in full (saying why)."""
    position, full = audit_relation.why_full(ctx, kind)
    if position is not None:
        try:
            link = audit_relation.read_changed(
                ctx,
                kind,
                position,
                lambda ids: _read_parents(ctx, kind, stager, ids),
                stager,
                (lambda parents, gone: _check_related(ctx, kind, stager, parents, gone))
                if kind.relation_get_one
                else None,
            )
            return stager.finish(full_listing=False, delta_link=link)
        except audit_relation.ReadInFull as exc:
            full = exc
        except AuditUnavailable as exc:
            full = audit_relation.ReadInFull(str(exc), warn=True)
    if full is not None and full.why != "full run":
        ctx.log("warning" if full.warn else "info", f"{kind.title} read in full: {full.why}.",
                kind=kind.name)  # fmt: skip
        stager.result.reason = f"read in full: {full.why}"
    start = audit_relation.start_position(ctx, kind)  # before the listing: nothing is missed
    _read_all(ctx, kind, stager)
    return stager.finish(full_listing=True, delta_link=start.text() if start else None)


def _read_all(ctx: CollectContext, kind: KindSpec, stager: Stager) -> None:
    assert kind.path and kind.relation
    follow_up: list[str] = []
    done = 0
    params = {"$select": "id", "$top": EXPAND_PAGE if kind.relation_expand else "999"}
    if kind.relation_expand:
        params["$expand"] = f"{kind.relation}($select=id)"
    for page in prefetched(ctx.graph.pages(kind.path, params=params), CHAIN_DEPTH):
        for item in page.items:
            related = item.get(kind.relation) or []
            if not kind.relation_expand or len(related) >= EXPAND_LIMIT:
                follow_up.append(item["id"])
            else:
                stager.put(relation_object(kind, item["id"], related))
        done += len(page.items)
        ctx.report(kind.name, done)
        stager.flush()
    _read_parents(ctx, kind, stager, follow_up)


def _read_parents(
    ctx: CollectContext, kind: KindSpec, stager: Stager, parent_ids: Iterable[str]
) -> set[str]:
    """Each parent's whole relationship in $batch; the ids Graph no longer has (404)."""
    missing: set[str] = set()
    with ThreadPoolExecutor(TAIL_WORKERS, thread_name_prefix="relation-tail") as pool:
        # A relationship longer than one page continues on its own chain of nextLinks:
        # the chains of different parents run side by side, not one after another.
        tails: dict[Future[RelationScratch], str] = {}
        try:
            for result in ctx.graph.run_batches(_relation_reads(kind, parent_ids)):
                if result.status == 200 and result.body is not None:
                    items = list(result.body.get("value", []))
                    next_link = result.body.get("@odata.nextLink")
                    if next_link:
                        if len(tails) >= 2 * TAIL_WORKERS:  # bounded: scratch files open
                            done_tail = next(as_completed(tails))
                            _put_long(stager, tails.pop(done_tail), done_tail.result())
                        tail = pool.submit(_rest, ctx, kind, items, next_link)
                        tails[tail] = result.id
                    else:
                        stager.put(relation_object(kind, result.id, items))
                elif result.status == 404:  # deleted since it was listed: the listing drops it
                    missing.add(result.id)
                else:
                    stager.keep(result.id, f"HTTP {result.status}")
                for tail in [t for t in tails if t.done()]:
                    _put_long(stager, tails.pop(tail), tail.result())
            for tail in as_completed(list(tails)):
                _put_long(stager, tails.pop(tail), tail.result())
        finally:
            for tail in tails:  # an error left these unread: their scratch files go
                if tail.exception() is None:
                    tail.result().close()
    stager.flush()
    return missing


def _check_related(
    ctx: CollectContext,
    kind: KindSpec,
    stager: Stager,
    parents: dict[str, set[str]],
    gone: set[str],
) -> set[str]:
    """Each parent's stored relationship, with every named object checked on its own
    (``GET {path}/{parent}/{relation}/{id}``: linked, or 404) and deleted objects dropped;
    the parents that could not be checked (to be re-read whole)."""
    assert kind.path and kind.relation
    pairs = [(p, oid) for p in sorted(parents) for oid in sorted(parents[p])]
    linked: dict[str, dict[str, str | None]] = {p: {} for p in parents}
    failed: set[str] = set()
    requests = (
        BatchRequest(id=str(n), method="GET", url=f"{kind.path}/{p}/{kind.relation}/{oid}")
        for n, (p, oid) in enumerate(pairs)
    )
    for result in ctx.graph.run_batches(requests):
        parent, oid = pairs[int(result.id)]
        if result.status == 200 and result.body is not None:
            linked[parent][oid] = str(result.body.get("@odata.type") or DIRECTORY_OBJECT)
        elif result.status == 404:  # not linked (any more), or gone
            linked[parent][oid] = None
        else:
            failed.add(parent)
    for parent, found in linked.items():
        # One stored relationship at a time: an AU's member list can be thousands long.
        stored = ctx.previous(kind.name, [parent]).get(parent) if parent not in failed else None
        if stored is None:
            failed.add(parent)
            continue
        items = {
            str(i["id"]): str(i.get("@odata.type") or DIRECTORY_OBJECT)
            for i in stored.get(kind.relation, ())
            if not gone or str(i["id"]).lower() not in gone
        }
        for oid, odata_type in found.items():
            if odata_type is None:
                items.pop(oid, None)
            else:
                items[oid] = odata_type
        stager.put(
            relation_object(kind, parent, [{"id": i, "@odata.type": t} for i, t in items.items()])
        )
        stager.flush()
    return failed


def _rest(
    ctx: CollectContext, kind: KindSpec, items: list[dict[str, Any]], link: str
) -> RelationScratch:
    """A relationship longer than a page (a department's administrative unit can hold a
    tenant's share of users): its pages go to a scratch file, handed back open for
    ``_put_long`` to store; never a list of dicts, nor the whole text in memory."""
    assert kind.relation
    prepared = (lambda page: [clean(i) for i in page]) if kind.relation_full_items else list
    scratch = RelationScratch(ctx.scratch_dir, kind.relation_full_items)
    try:
        scratch.add(prepared(items))
        for page in ctx.graph.pages(link):
            scratch.add(prepared(page.items))
    except BaseException:
        scratch.close()
        raise
    return scratch


def _put_long(stager: Stager, parent_id: str, scratch: RelationScratch) -> None:
    """The object ``relation_object`` would store, from a tail's scratch file (then closed):
    its canonical JSON in parts, read twice when large (``Repository.put_canonical_parts``)."""
    kind = stager.kind
    assert kind.relation
    parts = partial(scratch.object_parts, kind.key, parent_id, kind.relation)
    with scratch:
        if kind.volatile:  # properties to drop: through the ordinary path
            stager.put(json.loads(b"".join(parts())))
        else:
            stager.put_canonical_parts(parent_id, parts)
