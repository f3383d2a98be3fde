"""Shared wiring for the simulated-Graph tests: a real HTTPS session and real msal tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msal
import requests

from agent.graph import GraphClient
from agent.schema.csdl import load_schema
from agent.simulator.graph import Directory
from agent.simulator.service import Simulator, TenantHandle, TenantSpec

GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]


def session(sim: Simulator) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # facts file §8: REQUESTS_CA_BUNDLE would override verify otherwise
    s.verify = str(sim.ca_path)
    return s


def token(sim: Simulator, handle: TenantHandle, *, certificate: bool = False) -> str:
    """An app-only Graph token from the simulated login endpoint, through msal."""
    if certificate:
        pem = handle.certificate_path.read_text()
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        cert = x509.load_pem_x509_certificate(
            pem[pem.index("-----BEGIN CERTIFICATE-----") :].encode()
        )
        credential: Any = {
            "private_key": pem,
            "thumbprint": cert.fingerprint(hashes.SHA1()).hex(),  # x5t is a SHA-1 thumbprint
        }
    else:
        credential = handle.client_secret
    app = msal.ConfidentialClientApplication(
        handle.client_id,
        client_credential=credential,
        authority=f"{sim.base_url}/{handle.tenant_id}",
        instance_discovery=False,
        http_client=session(sim),
    )
    result = app.acquire_token_for_client(GRAPH_SCOPE)
    assert "access_token" in result, result
    return str(result["access_token"])


class Graph:
    """A tiny client over requests for tests: absolute URLs, bearer token, JSON."""

    def __init__(self, sim: Simulator, handle: TenantHandle, bearer: str | None = None) -> None:
        self.sim = sim
        self.http = session(sim)
        self.bearer = bearer if bearer is not None else token(sim, handle)

    def get(
        self, path_or_url: str, headers: dict[str, str] | None = None, **params: Any
    ) -> requests.Response:
        url = (
            path_or_url
            if path_or_url.startswith("https://")
            else f"{self.sim.base_url}/v1.0{path_or_url}"
        )
        return self.http.get(
            url,
            params=params or None,
            headers={"Authorization": f"Bearer {self.bearer}", **(headers or {})},
        )

    def post(self, path: str, body: Any = None) -> requests.Response:
        return self.http.post(
            f"{self.sim.base_url}/v1.0{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.bearer}"},
        )

    def pages(
        self, path: str, headers: dict[str, str] | None = None, **params: Any
    ) -> Iterator[dict[str, Any]]:
        response = self.get(path, headers, **params)
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            yield body
            link = body.get("@odata.nextLink")
            if not link:
                return
            response = self.get(link, headers)

    def all(
        self, path: str, headers: dict[str, str] | None = None, **params: Any
    ) -> list[dict[str, Any]]:
        return [item for page in self.pages(path, headers, **params) for item in page["value"]]

    def delta(self, url_or_path: str, **params: Any) -> tuple[list[dict[str, Any]], str, int]:
        """One whole delta round: (items of every page, the deltaLink, pages)."""
        items: list[dict[str, Any]] = []
        response = self.get(url_or_path, **params)
        pages = 0
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            pages += 1
            items.extend(body["value"])
            if "@odata.deltaLink" in body:
                return items, body["@odata.deltaLink"], pages
            assert "@odata.deltaLink" not in body
            response = self.get(body["@odata.nextLink"])


def logged(sim: Simulator, count: int, prefix: str = "/v1.0/", timeout: float = 5.0) -> list[Any]:
    """The request log once it holds ``count`` entries under ``prefix``: the server records a
    request just after it has sent the answer, so a test can be a moment ahead of the log."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        items = [i for i in sim.log.items() if i.path.startswith(prefix)]
        if len(items) >= count or time.monotonic() > deadline:
            return items
        time.sleep(0.01)


@contextmanager
def serving(
    spec: TenantSpec, state_dir: Path | None = None
) -> Iterator[tuple[Simulator, TenantHandle]]:
    """A started simulator serving one generated tenant, throttling off; it must have logged
    no internal error by the end."""
    sim = Simulator(state_dir)
    handle = sim.add_tenant(spec)
    sim.faults.disable_throttling = True
    sim.start()
    try:
        yield sim, handle
        assert sim.errors == []
    finally:
        sim.stop()


def read_only_tenant(users: int, groups: int) -> Iterator[tuple[Simulator, Graph, Directory]]:
    """A generated tenant for module-scoped read tests (see ``serving``)."""
    with serving(TenantSpec(name="northwind", seed=7, users=users, groups=groups)) as (sim, h):
        yield sim, Graph(sim, h), h.directory


def schema_problems(kind: str, item: dict[str, Any]) -> list[str]:
    """What the v1.0 CSDL finds wrong with a served entity of ``kind`` (empty: valid)."""
    return load_schema().validate(kind, item)


def big_tenant() -> Iterator[tuple[Simulator, Graph]]:
    """fabrikam: 1,500 users and 120 groups, enough for multi-page member lists (read only)."""
    with serving(TenantSpec(name="fabrikam", seed=3, users=1500, groups=120)) as (sim, handle):
        yield sim, Graph(sim, handle)


def small_tenant(state_dir: Path) -> Iterator[tuple[Simulator, Graph]]:
    """contoso: 120 users and 30 groups, persisted under ``state_dir``, for tests that write."""
    with serving(TenantSpec(name="contoso", seed=5, users=120, groups=30), state_dir) as (
        sim,
        handle,
    ):
        yield sim, Graph(sim, handle)


def client_for(sim: Simulator, handle: TenantHandle, **kwargs: Any) -> GraphClient:
    """The agent's GraphClient with an app-only token of ``handle``'s app."""
    bearer = token(sim, handle)
    return GraphClient(sim.base_url, session(sim), lambda: bearer, **kwargs)
