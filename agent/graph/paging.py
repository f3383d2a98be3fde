"""Reading collections: every page following @odata.nextLink, delta rounds (a full sync or the
changes since a stored delta link, resyncing in full when Graph no longer accepts the link),
and a delta position for "now" without reading any object."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import requests

from agent.errors import GraphError
from agent.graph.responses import Page, error_parts, parse_page, read_json
from agent.graph.transport import GraphTransport

# A stored delta link Graph no longer accepts: start a full round instead (facts file §2).
RESYNC_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
# Delta pages are sized by the service ($top is refused) but honour the Prefer header's
# odata.maxpagesize up to 200 objects (Microsoft staff on Microsoft Q&A, May 2025; larger values
# are capped there, so asking for more gains nothing): half the pages of the default 100, so a
# full round's chain of pages, which cannot be split, is half as long.
DELTA_PAGE_PREFERENCE = "odata.maxpagesize=200"


def with_page_preference(headers: dict[str, str] | None) -> dict[str, str]:
    """``headers`` with the delta page-size preference added to any Prefer they carry."""
    merged = dict(headers or {})
    prefer = next((k for k in merged if k.lower() == "prefer"), None)
    if prefer is None:
        merged["Prefer"] = DELTA_PAGE_PREFERENCE
    elif "maxpagesize" not in merged[prefer]:
        merged[prefer] = f"{merged[prefer]}, {DELTA_PAGE_PREFERENCE}"
    return merged


def pages(
    transport: GraphTransport,
    path: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Iterator[Page]:
    """Every page of a collection; the nextLink is followed as-is with the same headers."""
    url: str | None = path
    while url is not None:
        response = transport.send("GET", transport.resolve(url), params=params, headers=headers)
        page = parse_page(read_json(response))
        del response  # its body's bytes: not kept while the next page is fetched
        params = None  # the nextLink carries the query
        url = page.next_link
        yield page
        del page  # the reader's: not kept alive here once it moved on


def delta_position(
    transport: GraphTransport,
    path: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    """A deltaLink for "now" without reading a single object: ``$deltatoken=latest``
    answers an empty page with only the deltaLink (facts file §2). A full read taken
    after it plus the changes from it later miss nothing."""
    query = {**(params or {}), "$deltatoken": "latest"}
    response = transport.send("GET", transport.resolve(path), params=query, headers=headers)
    page = parse_page(read_json(response))
    if page.delta_link is None:
        raise GraphError(
            f"Graph answered GET {path}?$deltatoken=latest without a deltaLink.",
            "Run the job again; if it persists, report it with the job log.",
        )
    return page.delta_link


class DeltaRound:
    """One delta round: a full sync or the changes since a stored delta link."""

    def __init__(
        self,
        transport: GraphTransport,
        path: str,
        params: dict[str, Any] | None,
        delta_link: str | None,
        headers: dict[str, str] | None,
    ) -> None:
        self._transport = transport
        self._path = path
        self._params = params
        self._stored = delta_link
        self._headers = with_page_preference(headers)
        self.full = delta_link is None
        self.delta_link: str | None = None

    def pages(self) -> Iterator[Page]:
        transport = self._transport
        url: str | None
        if self._stored is not None:
            url, params = transport.resolve(self._stored), None
        else:
            url, params = transport.resolve(self._path), self._params
        first = True
        while url is not None:
            response = transport.send("GET", url, params=params, headers=self._headers)
            if first and not self.full and _rejects_delta(response):
                # The stored position is gone: resync in full, transparently for the caller.
                self.full = True
                location = response.headers.get("Location")
                if response.status_code == 410 and location:
                    url, params = transport.resolve(urljoin(url, location)), None
                else:
                    url, params = transport.resolve(self._path), self._params
                continue
            page = parse_page(read_json(response))
            del response  # its body's bytes: not kept while the next page is fetched
            first = False
            params = None
            # Links come from Graph; resolve() refuses one to another host (token stays home).
            url = None if page.next_link is None else transport.resolve(page.next_link)
            if page.delta_link is not None:
                self.delta_link = page.delta_link
            yield page
            del page  # the reader's: not kept alive here once it moved on


def _rejects_delta(response: requests.Response) -> bool:
    if response.status_code == 410:
        return True
    if 400 <= response.status_code < 500:
        return error_parts(response)[0].lower() in RESYNC_CODES
    return False
