"""``PsrpExchangeBridge``: the ExchangeBridge over WinRM/PSRP (pypsrp) to a bridge host.

One session = one ``RunspacePool`` with one runspace (the module and the Exchange connection
live in that runspace), opened lazily at the first call: load the module with the protocol's
constant loader script (module text as a typed parameter), check the digest the host computed,
``Connect-EbExchange`` once, then one pipeline per call. A dropped session (the host restarted,
the shell was reaped) is reopened and an idempotent read retried once. The endpoint (URL, auth,
transport errors) is psrp_endpoint.py; running and decoding one pipeline, psrp_pipeline.py.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import requests
from pypsrp.complex_objects import PSCredential, RunspacePoolState
from pypsrp.exceptions import WinRMError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue

from agent.config import ExchangeConfig, TenantConfig
from agent.errors import BridgeModuleMissing, ExchangeError
from agent.exchange.bridge import ExchangeBridge
from agent.exchange.outcomes import error_for
from agent.exchange.protocol import LOADER_SCRIPT, Envelope, loader_parameters, module_sha256
from agent.exchange.psrp_endpoint import BridgeEndpoint, SessionLost
from agent.exchange.psrp_pipeline import OPS, decode, pipeline, run
from agent.secrets import resolve_secret

log = logging.getLogger("entra_backup.exchange")


class PsrpExchangeBridge(ExchangeBridge):
    def __init__(
        self,
        tenant: TenantConfig,
        *,
        app_id: str | None = None,
        include_security_compliance: bool = False,
    ) -> None:
        super().__init__()
        self.endpoint = BridgeEndpoint(tenant)
        self.config: ExchangeConfig = self.endpoint.config
        self.group_page_size = self.config.group_page_size
        self.tenant = tenant
        self.app_id = app_id or tenant.app.client_id
        self.include_security_compliance = include_security_compliance
        self.host = self.endpoint.host
        self.where = self.endpoint.where
        self._lock = threading.RLock()
        self._pool: RunspacePool | None = None
        # Why the session could not be opened: later calls of this job fail the same way
        # at once instead of dialling an unreachable host again.
        self._broken: ExchangeError | None = None
        self.loaded: dict[str, Any] = {}  # what the loader reported (versions, functions)

    # -- session -------------------------------------------------------------------------------

    def warnings(self) -> list[str]:
        return self.endpoint.warnings()

    def open(self) -> None:
        """Open the pool, load the module, connect to Exchange (idempotent)."""
        with self._lock:
            if self._pool is not None:
                return
            if self._broken is not None:
                raise self._broken
            for warning in self.warnings():
                log.warning("%s", warning)
            try:
                self.endpoint.check_available()
                pool = RunspacePool(self.endpoint.wsman(), min_runspaces=1, max_runspaces=1)
                self._transport(pool.open)
                self._pool = pool
                self._load()
                self._connect()
            except ExchangeError as exc:
                self._discard()
                self._broken = exc
                raise
            except BaseException:
                self._discard()
                raise

    def _load(self) -> None:
        assert self._pool is not None
        ps = pipeline(self._pool, loader_parameters(), script=LOADER_SCRIPT)
        envelope = self._run(ps, "the module loader", "load")
        if envelope.errors:
            raise error_for(envelope.errors[0], self.host)
        item = envelope.items[0] if envelope.items and isinstance(envelope.items[0], dict) else {}
        if item.get("sha256") != module_sha256():
            raise BridgeModuleMissing(
                f"The bridge host {self.host} did not load the ps_scripts module intact "
                "(its digest differs from the agent's copy).",
                "Check for a proxy or endpoint configuration rewriting WinRM traffic; the module "
                "travels as a parameter and must arrive byte for byte.",
            )
        self.loaded = item

    def _connect(self) -> None:
        cfg = self.config
        params: dict[str, Any] = {}
        if cfg.connect == "service_account":
            account = self.tenant.service_account
            assert account is not None  # the config loader insists
            password = resolve_secret(account.password, "the service account password")
            self._exchange_keys()
            params["Credential"] = PSCredential(
                username=account.username, password=password.reveal()
            )
        else:
            params.update(AppId=self.app_id, Organization=cfg.organization)
            if cfg.connect == "certificate_thumbprint":
                params["CertificateThumbprint"] = cfg.certificate_thumbprint
            else:
                secret = resolve_secret(
                    cfg.certificate_password, f"{self.where}.certificate_password"
                )
                self._exchange_keys()
                params["CertificateFilePath"] = cfg.certificate_file
                params["CertificatePassword"] = TaggedValue(tag="SS", value=secret.reveal())
        if self.include_security_compliance:
            params["IncludeSecurityCompliance"] = True
        envelope = self._invoke("Connect-EbExchange", params)
        if envelope.errors:
            raise error_for(envelope.errors[0], self.host, connecting=True)

    def _exchange_keys(self) -> None:
        assert self._pool is not None
        self._transport(self._pool.exchange_keys)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            if pool is not None:
                try:
                    pool.close()
                except (WinRMError, requests.RequestException, OSError) as exc:
                    log.info("Closing the bridge session failed (ignored): %s", exc)

    def _discard(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                if pool.is_alive():  # a dropped shell is marked closed; nothing to delete
                    pool.close()
            except (WinRMError, requests.RequestException, OSError):
                pass

    def _transport(self, action: Any) -> Any:
        return self.endpoint.transport(action, self._session_open)

    def _session_open(self) -> bool:
        return self._pool is not None and self._pool.state == RunspacePoolState.OPENED

    # -- calls ---------------------------------------------------------------------------------

    def call(self, function: str, parameters: dict[str, Any], *, idempotent: bool) -> Envelope:
        with self._lock:
            started = time.monotonic()
            self.stats.calls += 1
            self.stats.by_function[function] = self.stats.by_function.get(function, 0) + 1
            try:
                for attempt in (0, 1):
                    try:
                        self.open()
                        return self._invoke(function, parameters)
                    except SessionLost as lost:
                        self._discard()
                        if attempt or not idempotent:
                            raise ExchangeError(
                                f"The session on the bridge host {self.host} was lost during "
                                f"{function} ({lost}).",
                                "Run the backup again; if it keeps happening, check the bridge "
                                "host's WinRM limits (MaxShellsPerUser, IdleTimeout) and event log.",
                            ) from None
                        log.warning("Bridge session lost (%s); reconnecting once.", lost)
                        self.stats.reconnects += 1
                        self.stats.retries += 1
                raise AssertionError("unreachable")
            finally:
                self.stats.seconds += time.monotonic() - started

    def _invoke(self, function: str, parameters: dict[str, Any]) -> Envelope:
        assert self._pool is not None
        return self._run(
            pipeline(self._pool, parameters, function=function), function, OPS[function]
        )

    def _run(self, ps: PowerShell, what: str, op: str) -> Envelope:
        run(ps, what, self.endpoint, self._transport)
        return decode(list(ps.output), what, op, self._malformed)


__all__ = ["PsrpExchangeBridge"]
