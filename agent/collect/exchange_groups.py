"""Distribution lists and mail-enabled security groups (and their members) through the bridge.

A full run exports every group of each type with its members. An incremental run reads
  1. Graph's groups delta (membership and basic changes, deletions as ``@removed``),
  2. Export-EbDistributionGroups -ChangedSinceUtc (Exchange-only changes, WhenChangedUTC),
and stores what (2) returned and removes what (1) says is gone. A group Graph saw change that
(2) did not return cannot be read on its own through the module, so that type is exported in
full once more: correct first, fast when WhenChangedUTC moves with every change (as it does in
Exchange Online). The position (Graph deltaLink + WhenChangedUTC watermark) is one JSON text
staged for every kind of this collector; a periodic full run (full_every_days) is the net.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Any

from agent.collect.base import CollectContext, Stager
from agent.db.catalog import KindResult
from agent.errors import AgentError
from agent.exchange.bridge import GroupsExport
from agent.kinds.exchange import GROUP_KINDS

# Re-read groups changed this long before the watermark: WhenChangedUTC has whole seconds and
# replicas converge with a delay; re-read groups store nothing new (same content, same blob).
OVERLAP = dt.timedelta(minutes=5)
DELTA_SELECT = "id,mailEnabled,securityEnabled,groupTypes,members"
POSITION_VERSION = 1


@dataclass
class _Type:
    recipient_type: str
    group: str  # kind names
    members: str
    security: bool

    def matches(self, item: dict[str, Any]) -> bool | None:
        """Whether a Graph group item is of this type (None: the item does not say)."""
        if "mailEnabled" not in item or "securityEnabled" not in item:
            return None
        unified = "Unified" in (item.get("groupTypes") or [])
        return (
            bool(item["mailEnabled"]) and not unified and item["securityEnabled"] == self.security
        )


TYPES = (
    _Type("MailUniversalDistributionGroup", "distributionGroup", "distributionGroupMember", False),
    _Type(
        "MailUniversalSecurityGroup",
        "mailEnabledSecurityGroup",
        "mailEnabledSecurityGroupMember",
        True,
    ),
)
assert {t.group for t in TYPES} | {t.members for t in TYPES} == {k.name for k in GROUP_KINDS}


def parse_when(value: Any) -> dt.datetime | None:
    """WhenChangedUTC as the module writes it (ISO 8601, up to 7 fractional digits)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def membership(group_id: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    """One object per group, members sorted so equal lists store once."""
    ordered = sorted(
        members,
        key=lambda m: (
            str(m.get("ExternalDirectoryObjectId") or ""),
            str(m.get("PrimarySmtpAddress") or ""),
        ),
    )
    return {"groupId": group_id, "members": ordered}


class _Run:
    def __init__(self, ctx: CollectContext) -> None:
        assert ctx.bridge is not None
        self.ctx = ctx
        self.bridge = ctx.bridge
        self.types = [t for t in TYPES if ctx.wants(t.group) or ctx.wants(t.members)]
        self.stagers: dict[str, Stager] = {k.name: ctx.stager(k.name) for k in ctx.kinds}
        self.full = True
        self.watermark: dt.datetime | None = None
        self.graph_link: str | None = None

    # -- position ------------------------------------------------------------------------------

    def stored_position(self) -> dict[str, Any] | None:
        texts = {self.ctx.delta_link(name) for name in self.stagers}
        if len(texts) != 1 or None in texts:
            return None  # first run, forced full, or a kind newly in scope
        try:
            position = json.loads(texts.pop() or "")
        except ValueError:
            return None
        if not isinstance(position, dict) or position.get("v") != POSITION_VERSION:
            return None
        if not position.get("graph") or parse_when(position.get("since")) is None:
            return None
        return position

    def position_text(self) -> str | None:
        if self.graph_link is None or self.watermark is None:
            return None  # without both, the next run is a full one
        since = self.watermark.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return json.dumps({"v": POSITION_VERSION, "graph": self.graph_link, "since": since})

    def _see(self, group: dict[str, Any]) -> None:
        when = parse_when(group.get("WhenChangedUTC"))
        if when is not None and (self.watermark is None or when > self.watermark):
            self.watermark = when

    # -- staging -------------------------------------------------------------------------------

    def stage(
        self, kind_type: _Type, pages: Iterable[GroupsExport], watch: Container[str] = ()
    ) -> set[str]:
        """Stage each page as it arrives (memory: one page); the ids of ``watch`` listed."""
        groups = self.stagers.get(kind_type.group)
        members = self.stagers.get(kind_type.members)
        mine = [s for s in (groups, members) if s is not None]
        # What the kinds counted before this listing: a restarted listing counts again.
        before = [(s.result.succeeded, s.result.failed) for s in mine]
        listed = 0
        got: set[str] = set()
        for page in pages:
            if page.restarted:
                for stager, (succeeded, failed) in zip(mine, before, strict=True):
                    stager.result.succeeded, stager.result.failed = succeeded, failed
                listed = 0
            for group in page.groups:
                group_id = str(group["ExternalDirectoryObjectId"])
                listed += 1
                if group_id in watch:
                    got.add(group_id)
                self._see(group)
                if groups is not None:
                    groups.put({k: v for k, v in group.items() if k != "Members"})
                if members is not None:
                    failure = page.member_failures.get(str(group.get("Guid")))
                    if group.get("Members") is None or failure is not None:
                        members.keep(group_id, str(failure or "members unknown"))
                    else:
                        members.put(membership(group_id, group["Members"]))
            self.ctx.checkpoint()
            self.ctx.report(kind_type.group, listed)
        return got

    def remove(self, kind_type: _Type, group_id: str) -> None:
        for name in (kind_type.group, kind_type.members):
            if name in self.stagers:
                self.stagers[name].remove(group_id)

    # -- runs ----------------------------------------------------------------------------------

    def export_full(self, kind_type: _Type) -> None:
        pages = self.bridge.export_groups(
            kind_type.recipient_type, include_members=kind_type.members in self.stagers
        )
        self.stage(kind_type, pages)
        for name in (kind_type.group, kind_type.members):
            if name in self.stagers:
                self.ctx.catalog.mark_full_listing(self.ctx.job_id, name)

    def latest_graph_position(self) -> None:
        """A deltaLink for "now" without reading every group ($deltatoken=latest)."""
        try:
            round_ = self.ctx.graph.delta(
                "/groups/delta", params={"$select": DELTA_SELECT, "$deltatoken": "latest"}
            )
            for _ in round_.pages():
                pass
            self.graph_link = round_.delta_link
        except AgentError as exc:  # no Group.Read.All: every run stays a full one
            self.ctx.log(
                "warning",
                f"Graph groups delta unavailable ({exc.message}); Exchange groups will be "
                "read in full every run.",
                kind=self.types[0].group,
            )

    def run_full(self) -> None:
        self.latest_graph_position()  # before the export: changes during it come next time
        for kind_type in self.types:
            self.export_full(kind_type)

    def run_incremental(self, position: dict[str, Any]) -> None:
        self.full = False
        since = parse_when(position["since"])
        assert since is not None
        self.watermark = since
        changed, removed, resynced = self.graph_changes(position["graph"])
        if resynced:  # Graph dropped our position: nothing can be trusted incremental
            self.full = True
            for kind_type in self.types:
                self.export_full(kind_type)
            return
        for kind_type in self.types:
            pages = self.bridge.export_groups(
                kind_type.recipient_type,
                changed_since=since - OVERLAP,
                include_members=kind_type.members in self.stagers,
            )
            got = self.stage(kind_type, pages, watch=changed)
            known = self.known(kind_type, list(changed) + list(removed))
            for group_id in removed:
                if group_id in known:
                    self.remove(kind_type, group_id)
            missed = [
                gid
                for gid, item in changed.items()
                if gid not in got and (gid in known or kind_type.matches(item))
            ]
            for gid in missed:
                if gid in known and kind_type.matches(changed[gid]) is False:
                    self.remove(kind_type, gid)  # no longer this type (e.g. mail disabled)
            if any(kind_type.matches(changed[g]) is not False for g in missed):
                self.ctx.log(
                    "info",
                    f"Graph reported {len(missed)} changed {kind_type.group} object(s) that "
                    "WhenChangedUTC did not; reading that type in full.",
                    kind=kind_type.group,
                )
                self.export_full(kind_type)

    def graph_changes(self, link: str) -> tuple[dict[str, dict[str, Any]], set[str], bool]:
        changed: dict[str, dict[str, Any]] = {}
        removed: set[str] = set()
        round_ = self.ctx.graph.delta("/groups/delta", delta_link=link)
        for page in round_.pages():
            for item in page.items:
                gid = str(item["id"])
                if "@removed" in item:
                    removed.add(gid)
                    changed.pop(gid, None)
                else:
                    removed.discard(gid)
                    merged = {**changed.get(gid, {}), **item}
                    merged.pop("members@delta", None)  # ids are what matter here
                    changed[gid] = merged
            self.ctx.checkpoint()
        self.graph_link = round_.delta_link
        return changed, removed, round_.full

    def known(self, kind_type: _Type, ids: list[str]) -> set[str]:
        name = kind_type.group if kind_type.group in self.stagers else kind_type.members
        return set(self.ctx.catalog.current_blobs(self.ctx.tenant, name, ids))

    def finish(self) -> dict[str, KindResult]:
        text = self.position_text()
        results: dict[str, KindResult] = {}
        for name, stager in self.stagers.items():
            result = stager.finish(full_listing=False, delta_link=text)
            result.mode = "full" if self.full else "incremental"
            results[name] = result
        return results


def collect_exchange_groups(ctx: CollectContext) -> dict[str, KindResult]:
    run = _Run(ctx)
    position = run.stored_position()
    if position is None:
        run.run_full()
    else:
        run.run_incremental(position)
    return run.finish()
