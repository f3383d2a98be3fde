"""Realistic random change to a tenant (demo, benchmark): what an ordinary day looks like.

The summary lists exactly which objects changed and how, so a test can check that a backup
saw every change.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.simulator.graph.generator import DEPARTMENTS, TITLES, person_name

if TYPE_CHECKING:
    from agent.simulator.graph.directory import Directory


@dataclass
class ChurnSummary:
    users_added: list[str] = field(default_factory=list)
    users_changed: list[str] = field(default_factory=list)
    users_soft_deleted: list[str] = field(default_factory=list)
    users_hard_deleted: list[str] = field(default_factory=list)
    groups_added: list[str] = field(default_factory=list)
    groups_changed: list[str] = field(default_factory=list)
    groups_soft_deleted: list[str] = field(default_factory=list)
    groups_hard_deleted: list[str] = field(default_factory=list)
    members_added: list[tuple[str, str]] = field(default_factory=list)  # (group, member)
    members_removed: list[tuple[str, str]] = field(default_factory=list)
    owners_added: list[tuple[str, str]] = field(default_factory=list)
    owners_removed: list[tuple[str, str]] = field(default_factory=list)
    # Policies (churn_policies.py): (kind, key); singletons are keyed by their kind.
    policies_added: list[tuple[str, str]] = field(default_factory=list)
    policies_changed: list[tuple[str, str]] = field(default_factory=list)
    policies_deleted: list[tuple[str, str]] = field(default_factory=list)
    # Other directory objects (churn_objects.py).
    applications_added: list[str] = field(default_factory=list)
    applications_changed: list[str] = field(default_factory=list)
    applications_soft_deleted: list[str] = field(default_factory=list)
    applications_hard_deleted: list[str] = field(default_factory=list)
    service_principals_added: list[str] = field(default_factory=list)
    service_principals_changed: list[str] = field(default_factory=list)
    service_principals_soft_deleted: list[str] = field(default_factory=list)
    service_principals_hard_deleted: list[str] = field(default_factory=list)
    devices_added: list[str] = field(default_factory=list)
    devices_changed: list[str] = field(default_factory=list)
    devices_deleted: list[str] = field(default_factory=list)  # devices are never soft-deleted
    administrative_units_added: list[str] = field(default_factory=list)
    administrative_units_changed: list[str] = field(default_factory=list)
    au_members_added: list[tuple[str, str]] = field(default_factory=list)  # (AU, member)
    au_members_removed: list[tuple[str, str]] = field(default_factory=list)
    directory_role_members_added: list[tuple[str, str]] = field(default_factory=list)
    directory_role_members_removed: list[tuple[str, str]] = field(default_factory=list)
    oauth2_grants_added: list[str] = field(default_factory=list)
    oauth2_grants_changed: list[str] = field(default_factory=list)
    oauth2_grants_deleted: list[str] = field(default_factory=list)
    # SP policy links, device registered users, app extension properties and credentials.
    links_changed: list[str] = field(default_factory=list)
    # Admin portal "Groups > General" toggles flipped (agent/simulator/portal.py).
    groups_general_settings_changed: list[str] = field(default_factory=list)
    # Tenant configuration (churn_tenant.py).
    role_definitions_changed: list[str] = field(default_factory=list)
    role_assignments_added: list[str] = field(default_factory=list)  # custom-role assignments
    role_assignments_removed: list[str] = field(default_factory=list)
    eligibility_added: list[str] = field(default_factory=list)
    eligibility_removed: list[str] = field(default_factory=list)
    group_settings_changed: list[str] = field(default_factory=list)
    branding_changed: list[str] = field(default_factory=list)  # localization ids
    branding_images_changed: list[tuple[str, str]] = field(default_factory=list)  # (id, image)

    def counts(self) -> dict[str, int]:
        return {name: len(value) for name, value in self.__dict__.items()}

    def __str__(self) -> str:
        parts = [f"{n.replace('_', ' ')} {c}" for n, c in self.counts().items() if c]
        return ", ".join(parts) or "no changes"


def _fresh_id(directory: Directory, rng: random.Random) -> str:
    while True:  # the churn RNG may share a seed with the generator: never reuse an id
        oid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if directory.kind_of(oid) is None and oid not in directory.deleted:
            return oid


def _new_user(directory: Directory, rng: random.Random) -> dict[str, Any]:
    given, surname = person_name(rng)
    nick = f"{given}.{surname}.{rng.randrange(10**6)}".lower()
    upn = f"{nick}@{directory.domain}"
    dept = rng.choice(DEPARTMENTS)
    return directory.create_user(
        id=_fresh_id(directory, rng),
        displayName=f"{given} {surname}",
        givenName=given,
        surname=surname,
        userPrincipalName=upn,
        mail=upn,
        mailNickname=nick,
        department=dept,
        jobTitle=rng.choice(TITLES[dept]),
        businessPhones=[],
        proxyAddresses=[f"SMTP:{upn}"],
        usageLocation="US",
    )


def apply_churn(directory: Directory, rng: random.Random, fraction: float) -> ChurnSummary:
    """Change about ``fraction`` of the users and groups; the caller holds the lock."""
    summary = ChurnSummary()
    users = sorted(r["id"] for _, r in directory.scan("user", 0))
    groups = sorted(r["id"] for _, r in directory.scan("group", 0))
    static = [g for g in groups if not (directory.row("group", g) or {}).get("membershipRule")]
    n_users = max(1, round(len(users) * fraction))
    n_groups = max(1, round(len(groups) * fraction))
    touched: set[str] = set()

    def pick(pool: list[str]) -> str | None:
        for _ in range(20):
            oid = rng.choice(pool) if pool else None
            if oid is not None and oid not in touched and directory.kind_of(oid):
                touched.add(oid)
                return oid
        return None

    for _ in range(n_users):
        roll = rng.random()
        if roll < 0.25:
            summary.users_added.append(_new_user(directory, rng)["id"])
        elif roll < 0.75 and (uid := pick(users)):
            dept = rng.choice(DEPARTMENTS)
            directory.update_user(uid, department=dept, jobTitle=rng.choice(TITLES[dept]))
            summary.users_changed.append(uid)
        elif roll < 0.90 and (uid := pick(users)):
            directory.delete_user(uid)
            summary.users_soft_deleted.append(uid)
        elif uid := pick(users):
            directory.delete_user(uid, permanent=True)
            summary.users_hard_deleted.append(uid)
    live_users = sorted(r["id"] for _, r in directory.scan("user", 0))
    for _ in range(n_groups):
        roll = rng.random()
        if roll < 0.1:
            nick = f"project-{rng.randrange(10**6)}"
            group = directory.create_group(
                id=_fresh_id(directory, rng),
                displayName=nick.replace("-", " ").title(),
                mailNickname=nick,
                description="Created by churn",
            )
            summary.groups_added.append(group["id"])
        elif roll < 0.3 and (gid := pick(groups)):
            directory.update_group(gid, description=f"Updated {rng.randrange(10**6)}")
            summary.groups_changed.append(gid)
        elif roll < 0.37 and (gid := pick(groups)):
            directory.delete_group(gid)
            if gid in directory.deleted:
                summary.groups_soft_deleted.append(gid)
            else:
                summary.groups_hard_deleted.append(gid)
        elif roll < 0.4 and (gid := pick(groups)):
            directory.delete_group(gid, permanent=True)
            summary.groups_hard_deleted.append(gid)
        elif roll < 0.7 and static and live_users:
            gid = rng.choice(static)
            if directory.kind_of(gid) != "group":
                continue
            for _ in range(rng.randint(1, 5)):
                uid = rng.choice(live_users)
                if uid in directory.members_of[gid] or not directory.kind_of(uid):
                    continue
                directory.add_member(gid, uid)
                summary.members_added.append((gid, uid))
        elif roll < 0.9 and static:
            gid = rng.choice(static)
            current = sorted(directory.members_of.get(gid, ()))
            for uid in rng.sample(current, min(len(current), rng.randint(1, 3))):
                directory.remove_member(gid, uid)
                summary.members_removed.append((gid, uid))
        elif static and live_users:
            gid = rng.choice(static)
            if directory.kind_of(gid) != "group":
                continue
            uid = rng.choice(live_users)
            if directory.kind_of(uid) and uid not in directory.owners_of[gid]:
                directory.add_owner(gid, uid)
                summary.owners_added.append((gid, uid))
            owners = sorted(directory.owners_of[gid] - {uid})
            if len(owners) > 1:
                victim = rng.choice(owners)
                directory.remove_owner(gid, victim)
                summary.owners_removed.append((gid, victim))
    from agent.simulator.graph.churn_objects import apply_object_churn

    apply_object_churn(directory, rng, fraction, summary, lambda: _fresh_id(directory, rng))
    from agent.simulator.portal import churn_settings

    summary.groups_general_settings_changed += churn_settings(directory, rng)
    from agent.simulator.graph.churn_tenant import apply_tenant_churn

    apply_tenant_churn(directory, random.Random(rng.getrandbits(64)), fraction, summary)
    from agent.simulator.graph.churn_policies import apply_policy_churn

    apply_policy_churn(directory, rng, fraction, summary, lambda: _fresh_id(directory, rng))
    return summary
