"""The one way the agent builds an HTTP session: TLS always verified, trust pinned per tenant.

``trust_env`` is off because requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` from the
environment override ``Session.verify`` (facts §8), which would silently replace the tenant's
``ca_bundle``. Proxies are therefore read from the environment here, explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.utils import should_bypass_proxies


class _Session(requests.Session):
    """A session that honours NO_PROXY itself (requests only does so when trust_env is on)."""

    no_proxy: str = ""

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if self.proxies and self.no_proxy and kwargs.get("proxies") is None:
            target = url.decode() if isinstance(url, bytes) else url
            if should_bypass_proxies(target, no_proxy=self.no_proxy):
                # None values are dropped when merged with the session's proxies.
                kwargs["proxies"] = {"http": None, "https": None}
        return super().request(method, url, *args, **kwargs)


def proxies_from_env(environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], str]:
    """(proxies, no_proxy) from HTTPS_PROXY / HTTP_PROXY / NO_PROXY (either case)."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str:
        return env.get(name) or env.get(name.lower()) or ""

    proxies: dict[str, str] = {}
    if get("HTTPS_PROXY"):
        proxies["https"] = get("HTTPS_PROXY")
    if get("HTTP_PROXY"):
        proxies["http"] = get("HTTP_PROXY")
    return proxies, get("NO_PROXY")


def make_session(
    ca_bundle: Path | None, *, pool_size: int = 32, user_agent: str
) -> requests.Session:
    """A session verifying TLS against ``ca_bundle`` (or the default trust store)."""
    session = _Session()
    session.trust_env = False
    session.verify = str(ca_bundle) if ca_bundle is not None else True
    session.proxies, session.no_proxy = proxies_from_env()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    return session
