"""The simulated bridge host over real pypsrp sockets: loading the module with the protocol's
constant loader, connecting, PowerShell's own refusals (unknown command, parameter binding),
dropped shells, and the request log proving values only ever travel as parameters."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pypsrp.exceptions import AuthenticationError
from pypsrp.powershell import RunspacePool

from agent.exchange import protocol
from agent.exchange.contract import load_contract
from agent.simulator.service import Simulator, TenantHandle, TenantSpec
from tests.exchange_helpers import Failed, connect, load, open_bridge, run, wsman


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        simulator.add_tenant(TenantSpec(name="contoso", seed=3, users=80, groups=30))
        yield simulator
        assert simulator.errors == [] and simulator.winrm.errors == []


@pytest.fixture(scope="module")
def tenant(sim: Simulator) -> TenantHandle:
    return sim.tenants["contoso"]


def test_loader_reports_the_module_it_received(sim: Simulator) -> None:
    with RunspacePool(wsman(sim)) as pool:
        envelope = load(pool)
    assert envelope["op"] == "load" and envelope["ok"] and envelope["errors"] == []
    (item,) = envelope["items"]
    assert item["sha256"] == protocol.module_sha256()
    assert item["functions"] == sorted(load_contract(protocol.PS_DIR))
    assert item["module"] == protocol.MODULE_NAME and item["exchangeOnlineManagement"]


def test_functions_need_the_module_loaded_first(sim: Simulator, tenant: TenantHandle) -> None:
    with RunspacePool(wsman(sim)) as pool:
        before = run(pool, "Export-EbSettings", Cmdlet=["Get-OrganizationConfig"])
        assert isinstance(before, Failed)
        assert before.error_id == "CommandNotFoundException"
        assert "'Export-EbSettings' is not recognized" in before.message
        load(pool)
        # Loaded but not connected: the Exchange cmdlets do not exist yet.
        unconnected = run(pool, "Export-EbSettings", Cmdlet=["Get-OrganizationConfig"])
        assert unconnected["failed"] == ["Get-OrganizationConfig"]
        assert unconnected["errors"][0]["category"] == "Permission"
        assert connect(pool, tenant)["succeeded"] == ["Connect-ExchangeOnline"]
        after = run(pool, "export-ebsettings", cmdlet=["get-organizationconfig"])
        assert after["ok"] and after["items"][0]["objects"][0]["Identity"] == tenant.domain


@pytest.mark.parametrize(
    ("function", "params", "error_id", "text"),
    [
        ("Get-EbNothing", {}, "CommandNotFoundException", "is not recognized"),
        (
            "Export-EbDistributionGroups",
            {},
            "MissingMandatoryParameter,Export-EbDistributionGroups",
            "missing mandatory parameters: RecipientTypeDetails.",
        ),
        (
            "Export-EbDistributionGroups",
            {"RecipientTypeDetails": "MailUniversalDistributionGroup", "ChangedSinceUtc": "soon"},
            "ParameterArgumentTransformationError,Export-EbDistributionGroups",
            'to type "System.DateTime"',
        ),
        (
            "New-EbDistributionGroup",
            {"Name": "X", "Type": "Dynamic"},
            "ParameterArgumentValidationError,New-EbDistributionGroup",
            "ValidateSet",
        ),
        (
            "Set-EbDistributionGroup",
            {"Identity": "X", "Properties": "DisplayName=Y"},
            "ParameterArgumentTransformationError,Set-EbDistributionGroup",
            "System.Collections.Hashtable",
        ),
        (
            "Remove-EbDistributionGroup",
            {"Identity": "X", "Force": True},
            "NamedParameterNotFound,Remove-EbDistributionGroup",
            "parameter name 'Force'",
        ),
        (
            "New-EbPolicyWithRule",
            {"Family": "MalwareFilter", "Name": "P", "Priority": 5000},
            "ParameterArgumentValidationError,New-EbPolicyWithRule",
            "maximum allowed range of 1000",
        ),
        (
            "Connect-EbExchange",
            {"AppId": "not-a-guid", "Organization": "contoso.onmicrosoft.com"},
            "ParameterArgumentValidationError,Connect-EbExchange",
            "does not match",
        ),
        (
            "Sync-EbDistributionGroupMember",
            {"Identity": "", "Members": []},
            "ParameterArgumentValidationErrorEmptyStringNotAllowed,Sync-EbDistributionGroupMember",
            "empty string",
        ),
        (
            "New-EbDistributionGroup",
            {"Name": "X", "Type": "Security", "HiddenGroupMembershipEnabled": "yes"},
            "ParameterArgumentTransformationError,New-EbDistributionGroup",
            "Boolean parameters accept only Boolean values",
        ),
    ],
)
def test_powershell_refuses_bad_calls(
    sim: Simulator, tenant: TenantHandle, function: str, params: dict, error_id: str, text: str
) -> None:
    with open_bridge(sim, tenant) as pool:
        result = run(pool, function, **params)
    assert isinstance(result, Failed), result
    assert result.error_id == error_id
    assert text in result.message


def test_only_the_loader_script_runs(sim: Simulator) -> None:
    with RunspacePool(wsman(sim)) as pool:
        result = run(pool, "Get-Process", script=True)
    assert isinstance(result, Failed) and "loader" in result.message


def test_wrong_bridge_password_is_refused(sim: Simulator) -> None:
    with pytest.raises(AuthenticationError):
        RunspacePool(wsman(sim, password="wrong")).open()


def test_a_dropped_shell_forgets_module_and_connection(
    sim: Simulator, tenant: TenantHandle
) -> None:
    pool = open_bridge(sim, tenant)
    assert sim.winrm.drop_all() >= 1
    # The bridge host restarted: the agent opens a new pool and must load and connect again.
    with RunspacePool(wsman(sim)) as fresh:
        result = run(fresh, "Export-EbSettings", Cmdlet=["Get-ArcConfig"])
        assert isinstance(result, Failed) and result.error_id == "CommandNotFoundException"
        load(fresh)
        assert connect(fresh, tenant)["ok"]
        assert run(fresh, "Export-EbSettings", Cmdlet=["Get-ArcConfig"])["ok"]
    del pool  # its shell is gone on the server; closing it would fault


def test_log_proves_constant_script_and_typed_parameters(
    sim: Simulator, tenant: TenantHandle
) -> None:
    start = len(sim.winrm.log)
    injection = "x'; Remove-Item C:\\ -Recurse #"
    with open_bridge(sim, tenant) as pool:
        run(pool, "Remove-EbDistributionGroup", Identity=injection)
        run(pool, "Export-EbSettings", Cmdlet=["Get-TransportConfig", "Get-RemoteDomain"])
    logged = sim.winrm.log[start:]
    scripts = [c for entry in logged for c in entry.invocation.commands if c.is_script]
    assert scripts and all(c.text == protocol.LOADER_SCRIPT for c in scripts)
    module_text = dict(scripts[0].parameters)["ModuleText"]
    assert module_text.encode("utf-8") == protocol.MODULE_FILE.read_bytes()
    calls = [c for entry in logged for c in entry.invocation.commands if not c.is_script]
    assert [c.text for c in calls] == [
        "Connect-EbExchange",
        "Remove-EbDistributionGroup",
        "Export-EbSettings",
    ]
    remove = calls[1]
    assert remove.parameters == [("Identity", injection)]
    assert remove.parameter_types == ["System.String"]
    assert all(name is not None for c in calls for name, _ in c.parameters)
    assert all(injection not in c.text for c in calls)


def test_tenants_json_names_the_bridge_without_secrets(
    sim: Simulator, tenant: TenantHandle
) -> None:
    document = sim.tenants_json()
    bridge = document["bridge"]
    assert bridge["url"] == f"{sim.base_url}/wsman"
    password = sim.bridge_password_path.read_text().strip()
    assert password not in json.dumps(document)
    assert (sim.bridge_password_path.stat().st_mode & 0o777) == 0o600
    # The client certificate for auth = "certificate" is named by path, never inlined.
    assert bridge["client_certificate_file"] == str(sim.bridge_client_cert_path)
    assert "PRIVATE KEY" not in json.dumps(document)
    assert (sim.bridge_client_cert_path.stat().st_mode & 0o777) == 0o600
    entry = document["tenants"][0]
    assert len(entry["certificate_thumbprint"]) == 40
