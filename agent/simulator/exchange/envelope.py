"""New-EbEnvelope / Invoke-EbCmdlet / Write-EbEnvelope / Get-EbString / Test-EbProperties of
the module, as the simulated bridge host's function handlers use them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.exchange.contract import ModuleContract
from agent.simulator.exchange import cmdlets
from agent.simulator.exchange.cmdlets import Session
from agent.simulator.exchange.errors import CmdletError, categorize


@dataclass
class Envelope:
    """New-EbEnvelope / Invoke-EbCmdlet / Write-EbEnvelope."""

    op: str
    module: ModuleContract
    session: Session
    items: list[Any] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    next: str | None = None  # resume token of a paged export

    def add_error(self, label: str, category: str, message: str) -> None:
        self.errors.append({"cmdlet": label, "category": category, "message": message})
        self.failed.append(label)

    def invoke(
        self,
        name: str,
        parameters: dict[str, Any],
        label: str = "",
        runner: Callable[[], list[Any]] | None = None,
    ) -> list[Any] | None:
        label = label or name
        # The allow-list is case-insensitive and so is command lookup: run the real spelling.
        canonical = {c.lower(): c for c in self.module.allowlist}.get(name.lower())
        if canonical is None:
            self.add_error(label, "Other", "cmdlet not on the allow-list")
            return None
        try:
            result = runner() if runner is not None else self.run(canonical, parameters)
        except CmdletError as error:
            mdo = list(self.module.tables.get("EbMdoCmdlets", []))
            self.add_error(label, categorize(error, name, mdo), error.message)
            return None
        self.succeeded.append(label)
        return result

    def run(self, name: str, parameters: dict[str, Any]) -> list[Any]:
        return cmdlets.run(self.session, name, parameters)

    def text(self) -> str:
        document = {
            "schema": 1,
            "op": self.op,
            "ok": not self.failed,
            "items": self.items,
            "errors": self.errors,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "next": self.next,
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _string(obj: Any, key: str) -> str | None:
    """Get-EbString: the property as [string], or null."""
    if not isinstance(obj, dict) or obj.get(key) is None:
        return None
    value = obj[key]
    return ("True" if value else "False") if isinstance(value, bool) else str(value)


def _test_properties(
    env: Envelope, label: str, allowed: list[str], properties: dict[str, Any]
) -> dict[str, Any] | None:
    """Test-EbProperties; on success the properties with their parameter spelling (PowerShell
    binds splatted keys case-insensitively)."""
    canonical = {a.lower(): a for a in allowed}
    bad = [str(k) for k in properties if str(k).lower() not in canonical]
    if bad:
        env.add_error(label, "Other", "properties not allowed: " + ", ".join(bad))
        return None
    return {canonical[str(k).lower()]: v for k, v in properties.items()}
