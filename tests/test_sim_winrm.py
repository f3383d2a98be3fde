"""The simulated WinRM/PSRP endpoint against the unmodified pypsrp client over real HTTPS:
open/run/close, script text and typed parameters as sent, pipeline input, large outputs, error
streams vs Failed pipelines, auth, dropped shells, parallel pools, is_alive, slow pipelines
(OperationTimeout polling) and stop()."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pypsrp.client import Client
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.wsman import WSMan

from agent.simulator import ca
from agent.simulator.httpserver import HttpsServer, Router
from agent.simulator.winrm import (
    OPERATION_TIMEOUT,
    UNKNOWN_SHELL,
    Invocation,
    InvocationResult,
    LoggedInvocation,
    WinRMAuth,
    WinRMEndpoint,
    register_winrm_routes,
)

USER, PASSWORD = "svc-bridge@contoso.example", "Bridge-Pa55!"
MODULE = "function Export-Something {\n  param([string]$Name)\n  'it''s' | ConvertTo-Json\n}\n"
INJECTION = "x'; Remove-Item C:\\ -Recurse #"


class Handler:
    """A test CommandHandler: the last command's name picks the behaviour."""

    def __init__(self) -> None:
        self.seen: list[Invocation] = []
        self.lock = threading.Lock()

    def handle(self, invocation: Invocation) -> InvocationResult:
        with self.lock:
            self.seen.append(invocation)
        last = invocation.commands[-1]
        params = dict(last.parameters)
        name = last.text
        if name == "Get-Many":
            return InvocationResult(
                output=[json.dumps({"i": i}) for i in range(int(params["Count"]))]
            )
        if name == "Get-Big":
            return InvocationResult(output=["x" * int(params["Size"])])
        if name == "Echo-Input":
            return InvocationResult(output=[json.dumps(invocation.input)])
        if name == "Get-WithErrors":
            return InvocationResult(
                output=["partial"], errors=["Mailbox 'a' not found.", "Mailbox 'b' not found."]
            )
        if name == "Get-Failing":
            return InvocationResult(failed="The term 'Get-Failing' failed: access denied.")
        if name == "Get-Slow":
            return InvocationResult(output=["slow done"], delay_s=float(params.get("Seconds", 2)))
        if name == "Get-Thread":
            return InvocationResult(output=[f"{params['Pool']}:{params['Index']}"])
        return InvocationResult(
            output=[json.dumps({"command": name, "parameters": len(last.parameters)})]
        )


@dataclass
class Env:
    server: HttpsServer
    endpoint: WinRMEndpoint
    handler: Handler
    log: list[LoggedInvocation]
    ca_path: Path

    def wsman(self, password: str = PASSWORD, auth: str = "basic", **kwargs: Any) -> WSMan:
        # HTTPS + Basic: encryption stays off ("auto" and "never" both mean no message
        # encryption over TLS); no_proxy so an environment proxy never intercepts loopback.
        return WSMan(
            "127.0.0.1",
            port=self.server.port,
            ssl=True,
            path="wsman",
            auth=auth,
            username=USER,
            password=password,
            cert_validation=str(self.ca_path),
            encryption="never",
            no_proxy=True,
            **kwargs,
        )

    def assert_clean(self) -> None:
        assert self.server.errors == []
        assert self.endpoint.errors == []


@pytest.fixture
def env(tls: ca.TlsMaterial, tmp_path: Path) -> Iterator[Env]:
    ca_path, _, _ = tls.write(tmp_path / "tls")
    router = Router()
    handler = Handler()
    log: list[LoggedInvocation] = []
    auth = WinRMAuth({USER: PASSWORD}, tmp_path / "ntlm-users", server_cert_pem=tls.cert_pem)
    endpoint = register_winrm_routes(router, auth=auth, handler=handler, log=log)
    server = HttpsServer(router, tls).start()
    try:
        yield Env(server, endpoint, handler, log, ca_path)
    finally:
        server.stop()


def run(pool: RunspacePool, cmdlet: str, **params: Any) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(cmdlet)
    for name, value in params.items():
        ps.add_parameter(name, value)
    ps.invoke()
    return ps


def test_open_run_run_close_and_timings(env: Env) -> None:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    pool = RunspacePool(env.wsman())
    pool.open()
    timings["open_ms"] = (time.perf_counter() - started) * 1000
    runs = []
    for i in range(20):
        started = time.perf_counter()
        ps = run(pool, "Get-Thing", Index=i)
        runs.append((time.perf_counter() - started) * 1000)
        assert ps.state == PSInvocationState.COMPLETED and not ps.had_errors
        assert json.loads(ps.output[0]) == {"command": "Get-Thing", "parameters": 1}
        ps.close()
    started = time.perf_counter()
    pool.close()
    timings["close_ms"] = (time.perf_counter() - started) * 1000
    timings["run_median_ms"] = sorted(runs)[len(runs) // 2]
    print("winrm round trips:", {k: round(v, 1) for k, v in timings.items()})
    assert timings["run_median_ms"] < 200  # generous: catches a Nagle-style stall, not jitter
    assert [entry.state for entry in env.log] == ["Completed"] * 20
    assert env.endpoint.shell_ids() == []  # Delete removed the shell
    env.assert_clean()


def test_script_text_and_parameter_values_arrive_exactly(env: Env) -> None:
    with RunspacePool(env.wsman()) as pool:
        ps = PowerShell(pool)
        ps.add_script(MODULE).add_statement()
        ps.add_cmdlet("Export-Something").add_parameter("Name", INJECTION)
        ps.invoke()
        assert not ps.had_errors
    (entry,) = env.log
    script, command = entry.invocation.commands
    assert script.is_script and script.text == MODULE and script.parameters == []
    assert script.end_of_statement
    assert not command.is_script and command.text == "Export-Something"
    assert command.parameters == [("Name", INJECTION)]
    assert command.parameter_types == ["System.String"]
    assert entry.invocation.username == USER
    assert entry.configuration == "Microsoft.PowerShell"
    assert env.handler.seen[0] is entry.invocation
    env.assert_clean()


def test_typed_parameters(env: Env) -> None:
    # pypsrp 0.9.1 serializes every Python int as I32 (an int beyond 32 bits fails in psrpcore,
    # as it would in PowerShell): callers pass large numbers as strings.
    values: dict[str, Any] = {
        "Text": "Zoë ✓ <b>&amp;",
        "Count": 42,
        "Enabled": True,
        "Disabled": False,
        "Names": ["alpha", "beta", ""],
        "Settings": {"Quota": "50 GB", "Retention": 30, "Nested": {"On": True}},
        "Missing": None,
    }
    with RunspacePool(env.wsman()) as pool:
        ps = PowerShell(pool).add_cmdlet("Set-Typed").add_parameters(values)
        ps.add_argument("positional")
        ps.invoke()
    command = env.log[0].invocation.commands[0]
    assert command.parameters == [*values.items(), (None, "positional")]
    for (_, value), (_, sent) in zip(command.parameters, [*values.items()], strict=False):
        assert type(value) is type(sent)
    assert command.parameter_types == [
        "System.String",
        "System.Int32",
        "System.Boolean",
        "System.Boolean",
        "System.Object[]",
        "System.Collections.Hashtable",
        "$null",
        "System.String",
    ]
    env.assert_clean()


def test_pipeline_input(env: Env) -> None:
    with RunspacePool(env.wsman()) as pool:
        ps = PowerShell(pool).add_cmdlet("Echo-Input")
        out = ps.invoke(input=["a", 2, {"k": "v"}])
    assert json.loads(out[0]) == ["a", 2, {"k": "v"}]
    assert env.log[0].invocation.input == ["a", 2, {"k": "v"}]
    env.assert_clean()


def test_outputs_of_every_plain_type(env: Env) -> None:
    class Plain:
        def handle(self, invocation: Invocation) -> InvocationResult:
            return InvocationResult(output=["s", 7, True, {"a": 1, "b": [1, "x"]}, ["l", 2]])

    env.endpoint.handler = Plain()
    with RunspacePool(env.wsman()) as pool:
        out = run(pool, "Get-Plain").output
    assert out == ["s", 7, True, {"a": 1, "b": [1, "x"]}, ["l", 2]]
    env.assert_clean()


def test_two_thousand_outputs(env: Env) -> None:
    with RunspacePool(env.wsman()) as pool:
        ps = run(pool, "Get-Many", Count=2000)
    assert [json.loads(o)["i"] for o in ps.output] == list(range(2000))
    assert env.log[0].outputs == 2000
    env.assert_clean()


def test_300_kb_string_split_across_fragments_and_receives(env: Env) -> None:
    size = 300 * 1024
    # pypsrp raises the default 150 KiB envelope to 500 KiB once the server speaks protocol
    # 2.3, so 300 KB fits one Receive as several PSRP fragments.
    with RunspacePool(env.wsman()) as pool:
        ps = run(pool, "Get-Big", Size=size)
    assert ps.output == ["x" * size]
    receives = [r.note for r in env.server.log.items() if r.note.get("wsman") == "Receive"]
    assert max(n["payloads"] for n in receives) >= 9  # 32 KiB payloads of fragments
    # A smaller envelope (not the default, so pypsrp keeps it) spreads it over several Receives.
    env.server.log.clear()
    with RunspacePool(env.wsman(max_envelope_size=128_000)) as pool:
        ps = run(pool, "Get-Big", Size=size)
    assert ps.output == ["x" * size]
    receives = [r.note for r in env.server.log.items() if r.note.get("wsman") == "Receive"]
    big = [n for n in receives if n["bytes"] > 32_000]
    assert len(big) >= 3 and all(n["bytes"] <= 128_000 * 3 // 4 for n in receives)
    env.assert_clean()


def test_error_records_vs_failed_pipeline(env: Env) -> None:
    with RunspacePool(env.wsman()) as pool:
        ps = run(pool, "Get-WithErrors")
        # Non-terminating errors: output and the error stream, had_errors False (notes, 6).
        assert ps.state == PSInvocationState.COMPLETED
        assert ps.had_errors is False
        assert ps.output == ["partial"]
        assert [str(e) for e in ps.streams.error] == [
            "Mailbox 'a' not found.",
            "Mailbox 'b' not found.",
        ]
        failed = run(pool, "Get-Failing")
        assert failed.state == PSInvocationState.FAILED
        assert failed.had_errors is True
        assert str(failed.streams.error[-1]) == "The term 'Get-Failing' failed: access denied."
        # The pool survives a failed pipeline.
        assert run(pool, "Get-Thing").output
    assert [e.state for e in env.log] == ["Completed", "Failed", "Completed"]
    assert env.log[1].failed == "The term 'Get-Failing' failed: access denied."
    env.assert_clean()


def test_wrong_password_and_reject_auth_give_401(env: Env) -> None:
    with pytest.raises(AuthenticationError):
        RunspacePool(env.wsman(password="wrong")).open()
    env.endpoint.reject_auth = True
    with pytest.raises(AuthenticationError):
        RunspacePool(env.wsman()).open()
    env.endpoint.reject_auth = False
    with RunspacePool(env.wsman()) as pool:
        assert run(pool, "Get-Thing").output
    assert [r.status for r in env.server.log.items()][:2] == [401, 401]
    env.assert_clean()


@pytest.mark.parametrize("auth", ["ntlm", "negotiate"])
def test_ntlm_authenticates_the_connection_once(env: Env, auth: str) -> None:
    with RunspacePool(env.wsman(auth=auth)) as pool:
        for _ in range(3):
            assert run(pool, "Get-Thing").output
    statuses = [r.status for r in env.server.log.items()]
    # One handshake: 401 offering Negotiate, 401 with the challenge, then the request carrying
    # the answer is served; the connection stays authenticated (WinRM's connection-based auth).
    assert statuses.count(401) == 2 and statuses[:3] == [401, 401, 200]
    assert env.log and all(entry.invocation.username == USER for entry in env.log)
    with pytest.raises(AuthenticationError):
        RunspacePool(env.wsman(password="wrong", auth=auth)).open()
    env.assert_clean()


def test_dropped_shell_faults_then_a_fresh_pool_works(env: Env) -> None:
    conn = env.wsman()
    pool = RunspacePool(conn)
    pool.open()
    assert run(pool, "Get-Thing").output
    assert env.endpoint.drop_shell(pool.id)
    with pytest.raises(WSManFaultError) as caught:
        run(pool, "Get-Thing")
    assert caught.value.code == UNKNOWN_SHELL
    assert pool.is_alive() is False  # pypsrp maps 2150858843 to "closed"
    pool.close()  # a no-op now: is_alive() marked it closed
    with RunspacePool(conn) as fresh:
        assert run(fresh, "Get-Thing").output
    # drop_all: the same for every shell
    with RunspacePool(conn) as one, RunspacePool(conn) as two:
        assert env.endpoint.drop_all() == 2
        for p in (one, two):
            with pytest.raises(WSManFaultError):
                run(p, "Get-Thing")
            assert p.is_alive() is False  # marks it closed, so close() sends no Delete
    env.assert_clean()


def test_four_pools_in_parallel_threads(env: Env) -> None:
    results: dict[int, list[str]] = {}
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with RunspacePool(env.wsman()) as pool:
                results[n] = [
                    run(pool, "Get-Thing" if i % 2 else "Get-Thread", Pool=n, Index=i).output[0]
                    for i in range(10)
                ]
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    for n in range(4):
        assert [o for i, o in enumerate(results[n]) if i % 2 == 0] == [
            f"{n}:{i}" for i in range(0, 10, 2)
        ]
    assert len(env.log) == 40 and len({e.invocation.shell_id for e in env.log}) == 4
    env.assert_clean()


def test_is_alive_uses_get(env: Env) -> None:
    with RunspacePool(env.wsman()) as pool:
        assert pool.is_alive() is True
        assert pool.get_available_runspaces() == 1
        pool.max_runspaces = 3  # SET_MAX_RUNSPACES: pypsrp's "CI" quirk (notes, pitfall 2)
        pool.min_runspaces = 2
        assert run(pool, "Get-Thing").output
    gets = [r for r in env.server.log.items() if r.note.get("wsman") == "Get"]
    assert len(gets) == 1
    env.assert_clean()


def test_slow_handler_completes_through_operation_timeouts(env: Env) -> None:
    # OperationTimeout PT1S: the endpoint answers fault 2150858793 after 1 s of no data and
    # pypsrp's poll_invoke retries, as against real WinRM.
    with RunspacePool(env.wsman(operation_timeout=1)) as pool:
        started = time.monotonic()
        ps = run(pool, "Get-Slow", Seconds=2.5)
        elapsed = time.monotonic() - started
        assert ps.output == ["slow done"] and ps.state == PSInvocationState.COMPLETED
        assert 2.4 < elapsed < 6
        env.endpoint.set_delay(1.2)  # the endpoint's per-call delay hook
        started = time.monotonic()
        assert run(pool, "Get-Thing").output
        assert time.monotonic() - started >= 1.2
    assert env.endpoint.stats["operation_timeouts"] >= 2
    faults = [r.note.get("fault") for r in env.server.log.items() if r.status == 500]
    assert set(faults) == {OPERATION_TIMEOUT}
    env.assert_clean()


def test_stop_a_slow_pipeline(env: Env) -> None:
    with RunspacePool(env.wsman(operation_timeout=1)) as pool:
        ps = PowerShell(pool).add_cmdlet("Get-Slow").add_parameter("Seconds", 30)
        ps.begin_invoke()
        ps.poll_invoke()  # Running state, or an OperationTimeout pypsrp swallows
        started = time.monotonic()
        ps.stop()
        assert ps.state == PSInvocationState.STOPPED
        ps.close()  # Terminate after stop is accepted
        assert time.monotonic() - started < 2
        # The pool is still usable after the stop.
        assert run(pool, "Get-Thing").output
    assert [e.state for e in env.log] == ["Stopped", "Completed"]
    env.assert_clean()


def test_dropping_a_shell_wakes_a_waiting_receive(env: Env) -> None:
    pool = RunspacePool(env.wsman())  # OperationTimeout 20 s: the Receive waits
    pool.open()
    ps = PowerShell(pool).add_cmdlet("Get-Slow").add_parameter("Seconds", 30)
    ps.begin_invoke()
    timer = threading.Timer(0.5, env.endpoint.drop_shell, args=(pool.id,))
    timer.start()
    started = time.monotonic()
    with pytest.raises(WSManFaultError) as caught:
        while ps.state == PSInvocationState.RUNNING:
            ps.poll_invoke()
    assert caught.value.code == UNKNOWN_SHELL
    assert time.monotonic() - started < 5
    assert env.log[0].state == "Abandoned"
    env.assert_clean()


def test_client_execute_ps_and_configuration_name(env: Env) -> None:
    client = Client(
        "127.0.0.1",
        port=env.server.port,
        ssl=True,
        auth="basic",
        username=USER,
        password=PASSWORD,
        cert_validation=str(env.ca_path),
        no_proxy=True,
    )
    output, streams, had_errors = client.execute_ps(
        "Get-Thing", configuration_name="Microsoft.Exchange"
    )
    assert json.loads(output) == {"command": "Out-String", "parameters": 1}
    assert had_errors is False and streams.error == []
    (entry,) = env.log
    assert entry.configuration == "Microsoft.Exchange"
    assert [c.text for c in entry.invocation.commands] == ["Invoke-Expression", "Out-String"]
    assert entry.invocation.commands[0].parameters == [("Command", "Get-Thing")]
    env.assert_clean()
