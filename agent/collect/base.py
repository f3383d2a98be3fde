"""What a collector gets to work with, and how it hands objects to the job.

A collector reads one source (e.g. Graph's groups delta) and produces objects of one or more
kinds. It never writes versions itself: it stages them, and the job commits a snapshot only
when every collector has finished.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from agent.collect.prefetch import prefetched
from agent.db.catalog import Catalog, KindResult, StagedObject
from agent.exchange.bridge import ExchangeBridge
from agent.graph.client import GraphClient
from agent.kinds.spec import KindSpec
from agent.portal import PortalClient
from agent.schema.csdl import load_schema
from agent.store.repository import Repository, canonical_json

if TYPE_CHECKING:
    from agent.collect.audit_feed import AuditFeed
    from agent.collect.first_pages import FirstPages
    from agent.collect.parent_rounds import ParentRounds

STAGE_BATCH = 2000
# Objects put are stored together at the page's end, or sooner once they hold this much text:
# what waits is bounded whatever a page holds (a page of large membership lists).
UNSEALED_BYTES = 1 << 18


class Cancelled(Exception):
    """The job was asked to stop (service shutdown, Ctrl-C)."""


def clean(obj: dict[str, Any], volatile: Iterable[str] = ()) -> dict[str, Any]:
    """Drop OData annotations (except the type) and volatile properties before storing; a
    dotted name ("licenseAssignmentStates.lastUpdatedDateTime") drops a nested property, in
    each item of a list too."""
    drop, nested = _volatile(tuple(volatile))
    # Most objects have nothing to drop at the top: one scan of the keys in C; with nothing
    # nested to drop either, the object itself (what is stored is only read, never changed).
    if "@" in "".join(obj) or not drop.isdisjoint(obj):
        out = {
            k: v for k, v in obj.items() if k not in drop and ("@" not in k or k == "@odata.type")
        }
    elif not nested:
        return obj
    else:
        out = dict(obj)
    for head, rest in nested:
        value = out.get(head)
        if isinstance(value, dict):
            out[head] = clean(value, rest)
        elif isinstance(value, list):
            out[head] = [clean(i, rest) if isinstance(i, dict) else i for i in value]
    return out


@lru_cache(maxsize=256)
def _volatile(
    volatile: tuple[str, ...],
) -> tuple[frozenset[str], tuple[tuple[str, tuple[str]], ...]]:
    """A kind's volatile names split once: (top-level names, (head, (rest,)) of dotted ones)."""
    drop = frozenset(v for v in volatile if "." not in v)
    nested = tuple(
        (head, (rest,)) for head, _, rest in (v.partition(".") for v in volatile if "." in v)
    )
    return drop, nested


def with_unset(kind: KindSpec, obj: dict[str, Any]) -> dict[str, Any]:
    """An object as stored: every selected property present, unset ones as Graph's collection
    read shows them (null, or [] for a collection). A delta item leaves unset properties out;
    completed alike, a full read and an incremental one give the same blob, and restore finds
    [] (not null) for an emptied collection."""
    if kind.entity_type is None or not kind.select:
        return obj
    if obj.keys() >= _selected_names(kind.entity_type, kind.select):
        return obj  # a list read's object has them all: one set comparison in C
    missing = [(n, c) for n, c in _selected(kind.entity_type, kind.select) if n not in obj]
    if not missing:
        return obj
    return {**obj, **{name: [] if collection else None for name, collection in missing}}


def stage_listing(
    ctx: CollectContext, stager: Stager, path: str, params: dict[str, Any], label: str
) -> None:
    """Stage every object of a collection as its pages arrive (completed by ``with_unset``),
    reporting the count so far as ``label``."""
    done = 0
    for page in prefetched(ctx.graph.pages(path, params)):
        for item in page.items:
            stager.put(with_unset(stager.kind, item))
        stager.flush()
        done += len(page.items)
        ctx.report(label, done)


def side_by_side(tasks: Sequence[Callable[[], None]]) -> None:
    """Run independent reads of one collector at once (each is a chain of pages); the first
    failure is raised once all have stopped."""
    if len(tasks) == 1:
        tasks[0]()
        return
    with ThreadPoolExecutor(len(tasks), thread_name_prefix="chain") as pool:
        for future in [pool.submit(task) for task in tasks]:
            future.result()


@lru_cache(maxsize=64)
def _selected_names(entity_type: str, select: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name for name, _ in _selected(entity_type, select))


@lru_cache(maxsize=64)
def _selected(entity_type: str, select: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """(property, is a collection) of the selected structural properties (CSDL)."""
    props = load_schema().properties(entity_type)
    return tuple(
        (name, props[name].collection)
        for name in select
        if name in props and name != "id" and not props[name].navigation
    )


class Stager:
    """Buffers staged objects of one kind and writes them to the catalog in batches."""

    def __init__(self, ctx: CollectContext, kind: KindSpec) -> None:
        self._ctx = ctx
        self.kind = kind
        self._buffer: list[StagedObject] = []
        # Objects put since the last flush, stored together then (Repository.put_canonical_many)
        self._unsealed: list[tuple[str, bytes]] = []
        self._unsealed_bytes = 0
        self.result = KindResult(kind=kind.name, status="succeeded", mode=ctx.mode_for(kind))
        self._started = time.monotonic()

    def put(self, obj: dict[str, Any], children: Sequence[str] = ()) -> str:
        """Stage ``obj``; ``children`` are blobs it refers to (already in the repository).
        A singleton Graph answers without its key (the cross-tenant access default) is
        staged under the kind's name."""
        stored = clean(obj, self.kind.volatile)
        missing = self.kind.key not in stored and self.kind.singleton
        object_id = self.kind.name if missing else str(stored[self.kind.key])
        payload = canonical_json(stored)
        blob_id = self._ctx.repo.canonical_id(payload)
        self._hold(blob_id, payload)
        if children:
            self._ctx.catalog.record_blob_children(blob_id, children)
        # No label in the catalog: names and UPNs are directory data and stay in the encrypted
        # blobs; the catalog holds only ids and blob names.
        self._add(StagedObject(self.kind.name, object_id, "", "put", blob_id))
        self.result.succeeded += 1
        return blob_id

    def put_canonical_parts(self, object_id: str, parts: Callable[[], Iterable[bytes]]) -> str:
        """``put_canonical`` for an object given as its canonical JSON in parts (see
        ``Repository.put_canonical_parts``: ``parts`` may be called twice)."""
        small: list[tuple[str, bytes]] = []  # a small one is held to go with the page
        blob_id = self._ctx.repo.put_canonical_parts(parts, later=small)
        for held_id, text in small:
            self._hold(held_id, text)
        self._add(StagedObject(self.kind.name, object_id, "", "put", blob_id))
        self.result.succeeded += 1
        return blob_id

    def _hold(self, blob_id: str, payload: bytes) -> None:
        """Keep a put object to be stored with the page (``_store_held``)."""
        self._unsealed.append((blob_id, payload))
        self._unsealed_bytes += len(payload)
        if self._unsealed_bytes >= UNSEALED_BYTES:
            self._store_held()

    def _store_held(self) -> None:
        if self._unsealed:
            self._ctx.repo.put_canonical_many(self._unsealed)
            self._unsealed = []
            self._unsealed_bytes = 0

    def remove(self, object_id: str) -> None:
        self._add(StagedObject(self.kind.name, object_id, "", "remove", None))

    def keep(self, object_id: str, reason: str) -> None:
        """The object exists but could not be read: carry its previous version forward."""
        self._add(StagedObject(self.kind.name, object_id, "", "keep", None))
        self.result.failed += 1
        self._ctx.log(
            "warning",
            f"Could not read {self.kind.name} {object_id}: {reason}",
            kind=self.kind.name,
            object_id=object_id,
        )

    def _add(self, row: StagedObject) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= STAGE_BATCH:
            self.flush(force=True)

    def flush(self, *, force: bool = False) -> None:
        """A page boundary: store the page's objects, check for cancellation, and write the
        staged rows once a batch is full (one catalog transaction per STAGE_BATCH rows, not
        one per page)."""
        self._store_held()
        if self._buffer and (force or len(self._buffer) >= STAGE_BATCH):
            self._ctx.catalog.stage(self._ctx.job_id, self._buffer)
            self._buffer = []
        self._ctx.checkpoint()

    def finish(self, *, full_listing: bool, delta_link: str | None = None) -> KindResult:
        # An archive of events is never a full listing: absence means "aged out", not "gone".
        if full_listing and self.kind.incremental == "window":
            raise ValueError(f"{self.kind.name}: a time-window kind cannot mark a full listing")
        self.flush(force=True)
        if full_listing:
            self._ctx.catalog.mark_full_listing(self._ctx.job_id, self.kind.name)
            self.result.mode = "full"
        if delta_link:
            self._ctx.catalog.stage_delta_link(self._ctx.job_id, self.kind.name, delta_link)
        if self.result.failed:
            self.result.status = "partial"
        self.result.duration_s = round(time.monotonic() - self._started, 3)
        return self.result


class Progress(Protocol):
    def __call__(self, kind: str, done: int) -> None: ...


@dataclass
class CollectContext:
    tenant: str
    job_id: int
    graph: GraphClient
    catalog: Catalog
    repo: Repository
    force_full: bool
    kinds: Sequence[KindSpec]  # the kinds of this collector that are in scope and permitted
    log: Callable[..., None]
    cancel: threading.Event = field(default_factory=threading.Event)  # this job only
    stop: threading.Event | None = None  # the caller's: Ctrl-C, service shutdown
    progress: Progress | None = None
    heartbeat: Callable[[], None] = lambda: None
    scratch_dir: str | None = None
    portal: PortalClient | None = None  # only when the tenant has a service account
    bridge: ExchangeBridge | None = None  # only when the tenant has an [exchange] section
    # The job's directory audit log reader, shared by the incremental = audit kinds.
    audit: AuditFeed | None = None
    full_every_days: int = 7  # the scope's periodic full read, per kind as well
    # The first pages of the job's small list kinds, read together in $batch.
    first_pages: FirstPages | None = None
    # What the parent kinds' own delta reads of this job saw, for the relationship kinds.
    parent_rounds: ParentRounds | None = None

    def wants(self, name: str) -> bool:
        return any(k.name == name for k in self.kinds)

    def kind(self, name: str) -> KindSpec:
        return next(k for k in self.kinds if k.name == name)

    def stager(self, name: str) -> Stager:
        return Stager(self, self.kind(name))

    def delta_link(self, name: str) -> str | None:
        """The stored position for an incremental read; None means read in full."""
        if self.force_full:
            return None
        return self.catalog.delta_link(self.tenant, name)

    def mode_for(self, kind: KindSpec) -> str:
        incremental = kind.incremental in ("delta", "window", "audit")
        return "full" if self.force_full or not incremental else "incremental"

    def previous(self, name: str, object_ids: Sequence[str]) -> dict[str, Any]:
        """The latest committed version of these objects (for merging delta changes)."""
        blobs = self.catalog.current_blobs(self.tenant, name, list(object_ids))
        return {oid: self.repo.get(blob) for oid, blob in blobs.items()}

    def checkpoint(self) -> None:
        if self.cancel.is_set() or (self.stop is not None and self.stop.is_set()):
            raise Cancelled()
        self.heartbeat()

    def report(self, kind: str, done: int) -> None:
        if self.progress is not None:
            self.progress(kind, done)


Collector = Callable[[CollectContext], dict[str, KindResult]]
