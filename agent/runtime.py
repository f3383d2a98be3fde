"""The long-lived pieces one agent process shares: config, catalog, repository, Graph clients.

Built lazily so that commands which need only the catalog (``jobs list``) never ask for the
repository key, and commands that fail on config never touch the network.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import requests

from agent import __version__
from agent.auth import AppTokenProvider
from agent.config import AgentConfig, TenantConfig
from agent.db.catalog import Catalog
from agent.exchange.bridge import ExchangeBridge
from agent.graph.budget import ResourceBudget, WriteBudget
from agent.graph.client import GraphClient
from agent.graph.pacing import PathPacer
from agent.http import make_session
from agent.memory import tune_allocator
from agent.secrets import resolve_secret
from agent.store.keys import RepositoryKey
from agent.store.repository import Repository

USER_AGENT = f"entra-backup/{__version__}"


@dataclass
class TenantConnection:
    """Everything needed to talk to one tenant's Graph."""

    config: TenantConfig
    session: requests.Session
    tokens: AppTokenProvider
    graph: GraphClient


class Runtime:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.host = socket.gethostname()
        tune_allocator()  # peak memory flat in tenant size and run length (memory.py)
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._repository: Repository | None = None
        # Per-path request rates hold per tenant across jobs (back-to-back runs included).
        self._pacers: dict[str, PathPacer] = {}

    @property
    def catalog(self) -> Catalog:
        with self._lock:
            if self._catalog is None:
                self._catalog = Catalog(self.config.agent.database_url)
            return self._catalog

    @property
    def repository(self) -> Repository:
        with self._lock:
            if self._repository is None:
                self._repository = Repository.open(self.repository_path, self.repository_key())
            return self._repository

    @property
    def repository_path(self) -> Path:
        return Path(self.config.agent.repository)

    @property
    def scratch_dir(self) -> Path:
        path = Path(self.config.agent.data_dir) / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def repository_key(self) -> RepositoryKey:
        secret = resolve_secret(self.config.agent.repository_key, "the repository key")
        return RepositoryKey.from_text(secret.reveal())

    def connect(
        self, tenant: TenantConfig, budget: ResourceBudget, writes: WriteBudget | None = None
    ) -> TenantConnection:
        """``writes``: the tenant's write quota (default: the documented 3,000 per 150 s)."""
        ca = Path(tenant.ca_bundle) if tenant.ca_bundle else None
        session = make_session(ca, user_agent=USER_AGENT)
        tokens = AppTokenProvider(tenant, session)
        with self._lock:
            pacer = self._pacers.setdefault(tenant.tenant_id.lower(), PathPacer())
        graph = GraphClient(
            tenant.graph_url,
            session,
            tokens.token,
            budget,
            write_budget=writes or WriteBudget(),
            pacer=pacer,
        )
        return TenantConnection(tenant, session, tokens, graph)

    def exchange_bridge(
        self, tenant: TenantConfig, *, include_security_compliance: bool = False
    ) -> ExchangeBridge:
        """A bridge session for one job of one tenant (opened at its first call)."""
        from agent.exchange.psrp_bridge import PsrpExchangeBridge

        return PsrpExchangeBridge(tenant, include_security_compliance=include_security_compliance)

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
