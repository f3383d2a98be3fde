"""Restore of company branding: one object per localization (``0`` is the default).

Text properties go back by PATCH (the default through ``/organization/{id}/branding``, a
localization through ``…/localizations/{locale}``); each image stream by a PUT of its bytes
with its content type (Graph takes streams only that way, never with text in one request).
The bytes come from the snapshot's own blob for that image (``images.{name}.blobId``), so a
restored image is byte-equal to the backed-up one. Only images whose bytes differ from the
live ones are sent. A localization deleted since is created again (POST …/localizations),
then its images are uploaded. An image added since the snapshot is reported, not removed:
Graph documents no call that clears a single image.
"""

from __future__ import annotations

from typing import Any

import jwt

from agent.collect.branding import IMAGES, stream_properties
from agent.graph import GraphClient
from agent.kinds import KindSpec
from agent.restore import properties
from agent.restore.restorers import GraphObjects, register
from agent.restore.session import current

DEFAULT = "0"


def organization_id(g: GraphClient) -> str:
    """The organization's id is the tenant id: read from the app's own token (branding
    permissions alone may not list /organization)."""
    return str(jwt.decode(g.token(), options={"verify_signature": False})["tid"])


class Branding(GraphObjects):
    def write_permissions(self, spec: KindSpec) -> tuple[str, ...]:
        return spec.write_permissions  # branding takes no Directory.ReadWrite.All

    def writable(self, spec: KindSpec) -> frozenset[str]:
        text = properties.writable(spec.entity_type or spec.name) - set(stream_properties())
        return frozenset({*text, IMAGES})

    def creatable(self, spec: KindSpec) -> frozenset[str]:
        return frozenset({"id", *self.writable(spec)})

    def why_not(self, spec: KindSpec, prop: str) -> str:
        return properties.why_not(spec.entity_type or spec.name, prop)

    def _base(self, g: GraphClient, locale: str) -> str:
        base = f"/organization/{organization_id(g)}/branding"
        return base if locale == DEFAULT else f"{base}/localizations/{locale}"

    def read(self, g: GraphClient, spec: KindSpec, oid: str) -> dict[str, Any]:
        return g.get_json(f"/organization/{organization_id(g)}/branding/localizations/{oid}")

    def patch(self, g: GraphClient, spec: KindSpec, oid: str, body: dict[str, Any]) -> None:
        text = {k: v for k, v in body.items() if k != IMAGES}
        if text:
            g.patch(self._base(g, oid), text)
        if IMAGES in body:
            self._images(g, spec, oid, body[IMAGES] or {})

    def create(self, g: GraphClient, spec: KindSpec, body: dict[str, Any]) -> dict[str, Any]:
        text = {k: v for k, v in body.items() if k != IMAGES}
        org = organization_id(g)
        created = g.post(f"/organization/{org}/branding/localizations", text)
        self._images(g, spec, str(body["id"]), body.get(IMAGES) or {})
        return {"id": body["id"], **created}

    def _images(self, g: GraphClient, spec: KindSpec, locale: str, wanted: dict[str, Any]) -> None:
        session = current()
        read_base = f"/organization/{organization_id(g)}/branding/localizations/{locale}"
        added: list[str] = []
        for stream in stream_properties():
            want = wanted.get(stream)
            have = g.get_media(f"{read_base}/{stream}")
            if not isinstance(want, dict):
                if have is not None:
                    added.append(stream)
                continue
            data = session.repository.get_bytes(str(want["blobId"]))
            if have is not None and have[0] == data:
                continue
            content_type = str(want.get("contentType") or "application/octet-stream")
            g.put_media(f"{self._base(g, locale)}/{stream}", data, content_type)
        if added:
            session.remark(
                spec.name, locale, IMAGES,
                f"{', '.join(added)} added since the snapshot and left as it is: Graph "
                "documents no call that removes one image (remove it in the Entra admin center)",
            )  # fmt: skip


BRANDING = Branding()
register(BRANDING, "companyBranding")
