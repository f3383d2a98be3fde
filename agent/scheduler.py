"""The long-lived agent: runs each tenant's scopes on their cron schedules.

Config is the source of truth: the schedule is rebuilt from it at every start. One run per
tenant at a time (a scope whose tenant is busy waits for the next tick; across agents sharing
one database the catalog refuses a second running job). SIGTERM / Ctrl-C asks running jobs to
stop at their next checkpoint; they are recorded as interrupted and commit nothing.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from agent.errors import AgentError, JobConflict
from agent.jobs.backup import STALE_AFTER_S, run_backup
from agent.runtime import Runtime

log = logging.getLogger("entra_backup.scheduler")


@dataclass
class AgentService:
    rt: Runtime
    stop_event: threading.Event = field(default_factory=threading.Event)
    _tenant_locks: dict[str, threading.Lock] = field(default_factory=dict)
    scheduler: BackgroundScheduler | None = None

    def recover(self) -> list[int]:
        """Mark jobs left running by a dead process as interrupted."""
        ids = self.rt.catalog.interrupt_stale_jobs(
            host=self.rt.host, is_alive=psutil.pid_exists, stale_after_s=STALE_AFTER_S
        )
        for job_id in ids:
            log.warning(
                "Job %s was left running by a process that died; marked interrupted.", job_id
            )
        return ids

    def build(self) -> BackgroundScheduler:
        workers = max(1, self.rt.config.agent.max_concurrent_jobs)
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        )
        for tenant_name, tenant in self.rt.config.tenants.items():
            self._tenant_locks[tenant_name] = threading.Lock()
            for scope in tenant.scopes:
                scheduler.add_job(
                    self.run_scope,
                    CronTrigger.from_crontab(scope.schedule),
                    args=(tenant_name, scope.name),
                    id=f"{tenant_name}:{scope.name}",
                    name=f"backup {tenant_name} / {scope.name}",
                )
        self.scheduler = scheduler
        return scheduler

    def run_scope(self, tenant_name: str, scope: str) -> str:
        lock = self._tenant_locks.setdefault(tenant_name, threading.Lock())
        if not lock.acquire(blocking=False):
            log.warning(
                "Skipped %s/%s: a backup of this tenant is still running.", tenant_name, scope
            )
            return "busy"
        try:
            report = run_backup(self.rt, tenant_name, scope=scope, cancel=self.stop_event)
            return report.status
        except JobConflict as exc:
            log.warning("Skipped %s/%s: %s", tenant_name, scope, exc)
            return "busy"
        except AgentError as exc:
            log.error("Backup of %s/%s failed: %s", tenant_name, scope, exc)
            return "failed"
        except Exception:
            if self.stop_event.is_set():
                return "interrupted"
            log.exception("Backup of %s/%s failed unexpectedly", tenant_name, scope)
            return "failed"
        finally:
            lock.release()

    def serve(self, install_signals: bool = True, ready: Callable[[], None] | None = None) -> None:
        self.recover()
        scheduler = self.build()
        if install_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: self.stop_event.set())
        scheduler.start()
        for job in scheduler.get_jobs():
            log.info("Scheduled %s; next run %s", job.name, job.next_run_time)
        if not scheduler.get_jobs():
            log.warning("No backup scopes are configured; the agent is idle.")
        if ready:
            ready()
        try:
            while not self.stop_event.wait(1.0):
                pass
        finally:
            log.info("Stopping: waiting for running jobs to reach a checkpoint.")
            scheduler.shutdown(wait=True)
            log.info("Agent stopped.")
