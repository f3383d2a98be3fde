"""Group owners, read in full each run: Graph's groups delta does not track owners.

``GET /groups?$select=id&$expand=owners($select=id)`` returns 100 groups a page with up to 20
owners each (facts file §1: expanded collections stop at 20 with no nextLink), so only groups
showing 20 owners need a follow-up read of their full owner list, sent in $batch requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.collect.base import CollectContext
from agent.db.catalog import KindResult
from agent.graph.client import BatchRequest

EXPAND_LIMIT = 20


def owners_object(group_id: str, owners: list[dict[str, Any]]) -> dict[str, Any]:
    entries = {o["id"]: o.get("@odata.type", "#microsoft.graph.directoryObject") for o in owners}
    return {
        "groupId": group_id,
        "owners": [{"id": oid, "@odata.type": entries[oid]} for oid in sorted(entries)],
    }


def collect_group_owners(ctx: CollectContext) -> dict[str, KindResult]:
    stager = ctx.stager("groupOwner")
    truncated: list[str] = []
    done = 0
    for page in ctx.graph.pages(
        "/groups", params={"$select": "id", "$expand": "owners($select=id)", "$top": "100"}
    ):
        for item in page.items:
            owners = item.get("owners") or []
            if len(owners) >= EXPAND_LIMIT:
                truncated.append(item["id"])
            else:
                stager.put(owners_object(item["id"], owners))
        done += len(page.items)
        ctx.report("groupOwner", done)
        stager.flush()

    def requests() -> Iterator[BatchRequest]:
        for group_id in truncated:
            yield BatchRequest(
                id=group_id, method="GET", url=f"/groups/{group_id}/owners?$select=id&$top=999"
            )

    for result in ctx.graph.run_batches(requests()):
        if result.status == 200 and result.body is not None:
            stager.put(owners_object(result.id, result.body.get("value", [])))
        elif result.status == 404:
            continue  # deleted since the listing: the full listing drops it
        else:
            stager.keep(result.id, f"HTTP {result.status}")
    return {"groupOwner": stager.finish(full_listing=True)}
