"""BitLocker recovery keys (opt-in per tenant: ``backup_bitlocker_keys``).

The listing gives each key's metadata (device, volume, creation time) but never the key: that
takes ``GET /informationProtection/bitlocker/recoveryKeys/{id}?$select=key`` per key, needs
BitLockerKey.Read.All, and Entra writes an audit entry for every such read. A key never
changes (a new key gets a new id), so its value is read once — the first time its id is
listed — and taken from the last stored version afterwards, full backups included: the audit
log sees one read per key, not one per backup.

The value goes only into the encrypted repository; it is never logged and the catalog holds
ids only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.collect.base import CollectContext, Stager
from agent.collect.prefetch import prefetched
from agent.db.catalog import KindResult
from agent.graph.client import BatchRequest


def collect_bitlocker_keys(ctx: CollectContext) -> dict[str, KindResult]:
    results: dict[str, KindResult] = {}
    for kind in ctx.kinds:
        assert kind.path, f"{kind.name} declares no path"
        stager = ctx.stager(kind.name)
        done = 0
        params = {"$select": ",".join(n for n in kind.select if n != "key")}
        for page in prefetched(ctx.graph.pages(kind.path, params=params)):
            _stage_page(ctx, stager, kind.path, page.items)
            done += len(page.items)
            ctx.report(kind.name, done)
        results[kind.name] = stager.finish(full_listing=True)
    return results


def _stage_page(
    ctx: CollectContext, stager: Stager, path: str, items: list[dict[str, Any]]
) -> None:
    known = ctx.previous(stager.kind.name, [item["id"] for item in items])
    unread: dict[str, dict[str, Any]] = {}
    for item in items:
        previous = known.get(item["id"])
        if previous is not None and previous.get("key"):
            stager.put({**item, "key": previous["key"]})
        else:
            unread[item["id"]] = item
    for result in ctx.graph.run_batches(_key_reads(path, unread)):
        if result.status == 200 and result.body is not None and result.body.get("key"):
            stager.put({**unread[result.id], "key": result.body["key"]})
        elif result.status != 404:  # 404: deleted since the listing; the listing drops it
            stager.keep(result.id, f"HTTP {result.status} reading the recovery key")
    stager.flush()


def _key_reads(path: str, unread: dict[str, dict[str, Any]]) -> Iterator[BatchRequest]:
    for key_id in unread:
        yield BatchRequest(id=key_id, method="GET", url=f"{path}/{key_id}?$select=key")
