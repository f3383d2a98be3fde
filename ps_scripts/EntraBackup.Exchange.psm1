# EntraBackup.Exchange: Exchange Online / Defender backup and restore functions run on the bridge host.
# Contract (DESIGN.md): every exported function writes exactly ONE compact JSON envelope string.
# Values only ever arrive as typed parameters / splatted hashtables; no script text is built from values.
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# Windows PowerShell 5.1 adds an ETS Count to arrays, so ConvertTo-Json may write {"value":[...],"Count":n}
# instead of [...]; dropping that type data keeps arrays arrays. PowerShell 7 does not need it.
if ($PSVersionTable.PSVersion.Major -lt 6) { Remove-TypeData -TypeName 'System.Array' -ErrorAction SilentlyContinue }

# Every cmdlet Invoke-EbCmdlet may run. Checked at run time here and statically by tests/test_ps_scripts.py.
$script:EbAllowedCmdlets = [System.Collections.Generic.HashSet[string]]::new([string[]]@(
        'Connect-ExchangeOnline', 'Connect-IPPSSession',
        'Get-DistributionGroup', 'Get-DistributionGroupMember', 'New-DistributionGroup', 'Set-DistributionGroup',
        'Remove-DistributionGroup', 'Update-DistributionGroupMember',
        'Get-OrganizationConfig', 'Get-TransportConfig', 'Get-AcceptedDomain', 'Get-RemoteDomain',
        'Get-InboundConnector', 'Get-OutboundConnector', 'Get-TransportRule',
        'Get-HostedContentFilterPolicy', 'Get-HostedContentFilterRule',
        'Get-HostedOutboundSpamFilterPolicy', 'Get-HostedOutboundSpamFilterRule',
        'Get-HostedConnectionFilterPolicy', 'Get-MalwareFilterPolicy', 'Get-MalwareFilterRule',
        'Get-AntiPhishPolicy', 'Get-AntiPhishRule', 'Get-SafeLinksPolicy', 'Get-SafeLinksRule',
        'Get-SafeAttachmentPolicy', 'Get-SafeAttachmentRule', 'Get-AtpPolicyForO365', 'Get-ATPBuiltInProtectionRule',
        'Get-DkimSigningConfig', 'Get-EOPProtectionPolicyRule', 'Get-ATPProtectionPolicyRule', 'Get-QuarantinePolicy',
        'Get-TenantAllowBlockListItems', 'Get-ReportSubmissionPolicy', 'Get-ReportSubmissionRule',
        'Get-ExternalInOutlook', 'Get-ArcConfig', 'Get-TeamsProtectionPolicy', 'Get-TeamsProtectionPolicyRule',
        'Get-ProtectionAlert', 'Get-OwaMailboxPolicy', 'Get-MobileDeviceMailboxPolicy', 'Get-RoleGroup',
        'Get-ManagementRoleAssignment', 'New-ManagementRoleAssignment', 'Set-ManagementRoleAssignment',
        'Remove-ManagementRoleAssignment',
        'Set-OrganizationConfig', 'Set-TransportConfig', 'Set-AcceptedDomain', 'Set-RemoteDomain',
        'Set-InboundConnector', 'Set-OutboundConnector', 'Set-TransportRule',
        'Set-HostedContentFilterPolicy', 'Set-HostedContentFilterRule',
        'Set-HostedOutboundSpamFilterPolicy', 'Set-HostedOutboundSpamFilterRule',
        'Set-HostedConnectionFilterPolicy', 'Set-MalwareFilterPolicy', 'Set-MalwareFilterRule',
        'Set-AntiPhishPolicy', 'Set-AntiPhishRule', 'Set-SafeLinksPolicy', 'Set-SafeLinksRule',
        'Set-SafeAttachmentPolicy', 'Set-SafeAttachmentRule', 'Set-AtpPolicyForO365',
        'Set-DkimSigningConfig', 'Set-QuarantinePolicy', 'Set-ExternalInOutlook', 'Set-ArcConfig',
        'Set-OwaMailboxPolicy', 'Set-MobileDeviceMailboxPolicy',
        'New-HostedContentFilterPolicy', 'New-HostedContentFilterRule',
        'New-HostedOutboundSpamFilterPolicy', 'New-HostedOutboundSpamFilterRule',
        'New-MalwareFilterPolicy', 'New-MalwareFilterRule', 'New-AntiPhishPolicy', 'New-AntiPhishRule',
        'New-SafeLinksPolicy', 'New-SafeLinksRule', 'New-SafeAttachmentPolicy', 'New-SafeAttachmentRule',
        'New-TransportRule', 'Remove-TransportRule',
        'Remove-HostedContentFilterPolicy', 'Remove-HostedContentFilterRule',
        'Remove-HostedOutboundSpamFilterPolicy', 'Remove-HostedOutboundSpamFilterRule',
        'Remove-MalwareFilterPolicy', 'Remove-MalwareFilterRule', 'Remove-AntiPhishPolicy', 'Remove-AntiPhishRule',
        'Remove-SafeLinksPolicy', 'Remove-SafeLinksRule', 'Remove-SafeAttachmentPolicy', 'Remove-SafeAttachmentRule',
        'New-ServicePrincipal', 'New-RoleGroup', 'Add-RoleGroupMember',
        'Set-EOPProtectionPolicyRule', 'Set-ATPProtectionPolicyRule', 'Set-ATPBuiltInProtectionRule',
        'Set-ReportSubmissionPolicy', 'Set-ReportSubmissionRule', 'Set-TeamsProtectionPolicy',
        'Set-TeamsProtectionPolicyRule', 'Set-ProtectionAlert', 'Set-RoleGroup', 'Update-RoleGroupMember',
        'New-AcceptedDomain', 'New-RemoteDomain', 'New-InboundConnector', 'New-OutboundConnector',
        'New-QuarantinePolicy', 'New-OwaMailboxPolicy', 'New-MobileDeviceMailboxPolicy', 'New-DkimSigningConfig',
        'New-ReportSubmissionPolicy', 'New-ReportSubmissionRule', 'New-TeamsProtectionPolicyRule',
        'New-ProtectionAlert', 'New-TenantAllowBlockListItems',
        'Remove-RemoteDomain', 'Remove-InboundConnector', 'Remove-OutboundConnector', 'Remove-QuarantinePolicy',
        'Remove-OwaMailboxPolicy', 'Remove-MobileDeviceMailboxPolicy', 'Remove-ProtectionAlert',
        'Remove-TeamsProtectionPolicyRule', 'Remove-TenantAllowBlockListItems',
        'Enable-TransportRule', 'Disable-TransportRule', 'Enable-HostedContentFilterRule', 'Disable-HostedContentFilterRule',
        'Enable-HostedOutboundSpamFilterRule', 'Disable-HostedOutboundSpamFilterRule',
        'Enable-MalwareFilterRule', 'Disable-MalwareFilterRule', 'Enable-AntiPhishRule', 'Disable-AntiPhishRule',
        'Enable-SafeLinksRule', 'Disable-SafeLinksRule', 'Enable-SafeAttachmentRule', 'Disable-SafeAttachmentRule',
        'Enable-EOPProtectionPolicyRule', 'Disable-EOPProtectionPolicyRule',
        'Enable-ATPProtectionPolicyRule', 'Disable-ATPProtectionPolicyRule',
        'Enable-ReportSubmissionRule', 'Disable-ReportSubmissionRule'
    ), [System.StringComparer]::OrdinalIgnoreCase)

# Cmdlets that take -ResultSize (passing it to the others is a parameter-binding error).
$script:EbResultSizeCmdlets = @('Get-DistributionGroup', 'Get-DistributionGroupMember', 'Get-TransportRule', 'Get-RoleGroup')

# Cmdlets that exist only with Defender for Office 365: a missing command there means "not licensed".
$script:EbMdoCmdlets = @(
    'Get-SafeLinksPolicy', 'Get-SafeLinksRule', 'Get-SafeAttachmentPolicy', 'Get-SafeAttachmentRule',
    'Get-AtpPolicyForO365', 'Get-ATPBuiltInProtectionRule', 'Get-ATPProtectionPolicyRule',
    'Get-TeamsProtectionPolicy', 'Get-TeamsProtectionPolicyRule',
    'Set-SafeLinksPolicy', 'Set-SafeLinksRule', 'Set-SafeAttachmentPolicy', 'Set-SafeAttachmentRule',
    'Set-AtpPolicyForO365', 'New-SafeLinksPolicy', 'New-SafeLinksRule', 'New-SafeAttachmentPolicy',
    'New-SafeAttachmentRule', 'Remove-SafeLinksPolicy', 'Remove-SafeLinksRule', 'Remove-SafeAttachmentPolicy',
    'Remove-SafeAttachmentRule', 'Set-ATPBuiltInProtectionRule', 'Set-ATPProtectionPolicyRule',
    'Enable-SafeLinksRule', 'Disable-SafeLinksRule', 'Enable-SafeAttachmentRule', 'Disable-SafeAttachmentRule',
    'Enable-ATPProtectionPolicyRule', 'Disable-ATPProtectionPolicyRule', 'Set-TeamsProtectionPolicy',
    'Set-TeamsProtectionPolicyRule', 'New-TeamsProtectionPolicyRule', 'Remove-TeamsProtectionPolicyRule'
)

# PowerShell/remoting noise dropped from exported objects: it changes per session, not per setting.
$script:EbNoiseProperties = @(
    'PSComputerName', 'RunspaceId', 'PSShowComputerName', 'PSSourceJobInstanceId', 'ObjectState',
    'OrganizationId', 'OriginatingServer', 'IsValid', 'ExchangeVersion', 'ExchangeObjectId'
)

# Exchange-only DL properties (facts section 5) plus the identity columns.
$script:EbDlProperties = @(
    'ExternalDirectoryObjectId', 'Guid', 'Identity', 'Name', 'DisplayName', 'Alias', 'WhenChangedUTC',
    'RecipientTypeDetails', 'ManagedBy', 'MemberJoinRestriction', 'MemberDepartRestriction',
    'RequireSenderAuthenticationEnabled', 'AcceptMessagesOnlyFrom', 'AcceptMessagesOnlyFromDLMembers',
    'AcceptMessagesOnlyFromSendersOrMembers', 'RejectMessagesFrom', 'RejectMessagesFromDLMembers',
    'RejectMessagesFromSendersOrMembers', 'ModerationEnabled', 'ModeratedBy', 'BypassModerationFromSendersOrMembers',
    'BypassNestedModerationEnabled', 'SendModerationNotifications', 'HiddenFromAddressListsEnabled',
    'HiddenGroupMembershipEnabled', 'EmailAddresses', 'PrimarySmtpAddress', 'WindowsEmailAddress',
    'GrantSendOnBehalfTo', 'MailTip', 'MailTipTranslations',
    'CustomAttribute1', 'CustomAttribute2', 'CustomAttribute3', 'CustomAttribute4', 'CustomAttribute5',
    'CustomAttribute6', 'CustomAttribute7', 'CustomAttribute8', 'CustomAttribute9', 'CustomAttribute10',
    'CustomAttribute11', 'CustomAttribute12', 'CustomAttribute13', 'CustomAttribute14', 'CustomAttribute15',
    'ExtensionCustomAttribute1', 'ExtensionCustomAttribute2', 'ExtensionCustomAttribute3',
    'ExtensionCustomAttribute4', 'ExtensionCustomAttribute5',
    'ReportToManagerEnabled', 'ReportToOriginatorEnabled', 'SendOofMessageToOriginatorEnabled', 'BccBlocked',
    'MaxSendSize', 'MaxReceiveSize'
)

# Keys Set-EbDistributionGroup accepts (Set-DistributionGroup parameters); identity columns are not settable.
$script:EbDlSettable = @(
    'DisplayName', 'Alias', 'Name', 'ManagedBy', 'MemberJoinRestriction', 'MemberDepartRestriction',
    'RequireSenderAuthenticationEnabled', 'AcceptMessagesOnlyFrom', 'AcceptMessagesOnlyFromDLMembers',
    'AcceptMessagesOnlyFromSendersOrMembers', 'RejectMessagesFrom', 'RejectMessagesFromDLMembers',
    'RejectMessagesFromSendersOrMembers', 'ModerationEnabled', 'ModeratedBy', 'BypassModerationFromSendersOrMembers',
    'BypassNestedModerationEnabled', 'SendModerationNotifications', 'HiddenFromAddressListsEnabled',
    'HiddenGroupMembershipEnabled', 'EmailAddresses', 'PrimarySmtpAddress', 'WindowsEmailAddress',
    'GrantSendOnBehalfTo', 'MailTip', 'MailTipTranslations',
    'CustomAttribute1', 'CustomAttribute2', 'CustomAttribute3', 'CustomAttribute4', 'CustomAttribute5',
    'CustomAttribute6', 'CustomAttribute7', 'CustomAttribute8', 'CustomAttribute9', 'CustomAttribute10',
    'CustomAttribute11', 'CustomAttribute12', 'CustomAttribute13', 'CustomAttribute14', 'CustomAttribute15',
    'ExtensionCustomAttribute1', 'ExtensionCustomAttribute2', 'ExtensionCustomAttribute3',
    'ExtensionCustomAttribute4', 'ExtensionCustomAttribute5',
    'ReportToManagerEnabled', 'ReportToOriginatorEnabled', 'SendOofMessageToOriginatorEnabled', 'BccBlocked'
)

# Per Set- cmdlet: the parameter names Set-EbSetting lets through. Anything else is refused.
$script:EbSettableByCmdlet = @{
    'Set-OrganizationConfig'             = @('AuditDisabled', 'CustomerLockboxEnabled', 'DefaultGroupAccessType', 'FocusedInboxOn', 'MailTipsAllTipsEnabled', 'MailTipsExternalRecipientsTipsEnabled', 'MailTipsGroupMetricsEnabled', 'MailTipsLargeAudienceThreshold', 'OAuth2ClientProfileEnabled', 'SendFromAliasEnabled', 'SmtpActionableMessagesEnabled', 'ConnectorsEnabled', 'OutlookMobileGCCRestrictionsEnabled')
    'Set-TransportConfig'                = @('ExternalPostmasterAddress', 'MaxSendSize', 'MaxReceiveSize', 'MaxRecipientEnvelopeLimit', 'SmtpClientAuthenticationDisabled', 'ReplyAllStormProtectionEnabled', 'ReplyAllStormDetectionMinimumRecipients', 'ReplyAllStormDetectionMinimumReplies', 'ReplyAllStormBlockDurationHours', 'ConvertDisclaimerWrapperToEml')
    'Set-AcceptedDomain'                 = @('DomainType', 'MakeDefault', 'MatchSubDomains', 'OutboundOnly')
    'Set-RemoteDomain'                   = @('AllowedOOFType', 'AutoForwardEnabled', 'AutoReplyEnabled', 'CharacterSet', 'ContentType', 'DeliveryReportEnabled', 'DisplaySenderName', 'MeetingForwardNotificationEnabled', 'NDREnabled', 'TNEFEnabled', 'TrustedMailInboundEnabled', 'TrustedMailOutboundEnabled')
    'Set-InboundConnector'               = @('Enabled', 'Comment', 'ConnectorType', 'SenderDomains', 'SenderIPAddresses', 'RequireTls', 'RestrictDomainsToCertificate', 'RestrictDomainsToIPAddresses', 'TlsSenderCertificateName', 'CloudServicesMailEnabled', 'EFSkipIPs', 'EFSkipLastIP', 'EFUsers')
    'Set-OutboundConnector'              = @('Enabled', 'Comment', 'ConnectorType', 'RecipientDomains', 'SmartHosts', 'UseMXRecord', 'TlsSettings', 'TlsDomain', 'IsTransportRuleScoped', 'RouteAllMessagesViaOnPremises', 'CloudServicesMailEnabled', 'AllAcceptedDomains')
    'Set-TransportRule'                  = @('Priority', 'Mode', 'Comments', 'State', 'From', 'FromMemberOf', 'SentTo', 'SentToMemberOf', 'SenderDomainIs', 'RecipientDomainIs', 'SubjectContainsWords', 'SubjectOrBodyContainsWords', 'FromScope', 'SentToScope', 'PrependSubject', 'SetSCL', 'SetHeaderName', 'SetHeaderValue', 'RejectMessageReasonText', 'DeleteMessage', 'Quarantine', 'RedirectMessageTo', 'BlindCopyTo', 'ApplyHtmlDisclaimerText', 'ApplyHtmlDisclaimerLocation', 'ApplyHtmlDisclaimerFallbackAction', 'StopRuleProcessing', 'ExceptIfFrom', 'ExceptIfSentTo', 'ExceptIfSenderDomainIs', 'ExceptIfRecipientDomainIs')
    'Set-HostedContentFilterPolicy'      = @('BulkThreshold', 'BulkSpamAction', 'SpamAction', 'HighConfidenceSpamAction', 'PhishSpamAction', 'HighConfidencePhishAction', 'QuarantineRetentionPeriod', 'EnableEndUserSpamNotifications', 'AllowedSenders', 'AllowedSenderDomains', 'BlockedSenders', 'BlockedSenderDomains', 'MarkAsSpamBulkMail', 'InlineSafetyTipsEnabled', 'SpamZapEnabled', 'PhishZapEnabled', 'SpamQuarantineTag', 'HighConfidenceSpamQuarantineTag', 'PhishQuarantineTag', 'HighConfidencePhishQuarantineTag', 'BulkQuarantineTag', 'AdminDisplayName')
    'Set-HostedContentFilterRule'        = @('Priority', 'Comments', 'SentTo', 'SentToMemberOf', 'RecipientDomainIs', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'Set-HostedOutboundSpamFilterPolicy' = @('RecipientLimitExternalPerHour', 'RecipientLimitInternalPerHour', 'RecipientLimitPerDay', 'ActionWhenThresholdReached', 'AutoForwardingMode', 'BccSuspiciousOutboundMail', 'BccSuspiciousOutboundAdditionalRecipients', 'NotifyOutboundSpam', 'NotifyOutboundSpamRecipients', 'AdminDisplayName')
    'Set-HostedOutboundSpamFilterRule'   = @('Priority', 'Comments', 'From', 'FromMemberOf', 'SenderDomainIs', 'ExceptIfFrom', 'ExceptIfFromMemberOf', 'ExceptIfSenderDomainIs')
    'Set-HostedConnectionFilterPolicy'   = @('IPAllowList', 'IPBlockList', 'EnableSafeList', 'AdminDisplayName')
    'Set-MalwareFilterPolicy'            = @('EnableFileFilter', 'FileTypes', 'FileTypeAction', 'ZapEnabled', 'QuarantineTag', 'EnableInternalSenderAdminNotifications', 'InternalSenderAdminAddress', 'EnableExternalSenderAdminNotifications', 'ExternalSenderAdminAddress', 'AdminDisplayName')
    'Set-MalwareFilterRule'              = @('Priority', 'Comments', 'SentTo', 'SentToMemberOf', 'RecipientDomainIs', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'Set-AntiPhishPolicy'                = @('Enabled', 'EnableSpoofIntelligence', 'EnableUnauthenticatedSender', 'EnableViaTag', 'AuthenticationFailAction', 'HonorDmarcPolicy', 'DmarcQuarantineAction', 'DmarcRejectAction', 'PhishThresholdLevel', 'EnableMailboxIntelligence', 'EnableMailboxIntelligenceProtection', 'EnableOrganizationDomainsProtection', 'EnableTargetedDomainsProtection', 'TargetedDomainsToProtect', 'EnableTargetedUserProtection', 'TargetedUsersToProtect', 'TargetedUserProtectionAction', 'TargetedDomainProtectionAction', 'MailboxIntelligenceProtectionAction', 'EnableFirstContactSafetyTips', 'EnableSimilarUsersSafetyTips', 'EnableSimilarDomainsSafetyTips', 'EnableUnusualCharactersSafetyTips', 'SpoofQuarantineTag', 'AdminDisplayName')
    'Set-AntiPhishRule'                  = @('Priority', 'Comments', 'SentTo', 'SentToMemberOf', 'RecipientDomainIs', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'Set-SafeLinksPolicy'                = @('EnableSafeLinksForEmail', 'EnableSafeLinksForTeams', 'EnableSafeLinksForOffice', 'TrackClicks', 'AllowClickThrough', 'ScanUrls', 'EnableForInternalSenders', 'DeliverMessageAfterScan', 'DisableUrlRewrite', 'DoNotRewriteUrls', 'CustomNotificationText', 'EnableOrganizationBranding', 'AdminDisplayName')
    'Set-SafeLinksRule'                  = @('Priority', 'Comments', 'SentTo', 'SentToMemberOf', 'RecipientDomainIs', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'Set-SafeAttachmentPolicy'           = @('Enable', 'Action', 'Redirect', 'RedirectAddress', 'QuarantineTag', 'AdminDisplayName')
    'Set-SafeAttachmentRule'             = @('Priority', 'Comments', 'SentTo', 'SentToMemberOf', 'RecipientDomainIs', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'Set-AtpPolicyForO365'               = @('EnableATPForSPOTeamsODB', 'EnableSafeDocs', 'AllowSafeDocsOpen')
    'Set-DkimSigningConfig'              = @('Enabled', 'BodyCanonicalization', 'HeaderCanonicalization')
    'Set-QuarantinePolicy'               = @('EndUserQuarantinePermissionsValue', 'ESNEnabled', 'AdminDisplayName', 'EndUserSpamNotificationFrequency', 'OrganizationBrandingEnabled')
    'Set-ExternalInOutlook'              = @('Enabled', 'AllowList')
    'Set-ArcConfig'                      = @('ArcTrustedSealers')
    'Set-OwaMailboxPolicy'               = @('AdditionalStorageProvidersAvailable', 'ConditionalAccessPolicy', 'DirectFileAccessOnPublicComputersEnabled', 'DirectFileAccessOnPrivateComputersEnabled', 'WacViewingOnPublicComputersEnabled', 'WacViewingOnPrivateComputersEnabled', 'ExternalImageProxyEnabled', 'OfflineEnabledWeb', 'OfflineEnabledWin', 'ThirdPartyFileProvidersEnabled', 'ActionForUnknownFileAndMIMETypes', 'AllowedFileTypes', 'BlockedFileTypes')
    'Set-MobileDeviceMailboxPolicy'      = @('AllowSimplePassword', 'AlphanumericPasswordRequired', 'PasswordEnabled', 'MinPasswordLength', 'MaxPasswordFailedAttempts', 'MaxInactivityTimeLock', 'PasswordExpiration', 'PasswordHistory', 'DeviceEncryptionEnabled', 'RequireDeviceEncryption', 'AllowNonProvisionableDevices', 'IsDefault')
    'Set-EOPProtectionPolicyRule'        = @('Priority', 'Comments', 'SentTo', 'SentToMemberOf', 'RecipientDomainIs', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'Set-ATPProtectionPolicyRule'        = @('Priority', 'Comments', 'SentTo', 'SentToMemberOf', 'RecipientDomainIs', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'Set-ATPBuiltInProtectionRule'       = @('Comments', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'Set-ReportSubmissionPolicy'         = @('EnableReportToMicrosoft', 'EnableThirdPartyAddress', 'ReportJunkToCustomizedAddress', 'ReportJunkAddresses', 'ReportNotJunkToCustomizedAddress', 'ReportNotJunkAddresses', 'ReportPhishToCustomizedAddress', 'ReportPhishAddresses', 'EnableUserEmailNotification', 'DisableUserSubmissionOptions', 'PreSubmitMessageEnabled', 'PostSubmitMessageEnabled')
    'Set-ReportSubmissionRule'           = @('Comments', 'SentTo')
    'Set-TeamsProtectionPolicy'          = @('ZapEnabled', 'HighConfidencePhishQuarantineTag', 'MalwareQuarantineTag', 'AdminDisplayName')
    'Set-TeamsProtectionPolicyRule'      = @('Comments', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'Set-ProtectionAlert'                = @('Severity', 'NotifyUser', 'Disabled', 'NotificationEnabled', 'Comment', 'AggregationType')
    # Built-in role groups: restore changes only their members (Update-EbRoleGroupMember), never these.
    'Set-RoleGroup'                      = @('Description', 'DisplayName', 'ManagedBy')
}

# Per New- cmdlet: the parameters New-EbSetting lets through (the name or domain included). What a
# New- cmdlet does not take is set right after it by the same call (its Set- cmdlet, EbSettableByCmdlet).
$script:EbNewByCmdlet = @{
    'New-AcceptedDomain'               = @('Name', 'DomainName', 'DomainType')
    'New-RemoteDomain'                 = @('Name', 'DomainName')
    'New-InboundConnector'             = @('Name', 'Enabled', 'Comment', 'ConnectorType', 'SenderDomains', 'SenderIPAddresses', 'RequireTls', 'RestrictDomainsToCertificate', 'RestrictDomainsToIPAddresses', 'TlsSenderCertificateName', 'CloudServicesMailEnabled', 'EFSkipIPs', 'EFSkipLastIP', 'EFUsers')
    'New-OutboundConnector'            = @('Name', 'Enabled', 'Comment', 'ConnectorType', 'RecipientDomains', 'SmartHosts', 'UseMXRecord', 'TlsSettings', 'TlsDomain', 'IsTransportRuleScoped', 'RouteAllMessagesViaOnPremises', 'CloudServicesMailEnabled', 'AllAcceptedDomains')
    'New-QuarantinePolicy'             = @('Name', 'EndUserQuarantinePermissionsValue', 'ESNEnabled', 'AdminDisplayName')
    'New-OwaMailboxPolicy'             = @('Name')
    'New-MobileDeviceMailboxPolicy'    = @('Name', 'AllowSimplePassword', 'AlphanumericPasswordRequired', 'PasswordEnabled', 'MinPasswordLength', 'MaxPasswordFailedAttempts', 'MaxInactivityTimeLock', 'PasswordExpiration', 'PasswordHistory', 'DeviceEncryptionEnabled', 'RequireDeviceEncryption', 'AllowNonProvisionableDevices', 'IsDefault')
    'New-DkimSigningConfig'            = @('DomainName', 'Enabled', 'BodyCanonicalization', 'HeaderCanonicalization', 'KeySize')
    'New-ReportSubmissionPolicy'       = @('EnableReportToMicrosoft', 'EnableThirdPartyAddress', 'ReportJunkToCustomizedAddress', 'ReportJunkAddresses', 'ReportNotJunkToCustomizedAddress', 'ReportNotJunkAddresses', 'ReportPhishToCustomizedAddress', 'ReportPhishAddresses', 'EnableUserEmailNotification', 'DisableUserSubmissionOptions', 'PreSubmitMessageEnabled', 'PostSubmitMessageEnabled')
    'New-ReportSubmissionRule'         = @('Name', 'ReportSubmissionPolicy', 'Comments', 'SentTo')
    'New-TeamsProtectionPolicyRule'    = @('Name', 'TeamsProtectionPolicy', 'Comments', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'New-ProtectionAlert'              = @('Name', 'Category', 'NotifyUser', 'ThreatType', 'Operation', 'Severity', 'AggregationType', 'Comment', 'Disabled', 'NotificationEnabled')
    'New-RoleGroup'                    = @('Name', 'Roles', 'Members', 'Description', 'DisplayName', 'ManagedBy')
    # A Defender policy that had no rule: created alone (with a rule: New-EbPolicyWithRule).
    'New-HostedContentFilterPolicy'      = @('Name', 'BulkThreshold', 'BulkSpamAction', 'SpamAction', 'HighConfidenceSpamAction', 'PhishSpamAction', 'HighConfidencePhishAction', 'QuarantineRetentionPeriod', 'EnableEndUserSpamNotifications', 'AllowedSenders', 'AllowedSenderDomains', 'BlockedSenders', 'BlockedSenderDomains', 'MarkAsSpamBulkMail', 'InlineSafetyTipsEnabled', 'SpamZapEnabled', 'PhishZapEnabled', 'SpamQuarantineTag', 'HighConfidenceSpamQuarantineTag', 'PhishQuarantineTag', 'HighConfidencePhishQuarantineTag', 'BulkQuarantineTag', 'AdminDisplayName')
    'New-HostedOutboundSpamFilterPolicy' = @('Name', 'RecipientLimitExternalPerHour', 'RecipientLimitInternalPerHour', 'RecipientLimitPerDay', 'ActionWhenThresholdReached', 'AutoForwardingMode', 'BccSuspiciousOutboundMail', 'BccSuspiciousOutboundAdditionalRecipients', 'NotifyOutboundSpam', 'NotifyOutboundSpamRecipients', 'AdminDisplayName')
    'New-MalwareFilterPolicy'            = @('Name', 'EnableFileFilter', 'FileTypes', 'FileTypeAction', 'ZapEnabled', 'QuarantineTag', 'EnableInternalSenderAdminNotifications', 'InternalSenderAdminAddress', 'EnableExternalSenderAdminNotifications', 'ExternalSenderAdminAddress', 'AdminDisplayName')
    'New-AntiPhishPolicy'                = @('Name', 'Enabled', 'EnableSpoofIntelligence', 'EnableUnauthenticatedSender', 'EnableViaTag', 'AuthenticationFailAction', 'HonorDmarcPolicy', 'DmarcQuarantineAction', 'DmarcRejectAction', 'PhishThresholdLevel', 'EnableMailboxIntelligence', 'EnableMailboxIntelligenceProtection', 'EnableOrganizationDomainsProtection', 'EnableTargetedDomainsProtection', 'TargetedDomainsToProtect', 'EnableTargetedUserProtection', 'TargetedUsersToProtect', 'TargetedUserProtectionAction', 'TargetedDomainProtectionAction', 'MailboxIntelligenceProtectionAction', 'EnableFirstContactSafetyTips', 'EnableSimilarUsersSafetyTips', 'EnableSimilarDomainsSafetyTips', 'EnableUnusualCharactersSafetyTips', 'SpoofQuarantineTag', 'AdminDisplayName')
    'New-SafeLinksPolicy'                = @('Name', 'EnableSafeLinksForEmail', 'EnableSafeLinksForTeams', 'EnableSafeLinksForOffice', 'TrackClicks', 'AllowClickThrough', 'ScanUrls', 'EnableForInternalSenders', 'DeliverMessageAfterScan', 'DisableUrlRewrite', 'DoNotRewriteUrls', 'CustomNotificationText', 'EnableOrganizationBranding', 'AdminDisplayName')
    'New-SafeAttachmentPolicy'           = @('Name', 'Enable', 'Action', 'Redirect', 'RedirectAddress', 'QuarantineTag', 'AdminDisplayName')
    # A Defender rule whose policy still exists: created alone, at its priority.
    'New-HostedContentFilterRule'      = @('Name', 'HostedContentFilterPolicy', 'Priority', 'Comments', 'SentTo', 'SentToMemberOf', 'RecipientDomainIs', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'New-HostedOutboundSpamFilterRule' = @('Name', 'HostedOutboundSpamFilterPolicy', 'Priority', 'Comments', 'From', 'FromMemberOf', 'SenderDomainIs', 'ExceptIfFrom', 'ExceptIfFromMemberOf', 'ExceptIfSenderDomainIs')
    'New-MalwareFilterRule'            = @('Name', 'MalwareFilterPolicy', 'Priority', 'Comments', 'SentTo', 'SentToMemberOf', 'RecipientDomainIs', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'New-AntiPhishRule'                = @('Name', 'AntiPhishPolicy', 'Priority', 'Comments', 'SentTo', 'SentToMemberOf', 'RecipientDomainIs', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'New-SafeLinksRule'                = @('Name', 'SafeLinksPolicy', 'Priority', 'Comments', 'SentTo', 'SentToMemberOf', 'RecipientDomainIs', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
    'New-SafeAttachmentRule'           = @('Name', 'SafeAttachmentPolicy', 'Priority', 'Comments', 'SentTo', 'SentToMemberOf', 'RecipientDomainIs', 'ExceptIfSentTo', 'ExceptIfSentToMemberOf', 'ExceptIfRecipientDomainIs')
}

# The recipient write scope parameters New-/Set-ManagementRoleAssignment take (one at a time; CustomResourceScope
# only for an app). New-EbRoleAssignment and Set-EbRoleAssignment refuse any other key.
$script:EbRoleAssignmentScopes = @('CustomRecipientWriteScope', 'ExclusiveRecipientWriteScope', 'RecipientOrganizationalUnitScope',
    'RecipientAdministrativeUnitScope', 'RecipientGroupScope', 'RecipientRelativeWriteScope', 'CustomResourceScope')

# New-ManagementRoleAssignment's assignee parameter -> the RoleAssigneeType values Get-ManagementRoleAssignment shows
# for it (-SecurityGroup takes a role group or a mail-enabled universal security group).
$script:EbRoleAssigneeTypes = @{
    SecurityGroup = @('RoleGroup', 'SecurityGroup'); User = @('User'); Policy = @('RoleAssignmentPolicy'); App = @('ServicePrincipal')
}

# Open paged group listings of this runspace (Export-EbDistributionGroups): cursor id -> listing, oldest
# first. A cursor lives only in the session that made it; at most this many are kept.
$script:EbGroupCursors = [ordered]@{}
$script:EbMaxGroupCursors = 4

# Policy/rule pairs New-EbPolicyWithRule can create: literal cmdlet names so the static allow-list check sees them.
$script:EbPolicyRuleFamilies = @{
    'HostedContentFilter'      = @{ Policy = 'New-HostedContentFilterPolicy'; Rule = 'New-HostedContentFilterRule'; RulePolicyParameter = 'HostedContentFilterPolicy'; PolicySet = 'Set-HostedContentFilterPolicy'; RuleSet = 'Set-HostedContentFilterRule' }
    'HostedOutboundSpamFilter' = @{ Policy = 'New-HostedOutboundSpamFilterPolicy'; Rule = 'New-HostedOutboundSpamFilterRule'; RulePolicyParameter = 'HostedOutboundSpamFilterPolicy'; PolicySet = 'Set-HostedOutboundSpamFilterPolicy'; RuleSet = 'Set-HostedOutboundSpamFilterRule' }
    'MalwareFilter'            = @{ Policy = 'New-MalwareFilterPolicy'; Rule = 'New-MalwareFilterRule'; RulePolicyParameter = 'MalwareFilterPolicy'; PolicySet = 'Set-MalwareFilterPolicy'; RuleSet = 'Set-MalwareFilterRule' }
    'AntiPhish'                = @{ Policy = 'New-AntiPhishPolicy'; Rule = 'New-AntiPhishRule'; RulePolicyParameter = 'AntiPhishPolicy'; PolicySet = 'Set-AntiPhishPolicy'; RuleSet = 'Set-AntiPhishRule' }
    'SafeLinks'                = @{ Policy = 'New-SafeLinksPolicy'; Rule = 'New-SafeLinksRule'; RulePolicyParameter = 'SafeLinksPolicy'; PolicySet = 'Set-SafeLinksPolicy'; RuleSet = 'Set-SafeLinksRule' }
    'SafeAttachment'           = @{ Policy = 'New-SafeAttachmentPolicy'; Rule = 'New-SafeAttachmentRule'; RulePolicyParameter = 'SafeAttachmentPolicy'; PolicySet = 'Set-SafeAttachmentPolicy'; RuleSet = 'Set-SafeAttachmentRule' }
}

function New-EbEnvelope {
    [CmdletBinding()]
    [OutputType([hashtable])]
    param([Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Op)
    # Lists (not arrays) so adds are cheap; ConvertTo-Json writes them as JSON arrays even with 0 or 1 element.
    return @{
        Op        = $Op
        Items     = [System.Collections.Generic.List[object]]::new()
        Errors    = [System.Collections.Generic.List[object]]::new()
        Succeeded = [System.Collections.Generic.List[string]]::new()
        Failed    = [System.Collections.Generic.List[string]]::new()
        # Continuation of a paged export (a resume token), $null when the listing is complete.
        Next      = $null
    }
}

function Get-EbErrorCategory {
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory)][System.Management.Automation.ErrorRecord]$ErrorRecord,
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Cmdlet
    )
    # EXO V3 surfaces server errors as "|Microsoft.Exchange...XxxException|message" and puts the
    # server exception type into FullyQualifiedErrorId ("[FailureCategory=Cmdlet-XxxException]"),
    # so match on type names, error id and message together.
    # AADSTS codes from MSAL often sit in the inner exception or ErrorDetails, so include those too.
    # Not the bare word 'RoleAssignment': every error of New-/Set-/Remove-ManagementRoleAssignment
    # names its cmdlet in FullyQualifiedErrorId, and a duplicate is no missing permission.
    $inner = if ($null -ne $ErrorRecord.Exception.InnerException) { $ErrorRecord.Exception.InnerException.Message } else { '' }
    $details = if ($null -ne $ErrorRecord.ErrorDetails) { $ErrorRecord.ErrorDetails.Message } else { '' }
    $text = '{0} {1} {2} {3} {4} {5}' -f $ErrorRecord.Exception.GetType().FullName, $ErrorRecord.FullyQualifiedErrorId,
    $ErrorRecord.CategoryInfo.Reason, $ErrorRecord.Exception.Message, $inner, $details
    if ($text -match 'AADSTS50076|AADSTS50079') { return 'Mfa' }
    if ($ErrorRecord.Exception -is [System.Management.Automation.CommandNotFoundException] -or
        $text -match 'is not recognized as (the|a) name of a cmdlet') {
        # EXO only exposes cmdlets the tenant is licensed for AND the caller holds a role for.
        if ($script:EbMdoCmdlets -contains $Cmdlet) { return 'NotLicensed' }
        return 'Permission'
    }
    if ($text -match 'not licensed|isn''t licensed|license (is )?required|requires a license|not available for your organization|Advanced Threat Protection|Microsoft Defender for Office 365 (is )?required') {
        return 'NotLicensed'
    }
    if ($text -match 'throttl|\(429\)|TooManyRequests|Too many requests|ServerBusy|Server Busy|MicroDelay|budget') {
        return 'Throttled'
    }
    if ($text -match 'ManagementObjectNotFound|couldn''t be found|couldn''t find|could not be found|wasn''t found|was not found|ObjectNotFound') {
        return 'NotFound'
    }
    if ($text -match 'UnauthorizedAccess|Access ?Denied|\(403\)|Forbidden|isn''t assigned to any management roles|not authorized|insufficient (access|privileges|permissions)|does not have (the )?permission|no management role assignment|AADSTS7000112|AADSTS65001|AADSTS50105') {
        return 'Permission'
    }
    return 'Other'
}

function Add-EbError {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][hashtable]$Envelope,
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Label,
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Category,
        [Parameter(Mandatory)][AllowEmptyString()][string]$Message
    )
    $Envelope.Errors.Add([ordered]@{ cmdlet = $Label; category = $Category; message = $Message })
    $Envelope.Failed.Add($Label)
}

function Invoke-EbCmdlet {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][hashtable]$Envelope,
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Name,
        [Parameter()][hashtable]$Parameters = @{},
        # Label recorded in succeeded/failed, e.g. "Get-DistributionGroupMember:<guid>".
        [Parameter()][string]$Label = ''
    )
    if ($Label -eq '') { $Label = $Name }
    if (-not $script:EbAllowedCmdlets.Contains($Name)) {
        Add-EbError -Envelope $Envelope -Label $Label -Category 'Other' -Message 'cmdlet not on the allow-list'
        return $null
    }
    try {
        # Call operator + splat: the cmdlet name is an allow-listed constant, values are bound as parameters.
        # -ErrorAction Stop explicitly: EXO cmdlets live in another module, which does not see our preference.
        $splat = @{}
        foreach ($key in $Parameters.Keys) { $splat[$key] = $Parameters[$key] }
        $splat['ErrorAction'] = 'Stop'
        $result = @(& $Name @splat)
        $Envelope.Succeeded.Add($Label)
        return , $result
    }
    catch {
        $category = Get-EbErrorCategory -ErrorRecord $_ -Cmdlet $Name
        Add-EbError -Envelope $Envelope -Label $Label -Category $category -Message $_.Exception.Message
        return $null
    }
}

function ConvertTo-EbPlain {
    [CmdletBinding()]
    param(
        [Parameter()][AllowNull()][object]$InputObject,
        [Parameter()][int]$Depth = 0
    )
    # Generic serializer: primitives as-is, dates as ISO 8601 UTC, enums/identities/Exchange value
    # types (ADObjectId, SmtpAddress, ByteQuantifiedSize, Unlimited...) via ToString, collections as arrays.
    if ($null -eq $InputObject) { return $null }
    $value = $InputObject
    if ($value -is [System.Management.Automation.PSObject]) { $value = $value.PSObject.BaseObject }
    if ($value -is [string] -or $value -is [bool] -or $value -is [int] -or $value -is [long] -or
        $value -is [double] -or $value -is [decimal] -or $value -is [single] -or $value -is [byte]) {
        return $value
    }
    if ($value -is [datetime]) { return $value.ToUniversalTime().ToString('o', [cultureinfo]::InvariantCulture) }
    if ($value -is [System.DateTimeOffset]) { return $value.UtcDateTime.ToString('o', [cultureinfo]::InvariantCulture) }
    if ($value -is [enum] -or $value -is [guid] -or $value -is [timespan]) { return $value.ToString() }
    if ($Depth -ge 8) { return [string]$value }
    if ($value -is [System.Collections.IDictionary]) {
        $map = [ordered]@{}
        foreach ($key in $value.Keys) { $map[[string]$key] = ConvertTo-EbPlain -InputObject $value[$key] -Depth ($Depth + 1) }
        return $map
    }
    if ($value -is [System.Collections.IEnumerable]) {
        $list = [System.Collections.Generic.List[object]]::new()
        foreach ($element in $value) { $list.Add((ConvertTo-EbPlain -InputObject $element -Depth ($Depth + 1))) }
        return , $list.ToArray()
    }
    if ($Depth -gt 0) {
        # Nested Exchange objects are identities or value types: their string form is the restorable value.
        return [string]$value
    }
    $map = [ordered]@{}
    foreach ($property in $InputObject.PSObject.Properties) {
        if ($script:EbNoiseProperties -contains $property.Name) { continue }
        if (@('Property', 'NoteProperty') -notcontains [string]$property.MemberType) { continue }
        $map[$property.Name] = ConvertTo-EbPlain -InputObject $property.Value -Depth ($Depth + 1)
    }
    return $map
}

function Get-EbString {
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter()][AllowNull()][object]$InputObject,
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Property
    )
    # StrictMode throws on a missing property; a result without it yields $null instead.
    if ($null -eq $InputObject) { return $null }
    $found = $InputObject.PSObject.Properties[$Property]
    if ($null -eq $found -or $null -eq $found.Value) { return $null }
    return [string]$found.Value
}

function Write-EbEnvelope {
    [CmdletBinding()]
    [OutputType([string])]
    param([Parameter(Mandatory)][hashtable]$Envelope)
    $document = [ordered]@{
        schema    = 1
        op        = $Envelope.Op
        ok        = ($Envelope.Failed.Count -eq 0)
        items     = $Envelope.Items.ToArray()
        errors    = $Envelope.Errors.ToArray()
        succeeded = $Envelope.Succeeded.ToArray()
        failed    = $Envelope.Failed.ToArray()
        next      = $Envelope.Next
    }
    # -InputObject (not the pipeline) so empty and one-element arrays stay arrays.
    return (ConvertTo-Json -InputObject $document -Depth 20 -Compress)
}

function Test-EbProperties {
    [CmdletBinding()]
    [OutputType([bool])]
    param(
        [Parameter(Mandatory)][hashtable]$Envelope,
        [Parameter(Mandatory)][string]$Label,
        [Parameter(Mandatory)][AllowEmptyCollection()][string[]]$Allowed,
        [Parameter(Mandatory)][hashtable]$Properties
    )
    # Keys become parameter names: refuse anything not on the allow-list instead of passing it on.
    $bad = @($Properties.Keys | Where-Object { $Allowed -notcontains [string]$_ })
    if ($bad.Count -gt 0) {
        Add-EbError -Envelope $Envelope -Label $Label -Category 'Other' -Message ('properties not allowed: ' + ($bad -join ', '))
        return $false
    }
    return $true
}

function Copy-EbProperties {
    [CmdletBinding()]
    [OutputType([hashtable])]
    param([Parameter(Mandatory)][hashtable]$Properties)
    # A cmdlet's parameters from properties Test-EbProperties let through (keys as strings); the
    # caller adds its own (Identity, Name, ...) after.
    $parameters = @{}
    foreach ($key in $Properties.Keys) { $parameters[[string]$key] = $Properties[$key] }
    return $parameters
}

function New-EbMemberUpdate {
    [CmdletBinding()]
    [OutputType([hashtable])]
    param(
        [Parameter(Mandatory)][string]$Identity,
        [Parameter(Mandatory)][AllowEmptyCollection()][string[]]$Members
    )
    # Update-DistributionGroupMember and Update-RoleGroupMember replace the whole list in one call;
    # $null (not an empty array) is passed to clear all members.
    $memberList = if ($Members.Count -eq 0) { $null } else { [string[]]@($Members) }
    return @{
        Identity                        = $Identity
        Members                         = $memberList
        BypassSecurityGroupManagerCheck = $true
        Confirm                         = $false
    }
}

function Connect-EbExchange {
    [CmdletBinding(DefaultParameterSetName = 'Thumbprint')]
    param(
        [Parameter(Mandatory, ParameterSetName = 'Thumbprint')]
        [Parameter(Mandatory, ParameterSetName = 'CertificateFile')]
        [ValidatePattern('^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$')]
        [string]$AppId,
        [Parameter(Mandatory, ParameterSetName = 'Thumbprint')]
        [Parameter(Mandatory, ParameterSetName = 'CertificateFile')]
        [ValidatePattern('^[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,}$')]
        [string]$Organization,
        [Parameter(Mandatory, ParameterSetName = 'Thumbprint')]
        [ValidatePattern('^[0-9a-fA-F]{40}$')]
        [string]$CertificateThumbprint,
        [Parameter(Mandatory, ParameterSetName = 'CertificateFile')]
        [ValidateNotNullOrEmpty()]
        [string]$CertificateFilePath,
        [Parameter(Mandatory, ParameterSetName = 'CertificateFile')]
        [securestring]$CertificatePassword,
        [Parameter(Mandatory, ParameterSetName = 'Credential')]
        [pscredential]$Credential,
        [Parameter()]
        [switch]$IncludeSecurityCompliance
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'connect'
    $connect = @{ ShowBanner = $false }
    if ($PSCmdlet.ParameterSetName -eq 'Credential') {
        # Service account profile: basic username/password only; MFA accounts fail with AADSTS50076/50079 ("Mfa").
        $connect['Credential'] = $Credential
    }
    else {
        $connect['AppId'] = $AppId
        $connect['Organization'] = $Organization
        if ($PSCmdlet.ParameterSetName -eq 'Thumbprint') { $connect['CertificateThumbprint'] = $CertificateThumbprint }
        else {
            $connect['CertificateFilePath'] = $CertificateFilePath
            $connect['CertificatePassword'] = $CertificatePassword
        }
    }
    $null = Invoke-EbCmdlet -Envelope $envelope -Name 'Connect-ExchangeOnline' -Parameters $connect
    if ($IncludeSecurityCompliance -and $envelope.Failed.Count -eq 0) {
        $ipps = @{}
        foreach ($key in $connect.Keys) { if ($key -ne 'ShowBanner') { $ipps[$key] = $connect[$key] } }
        $null = Invoke-EbCmdlet -Envelope $envelope -Name 'Connect-IPPSSession' -Parameters $ipps
    }
    Write-EbEnvelope -Envelope $envelope
}

function Export-EbDistributionGroups {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)]
        [ValidateSet('MailUniversalDistributionGroup', 'MailUniversalSecurityGroup')]
        [string]$RecipientTypeDetails,
        [Parameter()]
        [datetime]$ChangedSinceUtc,
        [Parameter()]
        [switch]$IncludeMembers,
        # Groups per page: members are read only for the groups of the page being written.
        [Parameter()]
        [ValidateRange(1, 1000)]
        [int]$PageSize = 100,
        # The previous page's envelope "next" (cursor id:offset); absent for the first page.
        [Parameter()]
        [ValidatePattern('^[0-9a-f]{32}:[0-9]{1,9}$')]
        [string]$ResumeToken
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'exportDistributionGroups'
    $cursor = $null
    $cursorId = ''
    $offset = 0
    if ($PSBoundParameters.ContainsKey('ResumeToken')) {
        $parts = $ResumeToken.Split(':')
        $cursorId = $parts[0]
        $offset = [int]$parts[1]
        if ($script:EbGroupCursors.Contains($cursorId)) { $cursor = $script:EbGroupCursors[$cursorId] }
        if ($null -eq $cursor -or $cursor.RecipientTypeDetails -ne $RecipientTypeDetails -or $offset -gt $cursor.Groups.Count) {
            # The listing lives in the runspace that made it: a new session (the host dropped the
            # shell) or an evicted cursor cannot continue it.
            Add-EbError -Envelope $envelope -Label 'ResumeToken' -Category 'NotFound' `
                -Message 'The resume token is not known to this session; start the listing again.'
            $cursor = $null
        }
    }
    else {
        $query = @{ RecipientTypeDetails = $RecipientTypeDetails; ResultSize = 'Unlimited' }
        if ($PSBoundParameters.ContainsKey('ChangedSinceUtc')) {
            # The only string-built filter: from a typed [datetime], formatted invariantly (en-US style
            # is what OPATH parses regardless of server culture); an unspecified Kind is taken as UTC.
            $utc = $ChangedSinceUtc
            if ($utc.Kind -eq [System.DateTimeKind]::Unspecified) { $utc = [datetime]::SpecifyKind($utc, [System.DateTimeKind]::Utc) }
            $stamp = $utc.ToUniversalTime().ToString('MM/dd/yyyy HH:mm:ss', [cultureinfo]::InvariantCulture)
            $query['Filter'] = "WhenChangedUTC -gt '$stamp'"
        }
        $groups = Invoke-EbCmdlet -Envelope $envelope -Name 'Get-DistributionGroup' -Parameters $query
        if ($null -ne $groups) {
            # The listing is read once and kept in this runspace as plain items (without members);
            # later pages come from it, so the agent holds one page at a time.
            $items = [System.Collections.Generic.List[object]]::new()
            foreach ($group in $groups) {
                $item = [ordered]@{}
                foreach ($name in $script:EbDlProperties) {
                    $property = $group.PSObject.Properties[$name]
                    # Plain if/else (not an if-expression) so a returned array is not unrolled.
                    $item[$name] = $null
                    if ($null -ne $property) { $item[$name] = ConvertTo-EbPlain -InputObject $property.Value -Depth 1 }
                }
                $items.Add($item)
            }
            $cursorId = [guid]::NewGuid().ToString('N')
            $cursor = @{ RecipientTypeDetails = $RecipientTypeDetails; Groups = $items }
            # At most EbMaxGroupCursors listings per session, oldest evicted first.
            while ($script:EbGroupCursors.Count -ge $script:EbMaxGroupCursors) { $script:EbGroupCursors.RemoveAt(0) }
            $script:EbGroupCursors[$cursorId] = $cursor
        }
    }
    if ($null -ne $cursor) {
        $end = [System.Math]::Min($offset + $PageSize, $cursor.Groups.Count)
        for ($index = $offset; $index -lt $end; $index++) {
            $source = $cursor.Groups[$index]
            $item = [ordered]@{}
            foreach ($key in $source.Keys) { $item[$key] = $source[$key] }
            if ($IncludeMembers) {
                $groupId = [string]$source['Guid']
                $members = Invoke-EbCmdlet -Envelope $envelope -Name 'Get-DistributionGroupMember' `
                    -Parameters @{ Identity = $groupId; ResultSize = 'Unlimited' } -Label ('Get-DistributionGroupMember:' + $groupId)
                $memberItems = [System.Collections.Generic.List[object]]::new()
                if ($null -ne $members) {
                    foreach ($member in $members) {
                        $memberItems.Add([ordered]@{
                                ExternalDirectoryObjectId = Get-EbString -InputObject $member -Property 'ExternalDirectoryObjectId'
                                PrimarySmtpAddress        = Get-EbString -InputObject $member -Property 'PrimarySmtpAddress'
                                RecipientTypeDetails      = Get-EbString -InputObject $member -Property 'RecipientTypeDetails'
                            })
                    }
                    $item['Members'] = $memberItems.ToArray()
                }
                else {
                    # null (not []) marks "members unknown" so the agent never mistakes a failure for an empty group.
                    $item['Members'] = $null
                }
            }
            $envelope.Items.Add($item)
        }
        # The same token gives the same page again (a retried read), the last one too: a listing
        # stays until its session ends or newer listings evict it.
        if ($end -lt $cursor.Groups.Count) { $envelope.Next = $cursorId + ':' + $end }
    }
    Write-EbEnvelope -Envelope $envelope
}

function Export-EbSettings {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)]
        [ValidateSet('Get-OrganizationConfig', 'Get-TransportConfig', 'Get-AcceptedDomain', 'Get-RemoteDomain',
            'Get-InboundConnector', 'Get-OutboundConnector', 'Get-TransportRule',
            'Get-HostedContentFilterPolicy', 'Get-HostedContentFilterRule',
            'Get-HostedOutboundSpamFilterPolicy', 'Get-HostedOutboundSpamFilterRule',
            'Get-HostedConnectionFilterPolicy', 'Get-MalwareFilterPolicy', 'Get-MalwareFilterRule',
            'Get-AntiPhishPolicy', 'Get-AntiPhishRule', 'Get-SafeLinksPolicy', 'Get-SafeLinksRule',
            'Get-SafeAttachmentPolicy', 'Get-SafeAttachmentRule', 'Get-AtpPolicyForO365', 'Get-ATPBuiltInProtectionRule',
            'Get-DkimSigningConfig', 'Get-EOPProtectionPolicyRule', 'Get-ATPProtectionPolicyRule', 'Get-QuarantinePolicy',
            'Get-TenantAllowBlockListItems', 'Get-ReportSubmissionPolicy', 'Get-ReportSubmissionRule',
            'Get-ExternalInOutlook', 'Get-ArcConfig', 'Get-TeamsProtectionPolicy', 'Get-TeamsProtectionPolicyRule',
            'Get-ProtectionAlert', 'Get-OwaMailboxPolicy', 'Get-MobileDeviceMailboxPolicy', 'Get-RoleGroup',
            'Get-ManagementRoleAssignment')]
        [string[]]$Cmdlet
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'exportSettings'
    foreach ($name in $Cmdlet) {
        $calls = [System.Collections.Generic.List[hashtable]]::new()
        if ($name -eq 'Get-TenantAllowBlockListItems') {
            # -ListType is mandatory; one call (and one group of items) per list type.
            foreach ($listType in @('Sender', 'Url', 'FileHash', 'IP')) { $calls.Add(@{ ListType = $listType }) }
        }
        else {
            $calls.Add(@{ ListType = $null })
        }
        foreach ($call in $calls) {
            $parameters = @{}
            $label = $name
            if ($null -ne $call.ListType) {
                $parameters['ListType'] = $call.ListType
                $label = $name + ':' + $call.ListType
            }
            if ($script:EbResultSizeCmdlets -contains $name) { $parameters['ResultSize'] = 'Unlimited' }
            $objects = Invoke-EbCmdlet -Envelope $envelope -Name $name -Parameters $parameters -Label $label
            if ($null -eq $objects) { continue }
            $plain = [System.Collections.Generic.List[object]]::new()
            foreach ($object in $objects) { $plain.Add((ConvertTo-EbPlain -InputObject $object)) }
            $envelope.Items.Add([ordered]@{ cmdlet = $name; listType = $call.ListType; objects = $plain.ToArray() })
        }
    }
    Write-EbEnvelope -Envelope $envelope
}

function New-EbDistributionGroup {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Name,
        [Parameter(Mandatory)][ValidateSet('Distribution', 'Security')][string]$Type,
        [Parameter()][ValidateNotNullOrEmpty()][string]$Alias,
        [Parameter()][ValidateNotNullOrEmpty()][string]$DisplayName,
        [Parameter()][ValidateNotNullOrEmpty()][string]$PrimarySmtpAddress,
        [Parameter()][string[]]$ManagedBy,
        [Parameter()][string[]]$Members,
        [Parameter()][bool]$HiddenGroupMembershipEnabled
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'newDistributionGroup'
    $parameters = @{ Name = $Name; Type = $Type }
    foreach ($key in @('Alias', 'DisplayName', 'PrimarySmtpAddress', 'ManagedBy', 'Members', 'HiddenGroupMembershipEnabled')) {
        if ($PSBoundParameters.ContainsKey($key)) { $parameters[$key] = $PSBoundParameters[$key] }
    }
    $created = Invoke-EbCmdlet -Envelope $envelope -Name 'New-DistributionGroup' -Parameters $parameters
    if ($null -ne $created) {
        foreach ($group in $created) {
            $envelope.Items.Add([ordered]@{
                    Guid                      = Get-EbString -InputObject $group -Property 'Guid'
                    ExternalDirectoryObjectId = Get-EbString -InputObject $group -Property 'ExternalDirectoryObjectId'
                    Identity                  = Get-EbString -InputObject $group -Property 'Identity'
                    PrimarySmtpAddress        = Get-EbString -InputObject $group -Property 'PrimarySmtpAddress'
                })
        }
    }
    Write-EbEnvelope -Envelope $envelope
}

function Set-EbDistributionGroup {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Identity,
        [Parameter(Mandatory)][ValidateNotNull()][hashtable]$Properties
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'setDistributionGroup'
    if (Test-EbProperties -Envelope $envelope -Label 'Set-DistributionGroup' -Allowed $script:EbDlSettable -Properties $Properties) {
        $parameters = Copy-EbProperties -Properties $Properties
        $parameters['Identity'] = $Identity
        # Needed for mail-enabled security groups the app does not own.
        $parameters['BypassSecurityGroupManagerCheck'] = $true
        $null = Invoke-EbCmdlet -Envelope $envelope -Name 'Set-DistributionGroup' -Parameters $parameters
    }
    Write-EbEnvelope -Envelope $envelope
}

function Sync-EbDistributionGroupMember {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Identity,
        [Parameter(Mandatory)][AllowEmptyCollection()][string[]]$Members
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'syncDistributionGroupMember'
    $parameters = New-EbMemberUpdate -Identity $Identity -Members $Members
    $null = Invoke-EbCmdlet -Envelope $envelope -Name 'Update-DistributionGroupMember' -Parameters $parameters
    Write-EbEnvelope -Envelope $envelope
}

function Remove-EbDistributionGroup {
    [CmdletBinding()]
    param([Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Identity)
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'removeDistributionGroup'
    $parameters = @{ Identity = $Identity; BypassSecurityGroupManagerCheck = $true; Confirm = $false }
    $null = Invoke-EbCmdlet -Envelope $envelope -Name 'Remove-DistributionGroup' -Parameters $parameters
    Write-EbEnvelope -Envelope $envelope
}

function Set-EbSetting {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)]
        [ValidateSet('Set-OrganizationConfig', 'Set-TransportConfig', 'Set-AcceptedDomain', 'Set-RemoteDomain',
            'Set-InboundConnector', 'Set-OutboundConnector', 'Set-TransportRule',
            'Set-HostedContentFilterPolicy', 'Set-HostedContentFilterRule',
            'Set-HostedOutboundSpamFilterPolicy', 'Set-HostedOutboundSpamFilterRule',
            'Set-HostedConnectionFilterPolicy', 'Set-MalwareFilterPolicy', 'Set-MalwareFilterRule',
            'Set-AntiPhishPolicy', 'Set-AntiPhishRule', 'Set-SafeLinksPolicy', 'Set-SafeLinksRule',
            'Set-SafeAttachmentPolicy', 'Set-SafeAttachmentRule', 'Set-AtpPolicyForO365',
            'Set-DkimSigningConfig', 'Set-QuarantinePolicy', 'Set-ExternalInOutlook', 'Set-ArcConfig',
            'Set-OwaMailboxPolicy', 'Set-MobileDeviceMailboxPolicy', 'Set-EOPProtectionPolicyRule',
            'Set-ATPProtectionPolicyRule', 'Set-ATPBuiltInProtectionRule', 'Set-ReportSubmissionPolicy',
            'Set-ReportSubmissionRule', 'Set-TeamsProtectionPolicy', 'Set-TeamsProtectionPolicyRule',
            'Set-ProtectionAlert', 'Set-RoleGroup')]
        [string]$Cmdlet,
        # Omitted for singletons (Set-OrganizationConfig, Set-TransportConfig).
        [Parameter()][ValidateNotNullOrEmpty()][string]$Identity,
        [Parameter(Mandatory)][ValidateNotNull()][hashtable]$Properties
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'setSetting'
    $allowed = [string[]]$script:EbSettableByCmdlet[$Cmdlet]
    if (Test-EbProperties -Envelope $envelope -Label $Cmdlet -Allowed $allowed -Properties $Properties) {
        $parameters = Copy-EbProperties -Properties $Properties
        if ($PSBoundParameters.ContainsKey('Identity')) { $parameters['Identity'] = $Identity }
        # Role groups the app does not manage (ManagedBy): the switch needs Role Management.
        if ($Cmdlet -eq 'Set-RoleGroup') { $parameters['BypassSecurityGroupManagerCheck'] = $true }
        $null = Invoke-EbCmdlet -Envelope $envelope -Name $Cmdlet -Parameters $parameters
    }
    Write-EbEnvelope -Envelope $envelope
}

function New-EbPolicyWithRule {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)]
        [ValidateSet('HostedContentFilter', 'HostedOutboundSpamFilter', 'MalwareFilter', 'AntiPhish', 'SafeLinks', 'SafeAttachment')]
        [string]$Family,
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Name,
        # The rule's own name (restore keeps the one it had); the policy's name when omitted.
        [Parameter()][ValidateNotNullOrEmpty()][string]$RuleName,
        [Parameter()][ValidateNotNull()][hashtable]$PolicyProperties = @{},
        [Parameter()][ValidateNotNull()][hashtable]$RuleProperties = @{},
        [Parameter(Mandatory)][ValidateRange(0, 1000)][int]$Priority
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'newPolicyWithRule'
    $spec = $script:EbPolicyRuleFamilies[$Family]
    # New- accepts the same settable parameters as Set-; Priority comes from its own typed parameter.
    $ruleAllowed = @([string[]]$script:EbSettableByCmdlet[$spec.RuleSet] | Where-Object { $_ -ne 'Priority' })
    $policyOk = Test-EbProperties -Envelope $envelope -Label $spec.Policy -Allowed ([string[]]$script:EbSettableByCmdlet[$spec.PolicySet]) -Properties $PolicyProperties
    $ruleOk = Test-EbProperties -Envelope $envelope -Label $spec.Rule -Allowed ([string[]]$ruleAllowed) -Properties $RuleProperties
    if ($policyOk -and $ruleOk) {
        $policyParameters = Copy-EbProperties -Properties $PolicyProperties
        $policyParameters['Name'] = $Name
        $policy = Invoke-EbCmdlet -Envelope $envelope -Name $spec.Policy -Parameters $policyParameters
        if ($null -ne $policy) {
            $ruleParameters = Copy-EbProperties -Properties $RuleProperties
            $ruleParameters['Name'] = $Name
            if ($PSBoundParameters.ContainsKey('RuleName')) { $ruleParameters['Name'] = $RuleName }
            $ruleParameters[$spec.RulePolicyParameter] = $Name
            $ruleParameters['Priority'] = $Priority
            $rule = Invoke-EbCmdlet -Envelope $envelope -Name $spec.Rule -Parameters $ruleParameters
            $envelope.Items.Add([ordered]@{
                    family   = $Family
                    policy   = Get-EbString -InputObject ($policy | Select-Object -First 1) -Property 'Identity'
                    rule     = Get-EbString -InputObject ($rule | Select-Object -First 1) -Property 'Identity'
                    priority = $Priority
                })
        }
    }
    Write-EbEnvelope -Envelope $envelope
}

function New-EbTransportRule {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Name,
        [Parameter(Mandatory)][ValidateRange(0, 1000)][int]$Priority,
        [Parameter()][ValidateNotNull()][hashtable]$Properties = @{}
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'newTransportRule'
    # New-TransportRule takes the conditions and actions Set-TransportRule takes; Priority comes from its own typed parameter.
    $allowed = @([string[]]$script:EbSettableByCmdlet['Set-TransportRule'] | Where-Object { $_ -ne 'Priority' })
    if (Test-EbProperties -Envelope $envelope -Label 'New-TransportRule' -Allowed ([string[]]$allowed) -Properties $Properties) {
        $parameters = Copy-EbProperties -Properties $Properties
        $parameters['Name'] = $Name
        $parameters['Priority'] = $Priority
        $rule = Invoke-EbCmdlet -Envelope $envelope -Name 'New-TransportRule' -Parameters $parameters
        if ($null -ne $rule) {
            $envelope.Items.Add([ordered]@{
                    rule     = Get-EbString -InputObject ($rule | Select-Object -First 1) -Property 'Identity'
                    priority = $Priority
                })
        }
    }
    Write-EbEnvelope -Envelope $envelope
}

function Remove-EbSetting {
    [CmdletBinding()]
    param(
        # Policies and rules restore may remove (--prune: created after the snapshot). A policy's rules go first.
        [Parameter(Mandatory)]
        [ValidateSet('Remove-TransportRule', 'Remove-HostedContentFilterPolicy', 'Remove-HostedContentFilterRule',
            'Remove-HostedOutboundSpamFilterPolicy', 'Remove-HostedOutboundSpamFilterRule',
            'Remove-MalwareFilterPolicy', 'Remove-MalwareFilterRule', 'Remove-AntiPhishPolicy', 'Remove-AntiPhishRule',
            'Remove-SafeLinksPolicy', 'Remove-SafeLinksRule', 'Remove-SafeAttachmentPolicy', 'Remove-SafeAttachmentRule',
            'Remove-RemoteDomain', 'Remove-InboundConnector', 'Remove-OutboundConnector', 'Remove-QuarantinePolicy',
            'Remove-OwaMailboxPolicy', 'Remove-MobileDeviceMailboxPolicy', 'Remove-ProtectionAlert',
            'Remove-TeamsProtectionPolicyRule', 'Remove-ManagementRoleAssignment')]
        [string]$Cmdlet,
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Identity
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'removeSetting'
    $null = Invoke-EbCmdlet -Envelope $envelope -Name $Cmdlet -Parameters @{ Identity = $Identity; Confirm = $false }
    Write-EbEnvelope -Envelope $envelope
}

function New-EbSetting {
    [CmdletBinding()]
    param(
        # Settings objects restore creates again when they are gone (policies with rules: New-EbPolicyWithRule).
        [Parameter(Mandatory)]
        [ValidateSet('New-AcceptedDomain', 'New-RemoteDomain', 'New-InboundConnector', 'New-OutboundConnector',
            'New-QuarantinePolicy', 'New-OwaMailboxPolicy', 'New-MobileDeviceMailboxPolicy', 'New-DkimSigningConfig',
            'New-ReportSubmissionPolicy', 'New-ReportSubmissionRule', 'New-TeamsProtectionPolicyRule',
            'New-ProtectionAlert', 'New-RoleGroup', 'New-HostedContentFilterRule', 'New-HostedOutboundSpamFilterRule',
            'New-MalwareFilterRule', 'New-AntiPhishRule', 'New-SafeLinksRule', 'New-SafeAttachmentRule',
            'New-HostedContentFilterPolicy', 'New-HostedOutboundSpamFilterPolicy', 'New-MalwareFilterPolicy',
            'New-AntiPhishPolicy', 'New-SafeLinksPolicy', 'New-SafeAttachmentPolicy')]
        [string]$Cmdlet,
        [Parameter(Mandatory)][ValidateNotNull()][hashtable]$Properties,
        # Set-<noun> on the created object, in the same call: what New- does not take (DKIM: enabling it).
        [Parameter()][ValidateNotNull()][hashtable]$SetProperties = @{}
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'newSetting'
    $setCmdlet = 'Set-' + $Cmdlet.Substring(4)
    $setAllowed = @()
    if ($script:EbSettableByCmdlet.ContainsKey($setCmdlet)) { $setAllowed = [string[]]$script:EbSettableByCmdlet[$setCmdlet] }
    $newOk = Test-EbProperties -Envelope $envelope -Label $Cmdlet -Allowed ([string[]]$script:EbNewByCmdlet[$Cmdlet]) -Properties $Properties
    $setOk = Test-EbProperties -Envelope $envelope -Label $setCmdlet -Allowed ([string[]]$setAllowed) -Properties $SetProperties
    if ($newOk -and $setOk) {
        $parameters = Copy-EbProperties -Properties $Properties
        $created = Invoke-EbCmdlet -Envelope $envelope -Name $Cmdlet -Parameters $parameters
        if ($null -ne $created) {
            $identity = Get-EbString -InputObject ($created | Select-Object -First 1) -Property 'Identity'
            if ($SetProperties.Count -gt 0) {
                $setParameters = Copy-EbProperties -Properties $SetProperties
                $setParameters['Identity'] = $identity
                $null = Invoke-EbCmdlet -Envelope $envelope -Name $setCmdlet -Parameters $setParameters
            }
            $envelope.Items.Add([ordered]@{ cmdlet = $Cmdlet; identity = $identity })
        }
    }
    Write-EbEnvelope -Envelope $envelope
}

function Set-EbRuleState {
    [CmdletBinding()]
    param(
        # A rule's State is switched by its Enable-/Disable- cmdlet, never by Set-.
        [Parameter(Mandatory)]
        [ValidateSet('Enable-TransportRule', 'Disable-TransportRule', 'Enable-HostedContentFilterRule',
            'Disable-HostedContentFilterRule', 'Enable-HostedOutboundSpamFilterRule', 'Disable-HostedOutboundSpamFilterRule',
            'Enable-MalwareFilterRule', 'Disable-MalwareFilterRule', 'Enable-AntiPhishRule', 'Disable-AntiPhishRule',
            'Enable-SafeLinksRule', 'Disable-SafeLinksRule', 'Enable-SafeAttachmentRule', 'Disable-SafeAttachmentRule',
            'Enable-EOPProtectionPolicyRule', 'Disable-EOPProtectionPolicyRule', 'Enable-ATPProtectionPolicyRule',
            'Disable-ATPProtectionPolicyRule', 'Enable-ReportSubmissionRule', 'Disable-ReportSubmissionRule')]
        [string]$Cmdlet,
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Identity
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'setRuleState'
    $null = Invoke-EbCmdlet -Envelope $envelope -Name $Cmdlet -Parameters @{ Identity = $Identity; Confirm = $false }
    Write-EbEnvelope -Envelope $envelope
}

function Update-EbRoleGroupMember {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Identity,
        [Parameter(Mandatory)][AllowEmptyCollection()][string[]]$Members
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'updateRoleGroupMember'
    $parameters = New-EbMemberUpdate -Identity $Identity -Members $Members
    $null = Invoke-EbCmdlet -Envelope $envelope -Name 'Update-RoleGroupMember' -Parameters $parameters
    Write-EbEnvelope -Envelope $envelope
}

function New-EbRoleAssignment {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Role,
        # Which New-ManagementRoleAssignment parameter names the assignee.
        [Parameter(Mandatory)][ValidateSet('SecurityGroup', 'User', 'Policy', 'App')][string]$AssigneeType,
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Assignee,
        # The name it had; Exchange names it <role>-<assignee> when omitted.
        [Parameter()][ValidateNotNullOrEmpty()][string]$Name,
        [Parameter()][switch]$Delegating,
        # At most one recipient write scope (EbRoleAssignmentScopes), as it was.
        [Parameter()][ValidateNotNull()][hashtable]$Scope = @{},
        [Parameter()][bool]$Enabled = $true
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'newRoleAssignment'
    if (Test-EbProperties -Envelope $envelope -Label 'New-ManagementRoleAssignment' -Allowed $script:EbRoleAssignmentScopes -Properties $Scope) {
        # The assignee may hold the role again already (its role group was recreated with its roles, or the
        # role was given back to the group): that assignment is set as it was, never made twice.
        $query = @{ Role = $Role; RoleAssignee = $Assignee; Delegating = $Delegating.IsPresent }
        $found = Invoke-EbCmdlet -Envelope $envelope -Name 'Get-ManagementRoleAssignment' -Parameters $query
        if ($null -ne $found) {
            $existing = $null
            foreach ($candidate in $found) {
                if ([string[]]$script:EbRoleAssigneeTypes[$AssigneeType] -notcontains (Get-EbString -InputObject $candidate -Property 'RoleAssigneeType')) { continue }
                if ($null -eq $existing) { $existing = $candidate }
                if ($PSBoundParameters.ContainsKey('Name') -and (Get-EbString -InputObject $candidate -Property 'Name') -eq $Name) { $existing = $candidate }
            }
            $created = $false
            $settings = @{}
            if ($null -eq $existing) {
                $parameters = @{ Role = $Role }
                $parameters[$AssigneeType] = $Assignee
                if ($PSBoundParameters.ContainsKey('Name')) { $parameters['Name'] = $Name }
                if ($Delegating) { $parameters['Delegating'] = $true }
                foreach ($key in $Scope.Keys) { $parameters[[string]$key] = $Scope[$key] }
                $made = Invoke-EbCmdlet -Envelope $envelope -Name 'New-ManagementRoleAssignment' -Parameters $parameters
                if ($null -ne $made) { $existing = $made | Select-Object -First 1; $created = $true }
                # New- makes it enabled: a disabled one is disabled right after.
                if (-not $Enabled) { $settings['Enabled'] = $false }
            }
            else {
                foreach ($key in $Scope.Keys) { $settings[[string]$key] = $Scope[$key] }
                $settings['Enabled'] = $Enabled
            }
            if ($null -ne $existing) {
                $identity = Get-EbString -InputObject $existing -Property 'Identity'
                if ($settings.Count -gt 0) {
                    $settings['Identity'] = $identity
                    $null = Invoke-EbCmdlet -Envelope $envelope -Name 'Set-ManagementRoleAssignment' -Parameters $settings
                }
                $envelope.Items.Add([ordered]@{ identity = $identity; created = $created })
            }
        }
    }
    Write-EbEnvelope -Envelope $envelope
}

function Set-EbRoleAssignment {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Identity,
        [Parameter()][bool]$Enabled,
        [Parameter()][ValidateNotNull()][hashtable]$Scope = @{}
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'setRoleAssignment'
    if (Test-EbProperties -Envelope $envelope -Label 'Set-ManagementRoleAssignment' -Allowed $script:EbRoleAssignmentScopes -Properties $Scope) {
        $parameters = @{ Identity = $Identity }
        foreach ($key in $Scope.Keys) { $parameters[[string]$key] = $Scope[$key] }
        if ($PSBoundParameters.ContainsKey('Enabled')) { $parameters['Enabled'] = $Enabled }
        $null = Invoke-EbCmdlet -Envelope $envelope -Name 'Set-ManagementRoleAssignment' -Parameters $parameters
    }
    Write-EbEnvelope -Envelope $envelope
}

function Sync-EbRoleGroupRole {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Identity,
        [Parameter(Mandatory)][AllowEmptyCollection()][string[]]$Roles,
        # Only give the roles it lacks (restore --mode merge); never take one away.
        [Parameter()][switch]$AddOnly
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'syncRoleGroupRole'
    # A role group's roles are its role assignments: a missing role is New-ManagementRoleAssignment
    # -SecurityGroup, a role too many goes with every assignment that gives it.
    $current = Invoke-EbCmdlet -Envelope $envelope -Name 'Get-ManagementRoleAssignment' -Parameters @{ RoleAssignee = $Identity }
    if ($null -ne $current) {
        $wanted = [System.Collections.Generic.HashSet[string]]::new([string[]]@($Roles), [System.StringComparer]::OrdinalIgnoreCase)
        $held = [System.Collections.Generic.HashSet[string]]::new([System.StringComparer]::OrdinalIgnoreCase)
        $added = [System.Collections.Generic.List[string]]::new()
        $removed = [System.Collections.Generic.List[string]]::new()
        foreach ($assignment in $current) {
            if ((Get-EbString -InputObject $assignment -Property 'RoleAssigneeType') -ne 'RoleGroup') { continue }
            $role = Get-EbString -InputObject $assignment -Property 'Role'
            $null = $held.Add($role)
            if (-not $AddOnly -and -not $wanted.Contains($role)) {
                $name = Get-EbString -InputObject $assignment -Property 'Identity'
                $null = Invoke-EbCmdlet -Envelope $envelope -Name 'Remove-ManagementRoleAssignment' `
                    -Parameters @{ Identity = $name; Confirm = $false } -Label ('Remove-ManagementRoleAssignment:' + $name)
                $removed.Add($name)
            }
        }
        foreach ($role in $Roles) {
            if ($held.Contains($role)) { continue }
            $made = Invoke-EbCmdlet -Envelope $envelope -Name 'New-ManagementRoleAssignment' `
                -Parameters @{ Role = $role; SecurityGroup = $Identity } -Label ('New-ManagementRoleAssignment:' + $role)
            if ($null -ne $made) { $added.Add((Get-EbString -InputObject ($made | Select-Object -First 1) -Property 'Identity')) }
            $null = $held.Add($role)
        }
        $envelope.Items.Add([ordered]@{ roleGroup = $Identity; added = $added.ToArray(); removed = $removed.ToArray() })
    }
    Write-EbEnvelope -Envelope $envelope
}

function New-EbAllowBlockListItem {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][ValidateSet('Sender', 'Url', 'FileHash', 'IP')][string]$ListType,
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Value,
        [Parameter(Mandatory)][ValidateSet('Allow', 'Block')][string]$Action,
        [Parameter()][AllowEmptyString()][string]$Notes,
        # Without it the entry never expires.
        [Parameter()][datetime]$ExpirationDate
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'newAllowBlockListItem'
    $parameters = @{ ListType = $ListType; Entries = [string[]]@($Value) }
    $parameters[$Action] = $true
    if ($PSBoundParameters.ContainsKey('Notes')) { $parameters['Notes'] = $Notes }
    if ($PSBoundParameters.ContainsKey('ExpirationDate')) { $parameters['ExpirationDate'] = $ExpirationDate.ToUniversalTime() }
    else { $parameters['NoExpiration'] = $true }
    $created = Invoke-EbCmdlet -Envelope $envelope -Name 'New-TenantAllowBlockListItems' -Parameters $parameters
    if ($null -ne $created) {
        $envelope.Items.Add([ordered]@{
                identity = Get-EbString -InputObject ($created | Select-Object -First 1) -Property 'Identity'
                value    = $Value
            })
    }
    Write-EbEnvelope -Envelope $envelope
}

function Remove-EbAllowBlockListItem {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][ValidateSet('Sender', 'Url', 'FileHash', 'IP')][string]$ListType,
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$Id
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'removeAllowBlockListItem'
    $parameters = @{ ListType = $ListType; Ids = [string[]]@($Id) }
    $null = Invoke-EbCmdlet -Envelope $envelope -Name 'Remove-TenantAllowBlockListItems' -Parameters $parameters
    Write-EbEnvelope -Envelope $envelope
}

function New-EbRoleGroupSetup {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)]
        [ValidatePattern('^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$')]
        [string]$AppId,
        # Object id of the app's service principal (Enterprise application), not of the app registration.
        [Parameter(Mandatory)]
        [ValidatePattern('^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$')]
        [string]$ServicePrincipalObjectId,
        [Parameter(Mandatory)][ValidateNotNullOrEmpty()][string]$DisplayName,
        [Parameter()][ValidateNotNullOrEmpty()][string]$RoleGroupName = 'EntraBackup Service',
        [Parameter()][ValidateSet('ReadOnly', 'ReadWrite')][string]$Mode = 'ReadWrite'
    )
    Set-StrictMode -Version Latest
    $ErrorActionPreference = 'Stop'
    $envelope = New-EbEnvelope -Op 'newRoleGroupSetup'
    # Backup needs only reads:
    #   View-Only Configuration - every Get- settings cmdlet (org/transport config, domains, connectors, rules,
    #                             OWA/mobile policies, role groups and role assignments);
    #   View-Only Recipients    - Get-DistributionGroup / Get-DistributionGroupMember;
    #   Security Reader         - the Defender (EOP/MDO) Get- cmdlets.
    # Restore adds the narrowest write roles for what the module writes:
    #   Distribution Groups          - New/Set/Remove-DistributionGroup, Update-DistributionGroupMember;
    #   Security Group Creation and Membership - -BypassSecurityGroupManagerCheck on those cmdlets:
    #                                  the app manages no group, and Microsoft documents this role (or
    #                                  Organization Management) as what the switch needs for
    #                                  distribution and mail-enabled security groups;
    #   Security Admin               - anti-spam/malware/phish, Safe Links/Attachments, quarantine, allow/block list;
    #   Transport Rules              - New-/Set-/Remove-TransportRule;
    #   Remote and Accepted Domains  - Set-AcceptedDomain / Set-RemoteDomain;
    #   Organization Transport Settings - Set-TransportConfig, connectors;
    #   Organization Configuration   - Set-OrganizationConfig, Set-ExternalInOutlook, Set-ArcConfig;
    #   Organization Client Access   - Set-OwaMailboxPolicy, Set-MobileDeviceMailboxPolicy.
    # Deliberately absent: Role Management (could grant itself more; restoring Exchange role groups and role
    # assignments needs it - New-/Set-/Remove-ManagementRoleAssignment, as the Organization Management role group
    # has it - so those are skipped as 'missing Exchange role' unless the app is Exchange Administrator), Mail
    # Recipients, Mailbox Import Export.
    # Get-ProtectionAlert runs in Security & Compliance, whose role groups are separate (not covered here).
    $roles = [System.Collections.Generic.List[string]]::new()
    foreach ($role in @('View-Only Configuration', 'View-Only Recipients', 'Security Reader')) { $roles.Add($role) }
    if ($Mode -eq 'ReadWrite') {
        foreach ($role in @('Distribution Groups', 'Security Group Creation and Membership', 'Security Admin',
                'Transport Rules', 'Remote and Accepted Domains',
                'Organization Transport Settings', 'Organization Configuration', 'Organization Client Access')) { $roles.Add($role) }
    }
    $null = Invoke-EbCmdlet -Envelope $envelope -Name 'New-ServicePrincipal' `
        -Parameters @{ AppId = $AppId; ObjectId = $ServicePrincipalObjectId; DisplayName = $DisplayName }
    $null = Invoke-EbCmdlet -Envelope $envelope -Name 'New-RoleGroup' `
        -Parameters @{ Name = $RoleGroupName; Roles = $roles.ToArray(); Description = 'entra-backup service app (least privilege)' }
    $null = Invoke-EbCmdlet -Envelope $envelope -Name 'Add-RoleGroupMember' `
        -Parameters @{ Identity = $RoleGroupName; Member = $ServicePrincipalObjectId; BypassSecurityGroupManagerCheck = $true }
    $envelope.Items.Add([ordered]@{ roleGroup = $RoleGroupName; roles = $roles.ToArray(); servicePrincipal = $ServicePrincipalObjectId })
    Write-EbEnvelope -Envelope $envelope
}

Export-ModuleMember -Function @(
    'Connect-EbExchange', 'Export-EbDistributionGroups', 'Export-EbSettings', 'New-EbDistributionGroup',
    'Set-EbDistributionGroup', 'Sync-EbDistributionGroupMember', 'Remove-EbDistributionGroup', 'Set-EbSetting',
    'New-EbPolicyWithRule', 'New-EbTransportRule', 'Remove-EbSetting', 'New-EbRoleGroupSetup', 'New-EbSetting',
    'Set-EbRuleState', 'Update-EbRoleGroupMember', 'New-EbAllowBlockListItem', 'Remove-EbAllowBlockListItem',
    'New-EbRoleAssignment', 'Set-EbRoleAssignment', 'Sync-EbRoleGroupRole'
)
