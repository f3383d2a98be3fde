"""PSRP for one WinRM shell: a psrpcore server runspace pool, its pipelines and their outboxes.

psrpcore decodes what the client sends and encodes what we answer; this module feeds it, runs the
command handler for each pipeline in a worker thread, and sorts psrpcore's single send queue into
one outbox per target (the pool, each pipeline), which Receive drains. Wire facts are from
/work/shared/reference/psrp-wsman-notes.md ("the notes").
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from psrpcore import (
    CreatePipelineEvent,
    EndOfPipelineInputEvent,
    GetAvailableRunspacesEvent,
    PipelineInputEvent,
    PSRPPayload,
    ResetRunspaceStateEvent,
    ServerPipeline,
    ServerRunspacePool,
    SetMaxRunspacesEvent,
    SetMinRunspacesEvent,
    StreamType,
)
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSInvocationState,
    PSObject,
    PSSecureString,
)

from agent.simulator.winrm.wsman import BAD_REQUEST, WSManFault

# Largest PSRP payload taken from psrpcore at once; a Receive packs several up to the envelope.
_PAYLOAD_BYTES = 32 * 1024


@dataclass
class CommandCall:
    """One command of a pipeline, exactly as the client sent it."""

    text: str  # script text (byte-for-byte) or command name
    is_script: bool
    parameters: list[tuple[str | None, Any]]  # (name, plain value); name None = positional
    parameter_types: list[str] = field(default_factory=list)  # .NET type of each value on the wire
    end_of_statement: bool = False


@dataclass(frozen=True)
class SecureText:
    """A SecureString value, decrypted with the session key; its repr hides it."""

    value: str = field(repr=False)


@dataclass
class Invocation:
    shell_id: str
    pipeline_id: str
    commands: list[CommandCall]
    input: list[Any]
    username: str


@dataclass
class InvocationResult:
    output: list[Any] = field(default_factory=list)  # plain str/int/bool/dict/list/None
    errors: list[str] = field(default_factory=list)  # non-terminating error records
    failed: str | None = None  # end the pipeline as Failed with this message
    delay_s: float = 0.0  # simulate a slow cmdlet (stop() cuts it short)
    # The terminating error record of a Failed pipeline, as PowerShell would fill it in
    # (e.g. "CommandNotFoundException" / ObjectNotFound for an unknown command).
    failed_error_id: str = "SimulatedFailure"
    failed_category: str = "NotSpecified"  # an ErrorCategory member name
    failed_reason: str = "RuntimeException"  # the exception's type name


class CommandHandler(Protocol):
    def handle(self, invocation: Invocation) -> InvocationResult: ...


@dataclass
class LoggedInvocation:
    """What the endpoint saw of one pipeline and how it ended (tests inspect these)."""

    invocation: Invocation
    configuration: str  # the PowerShell configuration name of the shell's resource URI
    state: str = "Running"  # Running, Completed, Failed, Stopped, Abandoned
    started: float = field(default_factory=time.time)
    duration_ms: float | None = None
    outputs: int = 0
    errors: int = 0
    failed: str | None = None


class _Pool(ServerRunspacePool):
    """pypsrp 0.9.1 sends the call id of SET_MAX/MIN_RUNSPACES as ``CI``; psrpcore 0.3.1 reads
    ``ci`` (notes, pitfall 2). Copy it before psrpcore looks."""

    def _process_SetMaxRunspaces(self, event: SetMaxRunspacesEvent) -> None:
        _copy_ci(event)
        super()._process_SetMaxRunspaces(event)

    def _process_SetMinRunspaces(self, event: SetMinRunspacesEvent) -> None:
        _copy_ci(event)
        super()._process_SetMinRunspaces(event)


def _copy_ci(event: Any) -> None:
    obj = event._ps_object
    if getattr(obj, "ci", None) is None and getattr(obj, "CI", None) is not None:
        obj.ci = obj.CI


def plain(value: Any) -> Any:
    """A deserialized CLIXML value as plain Python (str, int, bool, float, dict, list, …)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, uuid.UUID):
        return uuid.UUID(int=value.int)
    if isinstance(value, dt.datetime):
        return dt.datetime.fromtimestamp(value.timestamp(), value.tzinfo)
    if isinstance(value, PSSecureString):
        return SecureText(str(value.decrypt()))
    if isinstance(value, PSObject):  # a custom object: its properties by name
        props = list(value.PSObject.adapted_properties) + list(value.PSObject.extended_properties)
        return {p.name: plain(p.get_value(value)) for p in props}
    return value


def type_name(value: Any) -> str:
    """The .NET type the client sent a value as (for the invocation log)."""
    if value is None:
        return "$null"
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, PSObject):
        names = value.PSObject.type_names
        if names:  # psrpcore marks types it does not rehydrate as "Deserialized.<name>"
            return str(names[0]).removeprefix("Deserialized.")
    return type(value).__name__


@dataclass
class _Run:
    pipeline: ServerPipeline
    command_id: str
    logged: LoggedInvocation | None = None
    input: list[Any] = field(default_factory=list)
    started: bool = False
    finished: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)


class PsrpShell:
    """One WinRM shell = one runspace pool. All psrpcore state is guarded by ``_cond``."""

    def __init__(
        self,
        shell_id: str,
        resource_uri: str,
        username: str,
        handler: CommandHandler,
        record: Callable[[LoggedInvocation], None],
        extra_delay: Callable[[], float],
        on_error: Callable[[str], None],
    ) -> None:
        self.shell_id = shell_id
        self.resource_uri = resource_uri
        self.configuration = resource_uri.rsplit("/", 1)[-1]
        self.username = username
        self.created = time.monotonic()
        self.last_activity = self.created
        self.closed = False
        self._handler = handler
        self._record = record
        self._extra_delay = extra_delay
        self._on_error = on_error
        self._pool = _Pool()
        self._cond = threading.Condition()
        self._outbox: dict[uuid.UUID | None, deque[bytes]] = {}
        self._runs: dict[uuid.UUID, _Run] = {}

    # -- input from the client -------------------------------------------------------------

    def open(self, creation: bytes) -> None:
        """Feed creationXml (SESSION_CAPABILITY + INIT_RUNSPACEPOOL); the pool then queues
        SessionCapability, ApplicationPrivateData and RunspacePoolState Opened (notes)."""
        with self._cond:
            self._feed(creation, None)

    def command(self, command_id: str, first_fragment: bytes) -> None:
        pid = _uuid(command_id)
        with self._cond:
            self._check_open()
            # The pipeline must exist before its CREATE_PIPELINE is fed (notes, "Command").
            self._runs[pid] = _Run(ServerPipeline(self._pool, pid), command_id)
            self._feed(first_fragment, pid)

    def send(self, command_id: str | None, data: bytes) -> None:
        with self._cond:
            self._check_open()
            self._feed(data, _uuid(command_id) if command_id else None)

    def receive(
        self, command_id: str | None, wait_s: float, budget: int
    ) -> tuple[list[bytes], bool]:
        """Return (PSRP payloads, pipeline done); with nothing to send within ``wait_s`` raise
        OperationTimeout, which pypsrp's poll retries (notes, "Receive")."""
        key = _uuid(command_id) if command_id else None
        deadline = time.monotonic() + wait_s
        with self._cond:
            while True:
                self._check_open()
                box = self._outbox.get(key)
                run = self._runs.get(key) if key else None
                if box:
                    break
                if key is not None and (run is None or run.finished):
                    return [], True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WSManFault.timeout()
                self._cond.wait(remaining)
            chunks: list[bytes] = []
            size = 0
            while box and (not chunks or size + len(box[0]) <= budget):
                chunk = box.popleft()
                chunks.append(chunk)
                size += len(chunk)
            done = key is not None and run is not None and run.finished and not box
            self.last_activity = time.monotonic()
            return chunks, done

    def signal(self, command_id: str | None, *, terminate: bool) -> None:
        """ctrl_c (from ``PowerShell.stop()``) stops the pipeline; Terminate (from
        ``PowerShell.close()``) forgets it."""
        if not command_id:
            return
        key = _uuid(command_id)
        with self._cond:
            self._check_open()
            run = self._runs.get(key)
            if run is None:
                return
            if run.pipeline.state == PSInvocationState.Running:
                run.cancel.set()
                run.pipeline.stop()  # queues PipelineState Stopped for a client that still reads
                self._finish(run, "Stopped")
            elif not run.finished:
                run.cancel.set()
                self._finish(run, "Abandoned")
            if terminate:
                self._runs.pop(key, None)
                self._pool.pipeline_table.pop(key, None)
                self._outbox.pop(key, None)
            self._drain()

    def close(self) -> None:
        """Delete (``RunspacePool.close()``) or a dropped shell: stop everything, wake waiters."""
        with self._cond:
            self.closed = True
            for run in self._runs.values():
                run.cancel.set()
                if not run.finished:
                    self._finish(run, "Abandoned")
            self._runs.clear()
            self._outbox.clear()
            self._cond.notify_all()

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise WSManFault.unknown_shell(self.shell_id)

    def _feed(self, data: bytes, pid: uuid.UUID | None) -> None:
        self.last_activity = time.monotonic()
        self._pool.receive_data(PSRPPayload(data, StreamType.default, pid))
        while (event := self._pool.next_event()) is not None:
            self._on_event(event)
        self._drain()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, CreatePipelineEvent):
            run = self._runs[event.pipeline_id]
            if run.pipeline.metadata is not None and getattr(
                run.pipeline.metadata, "no_input", True
            ):
                self._start(run)
        elif isinstance(event, PipelineInputEvent):
            self._runs[event.pipeline_id].input.append(plain(event.data))
        elif isinstance(event, EndOfPipelineInputEvent):
            run = self._runs[event.pipeline_id]
            if not run.started:
                self._start(run)
        elif isinstance(
            event, SetMaxRunspacesEvent | SetMinRunspacesEvent | ResetRunspaceStateEvent
        ):
            self._pool.runspace_availability_response(event.ci, True)
        elif isinstance(event, GetAvailableRunspacesEvent):
            self._pool.runspace_availability_response(event.ci, max(self._pool.max_runspaces, 1))

    def _start(self, run: _Run) -> None:
        run.started = True
        metadata = run.pipeline.metadata
        commands = [
            CommandCall(
                text=str(cmd.command_text),
                is_script=bool(cmd.is_script),
                parameters=[(None if n is None else str(n), plain(v)) for n, v in cmd.parameters],
                parameter_types=[type_name(v) for _, v in cmd.parameters],
                end_of_statement=bool(cmd.end_of_statement),
            )
            for cmd in getattr(metadata, "commands", [])
        ]
        invocation = Invocation(self.shell_id, run.command_id, commands, run.input, self.username)
        run.logged = LoggedInvocation(invocation, self.configuration)
        self._record(run.logged)
        run.pipeline.start()
        # A worker thread, so Receive can answer OperationTimeout and stop() can interrupt
        # (notes, pitfall 7).
        threading.Thread(
            target=self._execute, args=(run, invocation), name=f"psrp-{run.command_id}", daemon=True
        ).start()

    def _execute(self, run: _Run, invocation: Invocation) -> None:
        try:
            result = self._handler.handle(invocation)
        except Exception as exc:  # a bug in a handler: fail the pipeline, record for tests
            self._on_error(f"handler: {exc!r}")
            result = InvocationResult(failed=f"Simulator handler error: {exc!r}")
        delay = max(0.0, result.delay_s) + max(0.0, self._extra_delay())
        if delay and run.cancel.wait(delay):
            return  # stopped meanwhile
        with self._cond:
            if run.cancel.is_set() or self.closed:
                return
            try:
                self._publish(run, result)
            except Exception as exc:  # e.g. an output psrpcore cannot serialize
                self._on_error(f"publish: {exc!r}")
                if run.pipeline.state == PSInvocationState.Running:
                    self._fail(run, f"Simulator error: {exc!r}")
            self._drain()

    def _publish(self, run: _Run, result: InvocationResult) -> None:
        pipeline = run.pipeline
        for value in result.output:
            pipeline.write_output(value)
        for message in result.errors:
            pipeline.write_error(
                NETException(Message=message),
                ErrorCategoryInfo(Category=ErrorCategory.NotSpecified, Reason="SimulatedError"),
                fully_qualified_error_id="SimulatedError",
            )
        if run.logged is not None:
            run.logged.outputs = len(result.output)
            run.logged.errors = len(result.errors)
        if result.failed is not None:
            self._fail(
                run,
                result.failed,
                error_id=result.failed_error_id,
                category=result.failed_category,
                reason=result.failed_reason,
            )
        else:
            pipeline.complete()
            self._finish(run, "Completed")

    def _fail(
        self,
        run: _Run,
        message: str,
        *,
        error_id: str = "SimulatedFailure",
        category: str = "NotSpecified",
        reason: str = "RuntimeException",
    ) -> None:
        # psrpcore has no public "fail": use its state change with the terminating error record,
        # which pypsrp turns into had_errors=True and one streams.error entry (notes, pitfall 6).
        record = ErrorRecord(
            Exception=NETException(Message=message),
            CategoryInfo=ErrorCategoryInfo(Category=ErrorCategory[category], Reason=reason),
            FullyQualifiedErrorId=error_id,
        )
        run.pipeline._change_state(PSInvocationState.Failed, record)
        if run.logged is not None:
            run.logged.failed = message
        self._finish(run, "Failed")

    def _finish(self, run: _Run, state: str) -> None:
        run.finished = True
        if run.logged is not None:
            run.logged.state = state
            run.logged.duration_ms = (time.time() - run.logged.started) * 1000

    def _drain(self) -> None:
        """psrpcore has one send queue: sort it into per-target outboxes (notes, "Receive")."""
        while (payload := self._pool.data_to_send(_PAYLOAD_BYTES)) is not None:
            self._outbox.setdefault(payload.pipeline_id, deque()).append(payload.data)
        self._cond.notify_all()


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise WSManFault(BAD_REQUEST, f"The CommandId {text!r} is not valid.") from None
