"""Read the live tenant into a temporary area that is never a snapshot.

The same collectors as a backup read every chosen kind in full. They stage rows under a job
(a read-only "compare" job of its own, or the caller's restore job) and store objects in a
scratch repository: one SQLite file in the agent's tmp folder, sealed with the repository key,
so equal content has the same blob id and nothing is stored in plaintext. Nothing is
committed: on leaving ``read_live`` the staging rows are dropped and the scratch file deleted.
Memory stays flat: rows go to the catalog in batches, objects to disk, and the comparison
(``Catalog.staging_differences``) runs in the database.

``diff --live`` uses it today; restore planning reads the tenant through it too.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psutil

from agent.collect.base import Cancelled, Progress
from agent.collect.window import format_time, parse_time
from agent.db.catalog import KindResult, VersionPair
from agent.errors import AgentError
from agent.exchange.bridge import ExchangeBridge
from agent.jobs.backup import STALE_AFTER_S, heartbeat_of
from agent.jobs.collecting import collect_kinds
from agent.jobs.connection import connect_tenant
from agent.kinds import BY_NAME, KindSpec
from agent.runtime import Runtime
from agent.store.repository import Repository
from agent.store.scratch_repository import ScratchRepository

log = logging.getLogger("entra_backup.compare")

READ = ("succeeded", "partial")


@dataclass
class LiveRead:
    """The live tenant, as read by one job; valid only inside ``read_live``."""

    rt: Runtime
    tenant: str
    job_id: int
    repo: Repository  # the scratch repository holding the live objects
    results: list[KindResult]
    read_at: dt.datetime

    @property
    def kinds_read(self) -> list[str]:
        """Kinds read in full: these, and only these, can be compared."""
        return [r.kind for r in self.results if r.status in READ]

    def differences(self, seq: int, kinds: list[str] | None = None) -> Iterator[VersionPair]:
        """Objects that differ between snapshot ``seq`` and the live tenant. For archive
        kinds (time-window events) an archived event older than the live read's window is
        not "removed": the service's retention dropped it and our archive keeps it on purpose."""
        wanted = [k for k in self.kinds_read if kinds is None or k in kinds]
        for pair in self.rt.catalog.staging_differences(self.job_id, self.tenant, seq, wanted):
            if pair.new_blob is None and pair.old_blob is not None and self.aged_out(pair):
                continue
            yield pair

    def window_start(self, kind: str) -> dt.datetime | None:
        """Where the live read of an archive kind began (its oldest event); None: it returned
        no event, so every archived one is older than the service keeps."""
        text = next(r.window_start for r in self.results if r.kind == kind)
        return _parsed(text) if text else None

    def aged_out(self, pair: VersionPair) -> bool:
        spec = BY_NAME.get(pair.kind)
        if spec is None or spec.incremental != "window" or not spec.time_property:
            return False
        when = self.load(str(pair.old_blob)).get(spec.time_property)
        start = self.window_start(pair.kind)
        return start is None or (isinstance(when, str) and parse_time(when) < start)

    def archive_note(self, kind: str) -> str:
        """What a live compare of an archive kind leaves out, for the report."""
        spec = BY_NAME.get(kind)
        if spec is None or spec.incremental != "window" or kind not in self.kinds_read:
            return ""
        start = self.window_start(kind)
        since = f"before {format_time(start)}" if start else "all of them: none is kept live"
        return (
            "archive: events the service no longer keeps "
            f"({since}) stay in the snapshot and are not compared"
        )

    def load(self, blob_id: str) -> dict[str, Any]:
        return dict(self.repo.get(blob_id))

    def find(self, kind: str, object_id: str) -> dict[str, Any] | None:
        blob = self.rt.catalog.staged_blob(self.job_id, kind, object_id)
        return self.load(blob) if blob else None


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> dt.datetime:
    return parse_time(text)


@contextmanager
def read_live(
    rt: Runtime,
    tenant_name: str,
    kinds: list[KindSpec],
    *,
    job_id: int | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    on_event: Callable[[str, str], None] | None = None,
    bridge: ExchangeBridge | None = None,
) -> Iterator[LiveRead]:
    """Read ``kinds`` from the live tenant; yields the staged read, then removes it.

    ``bridge``: the caller's bridge session (restore reads and writes through one); without
    it bridge kinds get a session of their own. Without ``job_id`` a "compare" job is recorded
    (one running job per tenant, like any other: a backup and a live read never share the
    tenant's budget).
    """
    tenant = rt.config.tenant(tenant_name)
    catalog = rt.catalog
    key = rt.repository_key()
    stored = rt.repository  # a wrong key fails before anything starts
    catalog.ensure_tenant(tenant_name, tenant.tenant_id)
    catalog.interrupt_stale_jobs(
        host=rt.host, is_alive=psutil.pid_exists, stale_after_s=STALE_AFTER_S
    )
    own_job = job_id is None
    if job_id is None:
        job_id = catalog.start_job(
            tenant_name,
            job_type="compare",
            mode="full",
            scope=",".join(k.name for k in kinds),
            host=rt.host,
            pid=os.getpid(),
        )
    the_job = job_id

    def job_log(
        level: str, message: str, *, kind: str | None = None, object_id: str | None = None
    ) -> None:
        catalog.log(the_job, level, message, kind=kind, object_id=object_id)
        log.log(logging.getLevelName(level.upper()), message, extra={"tenant": tenant_name})
        if on_event:
            on_event(level, message)

    heartbeat = heartbeat_of(catalog, the_job)

    repo = ScratchRepository(rt.scratch_dir, key, fallback=stored)
    status, error = "failed", None
    stats: dict[str, Any] | None = None
    try:
        job_log("info", f"Reading {len(kinds)} kinds of tenant '{tenant_name}' live to compare.")
        conn = connect_tenant(rt, tenant_name, tenant)
        results = collect_kinds(
            rt,
            conn,
            tenant_name,
            job_id,
            kinds,
            repo=repo,
            force_full=True,
            job_log=job_log,
            stop=stop or threading.Event(),
            progress=progress,
            heartbeat=heartbeat,
            bridge=bridge,
        )
        stats = conn.graph.stats.as_dict()
        for result in results:
            catalog.record_kind(job_id, result)
        failed = [r for r in results if r.status == "failed"]
        status = "partial" if failed else "succeeded"
        yield LiveRead(rt, tenant_name, job_id, repo, results, dt.datetime.now(dt.UTC))
        job_log("info", "Live read compared; nothing was stored.")
    except (Cancelled, KeyboardInterrupt):
        status, error = "interrupted", "Stopped before it finished; nothing was stored."
        raise
    except AgentError as exc:
        status, error = "failed", str(exc)
        raise
    except BaseException as exc:
        status, error = "failed", f"Unexpected {type(exc).__name__}: {exc}"
        log.exception("Unexpected failure in compare job %s", job_id)
        raise
    finally:
        catalog.discard_staging(job_id)
        repo.close()
        if own_job:
            catalog.finish_job(job_id, status, error=error, stats=stats)
