"""PowerShell parameter binding of one command call against the module's contract.

What the bridge host's PowerShell does before a function body runs: resolve parameter names
(case-insensitive, unique prefixes), pick the parameter set, convert each value to the declared
type and apply Mandatory / ValidateSet / ValidatePattern / ValidateRange / ValidateNotNull*.
A refusal is a terminating ParameterBindingException-style error with PowerShell's own wording
and error ids, which the bridge turns into a Failed pipeline.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from agent.exchange.contract import FunctionContract, ParamContract
from agent.simulator.winrm.psrp import SecureText

ALL_SETS = "__AllParameterSets"
# [CmdletBinding()] adds these; callers may pass them (the module ignores them).
COMMON_PARAMETERS = (
    "Verbose",
    "Debug",
    "ErrorAction",
    "WarningAction",
    "InformationAction",
    "ProgressAction",
    "ErrorVariable",
    "WarningVariable",
    "InformationVariable",
    "OutVariable",
    "OutBuffer",
    "PipelineVariable",
)


@dataclass
class BindingFailure(Exception):
    """A terminating error as PowerShell reports it (message, FullyQualifiedErrorId, …)."""

    message: str
    error_id: str
    category: str = "InvalidArgument"
    reason: str = "ParameterBindingException"

    def __str__(self) -> str:
        return self.message


@dataclass
class Bound:
    function: str
    parameter_set: str
    values: dict[str, Any]  # declared parameter name -> converted value (defaults included)
    bound: set[str]  # what the caller passed ($PSBoundParameters)


def command_not_found(name: str) -> BindingFailure:
    return BindingFailure(
        f"The term '{name}' is not recognized as a name of a cmdlet, function, script file, or "
        "executable program.\nCheck the spelling of the name, or if a path was included, verify "
        "that the path is correct and try again.",
        "CommandNotFoundException",
        "ObjectNotFound",
        "CommandNotFoundException",
    )


def bind(
    contract: FunctionContract, parameters: list[tuple[str | None, Any]], wire_types: list[str]
) -> Bound:
    fn = contract.name
    names = list(contract.params)
    given: dict[str, tuple[Any, str]] = {}
    for index, (raw, value) in enumerate(parameters):
        wire = wire_types[index] if index < len(wire_types) else type(value).__name__
        if raw is None:
            raise BindingFailure(
                f"A positional parameter cannot be found that accepts argument '{value}'.",
                f"PositionalParameterNotFound,{fn}",
            )
        name = _resolve(fn, raw, names)
        if name is None:
            continue  # a common parameter
        if name in given:
            raise BindingFailure(
                f"Cannot bind parameter because parameter '{name}' is specified more than once. "
                "To provide multiple values to parameters that can accept multiple values, use "
                'the array syntax. For example, "-parameter value1,value2,value3".',
                f"ParameterAlreadyBound,{fn}",
            )
        given[name] = (value, wire)
    parameter_set = _parameter_set(contract, set(given))
    values: dict[str, Any] = {}
    for name, (value, wire) in given.items():
        values[name] = _convert(fn, name, contract.params[name], value, wire)
    in_set = {
        n: p
        for n, p in contract.params.items()
        if not p.parameter_sets or parameter_set in p.parameter_sets
    }
    missing = [n for n, p in in_set.items() if p.mandatory and n not in given]
    if missing:
        raise BindingFailure(
            "Cannot process command because of one or more missing mandatory parameters: "
            + " ".join(missing)
            + ".",
            f"MissingMandatoryParameter,{fn}",
        )
    for name, param in contract.params.items():
        if name not in values and param.has_default:
            values[name] = param.default
    return Bound(fn, parameter_set, values, set(given))


def _resolve(fn: str, raw: str, names: list[str]) -> str | None:
    lowered = raw.lower()
    for name in names:
        if name.lower() == lowered:
            return name
    if any(c.lower() == lowered for c in COMMON_PARAMETERS):
        return None
    matches = [n for n in names if n.lower().startswith(lowered)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise BindingFailure(
            f"Parameter cannot be processed because the parameter name '{raw}' is ambiguous. "
            "Possible matches include: " + " ".join(f"-{m}" for m in matches) + ".",
            f"AmbiguousParameter,{fn}",
        )
    raise BindingFailure(
        f"A parameter cannot be found that matches parameter name '{raw}'.",
        f"NamedParameterNotFound,{fn}",
    )


def _parameter_set(contract: FunctionContract, given: set[str]) -> str:
    declared = sorted({s for p in contract.params.values() for s in p.parameter_sets})
    if not declared:
        return ALL_SETS
    candidates = [
        s
        for s in declared
        if all(
            not contract.params[n].parameter_sets or s in contract.params[n].parameter_sets
            for n in given
        )
    ]
    if len(candidates) > 1:
        complete = [
            s
            for s in candidates
            if all(
                n in given
                for n, p in contract.params.items()
                if p.mandatory and s in p.parameter_sets
            )
        ]
        if len(complete) == 1:
            return complete[0]
        if contract.default_parameter_set in candidates:
            return contract.default_parameter_set
    if len(candidates) == 1:
        return candidates[0]
    raise BindingFailure(
        "Parameter set cannot be resolved using the specified named parameters. One or more "
        "parameters issued cannot be used together or an insufficient number of parameters "
        "were provided.",
        f"AmbiguousParameterSet,{contract.name}",
    )


_NET_TYPES = {
    "string": "System.String",
    "string[]": "System.String[]",
    "int": "System.Int32",
    "bool": "System.Boolean",
    "switch": "System.Management.Automation.SwitchParameter",
    "hashtable": "System.Collections.Hashtable",
    "datetime": "System.DateTime",
    "securestring": "System.Security.SecureString",
    "pscredential": "System.Management.Automation.PSCredential",
}


def _convert(fn: str, name: str, param: ParamContract, value: Any, wire: str) -> Any:
    ptype = (param.type or "object").lower()
    if value is None:
        return _null(fn, name, param, ptype)
    converted = _to_type(fn, name, ptype, value, wire)
    _validate(fn, name, param, converted)
    return converted


def _null(fn: str, name: str, param: ParamContract, ptype: str) -> Any:
    if param.mandatory or param.not_null or param.not_null_or_empty:
        if param.not_null or param.not_null_or_empty:
            raise _validation(
                fn,
                name,
                "The argument is null. Provide a valid value for the argument, and then try "
                "running the command again."
                if param.not_null
                else "The argument is null or empty. Provide an argument that is not null or "
                "empty, and then try the command again.",
            )
        raise BindingFailure(
            f"Cannot bind argument to parameter '{name}' because it is null.",
            f"ParameterArgumentValidationErrorNullNotAllowed,{fn}",
            "InvalidData",
            "ParameterBindingValidationException",
        )
    return "" if ptype == "string" else None


def _to_type(fn: str, name: str, ptype: str, value: Any, wire: str) -> Any:
    net = _NET_TYPES.get(ptype, ptype)
    if ptype == "string":
        if isinstance(value, bool | int | float | str):
            return _scalar_text(value)
        raise _transform(fn, name, value, wire, net)
    if ptype == "string[]":
        items = value if isinstance(value, list) else [value]
        if all(isinstance(v, bool | int | float | str) for v in items):
            return [_scalar_text(v) for v in items]
        raise _transform(fn, name, value, wire, net)
    if ptype == "int":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            return int(value)
        raise _transform(fn, name, value, wire, net, 'Input string was not in a correct format."')
    if ptype in ("bool", "switch"):
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return value != 0
        raise BindingFailure(
            f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
            f'"{wire}" to type "{net}". Boolean parameters accept only Boolean values and '
            "numbers, such as $True, $False, 1 or 0.",
            f"ParameterArgumentTransformationError,{fn}",
            "InvalidData",
            "ParameterBindingArgumentTransformationException",
        )
    if ptype == "hashtable":
        if isinstance(value, dict):
            return value
        raise _transform(fn, name, value, wire, net)
    if ptype == "datetime":
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if isinstance(value, str):
            parsed = parse_datetime(value)
            if parsed is not None:
                return parsed
        raise _transform(
            fn, name, value, wire, net, 'String was not recognized as a valid DateTime."'
        )
    if ptype == "securestring":
        if isinstance(value, SecureText):
            return value
        raise _transform(fn, name, value, wire, net)
    if ptype == "pscredential":
        if (
            isinstance(value, dict)
            and wire.endswith("PSCredential")
            and isinstance(value.get("Password"), SecureText)
        ):
            return value
        raise _transform(fn, name, value, wire, net)
    return value


def parse_datetime(text: str) -> dt.datetime | None:
    """What PowerShell's [datetime] conversion accepts of ISO 8601 (no zone: taken as UTC,
    as the module does for an Unspecified kind)."""
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    # .NET accepts 7 fractional digits; Python at most 6.
    candidate = re.sub(r"(\.\d{6})\d+", r"\1", candidate)
    try:
        parsed = dt.datetime.fromisoformat(candidate)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _scalar_text(value: bool | int | float | str) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _transform(
    fn: str, name: str, value: Any, wire: str, net: str, detail: str | None = None
) -> BindingFailure:
    shown = value if isinstance(value, str | int | float) else wire
    reason = detail or f'Cannot convert the "{shown}" value of type "{wire}" to type "{net}"."'
    return BindingFailure(
        f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
        f'"{shown}" to type "{net}". Error: "{reason}',
        f"ParameterArgumentTransformationError,{fn}",
        "InvalidData",
        "ParameterBindingArgumentTransformationException",
    )


def _validation(fn: str, name: str, detail: str) -> BindingFailure:
    return BindingFailure(
        f"Cannot validate argument on parameter '{name}'. {detail}",
        f"ParameterArgumentValidationError,{fn}",
        "InvalidData",
        "ParameterBindingValidationException",
    )


def _validate(fn: str, name: str, param: ParamContract, value: Any) -> None:
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        if param.mandatory and not param.allow_empty_collection:
            raise BindingFailure(
                f"Cannot bind argument to parameter '{name}' because it is an empty array.",
                f"ParameterArgumentValidationErrorEmptyArrayNotAllowed,{fn}",
                "InvalidData",
                "ParameterBindingValidationException",
            )
        if param.not_null_or_empty:
            raise _validation(
                fn,
                name,
                "The argument is null, empty, or an element of the argument collection contains "
                "a null value. Supply a collection that does not contain any null values and then "
                "try the command again.",
            )
    if value == "" and param.mandatory and not param.allow_empty_string:
        raise BindingFailure(
            f"Cannot bind argument to parameter '{name}' because it is an empty string.",
            f"ParameterArgumentValidationErrorEmptyStringNotAllowed,{fn}",
            "InvalidData",
            "ParameterBindingValidationException",
        )
    if param.not_null_or_empty and any(v == "" for v in items):
        raise _validation(
            fn,
            name,
            "The argument is null or empty. Provide an argument that is not null or empty, and "
            "then try the command again.",
        )
    if param.validate_set is not None:
        allowed = {v.lower() for v in param.validate_set}
        for item in items:
            if str(item).lower() not in allowed:
                raise _validation(
                    fn,
                    name,
                    f'The argument "{item}" does not belong to the set "'
                    + ",".join(param.validate_set)
                    + '" specified by the ValidateSet attribute. Supply an argument that is in '
                    "the set and then try the command again.",
                )
    if param.validate_pattern is not None:
        for item in items:
            if not re.search(param.validate_pattern, str(item), re.IGNORECASE):
                raise _validation(
                    fn,
                    name,
                    f'The argument "{item}" does not match the "{param.validate_pattern}" '
                    f'pattern. Supply an argument that matches "{param.validate_pattern}" and '
                    "try the command again.",
                )
    if param.validate_range is not None:
        low, high = param.validate_range
        for item in items:
            if isinstance(item, int) and not low <= item <= high:
                which = "minimum" if item < low else "maximum"
                limit = low if item < low else high
                raise _validation(
                    fn,
                    name,
                    f"The {item} argument is {'less' if item < low else 'greater'} than the "
                    f"{which} allowed range of {limit}. Supply an argument that is "
                    f"{'greater' if item < low else 'less'} than or equal to {limit} and then "
                    "try the command again.",
                )


def canonical_set_value(param: ParamContract, value: str) -> str:
    """ValidateSet matches case-insensitively; the function sees the caller's spelling, but the
    module compares with -eq (case-insensitive) too, so handlers use the declared spelling."""
    for option in param.validate_set or ():
        if option.lower() == value.lower():
            return option
    return value
