"""The kinds registry drives the support list and the permission advice."""

from __future__ import annotations

from pathlib import Path

from agent.kinds import ALL_KINDS, resolve
from agent.kinds.support import minimal_permissions, render_support_list
from agent.schema.csdl import load_schema
from tests.agent_helpers import cli

ROOT = Path(__file__).resolve().parents[1]


def test_support_list_is_generated_from_the_registry() -> None:
    assert (ROOT / "docs" / "support-list.md").read_text() == render_support_list(), (
        "docs/support-list.md is stale: regenerate it with "
        "'entra-backup kinds --markdown > docs/support-list.md'"
    )


def test_every_selected_property_exists_in_the_graph_schema() -> None:
    schema = load_schema()
    for kind in ALL_KINDS:
        if kind.entity_type and kind.select:
            props = schema.properties(kind.entity_type)
            unknown = [p for p in kind.select if p not in props]
            assert not unknown, f"{kind.name} selects unknown properties {unknown}"


def test_minimal_permissions_cover_each_kind_with_least_privilege() -> None:
    kinds = resolve(["entra"])
    chosen = minimal_permissions(kinds)
    assert all(k.missing_read_permission(set(chosen)) is None for k in kinds if not k.opt_in)
    # Opt-in kinds (BitLocker keys) are asked for only by tenants that turn them on.
    assert "BitLockerKey.Read.All" not in chosen
    # Directory.Read.All only for kinds Graph documents no narrower permission for (the group
    # expiration policy).
    broad = {k.name for k in kinds if k.read_permissions[:1] == ("Directory.Read.All",)}
    assert "groupLifecyclePolicy" in broad and "Directory.Read.All" in chosen
    # The sign-in log needs Directory.Read.All besides AuditLog.Read.All (Graph's known issue).
    assert {"AuditLog.Read.All", "Directory.Read.All"} <= set(chosen)
    assert minimal_permissions(resolve(["user", "group", "groupMember"])) == [
        "Group.Read.All",
        "User.Read.All",
    ]


def test_permissions_command_prints_the_set_for_a_scope() -> None:
    result = cli("permissions", "--scope", "user", "--json")
    assert result.code == 0
    assert result.json()["read"] == ["User.Read.All"]


def test_unknown_kind_in_a_scope_is_a_clear_error() -> None:
    result = cli("permissions", "--scope", "usr")
    assert result.code == 2
    assert "usr" in result.err and "user" in result.err


def test_permissions_lists_what_restore_needs_for_the_scope() -> None:
    data = cli("permissions", "--scope", "user", "--scope", "group", "--json").json()
    assert data["read"] == ["Group.Read.All", "User.Read.All"]
    restore = data["restore"]
    assert restore["permissions"] == ["Group.ReadWrite.All", "User.ReadWrite.All"]
    # Undeleting users and groups needs Global Administrator (the kinds declare it).
    assert restore["roles"] == {"Global Administrator": ["group", "user"]}
    portal = cli("permissions", "--scope", "groupsGeneralSettings", "--json").json()
    assert portal["restore"]["roles"] == {
        "Cloud Application Administrator": ["groupsGeneralSettings"]
    }
    text = cli("permissions", "--scope", "user")
    assert text.code == 0, text.err
    assert "Restore also needs" in text.out
    assert "User.ReadWrite.All" in text.out
    assert "Global Administrator (for user)" in text.out
    devices = cli("permissions", "--scope", "device", "--json").json()["restore"]
    assert devices["roles"] == {}  # devices are restored without a directory role
