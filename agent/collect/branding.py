"""Company branding: each localization's text properties, and its images as blobs.

Graph serves the images (Edm.Stream properties of organizationalBrandingProperties) only
from their own URLs, never inside the JSON. Each image that is set goes to the repository as
its own blob; the stored object names it under ``images`` with its content type and size, and
the catalog records the reference so ``verify`` checks the image and ``export`` writes it out.
An image that is not set (404, or the documented empty 200) is simply absent.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jwt

from agent.collect.base import CollectContext
from agent.db.catalog import KindResult
from agent.errors import GraphError, PermissionMissing
from agent.schema.csdl import load_schema

KIND = "companyBranding"
IMAGES = "images"  # the stored object's key for image references


@lru_cache(maxsize=1)
def stream_properties() -> tuple[str, ...]:
    """Every Edm.Stream property branding declares in the shipped CSDL (logos, CSS, …)."""
    props = load_schema().properties("organizationalBrandingProperties")
    return tuple(sorted(n for n, p in props.items() if p.type == "Edm.Stream"))


def image_refs(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The image references of a stored branding object: stream name -> blobId, contentType,
    bytes."""
    refs = obj.get(IMAGES)
    return refs if isinstance(refs, dict) else {}


def organization_ids(ctx: CollectContext) -> list[str]:
    """The organization's id (= the tenant id). Listing /organization needs Organization.Read.All;
    an app granted only OrganizationalBranding.Read.All takes it from its token's ``tid``."""
    try:
        found = ctx.graph.get_json("/organization", params={"$select": "id"}).get("value", [])
        return [str(org["id"]) for org in found]
    except PermissionMissing:
        claims = jwt.decode(ctx.graph.token(), options={"verify_signature": False})
        return [str(claims["tid"])]


def collect_branding(ctx: CollectContext) -> dict[str, KindResult]:
    stager = ctx.stager(KIND)
    done = 0
    for org_id in organization_ids(ctx):
        base = f"/organization/{org_id}/branding"
        try:
            pages = list(ctx.graph.pages(f"{base}/localizations"))
        except GraphError as exc:
            if exc.status == 404:  # documented: no branding configured
                continue
            raise
        for page in pages:
            for localization in page.items:
                images: dict[str, dict[str, Any]] = {}
                for stream in stream_properties():
                    got = ctx.graph.get_media(f"{base}/localizations/{localization['id']}/{stream}")
                    if got is not None:
                        data, content_type = got
                        blob = ctx.repo.put_bytes(data)
                        images[stream] = {
                            "blobId": blob,
                            "contentType": content_type,
                            "bytes": len(data),
                        }
                stager.put(
                    {**localization, IMAGES: images},
                    children=[ref["blobId"] for ref in images.values()],
                )
                done += 1
                ctx.report(KIND, done)
        stager.flush()
    return {KIND: stager.finish(full_listing=True)}
