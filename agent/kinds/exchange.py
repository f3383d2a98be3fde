"""Exchange Online and Defender kinds read through the bridge host (channel "bridge").

Distribution lists and mail-enabled security groups (facts file §5) with their members, and
one kind per settings cmdlet (facts file §7), generated from one table. Every bridge kind needs
Office 365 Exchange Online > Exchange.ManageAsApp for the app plus the Exchange Administrator
role, or a custom role group holding the Exchange management roles named per kind
(``extra["exchange_read_role"]`` / ``extra["exchange_write_role"]``, comma-separated; ps_scripts'
New-EbRoleGroupSetup creates it).
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.kinds.spec import Area, Incremental, KindSpec

EXCHANGE_PERMISSION = "Exchange.ManageAsApp"
EXCHANGE_ROLE = "Exchange Administrator"
MDO_LICENCE = "Microsoft Defender for Office 365"

# Exchange management roles (the custom role group's alternative to Exchange Administrator).
VIEW_CONFIG = "View-Only Configuration"
VIEW_RECIPIENTS = "View-Only Recipients"
SECURITY_READER = "Security Reader"
SECURITY_ADMIN = "Security Admin"
ORG_CONFIG = "Organization Configuration"
TRANSPORT = "Organization Transport Settings"
DOMAINS = "Remote and Accepted Domains"
RULES = "Transport Rules"
CLIENT_ACCESS = "Organization Client Access"
ROLE_MANAGEMENT = "Role Management"
# What -BypassSecurityGroupManagerCheck needs on distribution / mail-enabled security groups.
GROUP_BYPASS_ROLE = "Security Group Creation and Membership"


@dataclass(frozen=True)
class Setting:
    noun: str  # the cmdlet noun: Get-<noun> reads it, Set-<noun> restores it
    title: str
    area: Area
    describes: str
    read_role: str
    write_role: str
    mdo: bool = False  # needs a Defender for Office 365 licence
    set_cmdlet: bool = True  # ps_scripts' Set-EbSetting accepts Set-<noun>
    policy_family: str | None = None  # New-EbPolicyWithRule can recreate it (with its rule)
    new_cmdlet: bool = False  # New-EbSetting recreates it when gone (New-<noun>)
    note: str = ""  # what the support list says beyond the generated notes
    security_compliance: bool = False  # read in the Security & Compliance session
    singleton: bool = False  # one object per tenant: Set-<noun> takes no -Identity
    after: tuple[str, ...] = ()  # kinds restored first (what its objects name)
    unordered: tuple[str, ...] = ()  # multi-valued properties that are sets

    @property
    def kind_name(self) -> str:
        noun = self.noun.replace("ATP", "Atp").replace("EOP", "Eop")
        noun = noun.removesuffix("Items") + ("Item" if noun.endswith("Items") else "")
        return noun[0].lower() + noun[1:]

    @property
    def get_cmdlet(self) -> str:
        return f"Get-{self.noun}"


EX, DEF = Area.EXCHANGE, Area.DEFENDER

# fmt: off
SETTINGS: tuple[Setting, ...] = (
    Setting("OrganizationConfig", "Organization configuration", EX,
            "Organization-wide Exchange settings (auditing, MailTips, Focused Inbox, OAuth, "
            "connectors, send-from-alias…).", VIEW_CONFIG, ORG_CONFIG, singleton=True),
    Setting("TransportConfig", "Transport configuration", EX,
            "Organization transport settings: size limits, SMTP AUTH, reply-all storm "
            "protection, postmaster address.", VIEW_CONFIG, TRANSPORT, singleton=True),
    Setting("AcceptedDomain", "Accepted domains", EX,
            "Accepted domains and their type (authoritative / relay), default domain.",
            VIEW_CONFIG, DOMAINS, new_cmdlet=True),
    Setting("RemoteDomain", "Remote domains", EX,
            "Remote domain message format, auto-reply and auto-forward settings.",
            VIEW_CONFIG, DOMAINS, new_cmdlet=True),
    Setting("InboundConnector", "Inbound connectors", EX,
            "Mail-flow inbound connectors: sender domains and IPs, TLS requirements.",
            VIEW_CONFIG, TRANSPORT, new_cmdlet=True),
    Setting("OutboundConnector", "Outbound connectors", EX,
            "Mail-flow outbound connectors: recipient domains, smart hosts, TLS settings.",
            VIEW_CONFIG, TRANSPORT, new_cmdlet=True),
    Setting("TransportRule", "Mail flow rules", EX,
            "Mail flow (transport) rules: conditions, exceptions, actions, priority, state.",
            VIEW_CONFIG, RULES),
    Setting("HostedContentFilterPolicy", "Anti-spam policies", DEF,
            "Inbound anti-spam policies: thresholds, actions, allowed and blocked senders.",
            SECURITY_READER, SECURITY_ADMIN, policy_family="HostedContentFilter"),
    Setting("HostedContentFilterRule", "Anti-spam rules", DEF,
            "Who each inbound anti-spam policy applies to, and its priority.",
            SECURITY_READER, SECURITY_ADMIN, new_cmdlet=True),
    Setting("HostedOutboundSpamFilterPolicy", "Outbound spam policies", DEF,
            "Outbound spam policies: recipient limits, auto-forwarding, notifications.",
            SECURITY_READER, SECURITY_ADMIN, policy_family="HostedOutboundSpamFilter"),
    Setting("HostedOutboundSpamFilterRule", "Outbound spam rules", DEF,
            "Who each outbound spam policy applies to, and its priority.",
            SECURITY_READER, SECURITY_ADMIN, new_cmdlet=True),
    Setting("HostedConnectionFilterPolicy", "Connection filter policy", DEF,
            "The connection filter policy: IP allow and block lists, safe list.",
            SECURITY_READER, SECURITY_ADMIN,
            note="Exchange Online has exactly one, \"Default\": it is only ever set."),
    Setting("MalwareFilterPolicy", "Anti-malware policies", DEF,
            "Anti-malware policies: file type filter, ZAP, quarantine, admin notifications.",
            SECURITY_READER, SECURITY_ADMIN, policy_family="MalwareFilter"),
    Setting("MalwareFilterRule", "Anti-malware rules", DEF,
            "Who each anti-malware policy applies to, and its priority.",
            SECURITY_READER, SECURITY_ADMIN, new_cmdlet=True),
    Setting("AntiPhishPolicy", "Anti-phishing policies", DEF,
            "Anti-phishing policies: spoof intelligence, impersonation protection, safety tips.",
            SECURITY_READER, SECURITY_ADMIN, policy_family="AntiPhish"),
    Setting("AntiPhishRule", "Anti-phishing rules", DEF,
            "Who each anti-phishing policy applies to, and its priority.",
            SECURITY_READER, SECURITY_ADMIN, new_cmdlet=True),
    Setting("SafeLinksPolicy", "Safe Links policies", DEF,
            "Safe Links policies: URL scanning and rewriting for email, Teams and Office.",
            SECURITY_READER, SECURITY_ADMIN, mdo=True, policy_family="SafeLinks"),
    Setting("SafeLinksRule", "Safe Links rules", DEF,
            "Who each Safe Links policy applies to, and its priority.",
            SECURITY_READER, SECURITY_ADMIN, mdo=True, new_cmdlet=True),
    Setting("SafeAttachmentPolicy", "Safe Attachments policies", DEF,
            "Safe Attachments policies: action, redirect, quarantine tag.",
            SECURITY_READER, SECURITY_ADMIN, mdo=True, policy_family="SafeAttachment"),
    Setting("SafeAttachmentRule", "Safe Attachments rules", DEF,
            "Who each Safe Attachments policy applies to, and its priority.",
            SECURITY_READER, SECURITY_ADMIN, mdo=True, new_cmdlet=True),
    Setting("AtpPolicyForO365", "Defender for SharePoint, OneDrive and Teams", DEF,
            "Safe Attachments for SharePoint, OneDrive and Teams; Safe Documents.",
            SECURITY_READER, SECURITY_ADMIN, mdo=True, singleton=True),
    Setting("ATPBuiltInProtectionRule", "Built-in protection rule", DEF,
            "The built-in protection preset's exceptions.",
            SECURITY_READER, SECURITY_ADMIN, mdo=True,
            note="One rule Microsoft keeps: restore sets its exceptions only."),
    Setting("DkimSigningConfig", "DKIM signing", DEF,
            "DKIM signing per domain: enabled, canonicalization.", SECURITY_READER,
            SECURITY_ADMIN, new_cmdlet=True,
            note="A removed configuration is created again (New-DkimSigningConfig), then "
            "enabled; a custom domain signs only once its two CNAME records are published."),
    Setting("EOPProtectionPolicyRule", "Preset security policies (EOP)", DEF,
            "Standard and Strict preset security policies: who they apply to, state.",
            SECURITY_READER, SECURITY_ADMIN,
            note="Microsoft creates the preset rules when a preset is turned on: restore sets "
            "their conditions and state, never creates or removes them."),
    Setting("ATPProtectionPolicyRule", "Preset security policies (Defender)", DEF,
            "Defender parts of the Standard and Strict presets: who they apply to, state.",
            SECURITY_READER, SECURITY_ADMIN, mdo=True,
            note="Microsoft creates the preset rules when a preset is turned on: restore sets "
            "their conditions and state, never creates or removes them."),
    Setting("QuarantinePolicy", "Quarantine policies", DEF,
            "Quarantine policies: end-user permissions and notifications.",
            SECURITY_READER, SECURITY_ADMIN, new_cmdlet=True),
    Setting("TenantAllowBlockListItems", "Tenant allow/block list", DEF,
            "Tenant allow/block list entries for senders, URLs, file hashes and IPs.",
            SECURITY_READER, SECURITY_ADMIN, set_cmdlet=False, new_cmdlet=True,
            note="Entries are created and removed, never patched: a removed or changed entry is "
            "created again (a new id); entries added since are removed only with --prune."),
    Setting("ReportSubmissionPolicy", "User reported settings", DEF,
            "How users report messages and where reports go.",
            SECURITY_READER, SECURITY_ADMIN, new_cmdlet=True),
    Setting("ReportSubmissionRule", "User reported mailbox rule", DEF,
            "The reporting mailbox the user reported settings send to.",
            SECURITY_READER, SECURITY_ADMIN, new_cmdlet=True),
    Setting("ExternalInOutlook", "External sender identification", EX,
            "The External tag in Outlook: enabled, allow list.", VIEW_CONFIG, ORG_CONFIG,
            singleton=True),
    Setting("ArcConfig", "Trusted ARC sealers", DEF,
            "Trusted ARC sealers for authenticated received chains.", SECURITY_READER,
            SECURITY_ADMIN, singleton=True),
    Setting("TeamsProtectionPolicy", "Teams protection policy", DEF,
            "Zero-hour auto purge for Teams messages.", SECURITY_READER, SECURITY_ADMIN,
            mdo=True, note="One policy per tenant: only ever set."),
    Setting("TeamsProtectionPolicyRule", "Teams protection rule", DEF,
            "Exceptions to the Teams protection policy.", SECURITY_READER, SECURITY_ADMIN,
            mdo=True, new_cmdlet=True),
    Setting("ProtectionAlert", "Alert policies", DEF,
            "Defender alert policies: conditions, severity, notifications (Security & "
            "Compliance).", SECURITY_READER, SECURITY_ADMIN, new_cmdlet=True,
            security_compliance=True,
            note="Microsoft's default alert policies are only set, never created or removed."),
    Setting("OwaMailboxPolicy", "Outlook on the web policies", EX,
            "Outlook on the web mailbox policies: attachments, storage providers, offline.",
            VIEW_CONFIG, CLIENT_ACCESS, new_cmdlet=True),
    Setting("MobileDeviceMailboxPolicy", "Mobile device mailbox policies", EX,
            "Exchange ActiveSync device policies: passwords, encryption.", VIEW_CONFIG,
            CLIENT_ACCESS, new_cmdlet=True),
    Setting("RoleGroup", "Exchange role groups", EX,
            "Exchange RBAC role groups: roles, members, managers.", VIEW_CONFIG,
            ROLE_MANAGEMENT, new_cmdlet=True,
            unordered=("Roles", "RoleAssignments", "Members", "ManagedBy"),
            note="Built-in role groups: only their members are restored (Update-RoleGroupMember). "
            "A custom role group's roles are restored through its role assignments "
            "(New-/Remove-ManagementRoleAssignment -SecurityGroup; --mode merge only adds); a "
            "removed one is created again with its roles (New-RoleGroup -Roles) and members."),
    Setting("ManagementRoleAssignment", "Exchange role assignments", EX,
            "Exchange RBAC role assignments: role, assignee, scopes.", VIEW_CONFIG,
            ROLE_MANAGEMENT, new_cmdlet=True, after=("roleGroup", "user"),
            note="Enabled and the recipient write scope are set (Set-ManagementRoleAssignment); "
            "a removed assignment is created again with its role, assignee and scope "
            "(New-ManagementRoleAssignment -SecurityGroup/-User/-Policy/-App; an assignment of "
            "the role the assignee holds again is set instead, its new name in the id map); "
            "created after the snapshot, it is listed and removed only with restore --prune. "
            "Assignments of the built-in role groups are Microsoft's: never created or removed."),
)
# fmt: on


def _setting_kind(s: Setting) -> KindSpec:
    # Removed policies come back with their rule (New-EbPolicyWithRule), mail flow rules by
    # New-EbTransportRule, the rest by New-EbSetting; restore --prune removes those created
    # after the snapshot where the module has a Remove- for them.
    recreatable = bool(s.policy_family) or s.noun == "TransportRule" or s.new_cmdlet
    restore = (("set",) if s.set_cmdlet else ()) + (("recreate",) if recreatable else ())
    notes = [s.note] if s.note else []
    if recreatable and not s.note:
        notes.append(
            "Restore recreates it when removed; created after the snapshot, it is listed and "
            "removed only with restore --prune (built-in and default ones never)."
        )
    if s.noun.endswith("Rule") and s.set_cmdlet and s.noun != "ATPBuiltInProtectionRule":
        notes.append("Its State is restored with Enable-/Disable-.")
    if s.write_role == ROLE_MANAGEMENT and restore:
        notes.append(
            "Restore needs the Exchange role Role Management (the Organization Management role "
            "group has it) or the Entra role Exchange Administrator; the least-privilege role "
            "group leaves it out."
        )
    if s.mdo:
        notes.append(f"Needs a {MDO_LICENCE} licence; without one it is skipped (not licensed).")
    if not restore:
        notes.append("Backed up for reference; restore is not offered yet.")
    if s.security_compliance:
        notes.append("Read in a Security & Compliance session (Connect-IPPSSession).")
    return KindSpec(
        name=s.kind_name,
        title=s.title,
        area=s.area,
        collector="bridge.settings",
        channel="bridge",
        describes=s.describes,
        source=f"bridge: Export-EbSettings -Cmdlet {s.get_cmdlet}",
        incremental=Incremental.FULL,
        read_permissions=(EXCHANGE_PERMISSION,),
        write_permissions=(EXCHANGE_PERMISSION,) if restore else (),
        read_roles=(EXCHANGE_ROLE,),
        write_roles=(EXCHANGE_ROLE,) if restore else (),
        key="Identity",
        # An allow/block entry's Identity is an opaque id: it is named by its value.
        label="Value" if s.noun == "TenantAllowBlockListItems" else "Identity",
        restore=restore,
        singleton=s.singleton,
        after=s.after,
        unordered=s.unordered,
        notes=" ".join(notes),
        extra={
            "cmdlet": s.get_cmdlet,
            "exchange_read_role": s.read_role,
            "exchange_write_role": s.write_role,
            "licence": MDO_LICENCE if s.mdo else "",
            "policy_family": s.policy_family or "",
            "write_needs_admin": "yes" if s.write_role == ROLE_MANAGEMENT else "",
            "session": "SecurityCompliance" if s.security_compliance else "ExchangeOnline",
        },
    )


# Exchange's multi-valued recipient properties: sets, whatever order a read returns them in.
GROUP_SET_PROPERTIES = (
    "ManagedBy",
    "AcceptMessagesOnlyFrom",
    "AcceptMessagesOnlyFromDLMembers",
    "AcceptMessagesOnlyFromSendersOrMembers",
    "RejectMessagesFrom",
    "RejectMessagesFromDLMembers",
    "RejectMessagesFromSendersOrMembers",
    "ModeratedBy",
    "BypassModerationFromSendersOrMembers",
    "EmailAddresses",
    "GrantSendOnBehalfTo",
    "MailTipTranslations",
    "ExtensionCustomAttribute1",
    "ExtensionCustomAttribute2",
    "ExtensionCustomAttribute3",
    "ExtensionCustomAttribute4",
    "ExtensionCustomAttribute5",
)


def _group_kinds(
    name: str, title: str, recipient_type: str, graph_type: str
) -> tuple[KindSpec, KindSpec]:
    extra = {
        "recipient_type": recipient_type,
        "exchange_read_role": VIEW_RECIPIENTS,
        # Restore writes groups the app does not manage: -BypassSecurityGroupManagerCheck.
        "exchange_write_role": f"Distribution Groups, {GROUP_BYPASS_ROLE}",
    }
    group = KindSpec(
        name=name,
        title=title,
        area=Area.EXCHANGE,
        collector="bridge.groups",
        channel="bridge",
        describes=f"{title} with their Exchange-only settings (owners, delivery restrictions, "
        "moderation, addresses, MailTips, custom attributes, size limits).",
        source=f"bridge: Export-EbDistributionGroups -RecipientTypeDetails {recipient_type}",
        incremental=Incremental.DELTA,
        read_permissions=(EXCHANGE_PERMISSION,),
        write_permissions=(EXCHANGE_PERMISSION,),
        read_roles=(EXCHANGE_ROLE,),
        write_roles=(EXCHANGE_ROLE,),
        # The Entra object id: the same key as the Graph group, so the two cross-reference
        # and Graph's groups delta names the Exchange objects that changed.
        key="ExternalDirectoryObjectId",
        label="DisplayName",
        unordered=GROUP_SET_PROPERTIES,
        restore=("set", "recreate"),
        after=("user",),
        notes=f"Incremental: Graph's groups delta ({graph_type}) finds membership and basic "
        "changes, WhenChangedUTC the Exchange-only ones; a full export runs every "
        "full_every_days. Graph cannot write these groups (facts file §5).",
        extra=extra,
    )
    members = KindSpec(
        name=f"{name}Member",
        title=f"{title} members",
        area=Area.EXCHANGE,
        collector="bridge.groups",
        channel="bridge",
        describes=f"The members of each {title[:-1].lower()} (object id, address, recipient "
        "type), one object per group.",
        source=f"bridge: Export-EbDistributionGroups -RecipientTypeDetails {recipient_type} "
        "-IncludeMembers",
        incremental=Incremental.DELTA,
        read_permissions=(EXCHANGE_PERMISSION,),
        write_permissions=(EXCHANGE_PERMISSION,),
        read_roles=(EXCHANGE_ROLE,),
        write_roles=(EXCHANGE_ROLE,),
        key="groupId",
        label="groupId",
        # A membership is a set: members matched by their Entra object id.
        unordered=("members[ExternalDirectoryObjectId]",),
        parent=name,
        restore=("sync",),
        # Every group of both kinds exists (again) before members name them: nested DLs first.
        after=("distributionGroup", "mailEnabledSecurityGroup", "user"),
        extra=extra,
    )
    return group, members


DISTRIBUTION_GROUP, DISTRIBUTION_GROUP_MEMBER = _group_kinds(
    "distributionGroup",
    "Distribution lists",
    "MailUniversalDistributionGroup",
    "mailEnabled, not securityEnabled",
)
MAIL_SECURITY_GROUP, MAIL_SECURITY_GROUP_MEMBER = _group_kinds(
    "mailEnabledSecurityGroup",
    "Mail-enabled security groups",
    "MailUniversalSecurityGroup",
    "mailEnabled and securityEnabled",
)
GROUP_KINDS: tuple[KindSpec, ...] = (
    DISTRIBUTION_GROUP,
    DISTRIBUTION_GROUP_MEMBER,
    MAIL_SECURITY_GROUP,
    MAIL_SECURITY_GROUP_MEMBER,
)
SETTINGS_KINDS: tuple[KindSpec, ...] = tuple(_setting_kind(s) for s in SETTINGS)
SETTING_BY_KIND: dict[str, Setting] = {s.kind_name: s for s in SETTINGS}
KINDS: tuple[KindSpec, ...] = (*GROUP_KINDS, *SETTINGS_KINDS)

# What [tenants.X.exchange].settings may list.
SETTINGS_SELECTORS: frozenset[str] = frozenset(
    {*SETTING_BY_KIND, Area.EXCHANGE.value, Area.DEFENDER.value, "*"}
)


def selected_settings(selectors: list[str]) -> set[str]:
    """Settings kind names chosen by a tenant's ``exchange.settings`` list."""
    chosen: set[str] = set()
    for selector in selectors:
        if selector == "*":
            chosen.update(SETTING_BY_KIND)
        elif selector in (Area.EXCHANGE.value, Area.DEFENDER.value):
            chosen.update(k.name for k in SETTINGS_KINDS if k.area == selector)
        else:
            chosen.add(selector)
    return chosen
