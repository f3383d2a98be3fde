"""Churn of the relationships the agent reads per parent or beside their parent: managers,
service principal policy links (claims mapping, token issuance, token lifetime, home realm
discovery; to policies of the tenant's policy store, generated in policy_apps.py), device
registered users, application extension properties and federated credentials.
"""

from __future__ import annotations

import random
from typing import Any

from agent.simulator.graph.audit_links import add_child, link, remove_child, unlink
from agent.simulator.graph.directory import Directory
from agent.simulator.graph.policy_store import SP_RELATIONS


def _own_sps(d: Directory) -> list[str]:
    return sorted(
        r["id"]
        for _, r in d.scan("servicePrincipal", 0)
        if r.get("appOwnerOrganizationId") == d.tenant_id
    )


def churn_links(d: Directory, rng: random.Random, fraction: float, fresh: Any) -> list[str]:
    """Change about ``fraction`` of these relationships; the caller holds the lock.
    Returns one line per change (relation, source, what happened)."""
    store = d.objects
    changes: list[str] = []
    sps = _own_sps(d)
    for relation, kind in SP_RELATIONS.items():
        ids = d.policies.ids(kind)  # the tenant's policies (policy_store.py)
        for sp in rng.sample(sps, min(len(sps), max(1, round(len(sps) * fraction / 4)))):
            if not ids:
                break
            linked = store.targets(f"servicePrincipal.{relation}", sp)
            if linked:
                unlink(d, f"servicePrincipal.{relation}", sp, linked[0])
                changes.append(f"{relation} {sp} unlinked")
            else:
                link(d, f"servicePrincipal.{relation}", sp, rng.choice(ids))
                changes.append(f"{relation} {sp} linked")
    devices = sorted(r["id"] for _, r in d.scan("device", 0))
    users = sorted(r["id"] for _, r in d.scan("user", 0))
    for user in rng.sample(users, min(len(users), max(1, round(len(users) * fraction / 5)))):
        boss = rng.choice(users) if rng.random() < 0.8 else None  # reorganised, or left
        if boss != user:
            d.set_manager(user, boss)
            changes.append(f"manager {user} {'set' if boss else 'removed'}")
    for device in rng.sample(devices, min(len(devices), max(1, round(len(devices) * fraction)))):
        registered = store.targets("device.registeredUsers", device)
        if len(registered) > 1:
            unlink(d, "device.registeredUsers", device, registered[-1])
            changes.append(f"registeredUsers {device} removed")
        elif users:  # another person signs in on the device and registers it
            link(d, "device.registeredUsers", device, rng.choice(users))
            changes.append(f"registeredUsers {device} added")
    apps = sorted(r["id"] for _, r in d.scan("application", 0))
    for app in rng.sample(apps, min(len(apps), max(1, round(len(apps) * fraction)))):
        row = d.row("application", app) or {}
        if rng.random() < 0.5:
            add_child(
                d,
                "application.federatedIdentityCredentials",
                app,
                {
                    "id": fresh(),
                    "name": f"deploy-{rng.randrange(10**6)}",
                    "issuer": "https://token.actions.githubusercontent.com",
                    "subject": f"repo:{d.domain.split('.')[0]}/app:environment:prod",
                    "audiences": ["api://AzureADTokenExchange"],
                    "description": None,
                },
            )
            changes.append(f"federatedIdentityCredentials {app} added")
        elif extensions := store.of("application.extensionProperties", app):
            remove_child(d, "application.extensionProperties", app, extensions[0]["id"])
            changes.append(f"extensionProperties {app} removed")
        else:
            attr = f"attr{rng.randrange(10**4)}"
            add_child(
                d,
                "application.extensionProperties",
                app,
                {
                    "id": fresh(),
                    "appDisplayName": row.get("displayName"),
                    "dataType": "String",
                    "isMultiValued": False,
                    "isSyncedFromOnPremises": False,
                    "name": f"extension_{str(row.get('appId', '')).replace('-', '')}_{attr}",
                    "targetObjects": ["User"],
                },
            )
            changes.append(f"extensionProperties {app} added")
    return changes
