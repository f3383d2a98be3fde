"""Save and load a tenant's simulated Exchange with ``--state`` (next to directory.json.gz).

The Graph half of mail-enabled groups is in the directory file; this file holds the
Exchange-only half, settings, role groups, role assignments, management scopes and service
principals.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agent.simulator.exchange.rbac import assignment_object
from agent.simulator.exchange.state import DlRecord, ExchangeOrg

FORMAT = 1


def save(org: ExchangeOrg, path: Path) -> None:
    with org.lock:
        document = {
            "format": FORMAT,
            "dls": [asdict(record) for record in org.dls.values()],
            "settings": org.settings,
            "role_groups": org.role_groups,
            "role_assignments": org.role_assignments,
            "management_scopes": org.management_scopes,
            "assignment_policies": org.assignment_policies,
            "service_principals": org.service_principals,
            "app_exchange_admin": org.app_exchange_admin,
            "seen_seq": org._seen_seq,
        }
        data = json.dumps(document, separators=(",", ":")).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(data))
    tmp.replace(path)


def load(org: ExchangeOrg, path: Path) -> None:
    """Replace the generated state of ``org`` with the saved one."""
    document = json.loads(gzip.decompress(path.read_bytes()))
    if document.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown Exchange state format {document.get('format')!r}")
    with org.lock:
        org.dls = {}
        for raw in document["dls"]:
            record = DlRecord(**raw)
            record.props = {key: _recipients(value) for key, value in record.props.items()}
            org.dls[record.group_id] = record
        org.settings = document["settings"]
        org.role_groups = document["role_groups"]
        if "role_assignments" in document:
            org.role_assignments = document["role_assignments"]
            org.management_scopes = document["management_scopes"]
            org.assignment_policies = document["assignment_policies"]
        else:  # saved before assignments were kept: each role group's Roles as assignments
            org.role_assignments = [
                assignment_object(
                    org.ctx, f"{role}-{g['Name']}", role, "RoleGroup", g["Name"], org.ctx.created
                )
                for g in org.role_groups
                for role in g.get("Roles") or []
            ]
        org.service_principals = document["service_principals"]
        org.app_exchange_admin = document["app_exchange_admin"]
        org._seen_seq = min(int(document["seen_seq"]), org.directory.seq)
        org.invalidate_index()


def _recipients(value: Any) -> Any:
    """Recipient lists are (kind, id) pairs in memory; JSON made them lists."""
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, list) and len(v) == 2 for v in value)
    ):
        return [(str(kind), str(oid)) for kind, oid in value]
    return value
