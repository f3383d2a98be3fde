"""The simulated WinRM endpoint of a "bridge host": POST /wsman, PSRP shells, authenticated
as auth.py says (Basic, Negotiate/NTLM, client certificate).

Mount it with ``register_winrm_routes(router, auth=..., handler=...)`` on the shared HTTPS
server. Every pipeline the client runs reaches ``handler.handle(Invocation)`` and is recorded in
``endpoint.log``. Wire facts are from /work/shared/reference/psrp-wsman-notes.md ("the notes").
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from spnego.exceptions import SpnegoError

from agent.simulator.httpserver import Request, Response, Router
from agent.simulator.winrm import sealing, wsman
from agent.simulator.winrm.auth import WinRMAuth
from agent.simulator.winrm.psrp import CommandHandler, LoggedInvocation, PsrpShell
from agent.simulator.winrm.wsman import WSManFault, WSManRequest

_SOAP = {"Content-Type": "application/soap+xml;charset=UTF-8"}


class WinRMEndpoint:
    """Shells by id, fault hooks and the invocation log."""

    def __init__(
        self,
        auth: WinRMAuth,
        handler: CommandHandler,
        log: list[Any] | None = None,
        *,
        max_envelope_kb: int = 500,
        max_receive_wait_s: float | None = None,
    ) -> None:
        self.auth = auth
        self.handler = handler
        self.log: list[Any] = log if log is not None else []
        self.errors: list[str] = []  # exceptions inside the endpoint (each answered with a fault)
        self.call_delay_s = 0.0  # fault hook: added to every pipeline's own delay
        self.max_envelope_kb = max_envelope_kb
        # Real WinRM waits up to the client's OperationTimeout; a cap makes timeouts quick.
        self.max_receive_wait_s = max_receive_wait_s
        self.stats: dict[str, int] = {"requests": 0, "operation_timeouts": 0, "unknown_shell": 0}
        self._shells: dict[str, PsrpShell] = {}
        self._lock = threading.Lock()

    # -- fault hooks ---------------------------------------------------------------------------

    @property
    def reject_auth(self) -> bool:
        """Every request gets 401 (as if the account were locked out)."""
        return self.auth.reject_all

    @reject_auth.setter
    def reject_auth(self, value: bool) -> None:
        self.auth.reject_all = value

    def drop_shell(self, shell_id: str) -> bool:
        """Forget a shell, as a restarted bridge host would: its next request gets fault
        2150858843. Return whether it existed."""
        with self._lock:
            shell = self._shells.pop(shell_id.upper(), None)
        if shell is not None:
            shell.close()
        return shell is not None

    def drop_all(self) -> int:
        with self._lock:
            shells = list(self._shells.values())
            self._shells.clear()
        for shell in shells:
            shell.close()
        return len(shells)

    def set_delay(self, seconds: float) -> None:
        self.call_delay_s = seconds

    def shell_ids(self) -> list[str]:
        with self._lock:
            return list(self._shells)

    # -- HTTP ------------------------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        self._count("requests")
        outcome = self.auth.authenticate(request)
        if outcome.username is None:
            # pypsrp raises AuthenticationError on a final 401 (notes, "Wire facts").
            assert outcome.challenge is not None
            return outcome.challenge
        username = outcome.username
        context = request.connection.get("context")
        content_type = request.headers.get("content-type", "")
        sealed = sealing.is_sealed(content_type)
        body, protocol = request.body, ""
        if sealed:
            try:
                protocol = sealing.protocol_of(content_type)
                # The context of the auth this connection used, for that auth's protocol.
                allowed = sealing.PROTOCOLS.get(request.connection.get("method", ""), ())
                if context is None or protocol not in allowed:
                    raise sealing.SealingError(f"no {protocol} context on this connection")
                body = sealing.unseal(context, body)
            except (sealing.SealingError, SpnegoError) as exc:
                return Response(400, str(exc).encode(), {"Content-Type": "text/plain"})
        if not body:  # the empty POST a sealing client authenticates with
            return Response(200, b"", {"Content-Length": "0", **outcome.headers})
        message_id = ""
        try:
            parsed = wsman.parse_request(body)
            message_id = parsed.message_id
            note: dict[str, Any] = {
                "wsman": parsed.action.rsplit("/", 1)[-1],
                "auth": outcome.method + ("+sealed" if sealed else ""),
            }
            if sealed:
                note["sealed_parts"] = [sealing.parts(request.body)]
            reply = self._dispatch(parsed, username, request, note)
            response = Response(200, reply, {**_SOAP, **outcome.headers}, note=note)
        except WSManFault as fault:
            if fault.code == wsman.OPERATION_TIMEOUT:
                self._count("operation_timeouts")
            elif fault.code == wsman.UNKNOWN_SHELL:
                self._count("unknown_shell")
            response = self._fault(message_id, fault)
        except Exception as exc:  # a simulator bug: a fault the client can read, recorded
            self.errors.append(repr(exc))
            response = self._fault(
                message_id, WSManFault(wsman.INTERNAL_ERROR, f"Simulator error: {exc!r}")
            )
        if sealed:  # the answer goes back sealed too, faults included
            content_type, response.body = sealing.seal(context, response.body, protocol)
            response.headers["Content-Type"] = content_type
            response.note.setdefault("sealed_parts", []).append(sealing.parts(response.body))
        return response

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] = self.stats.get(name, 0) + 1

    def _fault(self, message_id: str, fault: WSManFault) -> Response:
        # WinRM answers faults with HTTP 500; pypsrp then parses the SOAP fault body.
        return Response(
            500, wsman.fault(message_id, fault), dict(_SOAP), note={"fault": fault.code}
        )

    def _dispatch(
        self, req: WSManRequest, username: str, http: Request, note: dict[str, Any]
    ) -> bytes:
        if req.action == wsman.CREATE:
            return self._create(req, username, http)
        if req.action == wsman.GET and req.shell_id is None:
            if req.resource_uri.startswith(wsman.CONFIG_URI):
                return wsman.config_reply(req, self.max_envelope_kb)
            raise WSManFault(wsman.BAD_REQUEST, f"Get is not supported for {req.resource_uri}.")
        shell = self._shell(req.shell_id)
        if req.action == wsman.COMMAND:
            command_id, fragment = wsman.parse_command(req.body)
            shell.command(command_id, fragment)
            return wsman.command_reply(req, command_id)
        if req.action == wsman.SEND:
            for stream in wsman.parse_send(req.body):
                shell.send(stream.command_id, stream.data)
            return wsman.empty_reply(req, "SendResponse")
        if req.action == wsman.RECEIVE:
            target = wsman.parse_receive(req.body)
            wait = req.operation_timeout_s
            if self.max_receive_wait_s is not None:
                wait = min(wait, self.max_receive_wait_s)
            budget = wsman.payload_budget(req.max_envelope_size)
            chunks, done = shell.receive(target, wait, budget)
            note.update(payloads=len(chunks), bytes=sum(len(c) for c in chunks))
            return wsman.receive_reply(req, target, chunks, done)
        if req.action == wsman.SIGNAL:
            signalled, code = wsman.parse_signal(req.body)
            shell.signal(signalled, terminate=code == wsman.SIGNAL_TERMINATE)
            return wsman.empty_reply(req, "SignalResponse")
        if req.action == wsman.DELETE:
            with self._lock:
                self._shells.pop(shell.shell_id.upper(), None)
            shell.close()
            return wsman.empty_reply(req)
        if req.action == wsman.GET:
            return wsman.reply(req, wsman.shell_element(self._shell_info(shell)))
        raise WSManFault(wsman.BAD_REQUEST, f"The action {req.action} is not supported.")

    def _create(self, req: WSManRequest, username: str, http: Request) -> bytes:
        if not req.resource_uri.startswith(wsman.POWERSHELL_URI_PREFIX):
            raise WSManFault(
                wsman.BAD_REQUEST, f"The resource URI {req.resource_uri} is not supported."
            )
        requested_id, creation = wsman.parse_create(req.body)
        shell_id = (requested_id or "").upper() or str(uuid.uuid4()).upper()
        shell = PsrpShell(
            shell_id,
            req.resource_uri,
            username,
            self.handler,
            record=self.log.append,
            extra_delay=lambda: self.call_delay_s,
            on_error=self.errors.append,
        )
        shell.open(creation)
        with self._lock:
            self._shells[shell_id] = shell
        info = self._shell_info(shell, client_ip=http.client)
        return wsman.create_reply(req, f"{http.base_url}/wsman", shell_id, info)

    def _shell(self, shell_id: str | None) -> PsrpShell:
        with self._lock:
            shell = self._shells.get((shell_id or "").upper())
        if shell is None:
            raise WSManFault.unknown_shell(shell_id or "")
        return shell

    def _shell_info(self, shell: PsrpShell, client_ip: str = "127.0.0.1") -> dict[str, str]:
        run_s = int(time.monotonic() - shell.created)
        idle_s = int(time.monotonic() - shell.last_activity)
        return {
            "ShellId": shell.shell_id,
            "ResourceUri": shell.resource_uri,
            "Owner": shell.username,
            "ClientIP": client_ip,
            "IdleTimeOut": "PT7200.000S",
            "InputStreams": "stdin pr",
            "OutputStreams": "stdout",
            "State": "Disconnected" if shell.closed else "Connected",
            "ShellRunTime": f"P0DT0H0M{run_s}S",
            "ShellInactivity": f"P0DT0H0M{idle_s}S",
        }


def register_winrm_routes(
    router: Router,
    *,
    auth: WinRMAuth,
    handler: CommandHandler,
    log: list[Any] | None = None,
    max_receive_wait_s: float | None = None,
) -> WinRMEndpoint:
    """Mount the WinRM endpoint on ``POST /wsman``; ``auth`` holds the users and methods."""
    endpoint = WinRMEndpoint(auth, handler, log, max_receive_wait_s=max_receive_wait_s)
    router.add("POST", "/wsman", endpoint)
    return endpoint


__all__ = ["LoggedInvocation", "WinRMEndpoint", "register_winrm_routes"]
