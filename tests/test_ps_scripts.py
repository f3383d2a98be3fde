"""Static checks of ps_scripts/ with a real PowerShell parser (no PowerShell on these machines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.exchange.contract import (
    ALLOWED_COMMANDS,
    CMDLET_WRAPPER,
    ENVELOPE_WRITER,
    EXCHANGE_CMDLETS,
    FORBIDDEN_COMMANDS,
    SETTINGS_GET_CMDLETS,
    ModuleContract,
    PowerShellSyntaxError,
    load_contract,
    parse_module,
    syntax_errors,
)

PS_DIR = Path(__file__).resolve().parent.parent / "ps_scripts"
PS_FILES = sorted([*PS_DIR.glob("*.ps1"), *PS_DIR.glob("*.psm1")])


@pytest.fixture(scope="module")
def module() -> ModuleContract:
    return parse_module(PS_DIR)


def _own_functions(module: ModuleContract) -> set[str]:
    return set(module.functions)


def test_there_are_scripts() -> None:
    assert PS_FILES, "ps_scripts/ holds no .ps1/.psm1"


@pytest.mark.parametrize("path", PS_FILES, ids=lambda p: p.name)
def test_every_script_parses(path: Path) -> None:
    errors = syntax_errors(path.read_bytes())
    assert not errors, (
        f"{path.name}: syntax errors at lines {[line for line, _ in errors]}: {errors[:3]}"
    )


def test_checker_rejects_a_broken_function(tmp_path: Path) -> None:
    # A real function with its closing brace and one paren removed must fail, with a line number.
    good = (PS_DIR / "EntraBackup.Exchange.psm1").read_text(encoding="utf-8")
    start = good.index("function Remove-EbDistributionGroup")
    end = good.index("function Set-EbSetting")
    broken = good[start:end].replace(
        "param([Parameter(Mandatory)]", "param([Parameter(Mandatory]", 1
    )
    broken = broken.rstrip().removesuffix("}")
    assert syntax_errors(good[start:end].encode()) == []
    errors = syntax_errors(broken.encode())
    assert errors and all(line >= 1 for line, _ in errors)
    (tmp_path / "Broken.psm1").write_text(broken, encoding="utf-8")
    with pytest.raises(PowerShellSyntaxError, match=r"Broken\.psm1:\d+"):
        parse_module(tmp_path)


def test_checker_rejects_small_bad_snippets() -> None:
    assert syntax_errors(b"function F {\n  [CmdletBinding()]\n  param([string]$A\n}\n")
    assert syntax_errors(b"function F { if ($x { } }\n")
    assert syntax_errors(b"function F {\n [CmdletBinding()]\n param()\n Get-X\n}\n") == []


def test_expected_functions_are_exported(module: ModuleContract) -> None:
    assert set(module.exported) == {
        "Connect-EbExchange",
        "Export-EbDistributionGroups",
        "Export-EbSettings",
        "New-EbDistributionGroup",
        "Set-EbDistributionGroup",
        "Sync-EbDistributionGroupMember",
        "Remove-EbDistributionGroup",
        "Set-EbSetting",
        "New-EbPolicyWithRule",
        "New-EbTransportRule",
        "Remove-EbSetting",
        "New-EbRoleGroupSetup",
        "New-EbSetting",
        "Set-EbRuleState",
        "Update-EbRoleGroupMember",
        "New-EbAllowBlockListItem",
        "Remove-EbAllowBlockListItem",
        "New-EbRoleAssignment",
        "Set-EbRoleAssignment",
        "Sync-EbRoleGroupRole",
    }
    assert set(module.exported) <= set(module.functions)


def test_every_function_has_cmdletbinding_and_typed_params(module: ModuleContract) -> None:
    for function in module.functions.values():
        assert function.cmdlet_binding, (
            f"{function.name} ({function.file}:{function.line}) lacks [CmdletBinding()]"
        )
        for name, param in function.params.items():
            assert param.type, f"{function.name} -{name} has no type"


def test_exported_functions_write_one_envelope_and_set_strict_mode(module: ModuleContract) -> None:
    for name in module.exported:
        commands = module.functions[name].commands
        assert commands.count(ENVELOPE_WRITER) == 1, (
            f"{name} must call {ENVELOPE_WRITER} exactly once"
        )
        assert "Set-StrictMode" in commands, name
        # Exchange cmdlets only through the wrapper, never directly.
        assert not set(commands) & EXCHANGE_CMDLETS, (
            f"{name} calls Exchange cmdlets outside {CMDLET_WRAPPER}"
        )
    assert "Set-StrictMode" in module.module_commands


def test_every_command_is_allowed(module: ModuleContract) -> None:
    own = _own_functions(module)
    for function in module.functions.values():
        for command in function.commands:
            assert command not in FORBIDDEN_COMMANDS, f"{function.name} calls {command}"
            assert command in ALLOWED_COMMANDS or command in own, f"{function.name} calls {command}"
        for cmdlet in function.wrapped_cmdlets:
            assert cmdlet in EXCHANGE_CMDLETS, f"{function.name} wraps {cmdlet}"
            assert cmdlet in module.allowlist, (
                f"{cmdlet} missing from the module's run-time allow-list"
            )
    for command in module.module_commands:
        assert command in ALLOWED_COMMANDS, command


def test_runtime_allowlist_and_cmdlet_tables_are_on_the_contract(module: ModuleContract) -> None:
    assert module.allowlist <= EXCHANGE_CMDLETS, sorted(module.allowlist - EXCHANGE_CMDLETS)
    # Cmdlet names kept in module tables (New-EbPolicyWithRule families) must be allowed too.
    unknown = module.module_cmdlet_literals - ALLOWED_COMMANDS
    assert not unknown, sorted(unknown)
    assert module.module_cmdlet_literals <= module.allowlist | ALLOWED_COMMANDS


def test_no_invoke_expression_anywhere() -> None:
    for path in PS_FILES:
        text = path.read_text(encoding="utf-8").lower()
        assert "invoke-expression" not in text and "[scriptblock]::create" not in text, path.name


def test_export_settings_allowlist_is_facts_section_7(module: ModuleContract) -> None:
    contract = load_contract(PS_DIR)
    cmdlet = contract["Export-EbSettings"].params["Cmdlet"]
    assert cmdlet.mandatory and cmdlet.type == "string[]"
    assert set(cmdlet.validate_set or ()) == SETTINGS_GET_CMDLETS
    for name in cmdlet.validate_set or ():
        assert name in module.allowlist, name


def test_set_setting_cmdlets_have_property_allowlists(module: ModuleContract) -> None:
    contract = load_contract(PS_DIR)
    set_cmdlets = set(contract["Set-EbSetting"].params["Cmdlet"].validate_set or ())
    assert set_cmdlets and set_cmdlets <= EXCHANGE_CMDLETS
    assert set_cmdlets <= module.allowlist
    # Each Set- cmdlet needs its per-cmdlet property allow-list in $script:EbSettableByCmdlet.
    source = (PS_DIR / "EntraBackup.Exchange.psm1").read_text(encoding="utf-8")
    table = source[source.index("$script:EbSettableByCmdlet = @{") :]
    table = table[: table.index("\n}\n")]
    for name in set_cmdlets:
        assert f"'{name}'" in table, f"no property allow-list for {name}"


def test_parameter_contracts(module: ModuleContract) -> None:
    contract = load_contract(PS_DIR)
    groups = contract["Export-EbDistributionGroups"].params
    assert groups["RecipientTypeDetails"].mandatory
    assert groups["RecipientTypeDetails"].validate_set == (
        "MailUniversalDistributionGroup",
        "MailUniversalSecurityGroup",
    )
    assert groups["ChangedSinceUtc"].type == "datetime" and not groups["ChangedSinceUtc"].mandatory
    assert groups["IncludeMembers"].type == "switch"

    connect = contract["Connect-EbExchange"].params
    assert set(connect["AppId"].parameter_sets) == {"Thumbprint", "CertificateFile"}
    assert connect["CertificatePassword"].type == "securestring"
    assert connect["Credential"].type == "pscredential" and connect[
        "Credential"
    ].parameter_sets == ("Credential",)
    assert connect["IncludeSecurityCompliance"].type == "switch"

    sync = contract["Sync-EbDistributionGroupMember"].params
    assert sync["Identity"].mandatory and sync["Members"].type == "string[]"
    assert contract["Set-EbDistributionGroup"].params["Properties"].type == "hashtable"
    assert contract["New-EbDistributionGroup"].params["Type"].validate_set == (
        "Distribution",
        "Security",
    )
    assert contract["Sync-EbDistributionGroupMember"].wrapped_cmdlets == (
        "Update-DistributionGroupMember",
    )
    assert set(contract["New-EbRoleGroupSetup"].wrapped_cmdlets) == {
        "New-ServicePrincipal",
        "New-RoleGroup",
        "Add-RoleGroupMember",
    }


def test_contract_reads_the_parse_tree_not_text(tmp_path: Path) -> None:
    # Comments and strings that look like code must not become commands or parameters.
    (tmp_path / "T.psm1").write_text(
        "function Get-T {\n"
        "    [CmdletBinding()]\n"
        "    param(\n"
        "        [Parameter(Mandatory = $true, ParameterSetName = 'A')][ValidateSet('x', 'y')][string[]]$Kind,\n"
        "        # [Parameter(Mandatory)][int]$Ghost\n"
        "        [int]$Count = 3\n"
        "    )\n"
        "    $s = 'Invoke-Expression $Kind'\n"
        "    Invoke-EbCmdlet -Envelope $e -Name 'Get-OrganizationConfig'\n"
        "    Write-EbEnvelope -Envelope $e\n"
        "}\n"
        "Export-ModuleMember -Function @('Get-T')\n",
        encoding="utf-8",
    )
    contract = load_contract(tmp_path)
    function = contract["Get-T"]
    assert set(function.params) == {"Kind", "Count"}
    assert function.params["Kind"].mandatory and function.params["Kind"].validate_set == ("x", "y")
    assert (
        function.params["Kind"].parameter_sets == ("A",)
        and function.params["Kind"].type == "string[]"
    )
    assert not function.params["Count"].mandatory and function.params["Count"].type == "int"
    assert function.commands == ("Invoke-EbCmdlet", "Write-EbEnvelope")
    assert function.wrapped_cmdlets == ("Get-OrganizationConfig",)


def test_contract_reads_binding_attributes_defaults_and_tables(module: ModuleContract) -> None:
    contract = load_contract(PS_DIR)
    connect = contract["Connect-EbExchange"]
    assert connect.default_parameter_set == "Thumbprint"
    assert connect.params["CertificateThumbprint"].validate_pattern == "^[0-9a-fA-F]{40}$"
    policy = contract["New-EbPolicyWithRule"].params
    assert policy["Priority"].validate_range == (0, 1000)
    assert policy["PolicyProperties"].has_default and policy["PolicyProperties"].default == {}
    assert policy["Name"].not_null_or_empty and policy["PolicyProperties"].not_null
    assert contract["Sync-EbDistributionGroupMember"].params["Members"].allow_empty_collection
    assert contract["New-EbRoleGroupSetup"].params["Mode"].default == "ReadWrite"
    tables = module.tables
    assert tables["EbSettableByCmdlet"]["Set-ArcConfig"] == ["ArcTrustedSealers"]
    assert tables["EbPolicyRuleFamilies"]["SafeLinks"]["RulePolicyParameter"] == "SafeLinksPolicy"
    assert "ManagedBy" in tables["EbDlSettable"] and "WhenChangedUTC" in tables["EbDlProperties"]
