"""entra-backup: backup and restore for Microsoft Entra ID and Microsoft 365 admin portal settings."""

__version__ = "0.1.0"
