"""The kinds registry: every object kind the agent backs up, declared once."""

from __future__ import annotations

from collections.abc import Iterable

from agent.errors import ConfigError
from agent.kinds.entra import KINDS as ENTRA_KINDS
from agent.kinds.entra_config import GROUPS_GENERAL_SETTINGS, POLICY_KINDS
from agent.kinds.entra_directory import DIRECTORY_KINDS
from agent.kinds.entra_links import LINK_KINDS
from agent.kinds.entra_logs import LOG_KINDS
from agent.kinds.entra_tenant import TENANT_CONFIG_KINDS
from agent.kinds.exchange import KINDS as EXCHANGE_KINDS
from agent.kinds.spec import Area, Incremental, KindSpec

ALL_KINDS: tuple[KindSpec, ...] = (
    *ENTRA_KINDS,
    *DIRECTORY_KINDS,
    *LINK_KINDS,
    GROUPS_GENERAL_SETTINGS,
    *TENANT_CONFIG_KINDS,
    *POLICY_KINDS,
    *LOG_KINDS,
    *EXCHANGE_KINDS,
)
BY_NAME: dict[str, KindSpec] = {k.name: k for k in ALL_KINDS}
AREAS: frozenset[str] = frozenset(a.value for a in Area)

__all__ = ["ALL_KINDS", "AREAS", "BY_NAME", "Area", "Incremental", "KindSpec", "get", "resolve"]


def get(name: str) -> KindSpec:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ConfigError(
            f"Unknown object kind '{name}'.",
            f"Use one of: {', '.join(sorted(BY_NAME))} (or an area: {', '.join(sorted(AREAS))}).",
        ) from None


def known_names() -> set[str]:
    """Every word a scope may list: kind names, area names and '*'."""
    return set(BY_NAME) | set(AREAS) | {"*"}


def resolve(selectors: Iterable[str]) -> list[KindSpec]:
    """Expand scope selectors (kind names, areas, '*') into kinds, in registry order."""
    wanted: set[str] = set()
    for selector in selectors:
        if selector == "*":
            wanted.update(BY_NAME)
        elif selector in AREAS:
            wanted.update(k.name for k in ALL_KINDS if k.area == selector)
        else:
            wanted.add(get(selector).name)
    return [k for k in ALL_KINDS if k.name in wanted]
