"""Default mail-protection objects of a new tenant that are not policy/rule pairs: quarantine
policies (the built-in ones and the global settings), DKIM signing per accepted domain, and the
Tenant Allow/Block List."""

from __future__ import annotations

from typing import Any

from agent.simulator.exchange.objects import OrgContext, settings_object, stable_guid

Objects = list[dict[str, Any]]


def quarantine_policies(ctx: OrgContext) -> Objects:
    def policy(name: str, permissions: int, esn: bool) -> dict[str, Any]:
        return settings_object(
            ctx,
            "QuarantinePolicy",
            name,
            {
                "AdminDisplayName": "",
                "EndUserQuarantinePermissionsValue": permissions,
                "ESNEnabled": esn,
                "QuarantinePolicyType": "QuarantinePolicy",
                "EndUserSpamNotificationFrequency": "04:00:00",
                "OrganizationBrandingEnabled": False,
                "IsBuiltIn": True,
            },
            container="Quarantine Tags",
        )

    global_settings = settings_object(
        ctx,
        "QuarantinePolicy",
        "DefaultGlobalTag",
        {
            "AdminDisplayName": "",
            "EndUserQuarantinePermissionsValue": 0,
            "ESNEnabled": False,
            "QuarantinePolicyType": "GlobalQuarantinePolicy",
            "EndUserSpamNotificationFrequency": "04:00:00",
            "OrganizationBrandingEnabled": False,
            "MultiLanguageSenderName": [],
            "IsBuiltIn": True,
        },
        container="Quarantine Tags",
    )
    return [
        policy("AdminOnlyAccessPolicy", 0, False),
        policy("DefaultFullAccessPolicy", 23, False),
        policy("DefaultFullAccessWithNotificationPolicy", 23, True),
        global_settings,
    ]


def dkim_configs(ctx: OrgContext) -> Objects:
    objects = []
    for domain in ctx.domains:
        initial = domain.endswith(".onmicrosoft.com")
        selector = f"selector1-{domain.replace('.', '-')}"
        objects.append(
            settings_object(
                ctx,
                "DkimSigningConfig",
                domain,
                {
                    "Domain": domain,
                    "Enabled": initial,
                    "Status": "Valid" if initial else "CnameMissing",
                    "BodyCanonicalization": "Relaxed",
                    "HeaderCanonicalization": "Relaxed",
                    "KeySize": 2048,
                    "Algorithm": "RsaSHA256",
                    "Selector1CNAME": f"{selector}._domainkey.{ctx.org_name}.r-v1.dkim.mail.microsoft",
                    "Selector2CNAME": f"{selector.replace('selector1', 'selector2')}._domainkey.{ctx.org_name}.r-v1.dkim.mail.microsoft",
                    "IsDefault": initial,
                },
                container="Dkim Signing Config",
            )
        )
    return objects


def allow_block_items(ctx: OrgContext) -> Objects:
    def item(list_type: str, value: str, action: str, notes: str) -> dict[str, Any]:
        entry_id = stable_guid(ctx.tenant_id, "TABL", list_type, value)
        return {
            "Identity": entry_id,
            "Value": value,
            "Action": action,
            "ListType": list_type,
            "ListSubType": "Tenant",
            "Notes": notes,
            "ExpirationDate": None,
            "LastModifiedDateTime": settings_object(ctx, "x", "x", {})["WhenChangedUTC"],
            "LastUsedDate": None,
            "ModifiedBy": "",
            "SubmissionID": "",
            "SysManaged": False,
        }

    return [
        item("Sender", "spam.example", "Block", "Known spam source"),
        item("Sender", "newsletter@vendor.example", "Allow", "Vendor newsletter"),
        item("Url", "*.phish.example/*", "Block", "Phishing kit"),
        item("FileHash", "a" * 64, "Block", "Malware sample"),
        item("IP", "203.0.113.7", "Block", "Spam relay"),
    ]
