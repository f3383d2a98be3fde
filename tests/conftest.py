"""Shared fixtures: a loopback HTTPS server (Router + throwaway CA) that a test fills with the
service behaviour it needs, and the CA file a real ``requests.Session`` trusts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.simulator.ca import TlsMaterial, generate
from agent.simulator.httpserver import HttpsServer, Router


@pytest.fixture(scope="module")
def tls() -> TlsMaterial:
    return generate()


@pytest.fixture(scope="module")
def ca_file(tls: TlsMaterial, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    path.write_bytes(tls.ca_pem)
    return path


@pytest.fixture
def router() -> Router:
    return Router()


@pytest.fixture
def server(router: Router, tls: TlsMaterial) -> Iterator[HttpsServer]:
    with HttpsServer(router, tls) as srv:
        yield srv
    assert srv.errors == []
