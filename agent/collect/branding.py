"""Company branding: each localization's text properties, and its images as blobs.

Graph serves the images (Edm.Stream properties of organizationalBrandingProperties) only
from their own URLs, never inside the JSON. Each image that is set goes to the repository as
its own blob; the stored object names it under ``images`` with its content type and size, and
the catalog records the reference so ``verify`` checks the image and ``export`` writes it out.
An image that is not set (404, or the documented empty 200) is simply absent.

Each image property has a read-only ``…RelativeUrl`` naming the version the CDN serves: an
incremental run keeps the stored image (or its absence, the URL null both times) when that URL
is the one stored with it, and reads only the images whose URL changed; a full run reads every
image again.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jwt

from agent.collect.base import CollectContext
from agent.db.catalog import KindResult
from agent.errors import GraphError
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
    """The organization's id: Graph documents it as the tenant id, which the access token
    names (``tid``): no request, and no Organization.Read.All needed."""
    claims = jwt.decode(ctx.graph.token(), options={"verify_signature": False})
    return [str(claims["tid"])]


def _unchanged(
    stored: dict[str, Any] | None, localization: dict[str, Any], stream: str
) -> tuple[bool, dict[str, Any] | None]:
    """(True, the stored image reference, None: not set) when the image's relative URL is
    the one stored with it — null both times: still not set —; (False, None): read it."""
    name = f"{stream}RelativeUrl"
    if stored is None or name not in localization or localization[name] != stored.get(name):
        return False, None
    ref = image_refs(stored).get(stream)
    if bool(localization[name]) != (ref is not None):  # URL and image disagree: read it
        return False, None
    return True, ref


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
            ids = [str(item["id"]) for item in page.items]
            stored = {} if ctx.force_full else ctx.previous(KIND, ids)
            for localization in page.items:
                images: dict[str, dict[str, Any]] = {}
                for stream in stream_properties():
                    same, kept = _unchanged(
                        stored.get(str(localization["id"])), localization, stream
                    )
                    if same:
                        if kept is not None:
                            images[stream] = kept
                        continue
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
