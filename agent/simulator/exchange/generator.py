"""Build a tenant's simulated Exchange from its Graph directory, deterministically from a seed.

Every mail-enabled, non-Microsoft-365 group of the directory becomes a distribution group or
mail-enabled security group with realistic Exchange-only properties. Sizing knobs top the
directory up with more such groups (created in the directory too, so Graph lists them).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

from agent.simulator.exchange.objects import OrgContext
from agent.simulator.exchange.state import ExchangeOrg, is_dl_row
from agent.simulator.graph import Directory
from agent.simulator.world import SimTenant

_TOPICS = (
    "Announcements",
    "Sales Leads",
    "Support Escalations",
    "Partners",
    "Alumni",
    "Events",
    "Newsletter",
)
_JOIN = ("Closed", "Closed", "Closed", "Open", "ApprovalRequired")


def _epoch(text: str | None, default: float) -> float:
    if not text:
        return default
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def build_org(
    tenant: SimTenant,
    directory: Directory,
    seed: int,
    *,
    distribution_groups: int | None = None,
    mail_security_groups: int | None = None,
    members_per_dl: int | None = None,
    defender_licensed: bool = True,
) -> ExchangeOrg:
    rng = random.Random(f"exchange/{seed}")
    now = directory.now()
    org_name = directory.domain.split(".")[0]
    domains = [directory.domain]
    if directory.domain.endswith(".onmicrosoft.com"):
        domains.append(f"{org_name}.mail.onmicrosoft.com")
    ctx = OrgContext(tenant.tenant_id, directory.domain, now - 3 * 365 * 86400, domains)
    org = ExchangeOrg(tenant, directory, ctx)
    org.set_defender_licensed(defender_licensed)
    with directory.lock:
        _top_up(directory, rng, "Distribution", distribution_groups, members_per_dl)
        _top_up(directory, rng, "Security", mail_security_groups, members_per_dl)
        users = [r["id"] for _, r in directory.scan("user", 0) if r.get("userType") == "Member"]
        for _, row in directory.scan("group", 0):
            kind = is_dl_row(row)
            if kind is None:
                continue
            created = _epoch(row.get("createdDateTime"), ctx.created)
            changed = created + rng.random() * max(0.0, now - created)
            record = org.add_record(row["id"], kind, row.get("displayName") or row["id"], created)
            record.when_changed = changed
            _decorate(record.props, rng, users, row)
        # Recipient lists name other recipients, so fill them once every group exists.
        groups = list(org.dls)
        for record in org.dls.values():
            if users and rng.random() < 0.12:
                record.props["AcceptMessagesOnlyFrom"] = [
                    ("user", u) for u in rng.sample(users, min(2, len(users)))
                ]
            if len(groups) > 1 and rng.random() < 0.06:
                other = rng.choice([g for g in groups if g != record.group_id])
                record.props["RejectMessagesFromDLMembers"] = [("group", other)]
            if users and rng.random() < 0.15:
                record.props["ModerationEnabled"] = True
                record.props["ModeratedBy"] = [("user", rng.choice(users))]
            if users and rng.random() < 0.05:
                record.props["GrantSendOnBehalfTo"] = [("user", rng.choice(users))]
        org.mark_seen()
    return org


def _decorate(
    props: dict[str, Any], rng: random.Random, users: list[str], row: dict[str, Any]
) -> None:
    if props["MemberDepartRestriction"] == "Closed" and row.get("securityEnabled") is False:
        props["MemberJoinRestriction"] = rng.choice(_JOIN)
        props["MemberDepartRestriction"] = rng.choice(("Open", "Closed"))
    props["RequireSenderAuthenticationEnabled"] = rng.random() < 0.8
    props["HiddenFromAddressListsEnabled"] = rng.random() < 0.08
    props["HiddenGroupMembershipEnabled"] = rng.random() < 0.03
    props["ReportToOriginatorEnabled"] = rng.random() < 0.9
    if rng.random() < 0.1:
        props["MailTip"] = f"This list reaches everyone in {row.get('displayName')}."
        props["MailTipTranslations"] = [f"default:{props['MailTip']}"]
    if rng.random() < 0.3:
        props["CustomAttribute1"] = str(row.get("displayName", "")).split(" ")[0]
    if rng.random() < 0.05:
        props["ExtensionCustomAttribute1"] = ["cost-center-" + str(rng.randrange(100, 999))]


def _top_up(
    directory: Directory, rng: random.Random, kind: str, wanted: int | None, members: int | None
) -> None:
    """Add mail-enabled groups of ``kind`` until the directory holds ``wanted`` of them."""
    if wanted is None:
        return
    security = kind == "Security"
    have = sum(
        1
        for _, r in directory.scan("group", 0)
        if is_dl_row(r) and bool(r.get("securityEnabled")) == security
    )
    users = [r["id"] for _, r in directory.scan("user", 0) if r.get("mail")]
    base = directory.count("group")
    for index in range(max(0, wanted - have)):
        topic = rng.choice(_TOPICS)
        name = f"{topic} {'SG' if security else 'DL'} {base + index}"
        alias = name.lower().replace(" ", "-")
        mail = f"{alias}@{directory.domain}"
        gid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        row: dict[str, Any] = {
            "id": gid,
            "displayName": name,
            "description": f"{topic} ({'mail-enabled security group' if security else 'distribution list'})",
            "createdDateTime": dt.datetime.fromtimestamp(
                directory.now() - rng.random() * 900 * 86400, dt.UTC
            ).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "mailNickname": alias,
            "mail": mail,
            "proxyAddresses": [f"SMTP:{mail}"],
            "groupTypes": [],
            "mailEnabled": True,
            "securityEnabled": security,
            "resourceBehaviorOptions": [],
            "resourceProvisioningOptions": [],
        }
        directory.load_row("group", row)
        size = members if members is not None else int(rng.lognormvariate(2.5, 0.9))
        for oid in rng.sample(users, min(size, len(users))):
            directory.load_member(gid, oid)
        for oid in rng.sample(users, min(rng.randint(1, 2), len(users))):
            directory.load_owner(gid, oid)
