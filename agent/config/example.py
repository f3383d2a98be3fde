"""The fully commented example config (config/agent.example.toml is generated from it)."""

from __future__ import annotations

EXAMPLE = """\
# entra-backup agent configuration.
# Relative paths are resolved against this file's folder. Secrets are never written here:
# secret settings hold a reference — "env:NAME", "file:/path" (owner-only file) or
# "keyring:service/username" (the OS keyring).

[agent]
# Where the agent keeps its database, repository and logs.
data_dir = "/var/lib/entra-backup"
# Empty: SQLite in <data_dir>/agent.db. Or "postgresql+psycopg://user@host/dbname".
database_url = ""
# Empty: <data_dir>/repository (the encrypted, content-addressed backup store).
repository = ""
# The repository's encryption key. Without it no backup can be read: keep a copy offline.
repository_key = "file:/etc/entra-backup/repository.key"
# Empty: <data_dir>/logs/agent.jsonl (JSON lines).
log_file = ""
# DEBUG, INFO, WARNING, ERROR or CRITICAL.
log_level = "INFO"
# Backup jobs that may run at the same time (across tenants).
max_concurrent_jobs = 2

# One table per Microsoft 365 tenant; the name (here "contoso") is used on the command line.
[tenants.contoso]
# The Directory (tenant) ID (a GUID) or the initial domain.
tenant_id = "contoso.onmicrosoft.com"
authority_host = "https://login.microsoftonline.com"
graph_url = "https://graph.microsoft.com"
# The Entra admin portal's API: Groups general settings that Graph lacks (needs the service
# account below; without one that setting is skipped, everything else is backed up).
portal_url = "https://main.iam.ad.ext.azure.com"
# PEM file of the CA(s) to trust for this tenant's endpoints instead of the system trust store
# (e.g. a TLS-inspecting proxy's CA). Empty: system trust. Verification is never turned off.
ca_bundle = ""
# Graph throttling budget: auto (measured), S (<50 users), M (50-500), L (>500).
tenant_size = "auto"
# Opt-in: back up the BitLocker recovery keys of the tenant's devices (they unlock disks,
# and Entra audits every key read). Needs BitLockerKey.Read.All; stored encrypted like
# everything else in the repository.
backup_bitlocker_keys = false

# The app registration the agent signs in as (application permissions, admin-consented).
[tenants.contoso.app]
client_id = "00000000-0000-0000-0000-000000000000"
# Exactly one of client_secret / certificate.
client_secret = "env:CONTOSO_CLIENT_SECRET"
# certificate = "file:/etc/entra-backup/contoso-app.pem"  # PEM: private key + certificate

# Optional: a service account for settings only reachable with delegated admin rights.
# It must not require MFA; its app needs "Allow public client flows".
# [tenants.contoso.service_account]
# username = "svc-backup@contoso.onmicrosoft.com"
# password = "keyring:entra-backup/contoso-svc"
# client_id = "00000000-0000-0000-0000-000000000000"

# Optional: Exchange Online and Defender settings, distribution lists and mail-enabled
# security groups, read through a bridge host (Windows or PowerShell 7) that has the
# ExchangeOnlineManagement module, over WinRM/PSRP. The app above also needs Office 365
# Exchange Online > Exchange.ManageAsApp and the Exchange Administrator role (or a custom
# role group: see 'entra-backup permissions --scope exchange').
# [tenants.contoso.exchange]
# The bridge host's WinRM HTTPS listener.
# bridge_url = "https://bridge01.contoso.local:5986/wsman"
# WinRM authentication: basic, ntlm, negotiate, kerberos, certificate or credssp.
# kerberos on Linux: pip install 'entra-backup[kerberos]' plus MIT Kerberos (libkrb5, krb5.conf);
# username = "user@REALM", password or a kinit ticket; the host is asked for as HTTP/<host>.
# auth = "negotiate"
# username = "CONTOSO\\\\svc-exo-bridge"
# password = "keyring:entra-backup/contoso-bridge"
# With auth = "certificate" instead of a password: PEM with certificate and private key.
# client_certificate = "file:/etc/entra-backup/bridge-client.pem"
# CA of the bridge host's certificate; empty = the tenant's ca_bundle / system trust.
# ca_bundle = ""
# Plain http:// is refused unless this is true (lab only: everything crosses unencrypted).
# allow_http = false
# The tenant's initial domain (app-only Exchange sign-in needs it).
# organization = "contoso.onmicrosoft.com"
# How the bridge host signs in to Exchange Online as the app: certificate_thumbprint (the
# app's certificate in the host's store), certificate_file (a .pfx on the host) or
# service_account (the [service_account] above; must not require MFA).
# connect = "certificate_thumbprint"
# certificate_thumbprint = "0000000000000000000000000000000000000000"
# certificate_file = 'C:\\EntraBackup\\contoso-app.pfx'
# certificate_password = "env:CONTOSO_PFX_PASSWORD"
# Which settings kinds to read: kind names, "exchange", "defender" or "*".
# settings = ["*"]
# WinRM operation timeout, the longest one cmdlet call may take, and connect timeout.
# operation_timeout_s = 20
# call_timeout_s = 900
# connect_timeout_s = 30
# Distribution groups (with their members) per bridge call: the agent holds one page.
# group_page_size = 100

# Backup scopes: what to back up and when. Repeat the table for more scopes.
[[tenants.contoso.scopes]]
name = "entra-nightly"
# Kind names, areas ("entra", "exchange", "defender") or "*"; see 'entra-backup kinds'.
kinds = ["entra"]
# 5-field cron (minute hour day-of-month month day-of-week), agent's local time.
schedule = "0 2 * * *"
# Force a full (non-incremental) backup at least this often.
full_every_days = 7
"""


def render_example_config() -> str:
    """The fully commented example config (config/agent.example.toml is this text)."""
    return EXAMPLE
