"""Churn for the tenant configuration: a custom role's permissions edited, custom role
assignments and PIM eligibilities added and removed, a group setting changed, the branding's
sign-in text and one image replaced. Runs after every other churn, from its own stream."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from agent.simulator.graph.directory import Directory
from agent.simulator.graph.tenant_generate import image_for, set_image
from agent.simulator.graph.tenant_roles import TEMPLATES, add_eligibility
from agent.simulator.graph.tenant_store import DEFAULT_LOCALE, assignment_id

if TYPE_CHECKING:
    from agent.simulator.graph.churn import ChurnSummary

EXTRA_ACTIONS = (
    "microsoft.directory/users/basic/update",
    "microsoft.directory/groups/members/update",
    "microsoft.directory/devices/bitLockerRecoveryKeys/read",
)


def apply_tenant_churn(d: Directory, rng: random.Random, fraction: float, s: ChurnSummary) -> None:
    """Caller holds the directory lock."""
    store = d.tenant_config
    customs = sorted(r["id"] for r in store.role_definitions.values() if not r["isBuiltIn"])
    users = sorted(r["id"] for _, r in d.scan("user", 0) if r.get("userType") == "Member")
    if customs:
        role = store.role_definitions[rng.choice(customs)]
        actions = set(role["rolePermissions"][0]["allowedResourceActions"])
        actions ^= {rng.choice(EXTRA_ACTIONS)}
        role["rolePermissions"] = [
            {"allowedResourceActions": sorted(actions) or [EXTRA_ACTIONS[0]], "condition": None}
        ]
        s.role_definitions_changed.append(role["id"])
    live = sorted(store.custom_assignments)
    for _ in range(max(1, round(len(live) * fraction))):
        if live and rng.random() < 0.5:
            gone = live.pop(rng.randrange(len(live)))
            del store.custom_assignments[gone]
            s.role_assignments_removed.append(gone)
        elif customs and users:
            role_id, principal = rng.choice(customs), rng.choice(users)
            aid = assignment_id(role_id, principal, "/")
            if aid not in store.custom_assignments:
                store.custom_assignments[aid] = {
                    "id": aid,
                    "directoryScopeId": "/",
                    "principalId": principal,
                    "roleDefinitionId": role_id,
                }
                s.role_assignments_added.append(aid)
    eligible = sorted(store.eligibility)
    if eligible and rng.random() < 0.5:
        gone = rng.choice(eligible)
        del store.eligibility[gone]
        s.eligibility_removed.append(gone)
    if users:
        role_id = rng.choice(sorted(TEMPLATES.values()))
        row = add_eligibility(rng, store, role_id, rng.choice(users), d.now())
        s.eligibility_added.append(row["id"])
    unified = next(
        (r for r in store.group_settings.values() if r["displayName"] == "Group.Unified"), None
    )
    if unified is not None:
        for value in unified["values"]:
            if value["name"] == "AllowGuestsToAccessGroups":
                value["value"] = "false" if value["value"] == "true" else "true"
        s.group_settings_changed.append(unified["id"])
    if DEFAULT_LOCALE in store.branding:
        store.branding[DEFAULT_LOCALE]["signInPageText"] = f"Notice {rng.randrange(10**6)}"
        stream = rng.choice(("bannerLogo", "squareLogo", "favicon"))
        set_image(d, store, DEFAULT_LOCALE, stream, image_for(rng, stream))
        s.branding_changed.append(DEFAULT_LOCALE)
        s.branding_images_changed.append((DEFAULT_LOCALE, stream))
