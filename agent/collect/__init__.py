"""Collectors by name, as kinds refer to them (KindSpec.collector)."""

from __future__ import annotations

from agent.collect.base import CollectContext, Collector
from agent.collect.bitlocker import collect_bitlocker_keys
from agent.collect.branding import collect_branding
from agent.collect.exchange_groups import collect_exchange_groups
from agent.collect.exchange_settings import collect_exchange_settings
from agent.collect.graph_generic import collect_delta, collect_list, collect_relation
from agent.collect.groups import collect_groups
from agent.collect.pim import collect_pim
from agent.collect.portal import collect_groups_general_settings
from agent.collect.users import collect_users
from agent.collect.window import collect_window

COLLECTORS: dict[str, Collector] = {
    "graph.delta": collect_delta,
    "graph.list": collect_list,
    "graph.relation": collect_relation,
    "graph.groups": collect_groups,
    "graph.users": collect_users,
    "graph.bitlocker": collect_bitlocker_keys,
    "portal.groupsGeneralSettings": collect_groups_general_settings,
    "graph.window": collect_window,
    "bridge.groups": collect_exchange_groups,
    "bridge.settings": collect_exchange_settings,
    "graph.branding": collect_branding,
    "graph.pim": collect_pim,
}

__all__ = ["COLLECTORS", "CollectContext", "Collector"]
