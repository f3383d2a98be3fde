"""Two points in time and what differs between them, object by object.

A side is a snapshot (catalog + repository) or the live tenant (``live.LiveRead``). The
catalog finds the objects whose content differs (``Catalog.differences`` /
``LiveRead.differences``); ``compare`` loads only those, diffs them property by property and
labels them. Labels (displayName, UPN…) live only in the encrypted blobs, never in the
database, so they are read from the objects here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from agent.compare.differ import ObjectDiff, diff_objects
from agent.db.catalog import Catalog, SnapshotView, VersionPair
from agent.errors import ConfigError, NotFound
from agent.kinds import BY_NAME, KindSpec
from agent.store.repository import Repository

LATEST, PREVIOUS = "latest", "previous"


class Side(Protocol):
    def load(self, blob_id: str) -> dict[str, Any]: ...

    def find(self, kind: str, object_id: str) -> dict[str, Any] | None: ...


@dataclass
class SnapshotSide:
    catalog: Catalog
    repo: Repository
    tenant: str
    seq: int  # 0: before the first snapshot (nothing)

    def load(self, blob_id: str) -> dict[str, Any]:
        return dict(self.repo.get(blob_id))

    def find(self, kind: str, object_id: str) -> dict[str, Any] | None:
        blob = self.catalog.blob_at(self.tenant, kind, object_id, self.seq)
        return self.load(blob) if blob else None


def compare(
    pairs: Iterable[VersionPair], old: Side, new: Side, *, reveal: bool = False
) -> Iterator[ObjectDiff]:
    """Property-level differences of the objects ``pairs`` names, labelled, in order."""
    for pair in pairs:
        before = old.load(pair.old_blob) if pair.old_blob else None
        after = new.load(pair.new_blob) if pair.new_blob else None
        diff = diff_objects(pair.kind, pair.object_id, before, after, reveal=reveal)
        if diff is None:
            continue
        content = after if after is not None else before
        label = label_of(pair.kind, pair.object_id, content or {}, (new, old))
        yield replace(diff, label=label)


def label_of(kind: str, object_id: str, content: dict[str, Any], sides: Sequence[Side]) -> str:
    """What people call the object: its label property, or for a relationship kind (members,
    owners…) the label of the parent object, looked up on the given sides in turn."""
    spec = BY_NAME.get(kind)
    if spec is None:
        return _label(None, content)
    if spec.parent:
        parent_spec = BY_NAME.get(spec.parent)
        # The parent's id: in the declared label property (groupId, deviceId…) or the key.
        parent_id = str(content.get(spec.label) or content.get(spec.key) or object_id)
        for side in sides:
            parent = side.find(spec.parent, parent_id)
            if parent is not None:
                return _label(parent_spec, parent)
    return _label(spec, content)


def _label(spec: KindSpec | None, content: dict[str, Any]) -> str:
    for name in (spec.label if spec else "displayName", "displayName"):
        value = content.get(name)
        if value not in (None, ""):
            return str(value)
    return ""


# -- naming snapshots -----------------------------------------------------------------------


def resolve_snapshot(catalog: Catalog, ref: str, tenant: str | None) -> SnapshotView:
    """A snapshot id as 'snapshots list' prints it, or 'latest' / 'previous' of ``tenant``."""
    text = ref.strip().lower()
    if text.isdigit():
        snap = catalog.snapshot(int(text))
        if tenant is not None and snap.tenant != tenant:
            raise NotFound(
                f"Snapshot {snap.id} belongs to tenant '{snap.tenant}', not '{tenant}'.",
                f"List the snapshots of '{tenant}' with 'entra-backup snapshots list "
                f"--tenant {tenant}'.",
            )
        return snap
    if text not in (LATEST, PREVIOUS):
        raise ConfigError(
            f"'{ref}' is not a snapshot reference.",
            "Use a snapshot id as 'entra-backup snapshots list' prints it, 'latest' or 'previous'.",
        )
    if tenant is None:
        raise ConfigError(
            f"'{text}' needs a tenant: more than one is configured.", "Add --tenant NAME."
        )
    snaps = catalog.snapshots(tenant, limit=2)
    index = 0 if text == LATEST else 1
    if len(snaps) <= index:
        raise NotFound(
            f"Tenant '{tenant}' has no {'' if text == LATEST else 'previous '}snapshot"
            f"{'' if text == LATEST else ' (it has ' + str(len(snaps)) + ')'}.",
            f"Run 'entra-backup backup --tenant {tenant}'"
            + (" first." if text == LATEST else "; 'previous' is the one before the latest."),
        )
    return snaps[index]


def predecessor(catalog: Catalog, snap: SnapshotView) -> SnapshotView | None:
    """The snapshot just before ``snap`` of its tenant (None for the first)."""
    return catalog.snapshots_at(snap.tenant, [snap.seq - 1]).get(snap.seq - 1)
