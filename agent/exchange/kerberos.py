"""Kerberos for WinRM to the bridge host: whether this agent can do it, and what its failures
mean to an operator.

pypsrp asks pyspnego for Kerberos. On Windows that is SSPI (nothing to install); elsewhere
pyspnego needs the ``gssapi`` and ``krb5`` packages (``pip install entra-backup[kerberos]``),
which build against the system's MIT Kerberos (libkrb5 / libgssapi-krb5). The agent names the
host's service principal ``HTTP/<host name in bridge_url>``, as Windows' own WinRM client does
(an Active Directory computer account answers for it through its HOST/ name).
"""

from __future__ import annotations

import contextlib
import re
import sys

# The service part of the bridge host's SPN (HTTP/<host>@REALM).
SERVICE = "HTTP"

INSTALL_FIX = (
    "Install entra-backup[kerberos] (pip install 'entra-backup[kerberos]') and the system "
    "Kerberos libraries it builds against (MIT Kerberos: libkrb5-dev / krb5-devel and "
    "krb5-user for kinit); on Windows SSPI needs nothing"
)


def unavailable() -> str | None:
    """Why this agent cannot do Kerberos, or None when it can."""
    if sys.platform == "win32":
        return None  # pyspnego uses SSPI
    try:
        import gssapi  # noqa: F401
        import krb5  # noqa: F401
    except ImportError as exc:  # also a missing libgssapi_krb5 behind an installed gssapi
        return str(exc)
    return None


def errors() -> tuple[type[BaseException], ...]:
    """The exception types the Kerberos libraries raise (none when they are absent)."""
    found: list[type[BaseException]] = []
    with contextlib.suppress(ImportError):
        from krb5 import Krb5Error

        found.append(Krb5Error)
    with contextlib.suppress(ImportError):
        from gssapi.exceptions import GSSError

        found.append(GSSError)
    return tuple(found)


# Kerberos messages (MIT's wording, as regular expressions) → what is wrong and what to do; {w} is the config section.
_CAUSES = (
    (
        ("cannot contact any kdc", "cannot find kdc", "unable to reach any kdc"),
        "no Kerberos KDC answered for the realm",
        (
            "Check that krb5.conf (or KRB5_CONFIG) names the realm's KDCs and that this machine "
            "reaches them (port 88), and that {w}.username carries the right realm (user@REALM)."
        ),
    ),
    (
        ("preauthentication failed", "password incorrect", "decrypt integrity check failed"),
        "the KDC refused the password",
        "Check {w}.username and the password it references (the account's domain password).",
    ),
    (
        (r"\bserver\b.*not found in kerberos database", "server principal unknown"),
        f"the KDC knows no service principal {SERVICE}/<host> for the bridge host",
        (
            "Write {w}.bridge_url with the host's DNS name as its Kerberos principal names it, and "
            f"register the SPN if it is missing (setspn -S {SERVICE}/<host> <computer account>)."
        ),
    ),
    (
        ("not found in kerberos database",),
        "the KDC does not know the account",
        (
            "Check {w}.username: a domain account as user@REALM (or user with the default realm "
            "of krb5.conf)."
        ),
    ),
    (
        ("clock skew",),
        "the clocks of this machine, the KDC and the host differ too much",
        "Synchronise the clocks (NTP) and run the backup again.",
    ),
    (
        (
            "no credentials cache",
            "no kerberos credentials",
            "credentials cache file",
            "can't find client principal",
            "no credentials were supplied",
        ),
        "there is no Kerberos ticket and no password",
        (
            "Give {w}.password (by reference), or run kinit for {w}.username (or a keytab with "
            "KRB5_CLIENT_KTNAME) for the account running the agent."
        ),
    ),
)


def cause(text: str) -> tuple[str, str] | None:
    """(what went wrong, fix) for a Kerberos library message, or None if it is not one we
    recognise."""
    lowered = text.lower()
    for markers, what, fix in _CAUSES:  # first match wins: the server's name before the client's
        if any(re.search(marker, lowered) for marker in markers):
            return what, fix
    return None
