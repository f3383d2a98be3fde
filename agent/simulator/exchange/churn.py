"""Changes to a tenant's Exchange as its admins would make them (tests and benchmarks).

Each change goes through the same cmdlet code the bridge runs (with administrator rights), so
the DL overlay, the Graph directory and WhenChanged stay consistent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from agent.simulator.exchange import dl, settings
from agent.simulator.exchange.state import ExchangeOrg

# (Get- cmdlet, Identity, property, value maker) of the setting edits churn makes.
_SETTING_EDITS = (
    ("HostedContentFilterPolicy", "Default", "BulkThreshold", lambda r: r.randint(3, 9)),
    (
        "OrganizationConfig",
        None,
        "MailTipsLargeAudienceThreshold",
        lambda r: r.choice((25, 50, 100)),
    ),
    ("RemoteDomain", "Default", "AutoForwardEnabled", lambda r: r.random() < 0.5),
    ("MalwareFilterPolicy", "Default", "ZapEnabled", lambda r: r.random() < 0.7),
    (
        "TransportRule",
        "External sender banner",
        "Comments",
        lambda r: f"Reviewed {r.randrange(10**6)}",
    ),
    (
        "AntiPhishPolicy",
        "Office365 AntiPhish Default",
        "EnableFirstContactSafetyTips",
        lambda r: r.random() < 0.5,
    ),
)


# An administrator changing a mail-enabled security group it does not manage (as the
# module's write functions do).
_ADMIN = {"BypassSecurityGroupManagerCheck": True}


@dataclass
class ExchangeChurn:
    dl_edited: list[str] = field(default_factory=list)  # group ids
    members_added: list[tuple[str, str]] = field(default_factory=list)  # (group, member)
    members_removed: list[tuple[str, str]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    settings_edited: list[tuple[str, str]] = field(default_factory=list)  # (cmdlet, identity)
    policies_deleted: list[str] = field(default_factory=list)  # "Get-X:Name"


def churn(org: ExchangeOrg, rng: random.Random, fraction: float = 0.05) -> ExchangeChurn:
    """Change about ``fraction`` of the groups, plus a few settings."""
    summary = ExchangeChurn()
    with org.lock:
        org.sync()
        groups = sorted(org.dls)
        n = max(1, round(len(groups) * fraction))
        users = [r["id"] for _, r in org.directory.scan("user", 0) if r.get("mail")]
        for _ in range(n):
            edit_group(org, rng, summary)
            change_members(org, rng, users, summary)
        for _ in range(max(1, n // 4)):
            create_group(org, rng, users, summary)
            delete_group(org, rng, summary)
        edit_settings(org, rng, summary, max(1, n // 2))
        if rng.random() < 0.5:
            delete_policy(org, rng, summary)
    return summary


def edit_group(org: ExchangeOrg, rng: random.Random, summary: ExchangeChurn) -> None:
    if not org.dls:
        return
    record = org.dls[rng.choice(sorted(org.dls))]
    change = rng.choice(
        (
            {"MailTip": f"Mail tip {rng.randrange(10**6)}"},
            {"HiddenFromAddressListsEnabled": not record.props["HiddenFromAddressListsEnabled"]},
            {"CustomAttribute2": f"cc-{rng.randrange(1000)}"},
            {"DisplayName": f"{record.name} (renamed {rng.randrange(1000)})"},
        )
    )
    dl.set_group(org, {"Identity": record.guid, **change, **_ADMIN}, True, None)
    summary.dl_edited.append(record.group_id)


def change_members(
    org: ExchangeOrg, rng: random.Random, users: list[str], summary: ExchangeChurn
) -> None:
    if not org.dls or not users:
        return
    record = org.dls[rng.choice(sorted(org.dls))]
    # Only mail-enabled recipients count in Exchange (the Graph generator also nests plain
    # security groups, which Exchange cannot list as members).
    current = sorted(m for m in org.directory.members(record.group_id) if org.resolve(m))
    wanted = set(current)
    if current and rng.random() < 0.5:
        gone = rng.choice(current)
        wanted.discard(gone)
        summary.members_removed.append((record.group_id, gone))
    else:
        added = rng.choice(users)
        if added in wanted:
            return
        wanted.add(added)
        summary.members_added.append((record.group_id, added))
    dl.update_members(
        org, {"Identity": record.guid, "Members": sorted(wanted) or None, **_ADMIN}, True, None
    )


def create_group(
    org: ExchangeOrg, rng: random.Random, users: list[str], summary: ExchangeChurn
) -> None:
    number = rng.randrange(10**6)
    security = rng.random() < 0.3
    params = {
        "Name": f"Churn {'SG' if security else 'DL'} {number}",
        "Alias": f"churn-{number}",
        "Type": "Security" if security else "Distribution",
        "ManagedBy": [rng.choice(users)] if users else None,
        "Members": rng.sample(users, min(len(users), rng.randint(0, 5))),
    }
    created = dl.new_group(org, params)
    summary.created.append(created[0]["ExternalDirectoryObjectId"])


def delete_group(org: ExchangeOrg, rng: random.Random, summary: ExchangeChurn) -> None:
    if not org.dls:
        return
    record = org.dls[rng.choice(sorted(org.dls))]
    dl.remove_group(org, {"Identity": record.guid, **_ADMIN}, True, None)
    summary.deleted.append(record.group_id)


def edit_settings(org: ExchangeOrg, rng: random.Random, summary: ExchangeChurn, count: int) -> None:
    for noun, identity, key, make in rng.sample(_SETTING_EDITS, min(count, len(_SETTING_EDITS))):
        try:
            target = settings.find(org, noun, identity)
        except Exception:  # deleted by an earlier churn round
            continue
        settings.set_(org, noun, {"Identity": target.get("Identity"), key: make(rng)})
        summary.settings_edited.append((f"Get-{noun}", str(target.get("Identity"))))


def delete_policy(org: ExchangeOrg, rng: random.Random, summary: ExchangeChurn) -> None:
    """Delete a custom (not default, not built-in) policy and its rule."""
    candidates = [
        (cmdlet, obj["Name"])
        for cmdlet in (
            "Get-HostedContentFilterPolicy",
            "Get-MalwareFilterPolicy",
            "Get-AntiPhishPolicy",
            "Get-SafeLinksPolicy",
            "Get-SafeAttachmentPolicy",
        )
        for obj in org.settings_of(cmdlet)
        if not obj.get("IsDefault") and not obj.get("IsBuiltInProtection")
    ]
    if candidates:
        cmdlet, name = rng.choice(sorted(candidates))
        settings.remove(org, cmdlet, name)
        summary.policies_deleted.append(f"{cmdlet}:{name}")
