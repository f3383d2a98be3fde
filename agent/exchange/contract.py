"""Contract of the ps_scripts PowerShell module, read from a real PowerShell parse tree.

Everything that calls or serves the module's functions reads this one contract, so no two
parts can disagree about function names, parameters (type, Mandatory, ValidateSet) or which
cmdlets the module runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tree_sitter
import tree_sitter_powershell

# The envelope writer every exported function must call (DESIGN.md: exactly one JSON envelope).
ENVELOPE_WRITER = "Write-EbEnvelope"
# The wrapper every Exchange cmdlet call goes through; its -Name argument names the cmdlet.
CMDLET_WRAPPER = "Invoke-EbCmdlet"
# Module variable holding the run-time allow-list Invoke-EbCmdlet enforces.
ALLOWLIST_VARIABLE = "$script:EbAllowedCmdlets"

_SETTINGS_NOUNS = [
    "OrganizationConfig",
    "TransportConfig",
    "AcceptedDomain",
    "RemoteDomain",
    "InboundConnector",
    "OutboundConnector",
    "TransportRule",
    "HostedContentFilterPolicy",
    "HostedContentFilterRule",
    "HostedOutboundSpamFilterPolicy",
    "HostedOutboundSpamFilterRule",
    "HostedConnectionFilterPolicy",
    "MalwareFilterPolicy",
    "MalwareFilterRule",
    "AntiPhishPolicy",
    "AntiPhishRule",
    "SafeLinksPolicy",
    "SafeLinksRule",
    "SafeAttachmentPolicy",
    "SafeAttachmentRule",
    "AtpPolicyForO365",
    "ATPBuiltInProtectionRule",
    "DkimSigningConfig",
    "EOPProtectionPolicyRule",
    "ATPProtectionPolicyRule",
    "QuarantinePolicy",
    "TenantAllowBlockListItems",
    "ReportSubmissionPolicy",
    "ReportSubmissionRule",
    "ExternalInOutlook",
    "ArcConfig",
    "TeamsProtectionPolicy",
    "TeamsProtectionPolicyRule",
    "ProtectionAlert",
    "OwaMailboxPolicy",
    "MobileDeviceMailboxPolicy",
    "RoleGroup",
    "ManagementRoleAssignment",
]

# Facts §7 Get- cmdlets: the settings Export-EbSettings may read.
SETTINGS_GET_CMDLETS: frozenset[str] = frozenset(f"Get-{noun}" for noun in _SETTINGS_NOUNS)

# Exchange cmdlets the module may run: facts §7 families, the DL cmdlets (§5), connect and setup.
EXCHANGE_CMDLETS: frozenset[str] = frozenset(
    {
        f"{verb}-{noun}"
        for verb in ("Get", "Set", "New", "Remove", "Enable", "Disable")
        for noun in _SETTINGS_NOUNS
    }
    | {
        "Get-DistributionGroup",
        "Get-DistributionGroupMember",
        "New-DistributionGroup",
        "Set-DistributionGroup",
        "Remove-DistributionGroup",
        "Add-DistributionGroupMember",
        "Update-DistributionGroupMember",
        "Remove-DistributionGroupMember",
        "Connect-ExchangeOnline",
        "Connect-IPPSSession",
        "New-ServicePrincipal",
        "Add-RoleGroupMember",
        "Update-RoleGroupMember",
    }
)

# PowerShell built-ins the module itself calls directly (command nodes), plus its own helpers.
BUILTIN_COMMANDS: frozenset[str] = frozenset(
    {
        "ConvertTo-Json",
        "Set-StrictMode",
        "Remove-TypeData",
        "Export-ModuleMember",
        "Where-Object",
        "Select-Object",
    }
)

ALLOWED_COMMANDS: frozenset[str] = EXCHANGE_CMDLETS | BUILTIN_COMMANDS

# Never acceptable: they turn values into code.
FORBIDDEN_COMMANDS: frozenset[str] = frozenset(
    {"Invoke-Expression", "iex", "Add-Type", "Invoke-Command"}
)


@dataclass(frozen=True)
class ParamContract:
    type: str | None
    mandatory: bool
    validate_set: tuple[str, ...] | None
    parameter_sets: tuple[str, ...] = ()
    # The other binding attributes PowerShell enforces when it binds a call.
    validate_pattern: str | None = None
    validate_range: tuple[int, int] | None = None
    not_null: bool = False  # [ValidateNotNull()]
    not_null_or_empty: bool = False  # [ValidateNotNullOrEmpty()]
    allow_empty_collection: bool = False
    allow_empty_string: bool = False
    has_default: bool = False
    default: Any = None  # a literal default ('x', 3, @{}, @()), else None


@dataclass(frozen=True)
class FunctionContract:
    name: str
    file: str
    line: int
    cmdlet_binding: bool
    params: dict[str, ParamContract]
    commands: tuple[str, ...]
    wrapped_cmdlets: tuple[str, ...]
    validate_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default_parameter_set: str | None = None


class PowerShellSyntaxError(ValueError):
    """A ps_scripts file does not parse."""


def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8")


def _walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _string_value(node: tree_sitter.Node) -> str | None:
    """The value of a plain quoted string literal (no interpolation), else None."""
    if node.type != "string_literal" or len(node.children) != 1:
        return None
    raw = _text(node.children[0])
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        if raw[0] == '"' and ("$" in raw or "`" in raw):
            return None
        return raw[1:-1].replace("''", "'") if raw[0] == "'" else raw[1:-1]
    return None


def _strings_under(node: tree_sitter.Node) -> list[str]:
    return [value for n in _walk(node) if (value := _string_value(n)) is not None]


def syntax_errors(source: bytes) -> list[tuple[int, str]]:
    """(1-based line, snippet) of every ERROR / missing node; empty when the source parses."""
    root = _parser().parse(source).root_node
    if not root.has_error:
        return []
    found = [
        (n.start_point[0] + 1, _text(n)[:60])
        for n in _walk(root)
        if n.type == "ERROR" or n.is_missing
    ]
    return found or [(1, "parse error")]


def _attribute_name(attribute: tree_sitter.Node) -> str | None:
    for child in attribute.children:
        if child.type == "attribute_name":
            return _text(child)
    return None


def _attribute_arguments(attribute: tree_sitter.Node) -> list[tree_sitter.Node]:
    for child in attribute.children:
        if child.type == "attribute_arguments":
            return [c for c in child.children if c.type == "attribute_argument"]
    return []


def _param_contract(parameter: tree_sitter.Node) -> tuple[str, ParamContract]:
    name = ""
    ptype: str | None = None
    mandatory = False
    validate_set: tuple[str, ...] | None = None
    sets: list[str] = []
    flags: dict[str, Any] = {}
    for child in parameter.children:
        if child.type == "variable":
            name = _text(child).lstrip("$")
        if child.type == "script_parameter_default":
            flags["has_default"] = True
            flags["default"] = literal_value(child.children[-1])
        if child.type != "attribute_list":
            continue
        for attribute in (c for c in child.children if c.type == "attribute"):
            literal = next((c for c in attribute.children if c.type == "type_literal"), None)
            if literal is not None:
                ptype = _text(literal)[1:-1]
                continue
            attr = (_attribute_name(attribute) or "").lower()
            arguments = _attribute_arguments(attribute)
            if attr == "parameter":
                for argument in arguments:
                    parts = [c for c in argument.children if c.is_named]
                    key = _text(parts[0]).lower() if parts else ""
                    if key == "mandatory" and (
                        len(parts) == 1 or _text(parts[-1]).lower() == "$true"
                    ):
                        mandatory = True
                    if key == "parametersetname" and len(parts) == 2:
                        value = _single_string(parts[1])
                        if value is not None:
                            sets.append(value)
            elif attr == "validateset":
                validate_set = tuple(v for a in arguments for v in _strings_under(a))
            elif attr == "validatepattern" and arguments:
                flags["validate_pattern"] = _single_string(arguments[0])
            elif attr == "validaterange" and len(arguments) == 2:
                low, high = (literal_value(a) for a in arguments)
                if isinstance(low, int) and isinstance(high, int):
                    flags["validate_range"] = (low, high)
            elif attr in _FLAG_ATTRIBUTES:
                flags[_FLAG_ATTRIBUTES[attr]] = True
    return name, ParamContract(ptype, mandatory, validate_set, tuple(sets), **flags)


_FLAG_ATTRIBUTES = {
    "validatenotnull": "not_null",
    "validatenotnullorempty": "not_null_or_empty",
    "allowemptycollection": "allow_empty_collection",
    "allowemptystring": "allow_empty_string",
}


def literal_value(node: tree_sitter.Node) -> Any:
    """A constant expression as Python: string, integer, @(...) list, @{...} dict; else None.

    Reads module tables ($script:EbSettableByCmdlet, …) and parameter defaults."""
    current = node
    while True:
        if current.type == "string_literal":
            return _string_value(current)
        if current.type == "integer_literal":
            return int(_text(current))
        if current.type == "hash_literal_expression":
            body = next((c for c in current.children if c.type == "hash_literal_body"), None)
            table: dict[str, Any] = {}
            for entry in body.children if body is not None else []:
                if entry.type != "hash_entry":
                    continue
                key_node = next(c for c in entry.children if c.type == "key_expression")
                key = _single_string(key_node) or _text(key_node)
                value = [c for c in entry.children if c.is_named and c.type != "key_expression"]
                table[key] = literal_value(value[0]) if value else None
            return table
        if current.type == "array_expression":
            return _strings_under(current)
        named = [c for c in current.children if c.is_named and c.type != "comment"]
        if len(named) != 1:
            return None
        current = named[0]


def _command_name(command: tree_sitter.Node) -> str | None:
    for child in command.children:
        if child.type == "command_name":
            return _text(child)
    return None


def _named_argument(command: tree_sitter.Node, parameter: str) -> tree_sitter.Node | None:
    """The argument node that follows `-parameter` in a command, if any."""
    elements = next((c for c in command.children if c.type == "command_elements"), None)
    if elements is None:
        return None
    items = [c for c in elements.children if c.type != "command_argument_sep"]
    for index, item in enumerate(items):
        if item.type == "command_parameter" and _text(item).lower() == f"-{parameter.lower()}":
            return items[index + 1] if index + 1 < len(items) else None
    return None


def _single_string(node: tree_sitter.Node) -> str | None:
    """A literal string argument (possibly wrapped in expression nodes), else None."""
    current = node
    while current.type != "string_literal":
        named = [c for c in current.children if c.is_named]
        if len(named) != 1:
            return None
        current = named[0]
    return _string_value(current)


def _function_contract(function: tree_sitter.Node, file: str) -> FunctionContract:
    name = next(_text(c) for c in function.children if c.type == "function_name")
    cmdlet_binding = False
    default_set: str | None = None
    params: dict[str, ParamContract] = {}
    block = next((c for c in function.children if c.type == "script_block"), None)
    param_block = None
    if block is not None:
        param_block = next((c for c in block.children if c.type == "param_block"), None)
    if param_block is not None:
        for child in param_block.children:
            if child.type == "attribute_list":
                names = [
                    (_attribute_name(a) or "").lower()
                    for a in child.children
                    if a.type == "attribute"
                ]
                cmdlet_binding = cmdlet_binding or "cmdletbinding" in names
                for attribute in (a for a in child.children if a.type == "attribute"):
                    if (_attribute_name(attribute) or "").lower() != "cmdletbinding":
                        continue
                    for arg in _attribute_arguments(attribute):
                        parts = [c for c in arg.children if c.is_named]
                        if len(parts) == 2 and _text(parts[0]).lower() == "defaultparametersetname":
                            default_set = _single_string(parts[1])
            if child.type == "parameter_list":
                for parameter in (c for c in child.children if c.type == "script_parameter"):
                    pname, contract = _param_contract(parameter)
                    params[pname] = contract
    commands: list[str] = []
    wrapped: list[str] = []
    for node in _walk(function):
        if node.type != "command":
            continue
        cname = _command_name(node)
        if cname is None:
            continue
        commands.append(cname)
        if cname.lower() == CMDLET_WRAPPER.lower():
            argument = _named_argument(node, "Name")
            literal = _single_string(argument) if argument is not None else None
            if literal is not None:
                wrapped.append(literal)
    return FunctionContract(
        name=name,
        file=file,
        line=function.start_point[0] + 1,
        cmdlet_binding=cmdlet_binding,
        params=params,
        commands=tuple(commands),
        wrapped_cmdlets=tuple(wrapped),
        validate_sets={p: c.validate_set for p, c in params.items() if c.validate_set is not None},
        default_parameter_set=default_set,
    )


@dataclass(frozen=True)
class ModuleContract:
    functions: dict[str, FunctionContract]
    exported: tuple[str, ...]
    allowlist: frozenset[str]
    # Top-level `command` nodes outside any function (module body).
    module_commands: tuple[str, ...]
    # String literals of module-scope hashtables/arrays that name cmdlets (Verb-Noun with a known verb).
    module_cmdlet_literals: frozenset[str]
    # Module-scope `$script:Name = @{…}` / `@(…)` constants as Python values, by variable name
    # without the scope ("EbSettableByCmdlet"): the tables the module enforces at run time.
    tables: dict[str, Any] = field(default_factory=dict)


_VERBS = (
    "Get-",
    "Set-",
    "New-",
    "Remove-",
    "Enable-",
    "Disable-",
    "Add-",
    "Update-",
    "Connect-",
    "Invoke-",
)


def parse_module(ps_dir: Path) -> ModuleContract:
    """Parse every .ps1/.psm1 under ps_dir; raises PowerShellSyntaxError on any syntax error."""
    paths = sorted([*ps_dir.glob("*.ps1"), *ps_dir.glob("*.psm1")])
    return parse_sources([(path.name, path.read_bytes()) for path in paths])


def parse_sources(sources: list[tuple[str, bytes]]) -> ModuleContract:
    """The contract of PowerShell source texts given as (file name, bytes)."""
    parser = _parser()
    functions: dict[str, FunctionContract] = {}
    exported: list[str] = []
    allowlist: set[str] = set()
    module_commands: list[str] = []
    literals: set[str] = set()
    tables: dict[str, Any] = {}
    for file_name, source in sources:
        errors = syntax_errors(source)
        if errors:
            line, snippet = errors[0]
            raise PowerShellSyntaxError(f"{file_name}:{line}: syntax error near {snippet!r}")
        root = parser.parse(source).root_node
        for node in _walk(root):
            if node.type == "function_statement":
                contract = _function_contract(node, file_name)
                functions[contract.name] = contract
        statements = next((c for c in root.children if c.type == "statement_list"), None)
        for statement in statements.children if statements is not None else []:
            if statement.type == "function_statement":
                continue
            for node in _walk(statement):
                if node.type == "command" and (cname := _command_name(node)) is not None:
                    module_commands.append(cname)
                    if cname.lower() == "export-modulemember":
                        argument = _named_argument(node, "Function")
                        exported.extend(_strings_under(argument) if argument is not None else [])
                if node.type == "assignment_expression":
                    target = _text(node.children[0])
                    values = _strings_under(node)
                    if target.lower() == ALLOWLIST_VARIABLE.lower():
                        allowlist.update(values)
                    elif target.lower().startswith("$script:"):
                        value = literal_value(node.children[-1])
                        if value is not None:
                            tables[target.split(":", 1)[1]] = value
                    literals.update(v for v in values if v.startswith(_VERBS) and " " not in v)
    return ModuleContract(
        functions=functions,
        exported=tuple(exported),
        allowlist=frozenset(allowlist),
        module_commands=tuple(module_commands),
        module_cmdlet_literals=frozenset(literals),
        tables=tables,
    )


def load_contract(ps_dir: Path) -> dict[str, FunctionContract]:
    """Exported functions of the module by name (what a caller may invoke)."""
    module = parse_module(ps_dir)
    names = module.exported or tuple(module.functions)
    return {name: module.functions[name] for name in names if name in module.functions}
