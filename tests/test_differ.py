"""Property-level comparison rules, driven by the kinds' declarations."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agent.compare.differ import change_json, diff_objects
from agent.kinds import ALL_KINDS, BY_NAME
from agent.schema.csdl import load_schema


def changes(kind: str, old: dict[str, Any], new: dict[str, Any], **kw: Any) -> list[dict]:
    diff = diff_objects(kind, "x", old, new, **kw)
    assert diff is not None and diff.status == "changed"
    return [change_json(c) for c in diff.changes]


def test_equal_objects_have_no_diff_and_absent_sides_are_added_or_removed() -> None:
    user = {"id": "u1", "displayName": "Ada"}
    assert diff_objects("user", "u1", user, dict(user)) is None
    assert diff_objects("user", "u1", None, user).status == "added"  # type: ignore[union-attr]
    assert diff_objects("user", "u1", user, None).status == "removed"  # type: ignore[union-attr]


def test_scalar_nested_added_and_removed_properties_have_paths_and_values() -> None:
    old = {"id": "u", "jobTitle": "Clerk", "onPremisesExtensionAttributes": {"a1": "x"}}
    new = {
        "id": "u",
        "jobTitle": "Boss",
        "onPremisesExtensionAttributes": {"a1": "y"},
        "city": "Oslo",
    }
    assert changes("user", old, new) == [
        {"path": "city", "op": "added", "new": "Oslo"},
        {"path": "jobTitle", "op": "changed", "old": "Clerk", "new": "Boss"},
        {"path": "onPremisesExtensionAttributes.a1", "op": "changed", "old": "x", "new": "y"},
    ]
    assert changes("user", new, old)[0] == {"path": "city", "op": "removed", "old": "Oslo"}


def test_members_compare_as_a_set_of_ids_whatever_the_order() -> None:
    a = {"id": "a", "@odata.type": "#microsoft.graph.user"}
    b = {"id": "b", "@odata.type": "#microsoft.graph.user"}
    c = {"id": "c", "@odata.type": "#microsoft.graph.group"}
    old = {"groupId": "g", "members": [a, b]}
    assert diff_objects("groupMember", "g", old, {"groupId": "g", "members": [b, a]}) is None
    assert changes("groupMember", old, {"groupId": "g", "members": [c, b]}) == [
        {"path": "members[a]", "op": "removed", "old": a},
        {"path": "members[c]", "op": "added", "new": c},
    ]


def test_unordered_scalars_and_keyed_items_follow_the_declaration() -> None:
    old = {"proxyAddresses": ["SMTP:a@x", "smtp:b@x"], "businessPhones": ["1"]}
    new = {"proxyAddresses": ["smtp:b@x", "SMTP:c@x"], "businessPhones": ["1"]}
    assert changes("user", old, new) == [
        {"path": "proxyAddresses[SMTP:a@x]", "op": "removed", "old": "SMTP:a@x"},
        {"path": "proxyAddresses[SMTP:c@x]", "op": "added", "new": "SMTP:c@x"},
    ]
    # App roles by id, nested sets inside them, key credentials by keyId.
    role = {"id": "r1", "value": "Reader", "isEnabled": True, "allowedMemberTypes": ["User"]}
    old_app = {"appRoles": [role], "keyCredentials": [{"keyId": "k1", "type": "X509"}]}
    new_app = {
        "appRoles": [{**role, "isEnabled": False, "allowedMemberTypes": ["Application", "User"]}],
        "keyCredentials": [{"keyId": "k2", "type": "X509"}],
    }
    assert [(c["path"], c["op"]) for c in changes("application", old_app, new_app)] == [
        ("appRoles[r1].allowedMemberTypes[Application]", "added"),
        ("appRoles[r1].isEnabled", "changed"),
        ("keyCredentials[k1]", "removed"),
        ("keyCredentials[k2]", "added"),
    ]


def test_ordered_lists_change_whole_or_item_by_item() -> None:
    # Lists not declared unordered keep their order: scalars change as a whole, objects of
    # lists of equal length item by item (optionalClaims.idToken).
    old = {"optionalClaims": {"idToken": [{"name": "email"}, {"name": "upn"}]}, "other": [1, 2]}
    new = {"optionalClaims": {"idToken": [{"name": "email"}, {"name": "sid"}]}, "other": [2, 1]}
    assert changes("application", old, new) == [
        {"path": "optionalClaims.idToken[1].name", "op": "changed", "old": "upn", "new": "sid"},
        {"path": "other", "op": "changed", "old": [1, 2], "new": [2, 1]},
    ]


def test_a_secret_kind_shows_which_properties_changed_never_the_values() -> None:
    secret = replace(BY_NAME["device"], name="bitlockerKey", secret=True, unordered=("keys",))
    old = {"id": "k", "key": "111111-222222", "keys": ["a-1"], "volumeType": "os"}
    new = {"id": "k", "key": "333333-444444", "keys": ["b-2"], "volumeType": "os", "x": "7"}
    diff = diff_objects("bitlockerKey", "k", old, new, spec=secret)
    assert diff is not None and diff.secret
    shown = [change_json(c) for c in diff.changes]
    assert shown == [
        {"path": "key", "op": "changed", "hidden": True},
        {"path": "keys", "op": "changed", "hidden": True},
        {"path": "x", "op": "added", "hidden": True},
    ]
    assert not any(v in str(shown) for v in ("111111", "333333", "a-1", "b-2", "7"))
    # Restore needs the values: it asks for them explicitly.
    revealed = diff_objects("bitlockerKey", "k", old, new, spec=secret, reveal=True)
    assert revealed is not None and "333333-444444" in str(revealed.changes)


def test_unordered_declarations_name_collections_of_the_graph_schema() -> None:
    schema = load_schema()
    for kind in ALL_KINDS:
        for entry in kind.unordered:
            path, _, key = entry.partition("[")
            if kind.relation or kind.parent:
                assert path in (kind.relation, "members", "owners"), (kind.name, entry)
                continue
            if kind.select:
                assert path.split(".")[0] in kind.select, f"{kind.name}: {entry} not selected"
            if not kind.entity_type:
                continue
            type_name = kind.entity_type
            prop = None
            for name in path.split("."):
                # on the type or a type derived from it (ipNamedLocation.ipRanges)
                types = [type_name, *schema.derived_types(type_name)]
                found = [schema.properties(t)[name] for t in types if name in schema.properties(t)]
                assert found, f"{kind.name}: no property {name} in {entry}"
                prop = found[0]
                type_name = prop.type
            assert prop is not None and prop.collection, f"{kind.name}: {entry} is not a list"
            if key:
                assert key.rstrip("]") in schema.properties(prop.type), (kind.name, entry)


def test_conditional_access_assignments_are_sets() -> None:
    def policy(include: list[str], exclude: list[str]) -> dict[str, Any]:
        users = {"includeUsers": include, "excludeGroups": exclude}
        return {"id": "p", "state": "enabled", "conditions": {"users": users}}

    old = policy(["u1", "u2"], ["g1"])
    assert diff_objects("conditionalAccessPolicy", "p", old, policy(["u2", "u1"], ["g1"])) is None
    assert changes("conditionalAccessPolicy", old, policy(["u2", "u1"], ["g1", "g2"])) == [
        {"path": "conditions.users.excludeGroups[g2]", "op": "added", "new": "g2"}
    ]
