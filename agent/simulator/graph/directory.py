"""A tenant's directory: users, groups, memberships, owners, managers, deleted items.

Every mutation appends to a monotonic change log; delta tokens are positions in that log
(facts file §2), so a delta round reports exactly what changed after its token. Rows keep only
the properties that are set, and relationships are sets of ids, so 100,000 users and a million
memberships fit in memory.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.simulator.graph.activity import ActivityLog
from agent.simulator.graph.objects import ObjectStore
from agent.simulator.graph.policy_store import PolicyStore
from agent.simulator.graph.props import is_property
from agent.simulator.graph.props_objects import OBJECT_KINDS, RESTORABLE
from agent.simulator.graph.tenant_store import TenantStore

if TYPE_CHECKING:
    from agent.simulator.graph.churn import ChurnSummary

# Facts file §3: soft-deleted objects stay restorable for 30 days, then are gone for good.
RETENTION_S = 30 * 24 * 3600

# Change-log operations.
UPSERT, SOFT, HARD, MEMBER_ADD, MEMBER_DEL = "upsert", "soft", "hard", "member+", "member-"


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Deleted:
    """A soft-deleted object and the relationships a restore brings back."""

    kind: str
    row: dict[str, Any]
    deleted_at: float
    member_of: list[str] = field(default_factory=list)
    owner_of: list[str] = field(default_factory=list)
    manager: str | None = None
    members: list[str] = field(default_factory=list)  # groups only
    owners: list[str] = field(default_factory=list)  # groups only


@dataclass
class ObjectChanges:
    """What the change log says about one object between two positions."""

    kind: str
    props: set[str] = field(default_factory=set)
    members: dict[str, bool] = field(default_factory=dict)  # member id -> added (False: removed)


class DirectoryError(Exception):
    """A mutation that Graph would refuse (unknown object, bad property)."""


class Directory:
    """Thread-safe state of one tenant; every write is logged for delta."""

    def __init__(self, tenant_id: str, domain: str) -> None:
        self.tenant_id = tenant_id
        self.domain = domain
        self.lock = threading.RLock()
        self.token_key = secrets.token_bytes(32)  # signs skip/delta tokens of this tenant
        self.clock_offset = 0.0
        kinds = ("user", "group", *OBJECT_KINDS)
        self._rows: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in kinds}
        self._order: dict[str, list[str]] = {k: [] for k in kinds}
        self._kind: dict[str, str] = {}  # live object id -> its kind (ids are unique across kinds)
        self.objects = ObjectStore()  # apps, SPs, devices, AUs, roles: links (objects.py)
        self.tenant_config = TenantStore()  # RBAC, settings, organization (tenant_store.py)
        self.policies = PolicyStore()  # conditional access and other policies (policy_store.py)
        self._pos: dict[str, int] = {}
        self.members_of: dict[str, set[str]] = {}  # group -> member ids
        self.owners_of: dict[str, set[str]] = {}  # group -> owner ids
        self._member_of: dict[str, set[str]] = {}  # object -> groups it is a member of
        self._sorted_members: dict[str, list[str]] = {}  # group -> its member ids, sorted
        self._owner_of: dict[str, set[str]] = {}  # user -> groups it owns
        self.manager: dict[str, str] = {}  # user -> manager id (write through load_manager)
        self._reports: dict[str, set[str]] = {}  # manager -> direct reports
        self.deleted: dict[str, Deleted] = {}
        self.ssgm: dict[str, Any] | None = None  # admin portal Groups settings (portal.py)
        self.activity = ActivityLog()  # audit events (one per change below) and sign-ins
        # (seq, time, kind, id, op, detail): detail is property names or a member id.
        self._log: list[tuple[int, float, str, str, str, Any]] = []
        self._log_base = 1  # seq of _log[0]

    # -- clock --------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset += seconds
            self._expire_deleted()

    # -- change log ---------------------------------------------------------------------

    @property
    def seq(self) -> int:
        """Position after the last change: a delta token at ``seq`` has seen everything."""
        with self.lock:
            return self._log_base + len(self._log) - 1

    @property
    def log_start(self) -> int:
        return self._log_base

    def _append(
        self, kind: str, oid: str, op: str, detail: Any = (), audited_as: str | None = None
    ) -> None:
        entry = (self.seq + 1, self.now(), kind, oid, op, detail)
        self._log.append(entry)
        self.activity.record_change(self, entry, audited_as)

    def changes(self, kind: str, after: int, upto: int) -> dict[str, ObjectChanges]:
        """Changes to objects of ``kind`` with after < seq <= upto, in first-change order."""
        result: dict[str, ObjectChanges] = {}
        with self.lock:
            start = max(after + 1 - self._log_base, 0)
            stop = max(upto + 1 - self._log_base, 0)
            for _, _, k, oid, op, detail in self._log[start:stop]:
                if k != kind:
                    continue
                entry = result.setdefault(oid, ObjectChanges(kind))
                if op == UPSERT:
                    entry.props.update(detail)
                elif op in (MEMBER_ADD, MEMBER_DEL):
                    entry.members[detail] = op == MEMBER_ADD
        return result

    # -- reads --------------------------------------------------------------------------

    def kind_of(self, oid: str) -> str | None:
        # Asked for every member entry a page lists: one dict lookup, no lock (a lookup is
        # atomic; writers keep _kind and _rows in step under the lock).
        return self._kind.get(oid)

    def get(self, oid: str) -> dict[str, Any] | None:
        with self.lock:
            kind = self._kind.get(oid)
            return dict(self._rows[kind][oid]) if kind is not None else None

    def row(self, kind: str, oid: str) -> dict[str, Any] | None:
        """The stored row itself (no copy): callers hold ``lock`` and must not change it."""
        return self._rows[kind].get(oid)

    def users(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self._rows["user"].values()]

    def groups(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self._rows["group"].values()]

    def count(self, kind: str) -> int:
        # Asked on every request (the throttling tier): len() of a dict needs no lock, and
        # waiting behind a long page build here serialized all requests.
        return len(self._rows[kind])

    def members(self, group_id: str) -> set[str]:
        with self.lock:
            return set(self.members_of.get(group_id, ()))

    def sorted_members(self, group_id: str) -> list[str]:
        """A group's member ids in id order, kept until its membership changes: a page of a
        big group's members bisects it instead of sorting 95,000 ids. Read only."""
        with self.lock:
            ids = self._sorted_members.get(group_id)
            if ids is None:
                ids = self._sorted_members[group_id] = sorted(self.members_of.get(group_id, ()))
            return ids

    def owners(self, group_id: str) -> set[str]:
        with self.lock:
            return set(self.owners_of.get(group_id, ()))

    def manager_of(self, user_id: str) -> str | None:
        with self.lock:
            return self.manager.get(user_id)

    def scan(self, kind: str, start: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """Live rows in stable creation order from position ``start`` (caller holds lock)."""
        order, rows = self._order[kind], self._rows[kind]
        for pos in range(start, len(order)):
            row = rows.get(order[pos])
            if row is not None:
                yield pos, row

    def deleted_items(self, kind: str) -> list[tuple[str, Deleted]]:
        with self.lock:
            self._expire_deleted()
            return [(oid, d) for oid, d in self.deleted.items() if d.kind == kind]

    # -- bulk load (generator, persistence): no change-log entries ------------------------

    def load_row(self, kind: str, row: dict[str, Any]) -> None:
        oid = row["id"]
        self._rows[kind][oid] = row
        self._kind[oid] = kind
        if oid not in self._pos:
            self._pos[oid] = len(self._order[kind])
            self._order[kind].append(oid)
        if kind == "group":
            self.members_of.setdefault(oid, set())
            self.owners_of.setdefault(oid, set())

    def load_manager(self, user_id: str, manager_id: str | None) -> None:
        old = self.manager.pop(user_id, None)
        if old is not None:
            self._reports.get(old, set()).discard(user_id)
        if manager_id is not None:
            self.manager[user_id] = manager_id
            self._reports.setdefault(manager_id, set()).add(user_id)

    def load_member(self, group_id: str, oid: str) -> None:
        self.members_of[group_id].add(oid)
        self._sorted_members.pop(group_id, None)
        self._member_of.setdefault(oid, set()).add(group_id)

    def load_owner(self, group_id: str, oid: str) -> None:
        self.owners_of[group_id].add(oid)
        self._owner_of.setdefault(oid, set()).add(group_id)

    # -- users --------------------------------------------------------------------------

    def _check_props(self, kind: str, props: dict[str, Any]) -> None:
        for name in props:
            if not is_property(kind, name):
                raise DirectoryError(f"{kind} has no property {name!r}")

    def _create(self, kind: str, props: dict[str, Any]) -> dict[str, Any]:
        self._check_props(kind, props)
        with self.lock:
            oid = props.pop("id", None) or str(uuid.uuid4())
            if oid in self._pos:
                raise DirectoryError(f"object {oid} already exists")
            row = {"id": oid, "createdDateTime": iso(self.now())}
            row.update({k: v for k, v in props.items() if v is not None})
            self.load_row(kind, row)
            self._append(kind, oid, UPSERT, tuple(row))
            return dict(row)

    def _update(self, kind: str, oid: str, props: dict[str, Any]) -> None:
        self._check_props(kind, props)
        if "id" in props:
            raise DirectoryError("id cannot change")
        with self.lock:
            row = self._live(kind, oid)
            for name, value in props.items():
                if value is None:
                    row.pop(name, None)
                else:
                    row[name] = value
            self._append(kind, oid, UPSERT, tuple(props))

    def _live(self, kind: str, oid: str) -> dict[str, Any]:
        row = self._rows[kind].get(oid)
        if row is None:
            raise DirectoryError(f"no {kind} {oid}")
        return row

    def create_user(self, **props: Any) -> dict[str, Any]:
        props.setdefault("accountEnabled", True)
        props.setdefault("userType", "Member")
        return self._create("user", props)

    def update_user(self, user_id: str, **props: Any) -> None:
        self._update("user", user_id, props)

    def set_manager(self, user_id: str, manager_id: str | None) -> None:
        with self.lock:
            self._live("user", user_id)
            if manager_id is not None:
                self._live("user", manager_id)
            self.load_manager(user_id, manager_id)
            self._append("user", user_id, UPSERT, ("manager",))

    def delete_user(self, user_id: str, permanent: bool = False) -> None:
        self._delete("user", user_id, permanent)

    # -- groups -------------------------------------------------------------------------

    def create_group(self, **props: Any) -> dict[str, Any]:
        props.setdefault("groupTypes", [])
        props.setdefault("mailEnabled", False)
        props.setdefault("securityEnabled", True)
        return self._create("group", props)

    def update_group(self, group_id: str, **props: Any) -> None:
        self._update("group", group_id, props)

    def delete_group(self, group_id: str, permanent: bool = False) -> None:
        with self.lock:
            row = self._live("group", group_id)
            # Facts file §3: M365 and cloud security groups are soft-deleted; synced groups,
            # distribution lists and mail-enabled security groups are deleted for good.
            restorable = "Unified" in row.get("groupTypes", ()) or (
                not row.get("mailEnabled") and not row.get("onPremisesSyncEnabled")
            )
            self._delete("group", group_id, permanent or not restorable)

    def add_member(self, group_id: str, object_id: str) -> None:
        with self.lock:
            self._live("group", group_id)
            if self.kind_of(object_id) is None:
                raise DirectoryError(f"no object {object_id}")
            if object_id == group_id:
                raise DirectoryError("a group cannot be a member of itself")
            if object_id not in self.members_of[group_id]:
                self.load_member(group_id, object_id)
                self._append("group", group_id, MEMBER_ADD, object_id)

    def remove_member(self, group_id: str, object_id: str) -> None:
        with self.lock:
            self._live("group", group_id)
            if object_id not in self.members_of[group_id]:
                raise DirectoryError(f"{object_id} is not a member of {group_id}")
            self._unlink_member(group_id, object_id)

    def _unlink_member(self, group_id: str, object_id: str) -> None:
        self.members_of[group_id].discard(object_id)
        self._sorted_members.pop(group_id, None)
        self._member_of.get(object_id, set()).discard(group_id)
        self._append("group", group_id, MEMBER_DEL, object_id)

    def add_owner(self, group_id: str, user_id: str) -> None:
        with self.lock:
            self._live("group", group_id)
            self._live("user", user_id)
            self.load_owner(group_id, user_id)
            # Owners are not tracked by groups delta (facts file §2 lists members only), so
            # an owner change is not logged as a group change; Entra audits it.
            self.activity.record_link(
                self, "group", group_id, "Add owner to group", [(user_id, "user")]
            )

    def remove_owner(self, group_id: str, user_id: str) -> None:
        with self.lock:
            self._live("group", group_id)
            if user_id not in self.owners_of[group_id]:
                raise DirectoryError(f"{user_id} is not an owner of {group_id}")
            self.owners_of[group_id].discard(user_id)
            self._owner_of.get(user_id, set()).discard(group_id)
            self.activity.record_link(
                self, "group", group_id, "Remove owner from group", [(user_id, "user")]
            )

    # -- other directory objects (applications, devices, …; objects_model.py) ------------

    def create(self, kind: str, **props: Any) -> dict[str, Any]:
        return self._create(kind, props)

    def update(self, kind: str, oid: str, **props: Any) -> None:
        self._update(kind, oid, props)

    def delete(self, kind: str, oid: str, permanent: bool = False) -> None:
        # Facts file §3: only these kinds have a deletedItems cast; others go for good.
        self._delete(kind, oid, permanent or kind not in RESTORABLE)

    # -- delete, restore, purge ---------------------------------------------------------

    def _delete(self, kind: str, oid: str, permanent: bool) -> None:
        with self.lock:
            row = self._rows[kind].pop(self._live(kind, oid)["id"])
            self._kind.pop(row["id"], None)
            gone = Deleted(kind, row, self.now())
            for group_id in sorted(self._member_of.pop(oid, set())):
                gone.member_of.append(group_id)
                self.members_of[group_id].discard(oid)
                self._sorted_members.pop(group_id, None)
                self._append("group", group_id, MEMBER_DEL, oid)
            for group_id in sorted(self._owner_of.pop(oid, set())):
                gone.owner_of.append(group_id)
                self.owners_of[group_id].discard(oid)
            if kind == "user":
                gone.manager = self.manager.get(oid)
                self.load_manager(oid, None)
                for report in sorted(self._reports.pop(oid, set())):
                    self.manager.pop(report, None)
                    self._append("user", report, UPSERT, ("manager",))
            else:
                gone.members = sorted(self.members_of.pop(oid, set()))
                self._sorted_members.pop(oid, None)
                gone.owners = sorted(self.owners_of.pop(oid, set()))
                for member in gone.members:
                    self._member_of.get(member, set()).discard(oid)
                for owner in gone.owners:
                    self._owner_of.get(owner, set()).discard(oid)
            if permanent:
                self._append(kind, oid, HARD)
            else:
                row["deletedDateTime"] = iso(gone.deleted_at)
                self.deleted[oid] = gone
                self._append(kind, oid, SOFT)

    def restore_deleted(self, object_id: str) -> dict[str, Any]:
        """Undelete a soft-deleted object with its memberships and ownerships."""
        with self.lock:
            self._expire_deleted()
            gone = self.deleted.pop(object_id, None)
            if gone is None:
                raise DirectoryError(f"no deleted item {object_id}")
            row = gone.row
            row.pop("deletedDateTime", None)
            self.load_row(gone.kind, row)
            self._append(gone.kind, object_id, UPSERT, tuple(row), audited_as="restore")
            for group_id in gone.member_of:
                if group_id in self._rows["group"]:
                    self.load_member(group_id, object_id)
                    self._append("group", group_id, MEMBER_ADD, object_id)
            for group_id in gone.owner_of:
                if group_id in self._rows["group"]:
                    self.load_owner(group_id, object_id)
            if gone.manager and gone.manager in self._rows["user"]:
                self.load_manager(object_id, gone.manager)
            for member in gone.members:
                if self.kind_of(member):
                    self.load_member(object_id, member)
                    self._append("group", object_id, MEMBER_ADD, member)
            for owner in gone.owners:
                if owner in self._rows["user"]:
                    self.load_owner(object_id, owner)
            return dict(row)

    def purge_deleted(self, object_id: str) -> None:
        with self.lock:
            gone = self.deleted.pop(object_id, None)
            if gone is None:
                raise DirectoryError(f"no deleted item {object_id}")
            self._append(gone.kind, object_id, HARD)

    def _expire_deleted(self) -> None:
        cutoff = self.now() - RETENTION_S
        for oid in [o for o, d in self.deleted.items() if d.deleted_at <= cutoff]:
            self.purge_deleted(oid)

    # -- churn --------------------------------------------------------------------------

    def churn(self, rng: random.Random, fraction: float) -> ChurnSummary:
        from agent.simulator.graph.churn import apply_churn

        with self.lock:
            return apply_churn(self, rng, fraction)

    # -- persistence helpers ------------------------------------------------------------

    def order(self, kind: str) -> list[str]:
        return list(self._order[kind])

    def log_entries(self) -> list[tuple[int, float, str, str, str, Any]]:
        return list(self._log)

    def load_log(self, base: int, entries: list[tuple[int, float, str, str, str, Any]]) -> None:
        self._log_base = base
        self._log = entries

    def restore_order(self, kind: str, ids: list[str]) -> None:
        self._order[kind] = ids
        for pos, oid in enumerate(ids):
            self._pos[oid] = pos
