"""Running the collectors of a job's kinds: grouped by collector (kinds of one shared read stay
together), side by side in threads under the tenant's shared budget, each kind skipped with its
reason (permission, opt-in, missing profile) or failed without stopping the others. Backup and
the live compare reader share it."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from agent.collect import COLLECTORS, CollectContext, audit_relation
from agent.collect.audit_feed import PATH as AUDIT_PATH
from agent.collect.audit_feed import AuditFeed
from agent.collect.base import Cancelled, Progress
from agent.collect.first_pages import FirstPages
from agent.collect.parent_rounds import ParentRounds
from agent.config import TenantConfig
from agent.db.catalog import KindResult
from agent.errors import AgentError
from agent.exchange.bridge import ExchangeBridge
from agent.exchange.outcomes import skip_reason
from agent.graph.client import GraphClient
from agent.jobs.connection import open_bridge, portal_client
from agent.kinds import KindSpec
from agent.kinds.audit_trail import TARGET_BACK, TARGET_GONE
from agent.kinds.exchange import selected_settings
from agent.runtime import Runtime, TenantConnection
from agent.store.repository import Repository

log = logging.getLogger("entra_backup.backup")


# Collectors running at once. Most of a collector's time is a chain of requests waiting on
# the network (each page names the next), so more chains than cores keep the tenant's RU budget
# busy; the shared budget keeps them all under it together. More is not faster: at 100k users
# 16 took 5% more agent CPU and 20 MB more memory for no shorter run (bench, 2026-11-27).
PARALLEL_COLLECTORS = 8
# Skip reason of an opt-in kind (KindSpec.opt_in) the tenant has not turned on.
NOT_ENABLED = "not enabled for this tenant"
# Collectors whose kinds come from one shared read (a groups delta round yields groups and
# their members, a users delta round users and their managers; the bridge batches settings
# cmdlets into one call and has one runspace); every other kind is read on its own and can
# run in parallel.
SHARED_READ = frozenset({"graph.groups", "graph.users", "bridge.groups", "bridge.settings"})


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
    collected: Callable[[list[KindResult]], None] | None = None,
) -> list[KindResult]:
    """Run the collectors of ``kinds``, staging what they read under ``job_id`` and storing
    objects in ``repo``; per-kind results. Backup and the live compare reader share this.
    Without ``bridge``, bridge kinds get a session of their own for this call. ``collected``
    is called with each collector's results as soon as it is done, in its thread (backup
    prepares those kinds for its snapshot there, while the other collectors read)."""
    own_bridge = bridge is None
    if bridge is None:
        bridge = open_bridge(rt, conn.config, kinds, job_log)
    errors = errors if errors is not None else []
    try:
        roles = set(conn.tokens.claims().get("roles") or [])
        graph = conn.graph
        portal = portal_client(conn)
        starts = audit_relation.window_starts(rt.catalog, tenant_name, kinds, force_full)
        audit = audit_feed(graph, roles, kinds, starts)
        every = min((s.full_every_days for s in conn.config.scopes), default=7)
        first_pages = FirstPages.for_job(graph, kinds, roles)
        rounds = ParentRounds.for_job(kinds)
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
                first_pages=first_pages,
                parent_rounds=rounds,
            )

        groups = _collector_groups(kinds)
        # The directory audit archive reads the log for the relationship kinds too, which
        # wait for it: it starts first (the pool takes tasks in order), so it never waits
        # behind them. Parent kinds' collectors publish their delta rounds to the
        # relationship kinds, which wait for them: they start next, for the same reason.
        archive = [g for g in groups if any(k.path == AUDIT_PATH for k in g[1])]
        if audit is None or not audit.readable:
            archive = []
        parents = rounds.parents() if rounds is not None else set()
        groups.sort(key=lambda g: _start_order(g, archive, parents))
        if archive and audit is not None:
            audit.expect_archive()
        results: list[KindResult] = []
        with ThreadPoolExecutor(
            max_workers=min(PARALLEL_COLLECTORS, len(groups) or 1),
            thread_name_prefix=f"collect-{tenant_name}",
        ) as pool:

            def run(name: str, group_kinds: list[KindSpec]) -> list[KindResult]:
                results = _run_collector(name, group_kinds, roles, context(), conn.config, errors)
                if collected is not None:
                    collected(results)
                return results

            futures = [pool.submit(run, name, group_kinds) for name, group_kinds in groups]
            for (_, group_kinds), future in zip(groups, futures, strict=True):
                if audit is not None and any(k.path == AUDIT_PATH for k in group_kinds):
                    future.add_done_callback(lambda _: audit.archive_done())
                for name in parents & {k.name for k in group_kinds}:
                    if rounds is not None:
                        future.add_done_callback(rounds.done_callback(name))
            try:
                for future in futures:
                    results += future.result()
            except BaseException:
                abort.set()  # stop the other collectors at their next checkpoint
                raise
        return results
    finally:
        if own_bridge and bridge is not None:
            bridge.close()


def audit_feed(
    graph: GraphClient,
    roles: set[str],
    kinds: list[KindSpec],
    starts: list[dt.datetime | None] | None = None,
) -> AuditFeed | None:
    """One directory audit log reader for the job's incremental = audit kinds, keeping only
    the activities they (and the deletions and restores of what they link to, and restores
    of their parents) care about; ``starts``: where their windows begin this job
    (audit_relation.window_starts)."""
    audited = [k for k in kinds if k.incremental == "audit"]
    if not audited:
        return None
    relevant = {a for k in audited for a in k.changed_by}
    for kind in audited:
        for target in kind.links_to:
            relevant.update(TARGET_GONE.get(target, ()), TARGET_BACK.get(target, ()))
        relevant.update(TARGET_BACK.get(kind.parent or "", ()))
    return AuditFeed(graph, roles, relevant, starts)


def _collector_groups(kinds: list[KindSpec]) -> list[tuple[str, list[KindSpec]]]:
    """(collector, its kinds) to run side by side. Collectors read independent sources: each
    delta stream is sequential (every page names the next), so parallel sources are what fills
    the tenant's resource-unit budget; the shared budget keeps them under it together. Kinds of
    one collector need not be neighbours in the registry (userManager is declared apart from
    user): they are gathered, in registry order; those of a shared read stay together."""
    by_collector: dict[str, list[KindSpec]] = {}
    for kind in kinds:
        by_collector.setdefault(kind.collector, []).append(kind)
    groups: list[tuple[str, list[KindSpec]]] = []
    for collector, same in by_collector.items():
        if collector in SHARED_READ:
            groups.append((collector, same))
        else:
            groups.extend((collector, [kind]) for kind in same)
    return groups


def _start_order(
    group: tuple[str, list[KindSpec]],
    archive: list[tuple[str, list[KindSpec]]],
    parents: set[str],
) -> int:
    """When a collector starts (the pool takes them in this order; sorting is stable). The
    job lasts as long as its longest chain of pages, so the chains that grow with the tenant
    start first: the users and groups rounds and the listings that $expand a relationship
    over a whole parent collection (100 parents a page). Parent kinds' collectors come before
    them (relationship kinds wait for their rounds), and the audit archive before all."""
    name, kinds = group
    if group in archive:
        return 0
    if parents & {k.name for k in kinds}:
        return 1
    if name in SHARED_READ or any(k.relation and k.relation_expand for k in kinds):
        return 2
    return 3


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
