"""Save and load a tenant's directory (gzip JSON), change log and deleted items included."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from agent.simulator.graph.activity import ActivityLog
from agent.simulator.graph.directory import Deleted, Directory
from agent.simulator.graph.objects import ObjectStore
from agent.simulator.graph.policy_store import PolicyStore
from agent.simulator.graph.props_objects import OBJECT_KINDS
from agent.simulator.graph.tenant_store import TenantStore

FORMAT = 1


def save(directory: Directory, path: Path) -> None:
    with directory.lock:
        state: dict[str, Any] = {
            "format": FORMAT,
            "tenant_id": directory.tenant_id,
            "domain": directory.domain,
            "token_key": directory.token_key.hex(),
            "clock_offset": directory.clock_offset,
            "users": [
                directory.row("user", i)
                for i in directory.order("user")
                if directory.row("user", i)
            ],
            "groups": [
                directory.row("group", i)
                for i in directory.order("group")
                if directory.row("group", i)
            ],
            "objects": {
                k: [directory.row(k, i) for i in directory.order(k) if directory.row(k, i)]
                for k in OBJECT_KINDS
            },
            "order": {k: directory.order(k) for k in ("user", "group", *OBJECT_KINDS)},
            "links": directory.objects.to_json(),
            "tenant_config": directory.tenant_config.to_json(),
            "policies": directory.policies.to_json(),
            "members": {g: sorted(m) for g, m in directory.members_of.items()},
            "owners": {g: sorted(o) for g, o in directory.owners_of.items()},
            "manager": directory.manager,
            "deleted": {oid: d.__dict__ for oid, d in directory.deleted.items()},
            "ssgm": directory.ssgm,
            "activity": directory.activity.to_json(),
            "log_start": directory.log_start,
            "log": directory.log_entries(),
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as fh:
            json.dump(state, fh, separators=(",", ":"))
    os.replace(tmp, path)  # a crash mid-save leaves the previous state intact


def load(path: Path) -> Directory:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        state = json.load(fh)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown simulator state format {state.get('format')!r}")
    d = Directory(state["tenant_id"], state["domain"])
    d.token_key = bytes.fromhex(state["token_key"])
    d.clock_offset = float(state["clock_offset"])
    objects = state.get("objects", {})  # absent in states saved before these kinds existed
    kinds = [("user", state["users"]), ("group", state["groups"])]
    kinds += [(k, objects.get(k, [])) for k in OBJECT_KINDS]
    for kind, rows in kinds:
        for row in rows:
            d.load_row(kind, row)
        d.restore_order(kind, state["order"].get(kind, []))
    d.objects = ObjectStore.from_json(state.get("links", {}))
    d.tenant_config = TenantStore.from_json(state.get("tenant_config"))
    d.policies = PolicyStore.from_json(state.get("policies", {}))
    if "policies" not in state:  # saved before policies existed: the tenant gets its policies
        from agent.simulator.graph.policy_generate import generate_policies

        generate_policies(d, d.tenant_id)
    for gid, members in state["members"].items():
        for oid in members:
            d.load_member(gid, oid)
    for gid, owners in state["owners"].items():
        for oid in owners:
            d.load_owner(gid, oid)
    for user_id, manager_id in state["manager"].items():
        d.load_manager(user_id, manager_id)
    d.deleted = {oid: Deleted(**item) for oid, item in state["deleted"].items()}
    d.ssgm = state.get("ssgm")
    d.activity = ActivityLog.from_json(
        state.get("activity")
    )  # absent in states saved before the portal API existed
    d.load_log(int(state["log_start"]), [tuple(e) for e in state["log"]])
    return d
