"""Properties of the tenant configuration kinds (role management, group settings,
organization, branding, domains), read from the shipped Graph v1.0 CSDL; props.py merges
them so $select, $filter and projection treat them like every other kind.

Stream properties (branding images) are never part of an entity's JSON: Graph serves them
from their own URL, so they are left out of the tables.
"""

from __future__ import annotations

from agent.schema.csdl import load_schema

ENTITY_TYPES: dict[str, str] = {
    "unifiedRoleDefinition": "unifiedRoleDefinition",
    "unifiedRoleAssignment": "unifiedRoleAssignment",
    "unifiedRoleEligibilitySchedule": "unifiedRoleEligibilitySchedule",
    "groupSettingTemplate": "groupSettingTemplate",
    "groupSetting": "groupSetting",
    "organization": "organization",
    "organizationalBranding": "organizationalBranding",
    "organizationalBrandingLocalization": "organizationalBrandingLocalization",
    "domain": "domain",
}


def _tables() -> tuple[
    dict[str, frozenset[str]],
    dict[str, frozenset[str]],
    dict[str, frozenset[str]],
    dict[str, tuple[str, ...]],
]:
    schema = load_schema()
    scalars: dict[str, frozenset[str]] = {}
    collections: dict[str, frozenset[str]] = {}
    navigation: dict[str, frozenset[str]] = {}
    default: dict[str, tuple[str, ...]] = {}
    for kind, entity in ENTITY_TYPES.items():
        props = {n: p for n, p in schema.properties(entity).items() if p.type != "Edm.Stream"}
        scalars[kind] = frozenset(
            n for n, p in props.items() if not p.navigation and not p.collection
        )
        collections[kind] = frozenset(
            n for n, p in props.items() if not p.navigation and p.collection
        )
        navigation[kind] = frozenset(n for n, p in props.items() if p.navigation)
        # These endpoints answer with every (non-stream) property when there is no $select.
        default[kind] = tuple(n for n, p in props.items() if not p.navigation)
    return scalars, collections, navigation, default


SCALARS, COLLECTIONS, NAVIGATION, DEFAULT_SELECT = _tables()
ODATA_TYPE = {kind: f"#microsoft.graph.{entity}" for kind, entity in ENTITY_TYPES.items()}
TYPE_NAMES = {kind: f"microsoft.graph.{entity}" for kind, entity in ENTITY_TYPES.items()}
