"""Restore of distribution lists and mail-enabled security groups through the Exchange bridge.

Graph cannot write these groups (facts file §5): Set-EbDistributionGroup writes every
Exchange-only property the module lets through (its ``EbDlSettable`` table), ManagedBy
included; a group that is gone is created again with New-EbDistributionGroup and then set —
Exchange keeps no recycle bin for them, so it gets a new ExternalDirectoryObjectId (= its Graph
id), which goes into the id map: the members of other groups, Graph-side memberships and
everything else restored later name the new id.

Order: every group of both kinds is created or set first, then members. A group's members
(Sync-EbDistributionGroupMember, one Update-DistributionGroupMember of the whole list with
-BypassSecurityGroupManagerCheck) and the properties that name other groups
(AcceptMessagesOnlyFromDLMembers, RejectMessagesFromDLMembers,
BypassModerationFromSendersOrMembers) are written by the member kind's action, once every
group they may name exists again: nested DLs before the DLs that contain them.
"""

from __future__ import annotations

from typing import Any

from agent.compare.live import LiveRead
from agent.compare.sides import SnapshotSide
from agent.exchange.bridge import ExchangeBridge
from agent.kinds import BY_NAME, KindSpec
from agent.kinds.exchange import GROUP_KINDS
from agent.restore.actions import Action, Request
from agent.restore.bridge_base import (
    BridgeAction,
    BridgeRestorer,
    differing,
    empty,
    module_tables,
    not_in_snapshot,
    pairs_of,
    plan_pairs,
    run_write,
    same,
)
from agent.restore.idmap import IdMap
from agent.restore.link_actions import target_gone, unread_targets
from agent.restore.probe import check
from agent.restore.restorers import register

# Properties that name other groups: written with the members, after every group exists.
GROUP_REFS = frozenset(
    {
        "AcceptMessagesOnlyFromDLMembers",
        "RejectMessagesFromDLMembers",
        "BypassModerationFromSendersOrMembers",
    }
)
# Exchange computes these from the pairs above (senders + DL members): never written.
UNIONS = {
    "AcceptMessagesOnlyFromSendersOrMembers": "AcceptMessagesOnlyFrom + …DLMembers",
    "RejectMessagesFromSendersOrMembers": "RejectMessagesFrom + …DLMembers",
}
# Both follow EmailAddresses (its "SMTP:" entry); writing them with it is refused.
ADDRESS_DERIVED = frozenset({"PrimarySmtpAddress", "WindowsEmailAddress"})
# What New-EbDistributionGroup takes; the rest is set right after.
AT_CREATE = ("Alias", "DisplayName", "PrimarySmtpAddress", "ManagedBy")
# Change with every write or identify the object: not settings.
# What a member can be, by the kinds that hold it (contacts are no kind: left to Exchange).
MEMBER_KINDS = ("user", "group", "distributionGroup", "mailEnabledSecurityGroup")
IGNORED = frozenset({"ExternalDirectoryObjectId", "WhenChangedUTC", "Members"})
WHY = {
    "Guid": "Exchange gives a recreated group a new Guid",
    "Identity": "the group's Name (written as Name)",
    "RecipientTypeDetails": "fixed when the group is created (distribution or security)",
    "MaxSendSize": "Set-DistributionGroup has no parameter for it",
    "MaxReceiveSize": "Set-DistributionGroup has no parameter for it",
    **{p: "follows EmailAddresses' SMTP: entry (written there)" for p in ADDRESS_DERIVED},
    **{p: f"computed by Exchange from {w}" for p, w in UNIONS.items()},
}
NOT_IN_RECYCLE_BIN = (
    "gone for good: Exchange keeps no recycle bin for distribution lists and mail-enabled "
    "security groups; recreated with New-DistributionGroup (new ExternalDirectoryObjectId, "
    "recorded in the id map)"
)
TYPES = {"MailUniversalSecurityGroup": "Security", "MailUniversalDistributionGroup": "Distribution"}


def settable() -> frozenset[str]:
    return frozenset(module_tables()["EbDlSettable"]) - set(UNIONS) - ADDRESS_DERIVED


def member_kind_of(group_kind: str) -> str:
    return f"{group_kind}Member"


class ExchangeGroups(BridgeRestorer):
    """distributionGroup, mailEnabledSecurityGroup."""

    why = WHY

    def writable(self, spec: KindSpec) -> frozenset[str]:
        return settable()

    # -- plan ----------------------------------------------------------------------------------

    def plan_kind(
        self, spec: KindSpec, snap: SnapshotSide, live: LiveRead, request: Request, ids: IdMap
    ) -> list[Action]:
        if (absent := not_in_snapshot(spec, snap, request)) is not None:
            return absent
        pairs = pairs_of(spec, snap, live, None)
        # Groups created since the snapshot, by Name (unique in Exchange): a gone group that
        # matches one is the same group recreated by an earlier restore.
        added = {
            str(now.get("Name")).lower(): oid for oid, then, now in pairs if then is None and now
        }
        members_too = member_kind_of(spec.name) in {k.name for k in request.kinds}

        def decide(
            oid: str, then: dict[str, Any] | None, now: dict[str, Any] | None
        ) -> Action | None:
            if then is None or (request.ids is not None and oid not in request.ids):
                return None  # created since the snapshot: restore never deletes groups
            twin = added.get(str(then.get("Name")).lower()) if now is None else None
            if twin is not None:
                ids.add(spec.name, oid, twin)
                now = live.find(spec.name, twin)
            return self._action(spec, oid, then, now, request, members_too)

        return plan_pairs(spec.name, snap, live, pairs, decide)

    def _action(
        self,
        spec: KindSpec,
        oid: str,
        then: dict[str, Any],
        now: dict[str, Any] | None,
        request: Request,
        members_too: bool,
    ) -> Action | None:
        refs_note = f"written with the group's members (kind {member_kind_of(spec.name)})"
        if now is None:
            if request.properties is not None:
                return Action(spec.name, oid, "skip", snapshot=then,
                              reason=NOT_IN_RECYCLE_BIN.split(";")[0] + "; restoring single "
                              "properties cannot recreate it: run without --properties")  # fmt: skip
            action = BridgeAction(
                spec.name, oid, "recreate", snapshot=then, reason=NOT_IN_RECYCLE_BIN
            )
            if not members_too:
                for prop in sorted(GROUP_REFS):
                    if not empty(then.get(prop)):
                        action.notes[prop] = refs_note
            return action
        if request.mode == "skip":
            return Action(spec.name, oid, "skip", reason="exists; --mode skip leaves it as it is")
        action = BridgeAction(spec.name, oid, "patch", snapshot=then)
        writable = settable()
        for prop in differing(then, now, set(IGNORED)):
            if request.properties is not None and prop not in request.properties:
                continue
            if request.mode == "merge" and not (empty(now.get(prop)) and not empty(then.get(prop))):
                continue
            if prop in GROUP_REFS:
                if not members_too:
                    action.notes[prop] = refs_note
            elif prop in ADDRESS_DERIVED and "EmailAddresses" in writable:
                action.patch["EmailAddresses"] = then.get("EmailAddresses")
            elif prop in writable:
                action.patch[prop] = then.get(prop)
            else:
                action.notes[prop] = self.why_not(spec, prop)
        if not action.patch and not action.notes:
            return None
        if not action.patch:
            action.action, action.reason = "skip", "only properties no cmdlet writes differ"
        return action

    # -- apply ---------------------------------------------------------------------------------

    def apply_action(
        self, bridge: ExchangeBridge, action: Action, ids: IdMap, request: Request, outcome: Any
    ) -> None:
        spec = BY_NAME[action.kind]
        if action.action == "patch":
            run_write(outcome, lambda: bridge.set_group(ids.get(action.object_id), action.patch))
            return
        then = action.snapshot
        create = {k: then[k] for k in AT_CREATE if not empty(then.get(k))}
        group_type = TYPES[str(then.get("RecipientTypeDetails") or spec.extra["recipient_type"])]
        created: dict[str, Any] = {}

        def new() -> None:
            created.update(bridge.new_group(str(then["Name"]), group_type, create))

        if not run_write(outcome, new):
            return
        new_id = str(created.get("ExternalDirectoryObjectId") or "")
        if not new_id:
            outcome.status, outcome.reason = "failed", "the created group has no id"
            return
        ids.add(spec.name, action.object_id, new_id)
        outcome.new_id = new_id
        rest = {
            k: then.get(k)
            for k in sorted(settable() - set(AT_CREATE) - GROUP_REFS - {"Name"})
            if k in then
        }
        try:
            run_write(outcome, lambda: bridge.set_group(new_id, rest))
        except Exception as exc:  # created, but not every property could be set
            outcome.status = "partial"
            outcome.reason = f"created; setting its properties failed: {exc}"

    # -- verify --------------------------------------------------------------------------------

    def verify_ignored(self, spec: KindSpec) -> set[str]:
        return set(IGNORED) | GROUP_REFS  # those are checked by the member kind's action

    def still_differs(
        self, spec: KindSpec, action: Action, now: dict[str, Any], prop: str
    ) -> str | None:
        if prop not in settable():
            return self.why_not(spec, prop)
        if action.action == "patch" and prop not in action.patch:
            return None  # not part of this restore (merge left it)
        return "still differs after the write"


class ExchangeGroupMembers(BridgeRestorer):
    """distributionGroupMember, mailEnabledSecurityGroupMember: the member list, plus the
    parent's properties that name other groups."""

    def plan_kind(
        self, spec: KindSpec, snap: SnapshotSide, live: LiveRead, request: Request, ids: IdMap
    ) -> list[Action]:
        if (absent := not_in_snapshot(spec, snap, request)) is not None:
            return absent
        parent = spec.parent or ""
        changed = {oid for oid, _, _ in pairs_of(spec, snap, live, request.ids)}
        changed |= {
            oid for oid, then, _ in pairs_of(BY_NAME[parent], snap, live, request.ids) if then
        }
        recreating = parent in {k.name for k in request.kinds} and request.properties is None

        def decide(pid: str, then_g: dict[str, Any] | None, _: object) -> Action | None:
            if then_g is None:
                return None  # the group did not exist at the snapshot
            now_g = live.find(parent, ids.get(pid))
            return self._action(spec, pid, then_g, now_g, snap, live, request, ids, recreating)

        groups = ((pid, snap.find(parent, pid), None) for pid in sorted(changed))
        return plan_pairs(parent, snap, live, groups, decide)

    def _action(
        self,
        spec: KindSpec,
        pid: str,
        then_g: dict[str, Any],
        now_g: dict[str, Any] | None,
        snap: SnapshotSide,
        live: LiveRead,
        request: Request,
        ids: IdMap,
        recreating: bool,
    ) -> Action | None:
        then = snap.find(spec.name, pid)
        if now_g is None and not recreating:
            return Action(spec.name, pid, "skip", snapshot=then or {},
                          reason="the group is gone and not part of this restore")  # fmt: skip
        if now_g is not None and request.mode == "skip":
            return Action(spec.name, pid, "skip", reason="exists; --mode skip leaves it as it is")
        if then is None:
            return Action(spec.name, pid, "skip",
                          reason="its members could not be read at the snapshot")  # fmt: skip
        now = live.find(spec.name, ids.get(pid)) if now_g is not None else None
        # Members as they are named now: a group recreated by an earlier restore has a new id.
        wanted = {
            ids.get(str(m.get("ExternalDirectoryObjectId"))): m for m in then.get("members") or []
        }
        present = {
            str(m.get("ExternalDirectoryObjectId")) for m in (now or {}).get("members") or []
        }
        action = BridgeAction(spec.name, pid, "relink", snapshot=then)
        check(unread_targets(sorted(set(wanted) - present), MEMBER_KINDS, snap, live))
        for mid in sorted(set(wanted) - present):  # gone and not restored: Exchange refuses it
            if why := target_gone(mid, MEMBER_KINDS, snap, live):
                action.held[mid] = why
                del wanted[mid]
        if action.held:
            action.notes["members"] = "; ".join(action.held.values())
        action.add = [{"id": i} for i in sorted(set(wanted) - present)]
        if request.mode == "overwrite":
            action.remove = sorted(present - set(wanted))
            action.target = sorted(wanted)
        else:  # merge: only what is missing comes back
            action.target = sorted(present | set(wanted))
        for prop in sorted(GROUP_REFS):
            old, new = then_g.get(prop), (now_g or {}).get(prop)
            if request.mode == "merge" and not empty(new):
                continue
            if not same(old, new):
                action.patch[prop] = old
        if not action.add and not action.remove and not action.patch:
            if action.held:
                action.action, action.reason = "skip", action.notes["members"]
                return action
            return None
        return action

    def apply_action(
        self, bridge: ExchangeBridge, action: Action, ids: IdMap, request: Request, outcome: Any
    ) -> None:
        assert isinstance(action, BridgeAction)
        gid = ids.get(action.object_id)
        if (action.add or action.remove) and not run_write(
            outcome, lambda: bridge.sync_members(gid, [ids.get(m) for m in action.target])
        ):
            return
        if action.patch:
            run_write(outcome, lambda: bridge.set_group(gid, action.patch))

    def verify_action(self, outcome: Any, live: LiveRead, ids: IdMap, request: Request) -> None:
        action = outcome.action
        spec = BY_NAME[action.kind]
        gid = ids.get(action.object_id)
        now = live.find(spec.name, gid) or {}
        have = {str(m.get("ExternalDirectoryObjectId")) for m in now.get("members") or []}
        wanted = {
            ids.get(str(m.get("ExternalDirectoryObjectId")))
            for m in action.snapshot.get("members") or []
        }
        missing = wanted - have - set(action.held)
        extra = (have - wanted) if request.mode == "overwrite" else set()
        why = [action.notes["members"]] if action.held else []
        if missing or extra:
            why.insert(0, f"after the restore {len(missing)} member(s) still missing, {len(extra)} extra")  # fmt: skip
        if why:
            outcome.properties["members"] = "; ".join(why)
        group = live.find(spec.parent or "", gid) or {}
        for prop in sorted(action.patch):
            if not same(group.get(prop), action.patch[prop]):
                outcome.properties[prop] = "still differs after the write"
        if outcome.properties and outcome.status == "restored":
            outcome.status = "partial"


GROUPS, MEMBERS = ExchangeGroups(), ExchangeGroupMembers()
register(GROUPS, *(k.name for k in GROUP_KINDS if not k.parent))
register(MEMBERS, *(k.name for k in GROUP_KINDS if k.parent))
