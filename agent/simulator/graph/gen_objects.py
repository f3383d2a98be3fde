"""Deterministic devices (with BitLocker keys), administrative units, activated directory
roles and licences, generated after users and groups from their own random stream (so adding
kinds never changes the users and groups a seed gives).

Proportions: ~60% Windows devices (Entra joined, hybrid joined or registered; BitLocker keys
for managed ones), iOS, Android and macOS; ~30% of AUs dynamic; most members licensed with
E3 or E5 and a few security groups carrying group-based licences.
"""

from __future__ import annotations

import random
from typing import Any

from agent.simulator.graph.directory import Directory, iso
from agent.simulator.graph.gen_apps import generate_apps
from agent.simulator.graph.generator import CITIES, DEPARTMENTS, EPOCH, new_id
from agent.simulator.graph.licences import seed_states
from agent.simulator.graph.published_apps import generate_partner_apps
from agent.simulator.world import ROLE_TEMPLATE_IDS

INTUNE = "0000000a-0000-0000-c000-000000000000"
ROLE_TEMPLATES = {
    **ROLE_TEMPLATE_IDS,
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Directory Readers": "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
}
# (skuPartNumber, skuId, [(servicePlanName, servicePlanId)]) — real Microsoft ids.
SKUS = (
    ("ENTERPRISEPACK", "6fd2c87f-b296-42f0-b197-1e91e994b900",
     [("EXCHANGE_S_ENTERPRISE", "efb87545-963c-4e0d-99df-69c6916d9eb0"),
      ("SHAREPOINTENTERPRISE", "5dbe027f-2339-4123-9542-606e4d348a72"),
      ("TEAMS1", "57ff2da0-773e-42df-b2af-ffb7a2317929")]),
    ("SPE_E5", "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
     [("EXCHANGE_S_ENTERPRISE", "efb87545-963c-4e0d-99df-69c6916d9eb0"),
      ("AAD_PREMIUM_P2", "eec0eb4f-6444-4f95-aba0-50c24d67f998"),
      ("INTUNE_A", "c1ec4a95-1f05-45b3-a911-aa3fa01094f5")]),
    ("EMS", "efccb6f7-5641-4e0e-bd10-b4976e1bf68e",
     [("AAD_PREMIUM", "41781fb2-bc02-4b7c-bd55-b576c07bb09d"),
      ("INTUNE_A", "c1ec4a95-1f05-45b3-a911-aa3fa01094f5")]),
    ("POWER_BI_STANDARD", "a403ebcc-fae0-4ca2-8c8c-7a907fd6c235",
     [("BI_AZURE_P0", "2049e525-b859-401b-b2a0-e0a31c4b1fe4")]),
    ("FLOW_FREE", "f30db892-07e9-47e9-837c-80727f46fd3d",
     [("FLOW_P2_VIRAL", "50e68c76-46c6-4674-81f9-75456511b170")]),
)  # fmt: skip
SKU_IDS = {part: sku for part, sku, _ in SKUS}


def _when(rng: random.Random, days: int = 1200) -> str:
    return iso(EPOCH + rng.randrange(days * 86400))


def _device(rng: random.Random, index: int, netbios: str) -> dict[str, Any]:
    roll = rng.random()
    device_id = new_id(rng)
    row: dict[str, Any] = {
        "id": new_id(rng),
        "deviceId": device_id,
        "accountEnabled": rng.random() > 0.03,
        "registrationDateTime": _when(rng),
        "approximateLastSignInDateTime": _when(rng, 1500),
        "physicalIds": [f"[USER-GID]:{new_id(rng)}:{rng.randrange(10**12)}"],
        "systemLabels": [],
        "profileType": "RegisteredDevice",
        "alternativeSecurityIds": [],
    }
    if roll < 0.6:
        trust = rng.choice(("AzureAd", "AzureAd", "ServerAd", "Workplace"))
        row.update(
            displayName=f"{netbios.upper()[:6]}-LT{index:05d}",
            operatingSystem="Windows",
            operatingSystemVersion=rng.choice(("10.0.19045.4529", "10.0.22631.3880")),
            manufacturer=rng.choice(("Dell Inc.", "LENOVO", "HP", "Microsoft Corporation")),
            model=rng.choice(
                ("Latitude 7440", "ThinkPad T14", "EliteBook 840", "Surface Laptop 5")
            ),
            trustType=trust,
            deviceOwnership="Company",
            enrollmentType="AzureDomainJoined" if trust == "AzureAd" else None,
        )
        if trust == "ServerAd":  # hybrid joined: synced from on-premises AD
            row["onPremisesSyncEnabled"] = True
            row["onPremisesLastSyncDateTime"] = _when(rng, 30)
    elif roll < 0.75:
        row.update(displayName=f"iPhone {index}", operatingSystem="iOS",
                   operatingSystemVersion="17.5.1", manufacturer="Apple", model="iPhone 15",
                   trustType="Workplace", deviceOwnership=rng.choice(("Company", "Personal")))  # fmt: skip
    elif roll < 0.9:
        row.update(displayName=f"Android {index}", operatingSystem="Android",
                   operatingSystemVersion="14.0", manufacturer="samsung", model="SM-S911B",
                   trustType="Workplace", deviceOwnership=rng.choice(("Company", "Personal")))  # fmt: skip
    else:
        row.update(displayName=f"MacBook-{index}", operatingSystem="MacMDM",
                   operatingSystemVersion="14.5", manufacturer="Apple", model="MacBookPro18,1",
                   trustType="AzureAd", deviceOwnership="Company")  # fmt: skip
    managed = rng.random() < 0.8
    row.update(isManaged=managed, isCompliant=managed and rng.random() < 0.9)
    if managed:
        row["mdmAppId"] = INTUNE
    return {k: v for k, v in row.items() if v is not None}


def _recovery_password(rng: random.Random) -> str:
    # A BitLocker recovery password: 8 blocks of 6 digits.
    return "-".join(f"{rng.randrange(10**6):06d}" for _ in range(8))


def _devices(d: Directory, rng: random.Random, count: int, users: list[dict[str, Any]]) -> None:
    store = d.objects
    netbios = d.domain.split(".")[0]
    for index in range(count):
        row = _device(rng, index, netbios)
        d.load_row("device", row)
        if users and rng.random() < 0.95:
            owner = rng.choice(users)["id"]
            store.link("device.registeredOwners", row["id"], owner)
            store.link("device.registeredUsers", row["id"], owner)
        if row["operatingSystem"] == "Windows" and row.get("isManaged"):
            for volume in ("operatingSystemVolume", "fixedDataVolume")[: rng.randint(1, 2)]:
                key = {
                    "id": new_id(rng),
                    "createdDateTime": _when(rng),
                    "deviceId": row["deviceId"],
                    "volumeType": volume,
                    "key": _recovery_password(rng),
                }
                store.bitlocker_keys[key["id"]] = key


def _administrative_units(
    d: Directory,
    rng: random.Random,
    count: int,
    users: list[dict[str, Any]],
    roles: dict[str, dict[str, Any]],
) -> None:
    store = d.objects
    scoped_roles = [
        roles[n] for n in ("User Administrator", "Helpdesk Administrator") if n in roles
    ]
    by_dept: dict[str, list[dict[str, Any]]] = {}
    by_city: dict[str, list[dict[str, Any]]] = {}
    for user in users:
        by_dept.setdefault(user.get("department", ""), []).append(user)
        by_city.setdefault(user.get("city", ""), []).append(user)
    for index in range(count):
        dynamic = rng.random() < 0.3 and index > 0
        city = rng.choice(CITIES)[0]
        dept = rng.choice(DEPARTMENTS)
        row: dict[str, Any] = {
            "id": new_id(rng),
            "displayName": f"{dept} AU" if dynamic else f"{city} office",
            "description": f"Users of {dept}" if dynamic else f"Everyone based in {city}",
            "membershipType": "Dynamic" if dynamic else "Assigned",
            "visibility": "HiddenMembership" if rng.random() < 0.2 else None,
            "isMemberManagementRestricted": rng.random() < 0.1,
        }
        if dynamic:
            row["membershipRule"] = f'(user.department -eq "{dept}")'
            row["membershipRuleProcessingState"] = "On"
            members = by_dept.get(dept, [])
        else:
            members = by_city.get(city, [])
            members = rng.sample(members, min(len(members), 2000))
        d.load_row("administrativeUnit", {k: v for k, v in row.items() if v is not None})
        for user in members:
            store.link("administrativeUnit.members", row["id"], user["id"])
        if scoped_roles and users:
            admin = rng.choice(users)
            store.add_child(
                "administrativeUnit.scopedRoleMembers",
                row["id"],
                {
                    "id": new_id(rng),
                    "administrativeUnitId": row["id"],
                    "roleId": rng.choice(scoped_roles)["id"],
                    "roleMemberInfo": {"id": admin["id"], "displayName": admin["displayName"]},
                },
            )


def _roles(
    d: Directory, rng: random.Random, users: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Activated built-in roles (a role shows up in /directoryRoles once it has been used)."""
    store = d.objects
    sps = [
        r
        for _, r in d.scan("servicePrincipal", 0)
        if r.get("appOwnerOrganizationId") == d.tenant_id
    ]
    role_groups = [r for _, r in d.scan("group", 0) if r.get("isAssignableToRole")]
    roles: dict[str, dict[str, Any]] = {}
    for name, template in ROLE_TEMPLATES.items():
        if name != "Global Administrator" and rng.random() < 0.2:
            continue  # never activated in this tenant
        row = {
            "id": new_id(rng),
            "displayName": name,
            "description": f"{name}: built-in Microsoft Entra role.",
            "roleTemplateId": template,
        }
        d.load_row("directoryRole", row)
        roles[name] = row
        n = 2 if name == "Global Administrator" else rng.randint(0, 5)
        for user in rng.sample(users, min(len(users), n)):
            store.link("directoryRole.members", row["id"], user["id"])
        if sps and name in ("Directory Readers", "Application Administrator", "Global Reader"):
            for sp in rng.sample(sps, min(len(sps), rng.randint(1, 2))):
                store.link("directoryRole.members", row["id"], sp["id"])
        if role_groups and rng.random() < 0.3:
            store.link("directoryRole.members", row["id"], rng.choice(role_groups)["id"])
    return roles


def _licenses(d: Directory, rng: random.Random, users: list[dict[str, Any]]) -> None:
    store = d.objects
    consumed: dict[str, int] = {sku: 0 for _, sku, _ in SKUS}
    licensed = [u for u in users if rng.random() < 0.85]
    direct: dict[str, list[str]] = {}
    inherited: dict[str, dict[str, str]] = {}  # user → SKU → licensing group
    for user in licensed:
        main = SKU_IDS["SPE_E5"] if rng.random() < 0.2 else SKU_IDS["ENTERPRISEPACK"]
        skus = [main] + (
            [SKU_IDS["EMS"]] if main != SKU_IDS["SPE_E5"] and rng.random() < 0.4 else []
        )
        user["assignedLicenses"] = [{"disabledPlans": [], "skuId": s} for s in skus]
        direct[user["id"]] = skus
    # Group-based licensing: a few static security groups carry a licence for their members.
    candidates = [
        r for _, r in d.scan("group", 0)
        if r.get("securityEnabled") and not r["groupTypes"] and not r.get("onPremisesSyncEnabled")
    ]  # fmt: skip
    for group, part in zip(
        rng.sample(candidates, min(2, len(candidates))),
        ("POWER_BI_STANDARD", "FLOW_FREE"),
        strict=False,
    ):
        sku = SKU_IDS[part]
        group["assignedLicenses"] = [{"disabledPlans": [], "skuId": sku}]
        for member in d.members_of.get(group["id"], ()):
            row = d.row("user", member)
            if row is not None:
                have = row.setdefault("assignedLicenses", [])
                if all(x["skuId"] != sku for x in have):
                    have.append({"disabledPlans": [], "skuId": sku})
                inherited.setdefault(member, {})[sku] = group["id"]
    for uid in direct.keys() | inherited.keys():
        row = d.row("user", uid)
        if row is not None:  # states say which licence is direct and which from a group
            seed_states(row, direct.get(uid, []), inherited.get(uid, {}))
    for _, row in d.scan("user", 0):
        for lic in row.get("assignedLicenses", ()):
            consumed[lic["skuId"]] += 1
    for part, sku, plans in SKUS:
        used = consumed[sku]
        store.skus.append(
            {
                "id": f"{d.tenant_id}_{sku}",
                "accountId": d.tenant_id,
                "accountName": d.domain.split(".")[0].upper(),
                "appliesTo": "User",
                "capabilityStatus": "Enabled",
                "consumedUnits": used,
                "prepaidUnits": {
                    "enabled": used + rng.randint(0, 50) + (10000 if part == "FLOW_FREE" else 0),
                    "lockedOut": 0,
                    "suspended": 0,
                    "warning": 0,
                },
                "servicePlans": [
                    {
                        "appliesTo": "User",
                        "provisioningStatus": "Success",
                        "servicePlanId": plan_id,
                        "servicePlanName": plan_name,
                    }
                    for plan_name, plan_id in plans
                ],
                "skuId": sku,
                "skuPartNumber": part,
                "subscriptionIds": [new_id(rng)],
            }
        )


def generate_objects(
    d: Directory, seed: int, applications: int, devices: int, administrative_units: int
) -> None:
    """Every kind beyond users and groups; call after users and groups are loaded."""
    rng = random.Random(f"{seed}/directory-objects")
    users = [r for _, r in d.scan("user", 0) if r.get("userType") == "Member"]
    generate_apps(d, rng, applications)
    _devices(d, rng, devices, users)
    roles = _roles(d, rng, users)
    _administrative_units(d, rng, administrative_units, users, roles)
    _licenses(d, rng, users)
    # Their own random stream: the rest of the tenant stays as it was generated before.
    generate_partner_apps(d, random.Random(f"{seed}/partner-apps"), applications)
