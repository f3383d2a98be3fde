"""Default Exchange Online (non-Defender) settings of a new tenant, per Get- cmdlet.

Property names and default values follow the Get-/Set- cmdlet reference for Exchange Online;
every property the module lets Set-EbSetting change exists here with its default.
"""

from __future__ import annotations

from typing import Any

from agent.simulator.exchange.objects import OrgContext, settings_object, stable_guid

Objects = list[dict[str, Any]]


def organization_config(ctx: OrgContext) -> Objects:
    return [
        settings_object(
            ctx,
            "OrganizationConfig",
            ctx.domain,
            {
                "DisplayName": ctx.org_name.title(),
                "IsDehydrated": False,
                "AuditDisabled": False,
                "CustomerLockboxEnabled": False,
                "DefaultGroupAccessType": "Private",
                "FocusedInboxOn": True,
                "MailTipsAllTipsEnabled": True,
                "MailTipsExternalRecipientsTipsEnabled": False,
                "MailTipsGroupMetricsEnabled": True,
                "MailTipsLargeAudienceThreshold": 25,
                "MailTipsMailboxSourcedTipsEnabled": True,
                "OAuth2ClientProfileEnabled": True,
                "SendFromAliasEnabled": False,
                "SmtpActionableMessagesEnabled": True,
                "ConnectorsEnabled": True,
                "ConnectorsActionableMessagesEnabled": True,
                "OutlookMobileGCCRestrictionsEnabled": False,
                "ActivityBasedAuthenticationTimeoutEnabled": True,
                "ActivityBasedAuthenticationTimeoutInterval": "06:00:00",
                "AutoExpandingArchiveEnabled": False,
                "BookingsEnabled": True,
                "DefaultAuthenticationPolicy": None,
                "DistributionGroupNameBlockedWordsList": [],
                "DistributionGroupNamingPolicy": "",
                "EwsEnabled": None,
                "HierarchicalAddressBookRoot": None,
                "LinkPreviewEnabled": True,
                "MobileAppEducationEnabled": True,
                "OnlineMeetingsByDefaultEnabled": None,
                "PublicFoldersEnabled": "Local",
                "ReadTrackingEnabled": False,
                "VisibleMeetingUpdateProperties": "Location,AllProperties:15",
            },
            identity=ctx.domain,
            container="Microsoft Exchange",
        )
    ]


def transport_config(ctx: OrgContext) -> Objects:
    return [
        settings_object(
            ctx,
            "TransportConfig",
            "Transport Settings",
            {
                "AddressBookPolicyRoutingEnabled": False,
                "AllowLegacyTLSClients": False,
                "ClearCategories": True,
                "ConvertDisclaimerWrapperToEml": False,
                "DSNConversionMode": "UseExchangeDSNs",
                "ExternalDelayDsnEnabled": True,
                "ExternalPostmasterAddress": None,
                "HeaderPromotionModeSetting": "NoCreate",
                "InternalSMTPServers": [],
                "JournalingReportNdrTo": "<>",
                "MaxDumpsterSizePerDatabase": "18 MB (18,874,368 bytes)",
                "MaxReceiveSize": "36 MB (37,748,736 bytes)",
                "MaxRecipientEnvelopeLimit": "500",
                "MaxSendSize": "35 MB (36,700,160 bytes)",
                "MessageExpiration": "1.00:00:00",
                "ReplyAllStormBlockDurationHours": 6,
                "ReplyAllStormDetectionMinimumRecipients": 2500,
                "ReplyAllStormDetectionMinimumReplies": 10,
                "ReplyAllStormProtectionEnabled": True,
                "Rfc2231EncodingEnabled": False,
                "SmtpClientAuthenticationDisabled": True,
                "TLSReceiveDomainSecureList": [],
                "TLSSendDomainSecureList": [],
                "VoicemailJournalingEnabled": True,
            },
            identity="Transport Settings",
        )
    ]


def accepted_domains(ctx: OrgContext) -> Objects:
    return [
        settings_object(
            ctx,
            "AcceptedDomain",
            domain,
            {
                "DomainName": domain,
                "DomainType": "Authoritative",
                "Default": index == 0,
                "AuthenticationType": "Managed",
                "CatchAllRecipientID": None,
                "EmailOnly": False,
                "ExternallyManaged": False,
                "InitialDomain": domain == ctx.domain,
                "IsCoexistenceDomain": domain.endswith(".mail.onmicrosoft.com"),
                "MatchSubDomains": False,
                "OutboundOnly": False,
                "PendingRemoval": False,
                "SendingFromDomainDisabled": False,
            },
            container="Accepted Domains",
        )
        for index, domain in enumerate(ctx.domains)
    ]


def remote_domains(ctx: OrgContext) -> Objects:
    return [
        settings_object(
            ctx,
            "RemoteDomain",
            "Default",
            {
                "DomainName": "*",
                "AllowedOOFType": "External",
                "AutoForwardEnabled": True,
                "AutoReplyEnabled": True,
                "ByteEncoderTypeFor7BitCharsets": "Undefined",
                "CharacterSet": "iso-8859-1",
                "ContentType": "MimeHtmlText",
                "DeliveryReportEnabled": True,
                "DisplaySenderName": True,
                "IsInternal": False,
                "LineWrapSize": "Unlimited",
                "MeetingForwardNotificationEnabled": False,
                "NDREnabled": True,
                "NonMimeCharacterSet": "iso-8859-1",
                "TNEFEnabled": None,
                "TargetDeliveryDomain": False,
                "TrustedMailInboundEnabled": False,
                "TrustedMailOutboundEnabled": False,
                "UseSimpleDisplayName": False,
            },
            container="Internet Message Formats",
        )
    ]


def inbound_connectors(ctx: OrgContext) -> Objects:
    return [
        settings_object(
            ctx,
            "InboundConnector",
            "From partner (TLS)",
            {
                "Enabled": True,
                "Comment": "Partner relay over TLS",
                "ConnectorType": "Partner",
                "ConnectorSource": "Default",
                "SenderDomains": ["smtp:partner.example;1"],
                "SenderIPAddresses": [],
                "AssociatedAcceptedDomains": [],
                "RequireTls": True,
                "RestrictDomainsToCertificate": False,
                "RestrictDomainsToIPAddresses": False,
                "TlsSenderCertificateName": "mail.partner.example",
                "CloudServicesMailEnabled": False,
                "TreatMessagesAsInternal": False,
                "EFSkipIPs": [],
                "EFSkipLastIP": False,
                "EFSkipMailGateway": [],
                "EFTestMode": False,
                "EFUsers": [],
                "ScanAndDropRecipients": [],
                "TrustedOrganizations": [],
            },
            container="Inbound Connectors",
        )
    ]


def outbound_connectors(ctx: OrgContext) -> Objects:
    return [
        settings_object(
            ctx,
            "OutboundConnector",
            "To partner (TLS)",
            {
                "Enabled": True,
                "Comment": "Force TLS to partner",
                "ConnectorType": "Partner",
                "ConnectorSource": "Default",
                "RecipientDomains": ["partner.example"],
                "SmartHosts": [],
                "UseMXRecord": True,
                "TlsSettings": "DomainValidation",
                "TlsDomain": "partner.example",
                "IsTransportRuleScoped": False,
                "RouteAllMessagesViaOnPremises": False,
                "CloudServicesMailEnabled": False,
                "AllAcceptedDomains": False,
                "IsValidated": False,
                "LastValidationTimestamp": None,
                "SenderRewritingEnabled": False,
                "TestMode": False,
                "ValidationRecipients": [],
            },
            container="Outbound Connectors",
        )
    ]


def transport_rule(
    ctx: OrgContext, name: str, priority: int, props: dict[str, Any]
) -> dict[str, Any]:
    """One mail flow rule as Get-TransportRule shows it (New-TransportRule makes the same)."""
    base: dict[str, Any] = {
        "Priority": priority,
        "Mode": "Enforce",
        "State": "Enabled",
        "Comments": "",
        "Description": f"If the message matches the conditions of '{name}'",
        "RuleVersion": "15.0.5.6",
        "StopRuleProcessing": False,
        "SenderAddressLocation": "Header",
        "RuleErrorAction": "Ignore",
        "From": [],
        "FromMemberOf": [],
        "SentTo": [],
        "SentToMemberOf": [],
        "SenderDomainIs": [],
        "RecipientDomainIs": [],
        "SubjectContainsWords": [],
        "SubjectOrBodyContainsWords": [],
        "FromScope": None,
        "SentToScope": None,
        "PrependSubject": None,
        "SetSCL": None,
        "SetHeaderName": None,
        "SetHeaderValue": None,
        "RejectMessageReasonText": None,
        "DeleteMessage": False,
        "Quarantine": False,
        "RedirectMessageTo": [],
        "BlindCopyTo": [],
        "ApplyHtmlDisclaimerText": None,
        "ApplyHtmlDisclaimerLocation": None,
        "ApplyHtmlDisclaimerFallbackAction": None,
        "ExceptIfFrom": [],
        "ExceptIfSentTo": [],
        "ExceptIfSenderDomainIs": [],
        "ExceptIfRecipientDomainIs": [],
        "ImmutableId": stable_guid(ctx.tenant_id, "TransportRule", name, "immutable"),
    }
    base.update(props)
    return settings_object(ctx, "TransportRule", name, base, container="TransportVersioned")


def transport_rules(ctx: OrgContext) -> Objects:
    return [
        transport_rule(
            ctx,
            "External sender banner",
            0,
            {
                "FromScope": "NotInOrganization",
                "SentToScope": "InOrganization",
                "ApplyHtmlDisclaimerText": "<p>[EXTERNAL] Be careful with links and attachments.</p>",
                "ApplyHtmlDisclaimerLocation": "Prepend",
                "ApplyHtmlDisclaimerFallbackAction": "Wrap",
            },
        ),
        transport_rule(
            ctx,
            "Block executable subjects",
            1,
            {
                "SubjectContainsWords": ["invoice.exe", "payment.scr"],
                "RejectMessageReasonText": "Blocked by policy",
                "StopRuleProcessing": True,
            },
        ),
    ]


def owa_mailbox_policies(ctx: OrgContext) -> Objects:
    return [
        settings_object(
            ctx,
            "OwaMailboxPolicy",
            "OwaMailboxPolicy-Default",
            {
                "IsDefault": True,
                "AdditionalStorageProvidersAvailable": True,
                "ConditionalAccessPolicy": "Off",
                "DirectFileAccessOnPublicComputersEnabled": True,
                "DirectFileAccessOnPrivateComputersEnabled": True,
                "WacViewingOnPublicComputersEnabled": True,
                "WacViewingOnPrivateComputersEnabled": True,
                "ExternalImageProxyEnabled": True,
                "OfflineEnabledWeb": True,
                "OfflineEnabledWin": True,
                "ThirdPartyFileProvidersEnabled": False,
                "ActionForUnknownFileAndMIMETypes": "Allow",
                "AllowedFileTypes": [".rpmsg", ".xlsx", ".xlsm", ".xlsb", ".vstx", ".docx", ".pdf"],
                "BlockedFileTypes": [".settingcontent-ms", ".printerexport", ".appref-ms", ".exe"],
                "InstantMessagingEnabled": True,
                "OutlookBetaToggleEnabled": True,
                "PersonalAccountsEnabled": True,
                "SetPhotoEnabled": True,
            },
            container="OWA Mailbox Policies",
        )
    ]


def mobile_device_mailbox_policies(ctx: OrgContext) -> Objects:
    return [
        settings_object(
            ctx,
            "MobileDeviceMailboxPolicy",
            "Default",
            {
                "IsDefault": True,
                "AllowSimplePassword": True,
                "AlphanumericPasswordRequired": False,
                "PasswordEnabled": False,
                "MinPasswordLength": None,
                "MaxPasswordFailedAttempts": "Unlimited",
                "MaxInactivityTimeLock": "Unlimited",
                "PasswordExpiration": "Unlimited",
                "PasswordHistory": 0,
                "DeviceEncryptionEnabled": False,
                "RequireDeviceEncryption": False,
                "AllowNonProvisionableDevices": True,
                "AllowBluetooth": "Allow",
                "AllowCamera": True,
                "AllowHTMLEmail": True,
                "DevicePolicyRefreshInterval": "Unlimited",
                "MaxAttachmentSize": "Unlimited",
            },
            container="Mobile Mailbox Policies",
        )
    ]


def external_in_outlook(ctx: OrgContext) -> Objects:
    return [
        {
            "Identity": stable_guid(ctx.tenant_id, "ExternalInOutlook"),
            "Enabled": False,
            "AllowList": [],
        }
    ]


EXCHANGE_DEFAULTS = {
    "Get-OrganizationConfig": organization_config,
    "Get-TransportConfig": transport_config,
    "Get-AcceptedDomain": accepted_domains,
    "Get-RemoteDomain": remote_domains,
    "Get-InboundConnector": inbound_connectors,
    "Get-OutboundConnector": outbound_connectors,
    "Get-TransportRule": transport_rules,
    "Get-OwaMailboxPolicy": owa_mailbox_policies,
    "Get-MobileDeviceMailboxPolicy": mobile_device_mailbox_policies,
    "Get-ExternalInOutlook": external_in_outlook,
}
