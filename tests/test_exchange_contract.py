"""One contract, three parties: the ps_scripts module (its parse tree), the simulated bridge
host's handlers and the agent's calls must agree on functions, parameters, ops and cmdlets."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from agent.exchange import bridge as agent_bridge
from agent.exchange import protocol, psrp_bridge, psrp_pipeline
from agent.exchange.contract import ModuleContract, load_contract, parse_module
from agent.simulator.exchange import cmdlets, functions, rbac, settings
from agent.simulator.exchange.defaults_defender import defender_defaults
from agent.simulator.exchange.defaults_exo import EXCHANGE_DEFAULTS
from agent.simulator.exchange.objects import OrgContext


@pytest.fixture(scope="module")
def module() -> ModuleContract:
    return parse_module(protocol.PS_DIR)


def test_every_exported_function_has_a_simulator_handler(module: ModuleContract) -> None:
    handled = set(functions.FUNCTIONS) | {"Connect-EbExchange"}
    assert handled == set(module.exported)
    assert set(functions.READS) == set(module.exported)


def test_handlers_read_exactly_the_contract_parameters(module: ModuleContract) -> None:
    contract = load_contract(protocol.PS_DIR)
    for name, reads in functions.READS.items():
        assert set(reads) == set(contract[name].params), name


def test_ops_agree_between_simulator_and_agent() -> None:
    simulated = {name: op for name, (op, _) in functions.FUNCTIONS.items()} | {
        "Connect-EbExchange": "connect"
    }
    assert simulated == psrp_pipeline.OPS


def test_settings_families_match_the_module(module: ModuleContract) -> None:
    contract = load_contract(protocol.PS_DIR)
    gets = set(contract["Export-EbSettings"].params["Cmdlet"].validate_set or ())
    ctx = OrgContext("t", "contoso.onmicrosoft.com", 0.0, ["contoso.onmicrosoft.com"])
    simulated = (
        set(EXCHANGE_DEFAULTS)
        | set(defender_defaults(ctx))
        | {
            "Get-RoleGroup",
            "Get-ManagementRoleAssignment",
        }
    )
    assert simulated == gets
    for set_cmdlet in contract["Set-EbSetting"].params["Cmdlet"].validate_set or ():
        assert "Get-" + set_cmdlet.removeprefix("Set-") in gets, set_cmdlet
    families = module.tables["EbPolicyRuleFamilies"]
    assert set(families) == set(
        contract["New-EbPolicyWithRule"].params["Family"].validate_set or ()
    )
    for spec in families.values():
        assert spec["Policy"].removeprefix("New-") in settings._POLICY_FACTORIES
    # The cmdlets only Defender for Office 365 has, named alike on both sides.
    mdo_nouns = {c.split("-", 1)[1] for c in module.tables["EbMdoCmdlets"]}
    assert mdo_nouns <= cmdlets.MDO_NOUNS
    assert {c.split("-", 1)[1] for c in gets} & cmdlets.MDO_NOUNS <= mdo_nouns


def test_every_cmdlet_the_module_may_run_is_simulated(module: ModuleContract) -> None:
    connect = {"Connect-ExchangeOnline", "Connect-IPPSSession"}  # run by the bridge itself
    for cmdlet in sorted(module.allowlist - connect):
        role = rbac.required_role(cmdlet)
        assert any(role in roles for roles in rbac.BUILT_IN_ROLE_GROUPS.values()), cmdlet
        verb, noun = cmdlet.split("-", 1)
        assert verb in ("Get", "Set", "New", "Remove", "Update", "Add", "Enable", "Disable")
        if verb in ("Set", "New") and "DistributionGroup" not in noun:
            assert noun in ("ServicePrincipal", "RoleGroup") or "Get-" + noun in module.allowlist


def test_role_group_setup_roles_are_the_modules(module: ModuleContract) -> None:
    source = protocol.MODULE_FILE.read_text(encoding="utf-8")
    body = source[source.index("function New-EbRoleGroupSetup") :]
    for role in (*functions._READ_ROLES, *functions._WRITE_ROLES):
        assert f"'{role}'" in body, role
        assert any(role in roles for roles in rbac.BUILT_IN_ROLE_GROUPS.values()), role


def _calls(tree: ast.AST, methods: set[str]) -> list[tuple[str, ast.expr | None]]:
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in methods
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.args[0].value, node.args[1] if len(node.args) > 1 else None))
    return found


def _literal_keys(tree: ast.AST, names: set[str]) -> set[str]:
    """Keys of dict literals, params["X"] = … and params.update(X=…) for the given names."""
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys.update(
                k.value
                for k in node.keys
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            )
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id in names
            and isinstance(node.slice, ast.Constant)
        ):
            keys.add(str(node.slice.value))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "update"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in names
        ):
            keys.update(k.arg for k in node.keywords if k.arg)
    return keys


def test_the_agents_calls_name_contract_parameters() -> None:
    contract = load_contract(protocol.PS_DIR)
    tree = ast.parse(Path(inspect.getfile(agent_bridge)).read_text(encoding="utf-8"))
    calls = _calls(tree, {"_read", "_write"})
    assert {name for name, _ in calls} <= set(contract)
    assert len({name for name, _ in calls}) >= 7
    for name, argument in calls:
        if argument is None:
            continue
        keys = _literal_keys(argument, {"params"})
        if isinstance(argument, ast.Name):  # built up in the method body
            method = next(
                f
                for f in ast.walk(tree)
                if isinstance(f, ast.FunctionDef) and any(c is argument for c in ast.walk(f))
            )
            keys = {
                k
                for k in _literal_keys(method, {argument.id})
                if k[:1].isupper()  # parameter names, not lookups into results
            }
        assert keys <= set(contract[name].params), (name, keys - set(contract[name].params))
    connect = next(
        f
        for f in ast.walk(ast.parse(Path(inspect.getfile(psrp_bridge)).read_text(encoding="utf-8")))
        if isinstance(f, ast.FunctionDef) and f.name == "_connect"
    )
    keys = _literal_keys(connect, {"params"})
    assert keys and keys <= set(contract["Connect-EbExchange"].params), keys
