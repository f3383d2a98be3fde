"""One backup job: read a tenant's scope, stage what changed, commit one snapshot.

Failure rules (the operator trusts these):
- A kind that fails does not stop the others; the job is "partial" and that kind's previous
  state is carried forward, marked as such in the snapshot.
- Nothing is visible until ``commit_snapshot``; a job that dies or is cancelled leaves only
  staging rows, which are discarded, so every earlier snapshot stays intact.
- A kind the token has no permission for is "skipped" with the permission it needs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psutil

from agent.auth import ServiceAccountTokenProvider
from agent.collect import COLLECTORS, CollectContext
from agent.collect.audit_feed import AuditFeed
from agent.collect.base import Cancelled, Progress
from agent.config import ScopeConfig, TenantConfig
from agent.db.catalog import Catalog, KindResult, SnapshotView
from agent.errors import AgentError, ConnectionFailed, GraphError
from agent.exchange.bridge import ExchangeBridge
from agent.exchange.outcomes import skip_reason
from agent.graph.budget import ResourceBudget
from agent.graph.client import GraphClient
from agent.kinds import KindSpec, resolve
from agent.kinds.audit_trail import TARGET_BACK, TARGET_GONE
from agent.kinds.exchange import selected_settings
from agent.portal import PortalClient
from agent.runtime import Runtime, TenantConnection
from agent.store.repository import Repository

log = logging.getLogger("entra_backup.backup")

HEARTBEAT_EVERY_S = 15.0
# Collectors running at once. Most of a collector's time is a chain of requests waiting on
# the network (each page names the next), so more chains than cores keep the tenant's RU budget
# busy; the shared budget keeps them all under it together.
PARALLEL_COLLECTORS = 8
# A running job whose heartbeat is older than this belongs to a dead agent on another host.
STALE_AFTER_S = 15 * 60
# Skip reason of an opt-in kind (KindSpec.opt_in) the tenant has not turned on.
NOT_ENABLED = "not enabled for this tenant"
# Tenant size classes of Graph's identity throttling budget (facts file §1).
SIZE_BY_USERS = ((50, "S"), (500, "M"))


@dataclass
class BackupReport:
    job_id: int
    tenant: str
    mode: str
    status: str
    kinds: list[KindResult]
    snapshot: SnapshotView | None
    duration_s: float
    graph: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def heartbeat_of(catalog: Catalog, job_id: int) -> Callable[[], None]:
    """A callback collectors call often: it refreshes the job's heartbeat at most every
    HEARTBEAT_EVERY_S, so other agents can tell a live job from a dead one."""
    last_beat = [time.monotonic()]

    def heartbeat() -> None:
        if time.monotonic() - last_beat[0] >= HEARTBEAT_EVERY_S:
            catalog.heartbeat(job_id)
            last_beat[0] = time.monotonic()

    return heartbeat


def scope_kinds(tenant: TenantConfig, scope: str | None) -> tuple[str, list[KindSpec]]:
    """The kinds a job covers: one named scope, or every scope of the tenant."""
    scopes: Sequence[ScopeConfig] = tenant.scopes
    if scope is not None:
        chosen = [s for s in scopes if s.name == scope]
        if not chosen:
            from agent.errors import ConfigError

            names = ", ".join(s.name for s in scopes) or "(none)"
            raise ConfigError(
                f"Tenant has no backup scope named '{scope}'.", f"Use one of: {names}."
            )
        scopes = chosen
    selectors = [sel for s in scopes for sel in s.kinds] or ["entra"]
    name = scope or ",".join(s.name for s in scopes) or "default"
    return name, resolve(selectors)


def size_class(users: int) -> str:
    for limit, size in SIZE_BY_USERS:
        if users < limit or (size == "M" and users <= limit):
            return size
    return "L"


def choose_mode(rt: Runtime, tenant_name: str, tenant: TenantConfig, force_full: bool) -> str:
    """Full on request, on the first run, and every ``full_every_days`` as a safety net."""
    if force_full:
        return "full"
    catalog = rt.catalog
    fulls = [s for s in catalog.snapshots(tenant_name, limit=1000) if s.mode == "full"]
    if not fulls:
        return "full"
    every = min((s.full_every_days for s in tenant.scopes), default=7)
    last_full = fulls[0].completed_at
    if last_full is not None and every > 0:
        age = dt.datetime.now(dt.UTC) - _aware(last_full)
        if age >= dt.timedelta(days=every):
            return "full"
    return "incremental"


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def run_backup(
    rt: Runtime,
    tenant_name: str,
    *,
    scope: str | None = None,
    force_full: bool = False,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    on_event: Callable[[str, str], None] | None = None,
) -> BackupReport:
    tenant = rt.config.tenant(tenant_name)
    scope_name, kinds = scope_kinds(tenant, scope)
    catalog = rt.catalog
    repo = rt.repository  # opened before the job starts: a wrong key fails fast
    catalog.ensure_tenant(tenant_name, tenant.tenant_id)
    # A job left "running" by a process that died on this host must not block this one.
    catalog.interrupt_stale_jobs(
        host=rt.host, is_alive=psutil.pid_exists, stale_after_s=STALE_AFTER_S
    )
    mode = choose_mode(rt, tenant_name, tenant, force_full)
    job_id = catalog.start_job(
        tenant_name, job_type="backup", mode=mode, scope=scope_name, host=rt.host, pid=os.getpid()
    )
    started = time.monotonic()
    cancel = cancel or threading.Event()

    def job_log(
        level: str, message: str, *, kind: str | None = None, object_id: str | None = None
    ) -> None:
        catalog.log(job_id, level, message, kind=kind, object_id=object_id)
        log.log(
            logging.getLevelName(level.upper()),
            message,
            extra={"tenant": tenant_name, "job_id": job_id, "kind": kind},
        )
        if on_event:
            on_event(level, message)

    heartbeat = heartbeat_of(catalog, job_id)

    job_log(
        "info",
        f"{mode.capitalize()} backup of tenant '{tenant_name}' started "
        f"({len(kinds)} kinds, scope {scope_name}).",
    )
    conn: TenantConnection | None = None
    errors: list[AgentError] = []  # what failed kinds failed with (one cause → that error)
    bridge = open_bridge(rt, tenant, kinds, job_log)
    try:
        conn = connect_tenant(rt, tenant_name, tenant)
        results = collect_kinds(
            rt,
            conn,
            tenant_name,
            job_id,
            kinds,
            repo=repo,
            force_full=mode == "full",
            job_log=job_log,
            stop=cancel,
            progress=progress,
            heartbeat=heartbeat,
            bridge=bridge,
            errors=errors,
        )
        for result in results:
            catalog.record_kind(job_id, result)
        if not any(r.status in ("succeeded", "partial") for r in results):
            raise _nothing_read(results, errors)
        repo.sync()  # every blob the snapshot refers to is on disk before it becomes visible
        snapshot = catalog.commit_snapshot(job_id)
        status = (
            "succeeded" if all(r.status in ("succeeded", "skipped") for r in results) else "partial"
        )
        stats = _stats(conn, bridge)
        catalog.finish_job(job_id, status, stats=stats)
        job_log(
            "info",
            f"Backup {status}: snapshot #{snapshot.seq} with {snapshot.object_count} objects.",
        )
        return BackupReport(
            job_id, tenant_name, mode, status, results, snapshot, time.monotonic() - started, stats
        )
    except (Cancelled, KeyboardInterrupt):
        catalog.discard_staging(job_id)
        catalog.finish_job(
            job_id,
            "interrupted",
            error="Stopped before it finished; "
            "no snapshot was written and earlier snapshots are unchanged.",
        )
        job_log("warning", "Backup interrupted; nothing was committed.")
        raise
    except AgentError as exc:
        catalog.discard_staging(job_id)
        catalog.finish_job(
            job_id, "failed", error=str(exc), stats=_stats(conn, bridge) if conn else None
        )
        job_log("error", f"Backup failed: {exc}")
        raise
    except BaseException as exc:
        catalog.discard_staging(job_id)
        catalog.finish_job(job_id, "failed", error=f"Unexpected {type(exc).__name__}: {exc}")
        log.exception("Unexpected failure in backup job %s", job_id)
        raise
    finally:
        if bridge is not None:
            bridge.close()


def collect_kinds(
    rt: Runtime,
    conn: TenantConnection,
    tenant_name: str,
    job_id: int,
    kinds: list[KindSpec],
    *,
    repo: Repository,
    force_full: bool,
    job_log: Callable[..., None],
    stop: threading.Event,
    progress: Progress | None = None,
    heartbeat: Callable[[], None] = lambda: None,
    bridge: ExchangeBridge | None = None,
    errors: list[AgentError] | None = None,
) -> list[KindResult]:
    """Run the collectors of ``kinds``, staging what they read under ``job_id`` and storing
    objects in ``repo``; per-kind results. Backup and the live compare reader share this.
    Without ``bridge``, bridge kinds get a session of their own for this call."""
    own_bridge = bridge is None
    if bridge is None:
        bridge = open_bridge(rt, conn.config, kinds, job_log)
    try:
        return _collect(
            rt,
            conn,
            tenant_name,
            job_id,
            kinds,
            repo,
            force_full,
            job_log,
            stop,
            progress,
            heartbeat,
            bridge,
            errors if errors is not None else [],
        )
    finally:
        if own_bridge and bridge is not None:
            bridge.close()


def _collect(
    rt: Runtime,
    conn: TenantConnection,
    tenant_name: str,
    job_id: int,
    kinds: list[KindSpec],
    repo: Repository,
    force_full: bool,
    job_log: Callable[..., None],
    stop: threading.Event,
    progress: Progress | None,
    heartbeat: Callable[[], None],
    bridge: ExchangeBridge | None,
    errors: list[AgentError],
) -> list[KindResult]:
    roles = set(conn.tokens.claims().get("roles") or [])
    graph = conn.graph
    portal = _portal(conn)
    audit = audit_feed(graph, roles, kinds)
    every = min((s.full_every_days for s in conn.config.scopes), default=7)
    # Set when one collector fails hard, so the others stop; never the caller's event
    # (in the service that one stops the whole agent).
    abort = threading.Event()

    def context() -> CollectContext:
        return CollectContext(
            tenant=tenant_name,
            job_id=job_id,
            graph=graph,
            catalog=rt.catalog,
            repo=repo,
            force_full=force_full,
            kinds=[],
            log=job_log,
            cancel=abort,
            stop=stop,
            progress=progress,
            heartbeat=heartbeat,
            scratch_dir=str(rt.scratch_dir),
            portal=portal,
            bridge=bridge,
            audit=audit,
            full_every_days=every,
        )

    # Collectors read independent sources: run them side by side. Each delta stream is
    # sequential (every page names the next), so parallel sources are what fills the
    # tenant's resource-unit budget; the shared budget keeps them under it together.
    # Kinds of one collector need not be neighbours in the registry (userManager is
    # declared apart from user): gather them, in registry order.
    by_collector: dict[str, list[KindSpec]] = {}
    for kind in kinds:
        by_collector.setdefault(kind.collector, []).append(kind)
    groups = [
        task
        for collector, same in by_collector.items()
        for task in _split_independent(collector, same)
    ]
    results: list[KindResult] = []
    with ThreadPoolExecutor(
        max_workers=min(PARALLEL_COLLECTORS, len(groups) or 1),
        thread_name_prefix=f"collect-{tenant_name}",
    ) as pool:
        futures = [
            pool.submit(_run_collector, name, group_kinds, roles, context(), conn.config, errors)
            for name, group_kinds in groups
        ]
        try:
            for future in futures:
                results += future.result()
        except BaseException:
            abort.set()  # stop the other collectors at their next checkpoint
            raise
    return results


def audit_feed(graph: GraphClient, roles: set[str], kinds: list[KindSpec]) -> AuditFeed | None:
    """One directory audit log reader for the job's incremental = audit kinds, keeping only
    the activities they (and the deletions and restores of what they link to) care about."""
    audited = [k for k in kinds if k.incremental == "audit"]
    if not audited:
        return None
    relevant = {a for k in audited for a in k.changed_by}
    for kind in audited:
        for target in kind.links_to:
            relevant.update(TARGET_GONE.get(target, ()), TARGET_BACK.get(target, ()))
    return AuditFeed(graph, roles, relevant)


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


# Collectors whose kinds come from one shared read (a groups delta round yields groups and
# their members, a users delta round users and their managers; the bridge batches settings
# cmdlets into one call and has one runspace); every other kind is read on its own and can
# run in parallel.
SHARED_READ = frozenset({"graph.groups", "graph.users", "bridge.groups", "bridge.settings"})


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


def _stats(conn: TenantConnection | None, bridge: ExchangeBridge | None) -> dict[str, Any]:
    stats: dict[str, Any] = conn.graph.stats.as_dict() if conn else {}
    if bridge is not None:
        stats["bridge"] = bridge.stats.as_dict()
    return stats


def _split_independent(collector: str, kinds: list[KindSpec]) -> list[tuple[str, list[KindSpec]]]:
    if collector in SHARED_READ:
        return [(collector, kinds)]
    return [(collector, [kind]) for kind in kinds]


def _portal(conn: TenantConnection) -> PortalClient | None:
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


def _run_collector(
    name: str,
    kinds: list[KindSpec],
    roles: set[str],
    ctx: CollectContext,
    tenant: TenantConfig,
    errors: list[AgentError],
) -> list[KindResult]:
    def why_not(kind: KindSpec) -> str | None:
        if kind.opt_in and not getattr(tenant, kind.opt_in, False):
            return NOT_ENABLED
        if kind.channel == "portal" and ctx.portal is None:
            return "needs a service account profile"
        if kind.channel == "bridge":
            if tenant.exchange is None or ctx.bridge is None:
                return "needs an [exchange] section (bridge host)"
            if kind.extra.get("cmdlet") and kind.name not in selected_settings(
                tenant.exchange.settings
            ):
                return "not in exchange.settings"
        missing = kind.missing_read_permission(roles)
        return f"missing {missing}" if missing else None

    reasons = {k.name: why_not(k) for k in kinds}
    permitted = [k for k in kinds if reasons[k.name] is None]
    results = [
        KindResult(kind=k.name, status="skipped", mode=ctx.mode_for(k), reason=reason)
        for k in kinds
        if (reason := reasons[k.name]) is not None
    ]
    fixes = {
        "needs a service account profile": "add [tenants.NAME.service_account] to the config",
        "needs an [exchange] section (bridge host)": "add [tenants.NAME.exchange] to the config",
        "not in exchange.settings": "list it in [tenants.NAME.exchange] settings",
    }
    for skipped in results:
        if skipped.reason == NOT_ENABLED:
            setting = next(k.opt_in for k in kinds if k.name == skipped.kind)
            fix = f"set {setting} = true under [tenants.{ctx.tenant}] to back it up"
        else:
            fix = fixes.get(skipped.reason, "grant it to the app and give admin consent")
        ctx.log("warning", f"Skipped {skipped.kind}: {skipped.reason} ({fix}).", kind=skipped.kind)
    if not permitted:
        return results
    ctx.kinds = permitted
    started = time.monotonic()
    try:
        produced = COLLECTORS[name](ctx)
    except (Cancelled, KeyboardInterrupt):
        raise
    except AgentError as exc:
        errors.append(exc)
        reason = skip_reason(exc)
        if reason is not None:  # a fact about the tenant (licence, role), not a failure
            ctx.log("warning", f"Skipped {', '.join(k.name for k in permitted)}: {exc}")
            return results + [
                KindResult(kind=k.name, status="skipped", mode=ctx.mode_for(k), reason=reason)
                for k in permitted
            ]
        return results + _failed(ctx, permitted, str(exc), started)
    except Exception as exc:  # a bug or malformed data: the other kinds still run
        log.exception("Collector %s failed", name)
        return results + _failed(ctx, permitted, f"unexpected {type(exc).__name__}: {exc}", started)
    return results + [produced[k.name] for k in permitted if k.name in produced]


def _failed(
    ctx: CollectContext, kinds: list[KindSpec], reason: str, started: float
) -> list[KindResult]:
    for kind in kinds:
        ctx.log("error", f"{kind.title} failed: {reason}", kind=kind.name)
    return [
        KindResult(
            kind=k.name,
            status="failed",
            mode=ctx.mode_for(k),
            reason=reason,
            duration_s=round(time.monotonic() - started, 3),
        )
        for k in kinds
    ]


def _nothing_read(results: list[KindResult], errors: list[AgentError]) -> AgentError:
    if errors and len({(type(e), e.message) for e in errors}) == 1:
        return errors[0]  # one cause (e.g. the bridge host is unreachable): say exactly that
    reasons = "; ".join(f"{r.kind}: {r.reason}" for r in results if r.reason)
    first_failure = next((r for r in results if r.status == "failed"), None)
    if first_failure is not None and "connect" in first_failure.reason.lower():
        return ConnectionFailed(
            f"No kind could be read ({reasons}).", "Check the tenant's graph_url and the network."
        )
    return AgentError(
        f"No kind could be backed up ({reasons}); no snapshot was written.",
        "Fix the causes above (permissions are listed by "
        "'entra-backup permissions') and run the backup again.",
    )
