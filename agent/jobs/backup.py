"""One backup job: read a tenant's scope, stage what changed, commit one snapshot.

Failure rules (the operator trusts these):
- A kind that fails does not stop the others; the job is "partial" and that kind's previous
  state is carried forward, marked as such in the snapshot.
- Nothing is visible until ``commit_snapshot``: a kind prepared as soon as its collector is
  done (agent/db/prepare.py) writes versions of a snapshot that does not exist yet; a job
  that dies or is cancelled leaves only staging, which is discarded (prepared versions
  undone), so every earlier snapshot stays intact.
- A kind the token has no permission for is "skipped" with the permission it needs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from agent.collect.base import Cancelled, Progress
from agent.config import ScopeConfig, TenantConfig
from agent.db.catalog import Catalog, KindResult, SnapshotView
from agent.errors import AgentError, ConnectionFailed
from agent.exchange.bridge import ExchangeBridge
from agent.jobs.collecting import collect_kinds
from agent.jobs.connection import connect_tenant, open_bridge
from agent.kinds import KindSpec, resolve
from agent.memory import release_free_memory
from agent.runtime import Runtime, TenantConnection

log = logging.getLogger("entra_backup.backup")

HEARTBEAT_EVERY_S = 15.0


# A running job whose heartbeat is older than this belongs to a dead agent on another host.
STALE_AFTER_S = 15 * 60


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
    HEARTBEAT_EVERY_S, so other agents can tell a live job from a dead one, and gives the heap's
    free pages back (memory.py), so what one phase freed does not add to the next one's peak."""
    last_beat = [time.monotonic()]

    def heartbeat() -> None:
        if time.monotonic() - last_beat[0] >= HEARTBEAT_EVERY_S:
            last_beat[0] = time.monotonic()  # first: the other threads need not wait for it
            catalog.heartbeat(job_id)
            release_free_memory()

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

    def collected(results: list[KindResult]) -> None:
        # A collector is done: its kinds' results are final, so their staged rows become the
        # snapshot's versions now, invisibly until the commit, while the others still read.
        for result in results:
            catalog.record_kind(job_id, result)
        catalog.prepare_kinds(job_id, [r.kind for r in results if r.status != "failed"])

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
            collected=collected,
        )
        if not any(r.status in ("succeeded", "partial") for r in results):
            raise _nothing_read(results, errors)
        repo.sync()  # every blob the snapshot refers to is on disk before it becomes visible
        snapshot = catalog.commit_snapshot(job_id)
        release_free_memory()
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


def _stats(conn: TenantConnection | None, bridge: ExchangeBridge | None) -> dict[str, Any]:
    stats: dict[str, Any] = conn.graph.stats.as_dict() if conn else {}
    if bridge is not None:
        stats["bridge"] = bridge.stats.as_dict()
    return stats


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
