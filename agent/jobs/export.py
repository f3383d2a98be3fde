"""Write a snapshot out as readable JSON: one folder per kind, one file per object."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from agent.db.catalog import Catalog
from agent.store.repository import Repository

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def safe_name(text: str) -> str:
    return _UNSAFE.sub("_", text)[:150] or "_"


@dataclass
class ExportReport:
    out: Path
    objects: int
    kinds: dict[str, int]


def export_snapshot(
    catalog: Catalog, repo: Repository, snapshot_id: int, out: Path
) -> ExportReport:
    snapshot = catalog.snapshot(snapshot_id)
    # Exported files are plaintext directory data: keep them to the operator.
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    counts: dict[str, int] = {}
    index = []
    for version in catalog.state(snapshot.tenant, snapshot.seq):
        folder = out / version.kind
        folder.mkdir(exist_ok=True)
        path = folder / f"{safe_name(version.object_id)}.json"
        obj = repo.get(version.blob_id)
        path.write_text(
            json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
        )
        counts[version.kind] = counts.get(version.kind, 0) + 1
        index.append(
            {
                "kind": version.kind,
                "id": version.object_id,
                "label": version.label,
                "file": f"{version.kind}/{path.name}",
            }
        )
    meta = {
        "tenant": snapshot.tenant,
        "snapshot": snapshot.id,
        "seq": snapshot.seq,
        "completed": str(snapshot.completed_at),
        "digest": snapshot.digest,
        "objects": counts,
        "index": index,
    }
    (out / "snapshot.json").write_text(
        json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return ExportReport(out, sum(counts.values()), counts)
