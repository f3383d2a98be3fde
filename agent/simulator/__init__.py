"""The tenant simulator: a faithful stand-in for a Microsoft 365 tenant on loopback HTTPS.

It serves the Entra login endpoint, Microsoft Graph and (later) a WinRM/PSRP endpoint, as the
real services are documented to behave. The agent never knows it is talking to it: it only sees
URLs, credentials and a CA certificate.
"""
