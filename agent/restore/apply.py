"""Apply a restore plan as a job, then verify it against a fresh live read.

The job is recorded like a backup job (job kind "restore", per-kind results, a log line per
action and outcome). Writes go through the tenant connection's GraphClient, paced by its write
budget; one failing object never stops the rest. Values are never logged: only property names.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.compare.differ import diff_objects
from agent.compare.live import LiveRead, read_live
from agent.compare.sides import SnapshotSide
from agent.db.catalog import KindResult
from agent.errors import AgentError, WriteRejected
from agent.exchange.bridge import ExchangeBridge
from agent.graph import GraphClient
from agent.jobs.connection import connect_tenant, open_bridge
from agent.kinds import BY_NAME, KindSpec
from agent.restore.actions import Action, Plan, Request
from agent.restore.idmap import IdMap
from agent.restore.ordering import live_kinds
from agent.restore.passwords import PasswordFile, temporary_password
from agent.restore.plan import build_plan
from agent.restore.precheck import blockers
from agent.restore.restorers import (
    comparable,
    link_field,
    link_items,
    restorer_for,
)
from agent.restore.session import apply_remarks, open_session
from agent.runtime import Runtime

RESULT_SCHEMA = "entra-backup/restore/1"
STATUSES = ("restored", "partial", "failed", "skipped")


@dataclass
class Outcome:
    action: Action
    status: str = "restored"  # restored | partial | failed | skipped
    reason: str = ""
    properties: dict[str, str] = field(default_factory=dict)  # not restored: property → why
    new_id: str | None = None

    def json(self) -> dict[str, Any]:
        return {
            **self.action.json(),
            "status": self.status,
            "reason": self.reason,
            "new_id": self.new_id,
            "not_restored": dict(sorted(self.properties.items())),
        }


@dataclass
class RestoreReport:
    plan: Plan
    dry_run: bool
    job_id: int | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    id_map: IdMap | None = None
    password_file: str | None = None
    # What stops the real run before any write (a dry run lists it; the real run raises it).
    blocked: list[AgentError] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(o.status == "failed" for o in self.outcomes)

    def json(self) -> dict[str, Any]:
        summary = {s: sum(o.status == s for o in self.outcomes) for s in STATUSES}
        return {
            "schema": RESULT_SCHEMA,
            "dry_run": self.dry_run,
            "job": self.job_id,
            "plan": self.plan.json(),
            "results": [o.json() for o in self.outcomes],
            "summary": summary,
            "id_map": self.id_map.json() if self.id_map else None,
            "password_file": self.password_file,
            "blocked": [{"code": e.code, "message": e.message, "fix": e.fix} for e in self.blocked],
        }


Confirm = Callable[[Plan], None]  # shows the plan; raises to refuse


def run_restore(
    rt: Runtime,
    tenant_name: str,
    snap: SnapshotSide,
    snapshot_id: int,
    request: Request,
    *,
    dry_run: bool,
    confirm: Confirm,
    password_file: Path | None,
) -> RestoreReport:
    tenant = rt.config.tenant(tenant_name)
    to_read = live_kinds(request.kinds)
    # One bridge session for the whole restore (plan read, writes, verify read), as a backup
    # job has one; None when no bridge kind is chosen or the tenant has no [exchange].
    bridge = open_bridge(rt, tenant, request.kinds)
    try:
        return _run(rt, tenant_name, snap, snapshot_id, request, to_read, bridge,
                    dry_run=dry_run, confirm=confirm, password_file=password_file)  # fmt: skip
    finally:
        if bridge is not None:
            bridge.close()


def _run(
    rt: Runtime,
    tenant_name: str,
    snap: SnapshotSide,
    snapshot_id: int,
    request: Request,
    to_read: list[KindSpec],
    bridge: ExchangeBridge | None,
    *,
    dry_run: bool,
    confirm: Confirm,
    password_file: Path | None,
) -> RestoreReport:
    tenant = rt.config.tenant(tenant_name)
    if dry_run:
        conn = connect_tenant(rt, tenant_name, tenant)
        request = _as_caller(request, conn.tokens.claims())
        with read_live(rt, tenant_name, to_read, bridge=bridge) as live:
            plan = build_plan(snap, live, request, snapshot_id, open_session(conn, snap.repo))
            return RestoreReport(plan, dry_run=True, blocked=blockers(plan, password_file))
    catalog = rt.catalog
    job_id = catalog.start_job(
        tenant_name,
        job_type="restore",
        mode="full",
        scope=",".join(k.name for k in request.kinds),
        host=rt.host,
        pid=os.getpid(),
    )

    def job_log(level: str, message: str, kind: str | None = None, oid: str | None = None) -> None:
        catalog.log(job_id, level, message, kind=kind, object_id=oid)

    status, error = "failed", None
    passwords: PasswordFile | None = None
    try:
        conn = connect_tenant(rt, tenant_name, tenant)
        claims = conn.tokens.claims()
        request = _as_caller(request, claims)
        session = open_session(conn, snap.repo)
        with read_live(rt, tenant_name, to_read, job_id=job_id, bridge=bridge) as live:
            plan = build_plan(snap, live, request, snapshot_id, session)
        if stop := blockers(plan, password_file):
            raise stop[0]  # before the operator is asked, before any write
        confirm(plan)
        if password_file is not None and plan.needs("user", "recreate"):
            passwords = PasswordFile(password_file)
        job_log("info", f"Restoring snapshot {snapshot_id}: {len(plan.writes())} actions.")
        report = RestoreReport(plan, False, job_id, id_map=plan.id_map)
        report.password_file = str(password_file) if passwords else None
        assert report.id_map is not None
        with session.active():  # families read the run's context (session.py)
            for action in plan.actions:
                client = bridge if BY_NAME[action.kind].channel == "bridge" else conn.graph
                outcome = _apply(client, action, report.id_map, request, passwords)
                report.outcomes.append(outcome)
                job_log(
                    "error" if outcome.status == "failed" else "info",
                    f"{action.action} {action.kind} {action.object_id}: {outcome.status}"
                    + (f" ({outcome.reason})" if outcome.reason else ""),
                    action.kind,
                    action.object_id,
                )
        touched = [k for k in request.kinds if any(a.kind == k.name for a in plan.writes())]
        parents = {k.parent for k in touched if k.parent}  # link checks read their parents
        touched += [k for k in request.kinds if k.name in parents and k not in touched]
        if touched:
            with read_live(rt, tenant_name, touched, job_id=job_id, bridge=bridge) as after:
                for outcome in report.outcomes:
                    _verify(outcome, after, snap, report.id_map, request)
        apply_remarks(report.outcomes, session, report.id_map)
        for spec in request.kinds:
            mine = [o for o in report.outcomes if o.action.kind == spec.name]
            failed = sum(o.status == "failed" for o in mine)
            catalog.record_kind(
                job_id,
                KindResult(
                    spec.name,
                    "failed"
                    if failed and failed == len(mine)
                    else "partial"
                    if failed
                    else "succeeded",
                    "full",
                    succeeded=sum(o.status in ("restored", "partial") for o in mine),
                    failed=failed,
                    skipped=sum(o.status == "skipped" for o in mine),
                    added=sum(o.action.action == "recreate" for o in mine),
                    changed=sum(o.action.action in ("patch", "undelete", "relink") for o in mine),
                    removed=sum(o.action.action == "delete" for o in mine),
                ),
            )
        status = "partial" if report.failed else "succeeded"
        return report
    except AgentError as exc:
        error = str(exc)
        job_log("error", error)
        raise
    finally:
        if passwords is not None:
            passwords.close()
        catalog.finish_job(job_id, status, error=error)


def _as_caller(request: Request, claims: dict[str, Any]) -> Request:
    """``request`` knowing what the token grants (kinds it cannot write are skipped, "missing
    X"), the app's directory roles (undeletes it may not do are skipped, precheck.py) and who
    the app is (its own role assignments are never pruned)."""
    return replace(
        request,
        granted=set(claims.get("roles") or ()),
        app_roles=set(claims.get("wids") or ()),
        caller=claims.get("oid"),
    )


def _apply(
    g: Any,  # the kind's channel: GraphClient, or ExchangeBridge for bridge kinds
    action: Action,
    ids: IdMap,
    request: Request,
    passwords: PasswordFile | None,
) -> Outcome:
    outcome = Outcome(action)
    if action.action == "skip":
        outcome.status, outcome.reason = "skipped", action.reason
        return outcome
    spec = BY_NAME[action.kind]
    r = restorer_for(spec)
    try:
        if hasattr(r, "apply_action"):  # a family that applies its actions itself
            r.apply_action(g, action, ids, request, outcome)
        elif action.action == "patch":
            then = ids.rewrite(action.snapshot)
            r.update(g, spec, ids.get(action.object_id), ids.rewrite(action.patch), then)
        elif action.action == "undelete":
            outcome.properties.update(r.undelete(g, spec, action.object_id))
            now = r.read(g, spec, action.object_id)
            body = _differing(r, spec, now, ids.rewrite(action.snapshot))
            body = {k: v for k, v in body.items() if k not in outcome.properties}
            if request.properties is not None:
                body = {k: v for k, v in body.items() if k in request.properties}
            if body:
                r.update(g, spec, action.object_id, body, ids.rewrite(action.snapshot))
        elif action.action == "recreate":
            entity = spec.entity_type or spec.name
            allowed = r.creatable(spec)
            body = {
                k: v
                for k, v in ids.rewrite(action.snapshot).items()
                if k in allowed and v is not None
            }
            password = None
            if entity == "user":
                password = temporary_password()
                body["passwordProfile"] = {
                    "password": password,
                    "forceChangePasswordNextSignIn": True,
                }
            created = r.create(g, spec, body)
            outcome.new_id = str(created.get(spec.key) or body.get(spec.key) or "")
            if outcome.new_id != action.object_id:  # a key the creator names stays the same
                ids.add(spec.name, action.object_id, outcome.new_id)
            old_app, new_app = action.snapshot.get("appId"), created.get("appId")
            if entity == "application" and old_app and new_app and old_app != new_app:
                ids.add("appId", str(old_app), str(new_app))  # its service principal names it
                # Values naming the app's own appId (api://{appId}) follow the new one.
                again = {
                    k: v
                    for k, v in ids.rewrite(body).items()
                    if v != body[k] and k in r.writable(spec)
                }
                if again:
                    r.patch(g, spec, outcome.new_id, again)
            if password is not None and passwords is not None:
                passwords.add(str(action.snapshot.get("userPrincipalName")), password)
        elif action.action == "relink":
            _relink(g, action, ids, outcome)
        elif action.action == "delete":
            r.delete(g, spec, action.object_id, action.snapshot)
    except AgentError as exc:
        outcome.status, outcome.reason = "failed", str(exc)
    return outcome


def _relink(g: GraphClient, action: Action, ids: IdMap, outcome: Outcome) -> None:
    spec = BY_NAME[action.kind]
    r = restorer_for(spec)
    pid = ids.get(action.object_id)
    problems: list[str] = []

    def adds() -> None:
        for link in action.add:
            try:
                r.add(g, spec, pid, ids.rewrite(link))
            except WriteRejected as exc:
                if exc.reason != "exists":  # already there: the goal is met
                    problems.append(f"add {link['id']}: {exc}")

    if not getattr(r, "removes_first", False):
        adds()
    for target in action.remove:
        try:
            r.remove(g, spec, pid, target)
        except WriteRejected as exc:
            if exc.status != 404:  # already gone
                problems.append(f"remove {target}: {exc}")
    if getattr(r, "removes_first", False):
        adds()
    if problems:
        done = len(action.add) + len(action.remove) - len(problems)
        outcome.status = "partial" if done else "failed"
        outcome.reason = "; ".join(problems)


def _differing(r: Any, spec: KindSpec, now: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    diff = diff_objects(
        spec.name, "", comparable(r, spec, now), comparable(r, spec, then), reveal=True
    )
    writable = r.writable(spec)
    return {p: then.get(p) for p in (diff.properties if diff else []) if p in writable}


def _verify(
    outcome: Outcome, live: LiveRead, snap: SnapshotSide, ids: IdMap, request: Request
) -> None:
    """Compare what the tenant holds now with the snapshot, for what this action touched."""
    action = outcome.action
    if outcome.status in ("failed", "skipped"):
        return
    spec = BY_NAME[action.kind]
    if hasattr(restorer_for(spec), "verify_action"):
        restorer_for(spec).verify_action(outcome, live, ids, request)
        return
    now = live.find(action.kind, ids.get(action.object_id))
    if action.action == "delete":
        if now is not None:
            outcome.status, outcome.reason = "failed", "still in the tenant after the delete"
        return
    want = ids.rewrite(action.snapshot)
    if spec.parent:
        name = link_field(spec)
        have = set(link_items(spec, (now or {}).get(name)))
        wanted = set(link_items(spec, want.get(name)))
        missing = wanted - have
        extra = (have - wanted) if request.mode == "overwrite" else set()
        held = missing & set(action.held)  # left out at plan: their target stays gone
        missing -= held
        why = [action.notes[name]] if held else []
        if missing or extra:
            why.insert(0, f"after the restore {len(missing)} link(s) still missing, {len(extra)} extra")  # fmt: skip
        if why:
            outcome.status = "partial" if outcome.status == "restored" else outcome.status
            outcome.properties[name] = "; ".join(why)
        return
    if now is None:
        outcome.status, outcome.reason = "failed", "not found in the tenant after the restore"
        return
    r = restorer_for(spec)
    diff = diff_objects(
        action.kind,
        action.object_id,
        comparable(r, spec, now),
        comparable(r, spec, want),
        reveal=True,
    )
    writable = r.writable(spec)
    scope = set(action.patch) if action.action == "patch" else None
    for prop in diff.properties if diff else []:
        if prop == spec.key or (request.properties is not None and prop not in request.properties):
            continue
        if prop in action.notes:  # planned as not written, with its reason
            outcome.properties[prop] = action.notes[prop]
            continue
        if scope is not None and prop not in scope and prop in writable:
            continue  # not part of this restore (e.g. merge left it)
        outcome.properties.setdefault(  # keep a reason the write itself gave
            prop, "still differs after the write" if prop in writable else r.why_not(spec, prop)
        )
    if outcome.properties:
        outcome.status = "partial"
    raw = diff_objects(action.kind, action.object_id, now, want, reveal=True)
    for prop in raw.properties if raw else []:
        if prop != spec.key and prop not in (diff.properties if diff else []):
            # Restored in full; only ids Graph assigns to contained items are new.
            outcome.properties[prop] = "same content; Graph gave the items written again new ids"
