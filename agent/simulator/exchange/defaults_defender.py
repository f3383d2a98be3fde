"""Default Defender (EOP and Defender for Office 365) settings of a new tenant, per Get- cmdlet.

Built-in policies carry their documented names ("Default", "Office365 AntiPhish Default",
"Built-In Protection Policy", the built-in quarantine policies, …) and defaults.
"""

from __future__ import annotations

from typing import Any

from agent.simulator.exchange.defaults_mail import (
    allow_block_items,
    dkim_configs,
    quarantine_policies,
)
from agent.simulator.exchange.objects import OrgContext, settings_object

Objects = list[dict[str, Any]]
_RULE_SCOPE = (
    "SentTo",
    "SentToMemberOf",
    "RecipientDomainIs",
    "ExceptIfSentTo",
    "ExceptIfSentToMemberOf",
    "ExceptIfRecipientDomainIs",
)


def content_filter_policy(ctx: OrgContext, name: str, **over: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "IsDefault": name == "Default",
        "AdminDisplayName": "",
        "BulkThreshold": 7,
        "BulkSpamAction": "MoveToJmf",
        "SpamAction": "MoveToJmf",
        "HighConfidenceSpamAction": "MoveToJmf",
        "PhishSpamAction": "Quarantine",
        "HighConfidencePhishAction": "Quarantine",
        "QuarantineRetentionPeriod": 15,
        "EnableEndUserSpamNotifications": False,
        "EndUserSpamNotificationFrequency": 3,
        "AllowedSenders": [],
        "AllowedSenderDomains": [],
        "BlockedSenders": [],
        "BlockedSenderDomains": [],
        "MarkAsSpamBulkMail": "On",
        "InlineSafetyTipsEnabled": True,
        "SpamZapEnabled": True,
        "PhishZapEnabled": True,
        "SpamQuarantineTag": "DefaultFullAccessPolicy",
        "HighConfidenceSpamQuarantineTag": "DefaultFullAccessPolicy",
        "PhishQuarantineTag": "DefaultFullAccessPolicy",
        "HighConfidencePhishQuarantineTag": "AdminOnlyAccessPolicy",
        "BulkQuarantineTag": "DefaultFullAccessPolicy",
        "IncreaseScoreWithImageLinks": "Off",
        "MarkAsSpamSpfRecordHardFail": "Off",
        "LanguageBlockList": [],
        "RegionBlockList": [],
    }
    props.update(over)
    return settings_object(
        ctx, "HostedContentFilterPolicy", name, props, container="Hosted Content Filter"
    )


def outbound_spam_policy(ctx: OrgContext, name: str, **over: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "IsDefault": name == "Default",
        "AdminDisplayName": "",
        "RecipientLimitExternalPerHour": 0,
        "RecipientLimitInternalPerHour": 0,
        "RecipientLimitPerDay": 0,
        "ActionWhenThresholdReached": "BlockUserForToday",
        "AutoForwardingMode": "Automatic",
        "BccSuspiciousOutboundMail": False,
        "BccSuspiciousOutboundAdditionalRecipients": [],
        "NotifyOutboundSpam": False,
        "NotifyOutboundSpamRecipients": [],
    }
    props.update(over)
    return settings_object(
        ctx, "HostedOutboundSpamFilterPolicy", name, props, container="Hosted Outbound Spam"
    )


def malware_policy(ctx: OrgContext, name: str, **over: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "IsDefault": name == "Default",
        "AdminDisplayName": "",
        "EnableFileFilter": True,
        "FileTypes": [
            "ace",
            "ani",
            "apk",
            "app",
            "cab",
            "cmd",
            "com",
            "deb",
            "dmg",
            "exe",
            "hta",
            "img",
            "iso",
            "jar",
            "js",
            "lnk",
            "msi",
            "ps1",
            "reg",
            "scr",
            "vbs",
            "wsf",
        ],
        "FileTypeAction": "Reject",
        "ZapEnabled": True,
        "QuarantineTag": "AdminOnlyAccessPolicy",
        "EnableInternalSenderAdminNotifications": False,
        "InternalSenderAdminAddress": None,
        "EnableExternalSenderAdminNotifications": False,
        "ExternalSenderAdminAddress": None,
        "CustomNotifications": False,
    }
    props.update(over)
    return settings_object(ctx, "MalwareFilterPolicy", name, props, container="Malware Filter")


def anti_phish_policy(ctx: OrgContext, name: str, **over: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "IsDefault": name == "Office365 AntiPhish Default",
        "AdminDisplayName": "",
        "Enabled": True,
        "EnableSpoofIntelligence": True,
        "EnableUnauthenticatedSender": True,
        "EnableViaTag": True,
        "AuthenticationFailAction": "MoveToJmf",
        "HonorDmarcPolicy": True,
        "DmarcQuarantineAction": "Quarantine",
        "DmarcRejectAction": "Reject",
        "PhishThresholdLevel": 1,
        "EnableMailboxIntelligence": True,
        "EnableMailboxIntelligenceProtection": False,
        "EnableOrganizationDomainsProtection": False,
        "EnableTargetedDomainsProtection": False,
        "TargetedDomainsToProtect": [],
        "EnableTargetedUserProtection": False,
        "TargetedUsersToProtect": [],
        "TargetedUserProtectionAction": "NoAction",
        "TargetedDomainProtectionAction": "NoAction",
        "MailboxIntelligenceProtectionAction": "NoAction",
        "EnableFirstContactSafetyTips": False,
        "EnableSimilarUsersSafetyTips": False,
        "EnableSimilarDomainsSafetyTips": False,
        "EnableUnusualCharactersSafetyTips": False,
        "SpoofQuarantineTag": "DefaultFullAccessPolicy",
    }
    props.update(over)
    return settings_object(ctx, "AntiPhishPolicy", name, props, container="AntiPhish")


def safe_links_policy(ctx: OrgContext, name: str, **over: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "IsBuiltInProtection": name == "Built-In Protection Policy",
        "AdminDisplayName": "",
        "EnableSafeLinksForEmail": True,
        "EnableSafeLinksForTeams": True,
        "EnableSafeLinksForOffice": True,
        "TrackClicks": True,
        "AllowClickThrough": False,
        "ScanUrls": True,
        "EnableForInternalSenders": True,
        "DeliverMessageAfterScan": True,
        "DisableUrlRewrite": True,
        "DoNotRewriteUrls": [],
        "CustomNotificationText": None,
        "EnableOrganizationBranding": False,
    }
    props.update(over)
    return settings_object(ctx, "SafeLinksPolicy", name, props, container="SafeLinks")


def safe_attachment_policy(ctx: OrgContext, name: str, **over: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "IsBuiltInProtection": name == "Built-In Protection Policy",
        "AdminDisplayName": "",
        "Enable": True,
        "Action": "Block",
        "Redirect": False,
        "RedirectAddress": None,
        "QuarantineTag": "AdminOnlyAccessPolicy",
    }
    props.update(over)
    return settings_object(ctx, "SafeAttachmentPolicy", name, props, container="SafeAttachment")


def rule(
    ctx: OrgContext,
    cmdlet: str,
    name: str,
    policy_key: str,
    policy: str,
    priority: int,
    **over: Any,
) -> dict[str, Any]:
    props: dict[str, Any] = {
        policy_key: policy,
        "Priority": priority,
        "State": "Enabled",
        "Comments": None,
        "Description": f"If the message:\r\n\tIs sent to a member of group '{policy}'",
        "Conditions": [],
        "Exceptions": [],
        "RuleVersion": "15.0.3.0",
        **{key: None for key in _RULE_SCOPE},
    }
    props.update(over)
    return settings_object(ctx, cmdlet, name, props, container="Rules")


def defender_defaults(ctx: OrgContext) -> dict[str, Objects]:
    report_address = f"security@{ctx.domain}"
    return {
        "Get-HostedContentFilterPolicy": [
            content_filter_policy(ctx, "Default"),
            content_filter_policy(ctx, "Executives", BulkThreshold=5, SpamAction="Quarantine"),
        ],
        "Get-HostedContentFilterRule": [
            rule(
                ctx,
                "HostedContentFilterRule",
                "Executives",
                "HostedContentFilterPolicy",
                "Executives",
                0,
                SentToMemberOf=["executives"],
            )
        ],
        "Get-HostedOutboundSpamFilterPolicy": [outbound_spam_policy(ctx, "Default")],
        "Get-HostedOutboundSpamFilterRule": [],
        "Get-HostedConnectionFilterPolicy": [
            settings_object(
                ctx,
                "HostedConnectionFilterPolicy",
                "Default",
                {
                    "IsDefault": True,
                    "AdminDisplayName": "",
                    "IPAllowList": [],
                    "IPBlockList": [],
                    "EnableSafeList": False,
                    "DirectoryBasedEdgeBlockMode": "Default",
                },
                container="Hosted Connection Filter",
            )
        ],
        "Get-MalwareFilterPolicy": [malware_policy(ctx, "Default")],
        "Get-MalwareFilterRule": [],
        "Get-AntiPhishPolicy": [anti_phish_policy(ctx, "Office365 AntiPhish Default")],
        "Get-AntiPhishRule": [],
        "Get-SafeLinksPolicy": [safe_links_policy(ctx, "Built-In Protection Policy")],
        "Get-SafeLinksRule": [],
        "Get-SafeAttachmentPolicy": [safe_attachment_policy(ctx, "Built-In Protection Policy")],
        "Get-SafeAttachmentRule": [],
        "Get-AtpPolicyForO365": [
            settings_object(
                ctx,
                "AtpPolicyForO365",
                "Default",
                {
                    "EnableATPForSPOTeamsODB": False,
                    "EnableSafeDocs": False,
                    "AllowSafeDocsOpen": False,
                },
                container="Atp Policies",
            )
        ],
        "Get-ATPBuiltInProtectionRule": [
            rule(
                ctx,
                "ATPBuiltInProtectionRule",
                "ATP Built-In Protection Rule",
                "SafeAttachmentPolicy",
                "Built-In Protection Policy",
                0,
                SafeLinksPolicy="Built-In Protection Policy",
            )
        ],
        "Get-DkimSigningConfig": dkim_configs(ctx),
        "Get-EOPProtectionPolicyRule": [
            rule(
                ctx,
                "EOPProtectionPolicyRule",
                "Standard Preset Security Policy",
                "HostedContentFilterPolicy",
                "Standard Preset Security Policy",
                1,
                State="Disabled",
                AntiPhishPolicy="Standard Preset Security Policy",
                MalwareFilterPolicy="Standard Preset Security Policy",
            )
        ],
        "Get-ATPProtectionPolicyRule": [
            rule(
                ctx,
                "ATPProtectionPolicyRule",
                "Standard Preset Security Policy",
                "SafeAttachmentPolicy",
                "Standard Preset Security Policy",
                1,
                State="Disabled",
                SafeLinksPolicy="Standard Preset Security Policy",
            )
        ],
        "Get-QuarantinePolicy": quarantine_policies(ctx),
        "Get-TenantAllowBlockListItems": allow_block_items(ctx),
        "Get-ReportSubmissionPolicy": [
            settings_object(
                ctx,
                "ReportSubmissionPolicy",
                "DefaultReportSubmissionPolicy",
                {
                    "ReportJunkToCustomizedAddress": False,
                    "ReportNotJunkToCustomizedAddress": False,
                    "ReportPhishToCustomizedAddress": False,
                    "ReportJunkAddresses": [],
                    "ReportNotJunkAddresses": [],
                    "ReportPhishAddresses": [],
                    "EnableReportToMicrosoft": True,
                    "EnableThirdPartyAddress": False,
                    "EnableUserEmailNotification": False,
                    "DisableUserSubmissionOptions": False,
                    "PreSubmitMessageEnabled": False,
                    "PostSubmitMessageEnabled": False,
                },
                container="Report Submission",
            )
        ],
        "Get-ReportSubmissionRule": [
            settings_object(
                ctx,
                "ReportSubmissionRule",
                "DefaultReportSubmissionRule",
                {
                    "ReportSubmissionPolicy": "DefaultReportSubmissionPolicy",
                    "SentTo": [report_address],
                    "State": "Enabled",
                    "Priority": 0,
                    "Comments": None,
                },
                container="Rules",
            )
        ],
        "Get-ArcConfig": [
            {"Identity": "Default", "ArcTrustedSealers": ""},
        ],
        "Get-TeamsProtectionPolicy": [
            settings_object(
                ctx,
                "TeamsProtectionPolicy",
                "Teams Protection Policy",
                {
                    "ZapEnabled": True,
                    "HighConfidencePhishQuarantineTag": "AdminOnlyAccessPolicy",
                    "MalwareQuarantineTag": "AdminOnlyAccessPolicy",
                    "AdminDisplayName": "",
                },
                container="Teams Protection",
            )
        ],
        "Get-TeamsProtectionPolicyRule": [],
        "Get-ProtectionAlert": [
            settings_object(
                ctx,
                "ProtectionAlert",
                name,
                {
                    "Category": category,
                    "Severity": severity,
                    "Disabled": False,
                    "IsSystemRule": True,
                    "NotificationEnabled": True,
                    "NotifyUser": ["TenantAdmins"],
                    "AggregationType": "None",
                    "ThreatType": "Activity",
                    "Operation": [],
                    "Comment": "",
                },
                container="Alert Policies",
            )
            for name, category, severity in (
                (
                    "Email messages containing malware removed after delivery",
                    "ThreatManagement",
                    "Informational",
                ),
                ("A potentially malicious URL click was detected", "ThreatManagement", "High"),
                ("Suspicious email sending patterns detected", "ThreatManagement", "Medium"),
                ("Elevation of Exchange admin privilege", "PermissionsManagement", "Low"),
                ("Creation of forwarding/redirect rule", "ThreatManagement", "Informational"),
            )
        ],
    }
