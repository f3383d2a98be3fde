"""A job's connections to a tenant: Graph with a resource-unit budget that fits the tenant's
size (counted once when the config says "auto"), the Exchange bridge session when bridge kinds
are in scope, and the admin portal client when a service account is configured. Backup, the
live compare reader and restore open them alike."""

from __future__ import annotations

from collections.abc import Callable

from agent.auth import ServiceAccountTokenProvider
from agent.config import TenantConfig
from agent.errors import GraphError
from agent.exchange.bridge import ExchangeBridge
from agent.graph.budget import ResourceBudget
from agent.graph.client import GraphClient
from agent.kinds import KindSpec
from agent.portal import PortalClient
from agent.runtime import Runtime, TenantConnection

# Tenant size classes of Graph's identity throttling budget (facts file §1).
SIZE_BY_USERS = ((50, "S"), (500, "M"))


def size_class(users: int) -> str:
    for limit, size in SIZE_BY_USERS:
        if users < limit or (size == "M" and users <= limit):
            return size
    return "L"


def connect_tenant(rt: Runtime, tenant_name: str, tenant: TenantConfig) -> TenantConnection:
    """A connection whose RU budget fits the tenant's size; authenticates before returning."""
    size: str = tenant.tenant_size
    if size == "auto":
        size = _last_known_size(rt, tenant_name) or "M"
    conn = rt.connect(tenant, ResourceBudget.for_tenant_size(size))
    conn.tokens.token()  # authentication problems surface here, before any kind runs
    if tenant.tenant_size == "auto" and _last_known_size(rt, tenant_name) is None:
        users = _count_users(conn)
        if users is not None and size_class(users) != size:
            conn.graph = GraphClient(
                tenant.graph_url,
                conn.session,
                conn.tokens.token,
                ResourceBudget.for_tenant_size(size_class(users)),
                pacer=conn.graph.pacer,
            )
    return conn


def open_bridge(
    rt: Runtime,
    tenant: TenantConfig,
    kinds: list[KindSpec],
    job_log: Callable[..., None] | None = None,
) -> ExchangeBridge | None:
    """One bridge session per tenant per job when bridge kinds are in scope (it connects at
    its first call, so an unreachable bridge host fails only the bridge kinds). What the
    session's configuration warns about (plain HTTP) goes to the job log."""
    if tenant.exchange is None or not any(k.channel == "bridge" for k in kinds):
        return None
    alerts = any(k.extra.get("session") == "SecurityCompliance" for k in kinds)
    bridge = rt.exchange_bridge(tenant, include_security_compliance=alerts)
    if job_log is not None:
        for warning in bridge.warnings():
            job_log("warning", warning)
    return bridge


def portal_client(conn: TenantConnection) -> PortalClient | None:
    if conn.config.service_account is None:
        return None
    tokens = ServiceAccountTokenProvider(conn.config, conn.session)
    return PortalClient(conn.config.portal_url, conn.session, tokens)


def _last_known_size(rt: Runtime, tenant_name: str) -> str | None:
    latest = rt.catalog.latest_snapshot(tenant_name)
    if latest is None:
        return None
    users = next((k.objects for k in latest.kinds if k.kind == "user"), None)
    return size_class(users) if users is not None else None


def _count_users(conn: TenantConnection) -> int | None:
    # $count needs the eventual-consistency header (advanced query) and answers on page one.
    params = {"$select": "id", "$top": "1", "$count": "true"}
    try:
        for page in conn.graph.pages("/users", params, {"ConsistencyLevel": "eventual"}):
            return int(page.raw["@odata.count"])
    except (GraphError, KeyError, ValueError, TypeError):
        pass  # no count permission or odd answer: keep the conservative budget
    return None
