"""Shape of simulated Exchange objects as the module's ConvertTo-EbPlain writes them.

Dates are ISO-8601 UTC with seven fractional digits and 'Z' (.NET "o" format after
ToUniversalTime), identities and enums are strings, multi-valued properties are arrays.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any


def iso_o(ts: float) -> str:
    """A timestamp as PowerShell's ``[datetime].ToUniversalTime().ToString('o')``."""
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def stable_guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "entra-backup-simulator/exchange/" + "/".join(parts)))


@dataclass
class OrgContext:
    """What default settings are derived from: the tenant's names, domains and clock."""

    tenant_id: str
    domain: str  # contoso.onmicrosoft.com
    created: float  # tenant creation time (epoch seconds)
    domains: list[str] = field(default_factory=list)  # accepted domains, default first

    @property
    def org_name(self) -> str:
        return self.domain.split(".")[0]

    def dn(self, container: str, name: str) -> str:
        return (
            f"CN={name},CN={container},CN=Configuration,CN={self.domain},"
            "CN=ConfigurationUnits,DC=EURPR01A001,DC=prod,DC=outlook,DC=com"
        )


def settings_object(
    ctx: OrgContext,
    cmdlet: str,
    name: str,
    props: dict[str, Any],
    *,
    identity: str | None = None,
    container: str = "Transport Settings",
) -> dict[str, Any]:
    """One settings object: identity columns first, then the cmdlet's own properties."""
    stamp = iso_o(ctx.created)
    base: dict[str, Any] = {
        "Identity": identity if identity is not None else name,
        "Name": name,
        "Guid": stable_guid(ctx.tenant_id, cmdlet, name),
        "Id": identity if identity is not None else name,
        "DistinguishedName": ctx.dn(container, name),
        "WhenChanged": stamp,
        "WhenCreated": stamp,
        "WhenChangedUTC": stamp,
        "WhenCreatedUTC": stamp,
    }
    base.update(props)
    return base


def touch(obj: dict[str, Any], ts: float) -> None:
    stamp = iso_o(ts)
    for key in ("WhenChanged", "WhenChangedUTC"):
        if key in obj:
            obj[key] = stamp
