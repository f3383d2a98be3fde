"""Write a snapshot out as readable JSON: one folder per kind, one file per object."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.collect.branding import image_refs
from agent.db.catalog import Catalog
from agent.store.repository import Repository

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")
_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/x-icon": ".ico",
    "image/vnd.microsoft.icon": ".ico",
    "text/css": ".css",
}


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
        entry: dict[str, Any] = {
            "kind": version.kind,
            "id": version.object_id,
            "label": version.label,
            "file": f"{version.kind}/{path.name}",
        }
        # Images (company branding) are blobs of their own: write them next to the JSON.
        for name, ref in sorted(image_refs(obj).items()):
            ext = _EXTENSIONS.get(str(ref.get("contentType")), ".bin")
            image = folder / f"{safe_name(version.object_id)}.{safe_name(name)}{ext}"
            image.write_bytes(repo.get_bytes(str(ref["blobId"])))
            entry.setdefault("images", {})[name] = f"{version.kind}/{image.name}"
        index.append(entry)
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
