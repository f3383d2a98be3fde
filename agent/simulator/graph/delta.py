"""users/delta and groups/delta (facts file §2).

A delta token is a signed position in the directory's change log plus the query it was made
for. A full round pages over every live object (a big group's members spread over several
pages, the same group repeating with only ``id`` and ``members@delta``) and ends with a
deltaLink at the log position the round started from, so changes made during the round are
replayed next time. An incremental round reports the objects the log names after the token.
"""

from __future__ import annotations

import bisect
import re
from typing import Any
from urllib.parse import quote

from agent.simulator.graph.directory import Directory
from agent.simulator.graph.errors import GraphError, bad_request
from agent.simulator.graph.props import DEFAULT_SELECT, ODATA_TYPE
from agent.simulator.graph.query import parse_select, project, seal, unseal

TOKEN_LIFETIME_S = 7 * 24 * 3600  # facts file §2: directory delta tokens live 7 days
DEFAULT_PAGE = 100
# Prefer: odata.maxpagesize is honoured up to 200 objects a page and capped above (Microsoft
# staff on Microsoft Q&A, May 2025).
MAX_PAGE = 200
MEMBERS_PER_PAGE = 1000  # member entries a page carries before a big group continues
# One object of a full round's page: its row (a copy), whether the page only continues its
# members, and the member ids the page carries for it (groups with members selected).
_Part = tuple[dict[str, Any], bool, list[str] | None]
_ID_EQ = re.compile(r"^\s*id\s+eq\s+'([0-9a-fA-F-]{36})'\s*$")


def _arg(query: dict[str, list[str]], name: str) -> str | None:
    for key, values in query.items():
        if key.lower() == name.lower():
            return values[-1]
    return None


def _page_size(headers: dict[str, str]) -> int:
    match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", headers.get("prefer", ""))
    return min(max(int(match.group(1)), 1), MAX_PAGE) if match else DEFAULT_PAGE


def _parse_ids(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    clauses = re.split(r"\s+or\s+", raw.strip(), flags=re.I)
    ids = [m.group(1).lower() for c in clauses if (m := _ID_EQ.match(c))]
    if len(ids) != len(clauses) or len(ids) > 50:
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            "Unsupported query: delta supports only $filter=id eq '…' (up to 50).",
        )
    return ids


class DeltaRequest:
    """One users/delta or groups/delta request, answered by ``page()``."""

    def __init__(
        self,
        directory: Directory,
        kind: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        base_url: str,
        expire: bool,
        path: str | None = None,
    ) -> None:
        self.d = directory
        self.kind = kind
        self.query = query
        self.headers = headers
        self.base = f"{base_url}/v1.0{path or f'/{kind}s/delta'}"
        self.expire = expire
        self.minimal = "return=minimal" in headers.get("prefer", "")

    def _link(self, param: str, payload: dict[str, Any]) -> str:
        return f"{self.base}?{param}={seal(self.d.token_key, payload)}"

    def _fresh_location(self, select: list[str] | None) -> str:
        sel = f"$select={quote(','.join(select), safe=',')}&" if select else ""
        return f"{self.base}?{sel}$deltatoken="

    def page(self) -> dict[str, Any]:
        for option in ("$expand", "$top", "$orderby"):
            if _arg(self.query, option) is not None:
                raise GraphError(
                    400,
                    "Request_UnsupportedQuery",
                    f"The query option '{option}' is not supported with delta queries.",
                )
        skip, delta = _arg(self.query, "$skiptoken"), _arg(self.query, "$deltatoken")
        token_text = skip or delta
        if not token_text:  # a new full round (also after a 410's empty $deltatoken)
            select = parse_select(self.kind, _arg(self.query, "$select"), allow_nav=self._navs())
            fresh: dict[str, Any] = {
                "k": self.kind,
                "s": select,
                "f": _parse_ids(_arg(self.query, "$filter")),
                "mode": "full",
                "q": self.d.seq,
                "c": 0,
                "mc": None,
                "at": self.d.now(),
            }
            return self._serve(fresh)
        if token_text == "latest" and delta:
            select = parse_select(self.kind, _arg(self.query, "$select"), allow_nav=self._navs())
            link = self._link(
                "$deltatoken",
                {
                    "k": self.kind,
                    "s": select,
                    "f": _parse_ids(_arg(self.query, "$filter")),
                    "p": self.d.seq,
                    "at": self.d.now(),
                },
            )
            return {"@odata.context": self._context(select), "value": [], "@odata.deltaLink": link}
        state = unseal(self.d.token_key, token_text)
        if state is None or state.get("k") != self.kind:
            raise bad_request("Badly formed token.", "Request_BadRequest")
        if (
            self.d.now() - float(state["at"]) > TOKEN_LIFETIME_S
            or int(state.get("p", state.get("q", 0))) < self.d.log_start - 1
        ):
            raise GraphError(
                400,
                "syncStateNotFound",
                "The sync state for this delta token was not found or has expired. Start a new sync.",
            )
        if delta and self.expire:
            # Facts file §2: a forced resync is 410 Gone with a Location holding an empty token.
            raise GraphError(
                410,
                "resyncRequired",
                "Resync required: the delta token is no longer valid. Start a new sync.",
                {"Location": self._fresh_location(state.get("s"))},
            )
        if delta:  # a deltaLink: start an incremental round up to now
            state = {**state, "mode": "inc", "q": self.d.seq, "c": 0, "mc": 0, "at": self.d.now()}
        return self._serve(state)

    def _navs(self) -> tuple[str, ...]:
        return {"group": ("members",), "user": ("manager",)}.get(self.kind, ())

    def _context(self, select: list[str] | None) -> str:
        cols = f"({','.join(select)})" if select else ""
        return f"https://graph.microsoft.com/v1.0/$metadata#{self.kind}s{cols}"

    def _serve(self, state: dict[str, Any]) -> dict[str, Any]:
        size = _page_size(self.headers)
        if state["mode"] == "full":
            with self.d.lock:  # held to copy the page's rows, not to build its items
                parts, cursor = self._full(state, size)
            items = [self._full_item(*part) for part in parts]
        else:
            with self.d.lock:
                items, cursor = self._incremental(state, size)
        body: dict[str, Any] = {"@odata.context": self._context(state["s"]), "value": items}
        if cursor is None:
            done = {
                "k": self.kind,
                "s": state["s"],
                "f": state["f"],
                "p": state["q"],
                "at": self.d.now(),
            }
            body["@odata.deltaLink"] = self._link("$deltatoken", done)
        else:
            body["@odata.nextLink"] = self._link("$skiptoken", {**state, **cursor})
        return body

    # -- the item for one object -------------------------------------------------------

    def _wants(self, nav: str) -> bool:
        select = self.state_select
        return select is not None and nav in select

    def _item(self, row: dict[str, Any], props: set[str] | None) -> dict[str, Any]:
        select = self.state_select
        if props is not None and self.minimal:
            names = [n for n in (select or []) if n in props]
            item = project(self.kind, row, names, omit_unset=True)
        else:
            item = project(self.kind, row, select, omit_unset=True)
        if (
            self.kind == "user"
            and self._wants("manager")
            and (props is None or "manager" in props or not self.minimal)
        ):
            manager = self.d.manager.get(row["id"])
            item["manager@delta"] = (
                [{"@odata.type": ODATA_TYPE["user"], "id": manager}] if manager else []
            )
        return item

    def _member_entry(self, oid: str, removed: bool) -> dict[str, Any]:
        kind = self.d.kind_of(oid)
        if kind is None:  # removed: a soft-deleted object keeps its type
            gone = self.d.deleted.get(oid)
            kind = gone.kind if gone is not None else "user"
        entry: dict[str, Any] = {"@odata.type": ODATA_TYPE[kind], "id": oid}
        if removed:
            entry["@removed"] = {"reason": "deleted"}
        return entry

    # -- full round --------------------------------------------------------------------

    def _full(self, state: dict[str, Any], size: int) -> tuple[list[_Part], dict[str, Any] | None]:
        """The page's objects (caller holds the lock): a copy of each row, or only its id when
        the page continues its members, with the member ids the page carries for it."""
        self.state_select = state["s"]
        ids = set(state["f"]) if state["f"] else None
        parts: list[_Part] = []
        budget = MEMBERS_PER_PAGE
        resume: str | None = state["mc"]
        for pos, row in self.d.scan(self.kind, int(state["c"])):
            if ids is not None and row["id"] not in ids:
                continue
            if len(parts) >= size:
                return parts, {"c": pos, "mc": None}
            continuing = resume is not None and pos == int(state["c"])
            copy = {"id": row["id"]} if continuing else dict(row)
            if self.kind == "group" and self._wants("members"):
                members = self.d.sorted_members(row["id"])
                start = (
                    bisect.bisect_right(members, resume) if continuing and resume is not None else 0
                )
                take = members[start : start + budget]
                left = len(members) - start
                if not take and left:
                    return parts, {"c": pos, "mc": resume if continuing else None}
                budget -= len(take)
                parts.append((copy, continuing, take))
                if len(take) < left:
                    return parts, {"c": pos, "mc": take[-1]}
                continue
            parts.append((copy, continuing, None))
        return parts, None

    def _full_item(
        self, row: dict[str, Any], continuing: bool, members: list[str] | None
    ) -> dict[str, Any]:
        item: dict[str, Any] = {"id": row["id"]} if continuing else self._item(row, None)
        if members is not None:
            item["members@delta"] = [self._member_entry(m, False) for m in members]
        return item

    # -- incremental round -------------------------------------------------------------

    def _incremental(
        self, state: dict[str, Any], size: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        self.state_select = state["s"]
        changes = self.d.changes(self.kind, int(state["p"]), int(state["q"]))
        wanted = set(state["f"]) if state["f"] else None
        # $select limits the tracked properties (facts file §2): a change only to untracked
        # ones (e.g. manager when it is not selected) is no change for this token.
        tracked = {"id", *(state["s"] or DEFAULT_SELECT[self.kind])}
        members_tracked = "members" in tracked
        order = [
            oid
            for oid, change in changes.items()
            if (wanted is None or oid in wanted)
            and (
                self.d.row(self.kind, oid) is None
                or change.props & tracked
                or (members_tracked and change.members)
            )
        ]
        items: list[dict[str, Any]] = []
        budget = MEMBERS_PER_PAGE
        start, offset = int(state["c"]), int(state["mc"] or 0)
        for index in range(start, len(order)):
            if len(items) >= size:
                return items, {"c": index, "mc": 0}
            oid = order[index]
            change = changes[oid]
            row = self.d.row(self.kind, oid)
            if row is None:
                reason = "changed" if oid in self.d.deleted else "deleted"
                items.append({"id": oid, "@removed": {"reason": reason}})
                continue
            continuing = index == start and offset > 0
            item: dict[str, Any] = {"id": oid} if continuing else self._item(row, change.props)
            if self.kind == "group" and self._wants("members") and change.members:
                # Only the group continued from the last page starts past its first entries.
                skip = offset if continuing else 0
                entries = sorted(change.members.items())[skip:]
                take = entries[:budget]
                item["members@delta"] = [self._member_entry(m, not added) for m, added in take]
                budget -= len(take)
                if len(take) < len(entries):
                    items.append(item)
                    return items, {"c": index, "mc": skip + len(take)}
            elif self.minimal and len(item) == 1 and not change.props:
                continue
            items.append(item)
        return items, None

    state_select: list[str] | None = None
