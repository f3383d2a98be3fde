"""Deterministic tenant configuration: roles (tenant_roles.py), group setting templates and
settings, the organization, its domains and company branding with real PNG images. Drawn
from its own random stream after every other kind, so adding it changes nothing else."""

from __future__ import annotations

import random
import struct
import zlib
from typing import Any

from agent.simulator.graph.directory import Directory, iso
from agent.simulator.graph.generator import EPOCH, new_id
from agent.simulator.graph.tenant_roles import generate_roles
from agent.simulator.graph.tenant_store import BRANDING_STREAMS, DEFAULT_LOCALE, TenantStore

# Directory setting templates Microsoft ships in every tenant (real ids and value names).
B, S, G, N = "System.Boolean", "System.String", "System.Guid", "System.Int32"
SETTING_TEMPLATES: tuple[tuple[str, str, str, tuple[tuple[str, str, str], ...]], ...] = (
    ("62375ab9-6b52-47ed-826b-58e47e0e304b", "Group.Unified",
     ("Setting templates define the different settings that can be used for the associated "
     "ObjectSettings. This template defines settings that can be used for Unified Groups."),
     (("NewUnifiedGroupWritebackDefault", B, "true"), ("EnableMIPLabels", B, "false"),
      ("CustomBlockedWordsList", S, ""), ("EnableMSStandardBlockedWords", B, "false"),
      ("ClassificationDescriptions", S, ""), ("DefaultClassification", S, ""),
      ("PrefixSuffixNamingRequirement", S, ""), ("AllowGuestsToBeGroupOwner", B, "false"),
      ("AllowGuestsToAccessGroups", B, "true"), ("GuestUsageGuidelinesUrl", S, ""),
      ("GroupCreationAllowedGroupId", G, ""), ("AllowToAddGuests", B, "true"),
      ("UsageGuidelinesUrl", S, ""), ("ClassificationList", S, ""),
      ("EnableGroupCreation", B, "true"))),
    ("08d542b9-071f-4e16-94b0-74abb372e3d9", "Group.Unified.Guest",
     "Settings for a specific Unified Group", (("AllowToAddGuests", B, "true"),)),
    ("4bc7f740-180e-4586-adb6-38b2e9024e6b", "Application",
     "Settings for managing tenant-wide application behavior.",
     (("EnableAccessCheckForPrivilegedApplicationUpdates", B, "false"),)),
    ("5cf42378-d67d-4f36-ba46-e8b86229381d", "Password Rule Settings",
     "Settings for managing tenant-wide password rule settings.",
     (("BannedPasswordCheckOnPremisesMode", S, "Audit"),
      ("EnableBannedPasswordCheckOnPremises", B, "true"), ("EnableBannedPasswordCheck", B, "true"),
      ("LockoutDurationInSeconds", N, "60"), ("LockoutThreshold", N, "10"),
      ("BannedPasswordList", S, ""))),
    ("80661d51-be2f-4d46-9713-98a2fcaec5bc", "Prohibited Names Settings",
     "Settings for managing prohibited names for apps.",
     (("CustomBlockedSubStringsList", S, ""), ("CustomBlockedWholeWordsList", S, ""))),
    ("dffd5d46-495d-40a9-8e21-954ff55e198a", "Consent Policy Settings",
     "Settings for a tenant's consent policy.",
     (("EnableGroupSpecificConsent", B, ""), ("BlockUserConsentForRiskyApps", B, ""),
      ("EnableAdminConsentRequests", B, ""),
      ("ConstrainGroupSpecificConsentToMembersOfGroupId", S, ""))),
)  # fmt: skip
CDN = [
    "secure.aadcdn.microsoftonline-p.com",
    "aadcdn.msftauthimages.net",
    "aadcdn.msauthimages.net",
]
LOCALES = {"fr-FR": 1036, "de-DE": 1031, "ja-JP": 1041}  # locale -> LCID of its CDN path


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real (tiny) PNG: a two-colour gradient so each seed gives different bytes."""
    rows = b"".join(
        b"\x00" + bytes(c for x in range(width) for c in (rgb[0], (rgb[1] + x) % 256, rgb[2]))
        for _ in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def image_for(rng: random.Random, stream: str) -> bytes:
    if stream == "customCSS":
        return f".ext-header {{ background-color: #{rng.randrange(16**6):06x}; }}\n".encode()
    size = {"bannerLogo": (245, 36), "backgroundImage": (192, 108), "favicon": (32, 32)}
    width, height = size.get(stream, (64, 64))
    return png(width, height, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))


def set_image(
    d: Directory, store: TenantStore, locale: str, stream: str, data: bytes | None
) -> None:
    """Upload (or clear) one branding image; its relative CDN URL changes with it."""
    text = store.branding[locale]
    lcid = "0" if locale == DEFAULT_LOCALE else str(LOCALES.get(locale, 1033))
    prefix = d.tenant_id.split("-")[0]
    if data is None:
        store.images.get(locale, {}).pop(stream, None)
        text[f"{stream}RelativeUrl"] = None
    else:
        store.images.setdefault(locale, {})[stream] = data
        ts = 637_000_000_000_000_000 + zlib.crc32(data) * 1000
        segment = BRANDING_STREAMS[stream]
        text[f"{stream}RelativeUrl"] = (
            f"{prefix}-{d.domain.split('.')[0]}/logintenantbranding/{lcid}/{segment}?ts={ts}"
        )
    text["cdnList"] = list(CDN) if store.images.get(locale) else []


def _branding_text(name: str, locale: str, rng: random.Random) -> dict[str, Any]:
    greeting = {"fr-FR": "Bienvenue chez", "de-DE": "Willkommen bei", "ja-JP": "ようこそ"}
    row: dict[str, Any] = {
        "id": locale,
        "backgroundColor": f"#{rng.randrange(16**6):06X}",
        "cdnList": [],
        "customAccountResetCredentialsUrl": None,
        "customCannotAccessYourAccountText": None,
        "customCannotAccessYourAccountUrl": None,
        "customForgotMyPasswordText": None,
        "customPrivacyAndCookiesText": None,
        "customPrivacyAndCookiesUrl": None,
        "customResetItNowText": None,
        "customTermsOfUseText": None,
        "customTermsOfUseUrl": None,
        "headerBackgroundColor": None,
        "signInPageText": f"{greeting.get(locale, 'Welcome to')} {name}",
        "usernameHintText": "someone@example.com",
        "loginPageTextVisibilitySettings": {
            "hideAccountResetCredentials": False,
            "hideCannotAccessYourAccount": False,
            "hideForgotMyPassword": False,
            "hidePrivacyAndCookies": False,
            "hideResetItNow": False,
            "hideTermsOfUse": True,
        },
        "loginPageLayoutConfiguration": {
            "isFooterShown": True,
            "isHeaderShown": False,
            "layoutTemplateType": "default",
        },
        "contentCustomization": {"attributeCollection": [], "registrationCampaign": []},
    }
    for stream in BRANDING_STREAMS:
        row[f"{stream}RelativeUrl"] = None
    return row


def _settings(rng: random.Random, store: TenantStore, groups: list[dict[str, Any]]) -> None:
    for template_id, name, description, values in SETTING_TEMPLATES:
        store.setting_templates[template_id] = {
            "id": template_id,
            "deletedDateTime": None,
            "description": description,
            "displayName": name,
            "values": [
                {"name": n, "type": t, "defaultValue": v, "description": f"{n} setting."}
                for n, t, v in values
            ],
        }
    # Tenants typically configure Group.Unified (who may create M365 groups, guests, naming)
    # and often the banned-password and consent settings.
    creators = next(
        (g["id"] for g in groups if g.get("securityEnabled") and not g["groupTypes"]), ""
    )
    overrides = {
        "Group.Unified": {
            "EnableGroupCreation": "false",
            "GroupCreationAllowedGroupId": creators,
            "ClassificationList": "Public,Internal,Confidential",
            "DefaultClassification": "Internal",
            "PrefixSuffixNamingRequirement": "GRP_[Department]_[GroupName]",
            "UsageGuidelinesUrl": "https://intranet.example.com/groups-guidelines",
            "AllowGuestsToAccessGroups": "true",
        },
        "Password Rule Settings": {"BannedPasswordList": "contoso\tpassword\tsummer2024"},
        "Consent Policy Settings": {"EnableGroupSpecificConsent": "false",
                                    "BlockUserConsentForRiskyApps": "true",
                                    "EnableAdminConsentRequests": "true"},
    }  # fmt: skip
    for template_id, name, _, values in SETTING_TEMPLATES:
        if name not in overrides or (name != "Group.Unified" and rng.random() < 0.3):
            continue
        chosen = overrides[name]
        setting_id = new_id(rng)
        store.group_settings[setting_id] = {
            "id": setting_id,
            "displayName": name,
            "templateId": template_id,
            "values": [{"name": n, "value": chosen.get(n, v)} for n, _, v in values],
        }


def _organization(d: Directory, rng: random.Random, store: TenantStore, users: int) -> str:
    name = d.domain.split(".")[0].replace("-", " ").title()
    plans = sorted(
        {
            (p["servicePlanId"], p["servicePlanName"])
            for s in d.objects.skus
            for p in s["servicePlans"]
        }
    )
    store.organization = {
        "id": d.tenant_id,
        "deletedDateTime": None,
        "businessPhones": ["+1 425 555 0100"],
        "city": "Redmond",
        "country": None,
        "countryLetterCode": "US",
        "createdDateTime": iso(EPOCH - 400 * 86400),
        "defaultUsageLocation": "US",
        "displayName": name,
        "marketingNotificationEmails": [],
        "onPremisesLastSyncDateTime": iso(EPOCH + 1500 * 86400) if users > 100 else None,
        "onPremisesSyncEnabled": True if users > 100 else None,
        "partnerTenantType": None,
        "postalCode": "98052",
        "preferredLanguage": "en",
        "privacyProfile": {"contactEmail": f"privacy@{d.domain}", "statementUrl": "https://example.com/privacy"},
        "securityComplianceNotificationMails": [f"security@{d.domain}"],
        "securityComplianceNotificationPhones": [],
        "state": "WA",
        "street": "1 Microsoft Way",
        "technicalNotificationMails": [f"it-admins@{d.domain}"],
        "tenantType": "AAD",
        "mobileDeviceManagementAuthority": "intune",
        "assignedPlans": [
            {"assignedDateTime": iso(EPOCH + rng.randrange(400) * 86400), "capabilityStatus": "Enabled",
             "service": plan_name.split("_")[0].lower(), "servicePlanId": plan_id}
            for plan_id, plan_name in plans
        ],
        "provisionedPlans": [
            {"capabilityStatus": "Enabled", "provisioningStatus": "Success",
             "service": plan_name.split("_")[0].lower()}
            for _, plan_name in plans
        ],
    }  # fmt: skip
    return name


def _domains(d: Directory, rng: random.Random, store: TenantStore, name: str, users: int) -> None:
    base = name.lower().replace(" ", "")
    customs = [
        f"{base}.com",
        f"mail.{base}.com",
        f"{base}.co.uk",
        f"{base}-legacy.net",
        f"{base}.de",
    ]
    count = min(len(customs), 2 + users // 5000)

    def domain(did: str, **props: Any) -> None:
        store.domains[did] = {
            "id": did,
            "authenticationType": "Managed",
            "availabilityStatus": None,
            "isAdminManaged": True,
            "isDefault": False,
            "isInitial": False,
            "isRoot": True,
            "isVerified": True,
            "manufacturer": None,
            "model": None,
            "passwordNotificationWindowInDays": 14,
            "passwordValidityPeriodInDays": 2147483647,
            "state": None,
            "supportedServices": ["Email", "OfficeCommunicationsOnline", "Intune"],
            **props,
        }

    domain(d.domain, supportedServices=["Email", "OfficeCommunicationsOnline"], isInitial=True)
    for index, did in enumerate(customs[:count]):
        if index == 0:
            domain(did, isDefault=True)
        elif did.startswith("mail."):
            domain(did, isRoot=False, supportedServices=["Email"])
        elif rng.random() < 0.5:
            domain(did, isVerified=False, supportedServices=[])
        else:
            domain(did, authenticationType="Federated", supportedServices=["Email", "Intune"])


def _branding(d: Directory, rng: random.Random, store: TenantStore, name: str) -> None:
    store.branding[DEFAULT_LOCALE] = _branding_text(name, DEFAULT_LOCALE, rng)
    for stream in ("bannerLogo", "squareLogo", "backgroundImage", "favicon"):
        set_image(d, store, DEFAULT_LOCALE, stream, image_for(rng, stream))
    for locale in list(LOCALES)[: rng.randint(1, 2)]:
        store.branding[locale] = _branding_text(name, locale, rng)
        if locale == "fr-FR":
            set_image(d, store, locale, "bannerLogo", image_for(rng, "bannerLogo"))


def generate_tenant_config(d: Directory, seed: int, users: int) -> None:
    """Call after every other kind is loaded (it reads users, groups, AUs, roles, SKUs)."""
    rng = random.Random(f"{seed}/tenant-config")
    store = d.tenant_config
    generate_roles(d, rng, store, users)
    _settings(rng, store, [r for _, r in d.scan("group", 0)])
    name = _organization(d, rng, store, users)
    _domains(d, rng, store, name, users)
    _branding(d, rng, store, name)
