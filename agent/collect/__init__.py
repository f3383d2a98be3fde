"""Collectors by name, as kinds refer to them (KindSpec.collector)."""

from __future__ import annotations

from agent.collect.base import CollectContext, Collector
from agent.collect.groups import collect_groups
from agent.collect.owners import collect_group_owners
from agent.collect.users import collect_users

COLLECTORS: dict[str, Collector] = {
    "graph.users": collect_users,
    "graph.groups": collect_groups,
    "graph.groupOwners": collect_group_owners,
}

__all__ = ["COLLECTORS", "CollectContext", "Collector"]
