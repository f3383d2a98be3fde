"""Deterministic tenant generation: the same seed gives the same tenant, ids included.

Proportions follow a typical mid-size organisation: ~5% guests, ~30% of members synced from
on-premises AD, one management chain; groups ~40% Microsoft 365, 35% security, 10% mail-enabled
security, 10% distribution, 5% dynamic, a few role-assignable; ~15 members a group with a long
tail of big groups, some nested groups, 1-3 owners each.
"""

from __future__ import annotations

import base64
import random
import uuid
from typing import Any

from agent.simulator.graph.directory import Directory, iso

GIVEN = [
    "Adele",
    "Alex",
    "Allan",
    "Ben",
    "Bianca",
    "Carlos",
    "Chloe",
    "Daniel",
    "Diego",
    "Elena",
    "Emily",
    "Farah",
    "Fatima",
    "George",
    "Grace",
    "Hana",
    "Henrik",
    "Isaac",
    "Isabel",
    "Jakub",
    "Joni",
    "Kenji",
    "Laura",
    "Lee",
    "Lidia",
    "Lynne",
    "Marek",
    "Maria",
    "Megan",
    "Miriam",
    "Nestor",
    "Nia",
    "Noah",
    "Olga",
    "Omar",
    "Patti",
    "Pradeep",
    "Priya",
    "Quinn",
    "Rafael",
    "Rosa",
    "Sakura",
    "Sam",
    "Sofia",
    "Tomas",
    "Uma",
    "Victor",
    "Wei",
    "Xavier",
    "Yara",
    "Yusuf",
    "Zoe",
]
SURNAMES = [
    "Adams",
    "Ahmed",
    "Bauer",
    "Becker",
    "Chen",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Gomez",
    "Hansen",
    "Haddad",
    "Ito",
    "Jensen",
    "Johnson",
    "Kim",
    "Kowalski",
    "Larsen",
    "Lopez",
    "Martin",
    "Meyer",
    "Moreau",
    "Murphy",
    "Nakamura",
    "Nguyen",
    "Novak",
    "Okafor",
    "Olsen",
    "Patel",
    "Petrov",
    "Quinn",
    "Rossi",
    "Santos",
    "Schmidt",
    "Silva",
    "Smith",
    "Suzuki",
    "Tanaka",
    "Taylor",
    "Torres",
    "Varga",
    "Vogel",
    "Wagner",
    "Walker",
    "Weber",
    "Wong",
    "Yilmaz",
    "Young",
    "Zhang",
]
DEPARTMENTS = (
    "Sales",
    "Marketing",
    "Finance",
    "Engineering",
    "Operations",
    "Human Resources",
    "Legal",
    "IT",
    "Support",
    "Research",
)
TITLES: dict[str, tuple[str, ...]] = {
    "Sales": ("Account Executive", "Sales Manager", "Sales Representative"),
    "Marketing": ("Marketing Specialist", "Product Marketing Manager", "Content Writer"),
    "Finance": ("Accountant", "Financial Analyst", "Controller"),
    "Engineering": ("Software Engineer", "Senior Software Engineer", "Engineering Manager"),
    "Operations": ("Operations Analyst", "Logistics Coordinator", "Operations Manager"),
    "Human Resources": ("HR Generalist", "Recruiter", "HR Business Partner"),
    "Legal": ("Counsel", "Paralegal", "Compliance Officer"),
    "IT": ("Systems Administrator", "Service Desk Analyst", "IT Manager"),
    "Support": ("Support Engineer", "Customer Success Manager", "Support Lead"),
    "Research": ("Research Scientist", "Lab Technician", "Research Lead"),
}
# (city, country, usageLocation, office prefix, phone prefix, preferred language)
CITIES = (
    ("Seattle", "United States", "US", "SEA", "+1 206 555", "en-US"),
    ("New York", "United States", "US", "NYC", "+1 212 555", "en-US"),
    ("London", "United Kingdom", "GB", "LON", "+44 20 7946", "en-GB"),
    ("Berlin", "Germany", "DE", "BER", "+49 30 9018", "de-DE"),
    ("Paris", "France", "FR", "PAR", "+33 1 7092", "fr-FR"),
    ("Tokyo", "Japan", "JP", "TYO", "+81 3 4578", "ja-JP"),
    ("Sydney", "Australia", "AU", "SYD", "+61 2 9876", "en-AU"),
    ("Toronto", "Canada", "CA", "YTO", "+1 416 555", "en-CA"),
)
PARTNER_DOMAINS = ("fabrikam.com", "northwindtraders.com", "adatum.com", "tailspintoys.com")
GROUP_TOPICS = (
    "Project",
    "Team",
    "Leads",
    "Announcements",
    "Committee",
    "Champions",
    "Admins",
    "Readers",
    "Approvers",
    "Community",
)
EPOCH = 1_609_459_200.0  # 2021-01-01T00:00:00Z: generated timestamps never depend on "now"


def new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def person_name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(GIVEN), rng.choice(SURNAMES)


def _when(rng: random.Random, span_days: int = 1500) -> str:
    return iso(EPOCH + rng.randrange(span_days * 86400))


def _user(rng: random.Random, index: int, domain: str, netbios: str, guest: bool) -> dict[str, Any]:
    given, surname = person_name(rng)
    nick = f"{given}.{surname}{index}".lower()
    city, country, usage, office, phone, lang = rng.choice(CITIES)
    dept = rng.choice(DEPARTMENTS)
    row: dict[str, Any] = {
        "id": new_id(rng),
        "displayName": f"{given} {surname}",
        "givenName": given,
        "surname": surname,
        "accountEnabled": rng.random() > 0.04,
        "createdDateTime": _when(rng),
        "usageLocation": usage,
        "preferredLanguage": lang,
        "businessPhones": [],
        "otherMails": [],
        "imAddresses": [],
    }
    if guest:
        partner = rng.choice(PARTNER_DOMAINS)
        external = f"{given}.{surname}{index}@{partner}".lower()
        local = external.replace("@", "_")
        row.update(
            displayName=f"{given} {surname} ({partner.split('.')[0].title()})",
            userPrincipalName=f"{local}#EXT#@{domain}",
            mail=external,
            mailNickname=local,
            userType="Guest",
            creationType="Invitation",
            externalUserState=rng.choice(("Accepted", "Accepted", "Accepted", "PendingAcceptance")),
            externalUserStateChangeDateTime=_when(rng),
            otherMails=[external],
            proxyAddresses=[f"SMTP:{external}"],
            companyName=partner.split(".")[0].title(),
            showInAddressList=False,
            identities=[
                {
                    "signInType": "userPrincipalName",
                    "issuer": domain,
                    "issuerAssignedId": f"{local}#EXT#@{domain}",
                }
            ],
        )
        return row
    upn = f"{nick}@{domain}"
    row.update(
        userPrincipalName=upn,
        mail=upn,
        mailNickname=nick,
        userType="Member",
        jobTitle=rng.choice(TITLES[dept]),
        department=dept,
        officeLocation=f"{office}-{rng.randint(1, 40)}/{rng.randint(100, 999)}",
        city=city,
        country=country,
        companyName=domain.split(".")[0].title(),
        employeeId=f"E{100000 + index}",
        businessPhones=[f"{phone} {rng.randint(1000, 9999)}"] if rng.random() < 0.8 else [],
        proxyAddresses=[f"SMTP:{upn}", f"smtp:{nick}@{domain.split('.')[0]}.mail.onmicrosoft.com"],
        passwordPolicies="None",
    )
    if rng.random() < 0.6:
        row["mobilePhone"] = f"{phone} {rng.randint(1000, 9999)}"
    if rng.random() < 0.3:  # synced from on-premises AD
        sam = nick[:20]
        row.update(
            onPremisesSyncEnabled=True,
            onPremisesImmutableId=base64.b64encode(
                rng.getrandbits(128).to_bytes(16, "big")
            ).decode(),
            onPremisesSamAccountName=sam,
            onPremisesDomainName=f"corp.{domain.split('.')[0]}.com",
            onPremisesUserPrincipalName=f"{sam}@corp.{domain.split('.')[0]}.com",
            onPremisesDistinguishedName=f"CN={given} {surname},OU={dept},DC=corp,DC={netbios},DC=com",
            onPremisesSecurityIdentifier=f"S-1-5-21-{rng.randrange(10**9)}-{rng.randrange(10**9)}-{index + 1000}",
            onPremisesLastSyncDateTime=_when(rng, 30),
        )
    return row


def _group(rng: random.Random, index: int, domain: str, kind: str) -> dict[str, Any]:
    dept = rng.choice(DEPARTMENTS)
    topic = rng.choice(GROUP_TOPICS)
    name = f"{dept} {topic} {index}"
    nick = name.lower().replace(" ", "-")
    row: dict[str, Any] = {
        "id": new_id(rng),
        "displayName": name,
        "description": f"{topic} group for {dept}",
        "createdDateTime": _when(rng),
        "mailNickname": nick,
        "groupTypes": [],
        "proxyAddresses": [],
        "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": [],
        "securityIdentifier": f"S-1-12-1-{rng.randrange(2**32)}-{rng.randrange(2**32)}-{rng.randrange(2**32)}-{rng.randrange(2**32)}",
    }
    mail = f"{nick}@{domain}"
    if kind in ("unified", "dynamic-unified"):
        row.update(
            groupTypes=["Unified"],
            mailEnabled=True,
            securityEnabled=rng.random() < 0.3,
            mail=mail,
            proxyAddresses=[f"SMTP:{mail}"],
            visibility=rng.choice(("Public", "Private", "Private")),
            classification=rng.choice((None, "General", "Confidential")),
            renewedDateTime=row["createdDateTime"],
            preferredLanguage="en-US",
        )
        if rng.random() < 0.4:
            row["resourceProvisioningOptions"] = ["Team"]
    elif kind in ("security", "dynamic-security", "role"):
        row.update(mailEnabled=False, securityEnabled=True)
    elif kind == "mail-security":
        row.update(
            mailEnabled=True, securityEnabled=True, mail=mail, proxyAddresses=[f"SMTP:{mail}"]
        )
    else:  # distribution
        row.update(
            mailEnabled=True, securityEnabled=False, mail=mail, proxyAddresses=[f"SMTP:{mail}"]
        )
    if kind.startswith("dynamic"):
        row["groupTypes"] = [*row["groupTypes"], "DynamicMembership"]
        city = rng.choice(CITIES)[0]
        title = rng.choice(TITLES[dept])
        row["membershipRule"] = (
            f'(user.department -eq "{dept}") -and (user.city -eq "{city}")'
            f' -and (user.jobTitle -eq "{title}")'
        )
        row["membershipRuleProcessingState"] = rng.choice(("On", "On", "Paused"))
    if kind == "role":
        row["isAssignableToRole"] = True
    if kind in ("security", "mail-security", "distribution") and rng.random() < 0.15:
        row.update(
            onPremisesSyncEnabled=True,
            onPremisesSamAccountName=nick[:20],
            onPremisesDomainName=f"corp.{domain.split('.')[0]}.com",
            onPremisesNetBiosName=domain.split(".")[0].upper(),
            onPremisesLastSyncDateTime=_when(rng, 30),
        )
    return {k: v for k, v in row.items() if v is not None}


def _group_kind(rng: random.Random) -> str:
    roll = rng.random()
    for kind, upto in (
        ("unified", 0.40),
        ("security", 0.73),
        ("role", 0.75),
        ("mail-security", 0.85),
        ("distribution", 0.95),
        ("dynamic-security", 0.98),
    ):
        if roll < upto:
            return kind
    return "dynamic-unified"


def generate(
    directory: Directory,
    seed: int,
    users: int,
    groups: int,
    *,
    applications: int | None = None,
    devices: int | None = None,
    administrative_units: int | None = None,
) -> None:
    """Fill an empty directory; no change-log entries (this is the tenant's starting state).

    Applications, devices and AUs default to TenantSpec's proportions of ``users``."""
    _users_and_groups(directory, seed, users, groups)
    from agent.simulator.graph.gen_objects import generate_objects

    generate_objects(
        directory,
        seed,
        users // 20 if applications is None else applications,
        users // 2 if devices is None else devices,
        max(2, users // 500) if administrative_units is None else administrative_units,
    )
    from agent.simulator.graph.tenant_generate import generate_tenant_config

    generate_tenant_config(directory, seed, users)
    from agent.simulator.graph.policy_generate import generate_policies

    generate_policies(directory, seed)  # last: policies point at users, groups and apps


def _users_and_groups(directory: Directory, seed: int, users: int, groups: int) -> None:
    rng = random.Random(seed)
    netbios = directory.domain.split(".")[0]
    user_rows = [
        _user(rng, i, directory.domain, netbios, guest=rng.random() < 0.05) for i in range(users)
    ]
    for row in user_rows:
        directory.load_row("user", row)
    members = [r for r in user_rows if r["userType"] == "Member"]
    # One management chain: the first member leads; every other member reports to someone
    # earlier in the list (heads of department report to the top).
    heads: dict[str, str] = {}
    for i, row in enumerate(members[1:], start=1):
        dept = row["department"]
        if dept not in heads:
            heads[dept] = row["id"]
            directory.load_manager(row["id"], members[0]["id"])
        else:
            boss = members[rng.randrange(0, i)]["id"] if rng.random() < 0.3 else heads[dept]
            directory.load_manager(row["id"], boss)
    member_ids = [r["id"] for r in members]
    all_ids = [r["id"] for r in user_rows]
    by_rule: dict[tuple[str, str, str], list[str]] = {}
    for r in members:
        by_rule.setdefault((r["department"], r["city"], r["jobTitle"]), []).append(r["id"])

    group_rows: list[dict[str, Any]] = []
    big = max(1, groups // 300)
    for g in range(groups):
        kind = "unified" if g == 0 else _group_kind(rng)
        row = _group(rng, g, directory.domain, kind)
        if g == 0:
            mail = f"allcompany@{directory.domain}"
            row.update(
                displayName="All Company",
                mailNickname="allcompany",
                description="Everyone",
                mail=mail,
                proxyAddresses=[f"SMTP:{mail}"],
            )
        directory.load_row("group", row)
        group_rows.append(row)
        if row.get("membershipRule"):
            _, dept, _, city, _, title, _ = row["membershipRule"].split('"')
            chosen = by_rule.get((dept, city, title), [])
        elif g == 0:
            chosen = member_ids
        elif g <= big and all_ids:
            lo = min(len(all_ids), 1000)
            chosen = rng.sample(all_ids, rng.randint(lo, min(len(all_ids), 8000)))
        else:
            size = min(int(rng.lognormvariate(2.2, 0.8)), 300, len(all_ids))
            pool = all_ids if "Unified" in row["groupTypes"] else member_ids
            chosen = rng.sample(pool, min(size, len(pool)))
        for oid in chosen:
            directory.load_member(row["id"], oid)
        if member_ids:
            n_owners = 25 if g == 1 else rng.randint(1, 3)  # one group beyond $expand's 20
            for oid in rng.sample(member_ids, min(n_owners, len(member_ids))):
                directory.load_owner(row["id"], oid)
    # Nested groups: some security and distribution groups contain earlier groups of a kind
    # that may be nested (never M365 or dynamic ones), which keeps the nesting acyclic.
    nestable = [r["id"] for r in group_rows if not r["groupTypes"]]
    for i, gid in enumerate(nestable):
        if i == 0 or rng.random() > 0.1:
            continue
        for child in rng.sample(nestable[:i], min(i, rng.randint(1, 3))):
            directory.load_member(gid, child)
