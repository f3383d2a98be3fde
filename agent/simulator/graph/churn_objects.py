"""Churn for the kinds beyond users and groups: app registrations come and go (with their
service principals), credentials roll, devices enrol and retire, AUs and role memberships
change, delegated grants are given and revoked. Called by ``apply_churn`` after users and
groups, so it never changes what churn does to those."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from agent.simulator.graph.audit_links import link, unlink
from agent.simulator.graph.gen_apps import (
    _application,
    _kind,
    _password_credential,
    _service_principal,
    opaque_id,
)
from agent.simulator.graph.gen_links import churn_links
from agent.simulator.graph.gen_objects import _device

if TYPE_CHECKING:
    from agent.simulator.graph.churn import ChurnSummary
    from agent.simulator.graph.directory import Directory


def _ids(d: Directory, kind: str) -> list[str]:
    return sorted(r["id"] for _, r in d.scan(kind, 0))


def add_application(d: Directory, rng: random.Random, fresh: Any) -> tuple[str, str]:
    """A new app registration and its service principal: (app id, SP id)."""
    kind = _kind(rng)
    app = _application(rng, rng.randrange(10**6), kind, d.domain)
    app["id"], app["appId"] = fresh(), fresh()
    app.pop("createdDateTime", None)
    sp = _service_principal(rng, app, kind, d.tenant_id)
    sp["id"] = fresh()
    d.create("application", **app)
    d.create("servicePrincipal", **sp)
    return app["id"], sp["id"]


def delete_application(d: Directory, app_id: str, permanent: bool = False) -> list[str]:
    """Delete an app registration; its service principal in this tenant goes with it (facts
    file §3: restoring the app does not bring the SP back). Returns the SP ids deleted."""
    with d.lock:
        app = d.row("application", app_id)
        if app is None:
            d.delete("application", app_id, permanent)  # raises DirectoryError
            return []
        sps = [r["id"] for _, r in d.scan("servicePrincipal", 0) if r.get("appId") == app["appId"]]
        for sp_id in sps:
            d.delete("servicePrincipal", sp_id, permanent)
        d.delete("application", app_id, permanent)
        return sps


def apply_object_churn(
    d: Directory, rng: random.Random, fraction: float, summary: ChurnSummary, fresh: Any
) -> None:
    """Change about ``fraction`` of each kind; the caller holds the lock."""
    s = summary
    live = _ids(d, "application")
    for _ in range(max(1, round(len(live) * fraction)) if live else 0):
        roll = rng.random()
        if roll < 0.3 or not live:
            app_id, sp_id = add_application(d, rng, fresh)
            s.applications_added.append(app_id)
            s.service_principals_added.append(sp_id)
            continue
        app_id = live.pop(rng.randrange(len(live)))  # each app changes at most once
        if roll < 0.75:
            row = d.row("application", app_id) or {}
            creds = [*row.get("passwordCredentials", []), _password_credential(rng, "rotated")]
            d.update("application", app_id, notes=f"Reviewed {rng.randrange(10**6)}",
                     passwordCredentials=creds[-2:])  # fmt: skip
            s.applications_changed.append(app_id)
        elif roll < 0.9:
            s.service_principals_soft_deleted.extend(delete_application(d, app_id))
            s.applications_soft_deleted.append(app_id)
        else:
            s.service_principals_hard_deleted.extend(delete_application(d, app_id, True))
            s.applications_hard_deleted.append(app_id)
    sps = [
        r["id"] for _, r in d.scan("servicePrincipal", 0)
        if r.get("appOwnerOrganizationId") == d.tenant_id
    ]  # fmt: skip
    for sp_id in rng.sample(sps, min(len(sps), max(1, round(len(sps) * fraction / 2)))):
        d.update("servicePrincipal", sp_id, appRoleAssignmentRequired=rng.random() < 0.5,
                 notificationEmailAddresses=[f"owner{rng.randrange(100)}@{d.domain}"])  # fmt: skip
        s.service_principals_changed.append(sp_id)
    _devices(d, rng, fraction, s, fresh)
    _units_roles_grants(d, rng, fraction, s, fresh)
    s.links_changed.extend(churn_links(d, rng, fraction, fresh))


def _devices(
    d: Directory, rng: random.Random, fraction: float, s: ChurnSummary, fresh: Any
) -> None:
    live = _ids(d, "device")
    users = _ids(d, "user")
    for _ in range(max(1, round(len(live) * fraction)) if live else 0):
        roll = rng.random()
        if roll < 0.3 or not live:
            row = _device(rng, rng.randrange(10**5), d.domain.split(".")[0])
            row["id"] = fresh()
            created = d.create("device", **row)
            if users:
                owner = rng.choice(users)
                link(d, "device.registeredOwners", created["id"], owner)
                link(d, "device.registeredUsers", created["id"], owner)
            s.devices_added.append(created["id"])
        elif roll < 0.8:
            device_id = live.pop(rng.randrange(len(live)))
            d.update("device", device_id, isCompliant=rng.random() < 0.8,
                     operatingSystemVersion=f"10.0.22631.{rng.randrange(1000, 5000)}")  # fmt: skip
            s.devices_changed.append(device_id)
        else:
            device_id = live.pop(rng.randrange(len(live)))
            d.delete("device", device_id)  # devices are deleted for good
            s.devices_deleted.append(device_id)


def _units_roles_grants(
    d: Directory, rng: random.Random, fraction: float, s: ChurnSummary, fresh: Any
) -> None:
    store = d.objects
    users = _ids(d, "user")
    units = _ids(d, "administrativeUnit")
    if units:
        unit = rng.choice(units)
        d.update("administrativeUnit", unit, description=f"Updated {rng.randrange(10**6)}")
        s.administrative_units_changed.append(unit)
        static = [u for u in units if (d.row("administrativeUnit", u) or {}).get(
            "membershipType") != "Dynamic"]  # fmt: skip
        for _ in range(max(1, round(len(users) * fraction / 10)) if static and users else 0):
            unit, user = rng.choice(static), rng.choice(users)
            if user in store.links["administrativeUnit.members"].get(unit, set()):
                unlink(d, "administrativeUnit.members", unit, user)
                s.au_members_removed.append((unit, user))
            else:
                link(d, "administrativeUnit.members", unit, user)
                s.au_members_added.append((unit, user))
    if rng.random() < 0.5 or not units:
        created = d.create("administrativeUnit", id=fresh(), displayName=f"AU {rng.randrange(10**4)}",
                           membershipType="Assigned")  # fmt: skip
        s.administrative_units_added.append(created["id"])
    roles = _ids(d, "directoryRole")
    if roles and users:
        role, user = rng.choice(roles), rng.choice(users)
        if user in store.links["directoryRole.members"].get(role, set()):
            unlink(d, "directoryRole.members", role, user)
            s.directory_role_members_removed.append((role, user))
        else:
            link(d, "directoryRole.members", role, user)
            s.directory_role_members_added.append((role, user))
    live = _ids(d, "oauth2PermissionGrant")
    for _ in range(max(1, round(len(live) * fraction)) if live else 0):
        grant = d.row("oauth2PermissionGrant", live.pop(rng.randrange(len(live)))) if live else None
        if grant is None:
            break
        roll = rng.random()
        if roll < 0.3:
            new = {**grant, "id": opaque_id(rng)}
            new.pop("createdDateTime", None)
            if new.get("principalId") is None:
                new.pop("principalId", None)
            d.create("oauth2PermissionGrant", **new)
            s.oauth2_grants_added.append(new["id"])
        elif roll < 0.8:
            scopes = set(grant["scope"].split()) ^ {"Mail.Read"}
            d.update("oauth2PermissionGrant", grant["id"], scope=" ".join(sorted(scopes)))
            s.oauth2_grants_changed.append(grant["id"])
        else:
            d.delete("oauth2PermissionGrant", grant["id"])
            s.oauth2_grants_deleted.append(grant["id"])
