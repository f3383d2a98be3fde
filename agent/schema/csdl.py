"""The Microsoft Graph v1.0 schema (CSDL) and a validator for JSON payloads against it.

Used to check that kinds select real properties, that backed-up objects look like Graph's
objects, and which properties a restore may write. Short names ("user") and the alias
("graph.user") mean the ``microsoft.graph`` namespace; other namespaces (for example
``microsoft.graph.security``, which has its own ``user``) only by their qualified names.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

CSDL_PATH = Path(__file__).with_name("graph-v1.0.csdl.gz")
NAMESPACE = "microsoft.graph"
_EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
_COMPUTED = "Org.OData.Core.V1.Computed"
_IMMUTABLE = "Org.OData.Core.V1.Immutable"


@dataclass(frozen=True)
class Prop:
    name: str
    type: str  # qualified element type: "Edm.String", "microsoft.graph.assignedLicense"
    collection: bool
    nullable: bool
    computed: bool = False
    immutable: bool = False
    navigation: bool = False
    contains_target: bool = False


@dataclass
class StructuredType:
    name: str  # qualified
    kind: str  # "entity" or "complex"
    base: str | None
    abstract: bool
    open: bool
    own: dict[str, Prop] = field(default_factory=dict)

    @property
    def short(self) -> str:
        return self.name.removeprefix(f"{NAMESPACE}.")


@dataclass(frozen=True)
class EnumType:
    name: str
    members: frozenset[str]
    is_flags: bool


class Schema:
    def __init__(
        self,
        types: dict[str, StructuredType],
        enums: dict[str, EnumType],
        aliases: dict[str, str],
    ) -> None:
        self._types = types
        self._enums = enums
        self._aliases = aliases
        self._props: dict[str, dict[str, Prop]] = {}
        self._derived: dict[str, list[str]] = {}
        for t in types.values():
            if t.base:
                self._derived.setdefault(t.base, []).append(t.name)

    # -- lookups ------------------------------------------------------------------------

    def qualify(self, name: str) -> str:
        """Qualified name for "user", "graph.user", "#microsoft.graph.user" or a qualified name."""
        name = name.removeprefix("#")
        if name.startswith("Edm.") or name in self._types or name in self._enums:
            return name
        prefix, dot, rest = name.partition(".")
        if dot and prefix in self._aliases:
            return f"{self._aliases[prefix]}.{rest}"
        if not dot:
            return f"{NAMESPACE}.{name}"
        return name

    def entity(self, name: str) -> StructuredType:
        return self._structured(name, "entity")

    def complex(self, name: str) -> StructuredType:
        return self._structured(name, "complex")

    def enum(self, name: str) -> EnumType:
        qualified = self.qualify(name)
        if qualified not in self._enums:
            raise KeyError(f"no enum type {name!r} in the Graph v1.0 schema")
        return self._enums[qualified]

    def structured(self, name: str) -> StructuredType:
        """An entity or complex type."""
        return self._structured(name, None)

    def properties(self, type_name: str) -> dict[str, Prop]:
        """Properties of a type including inherited ones, base types first."""
        qualified = self.structured(type_name).name
        cached = self._props.get(qualified)
        if cached is None:
            chain = []
            current: str | None = qualified
            while current is not None:
                t = self._types[current]
                chain.append(t)
                current = t.base
            cached = {}
            for t in reversed(chain):
                cached.update(t.own)
            self._props[qualified] = cached
        return cached

    def derived_types(self, name: str) -> list[str]:
        """Qualified names of every type deriving from ``name``, directly or not."""
        found: list[str] = []
        pending = [self.structured(name).name]
        while pending:
            for child in self._derived.get(pending.pop(), []):
                found.append(child)
                pending.append(child)
        return sorted(found)

    def is_assignable(self, actual: str, declared: str) -> bool:
        """True when a value of type ``actual`` may appear where ``declared`` is expected."""
        target = self.structured(declared).name
        current: str | None = self.structured(actual).name
        while current is not None:
            if current == target:
                return True
            current = self._types[current].base
        return False

    def writable_properties(self, entity: str) -> set[str]:
        """Structural properties a client may send: not navigation, not computed, not id."""
        return {
            p.name
            for p in self.properties(entity).values()
            if not p.navigation and not p.computed and p.name != "id"
        }

    # -- validation ---------------------------------------------------------------------

    def validate(self, type_name: str, payload: dict[str, Any]) -> list[str]:
        """Problems of ``payload`` as a ``type_name``; each names the JSON path. Empty if fine."""
        errors: list[str] = []
        _Validator(self, errors).object(self.structured(type_name), payload, "$")
        return errors

    def _structured(self, name: str, kind: str | None) -> StructuredType:
        t = self._types.get(self.qualify(name))
        if t is None or (kind is not None and t.kind != kind):
            what = {"entity": "entity type", "complex": "complex type"}.get(kind or "", "type")
            raise KeyError(f"no {what} {name!r} in the Graph v1.0 schema")
        return t

    def _lookup(self, name: str) -> StructuredType | EnumType | None:
        qualified = self.qualify(name)
        return self._types.get(qualified) or self._enums.get(qualified)


# Directory extension properties (extension_{appId without dashes}_{name}) are the dynamic
# properties Graph puts on its open directory types.
_EXTENSION = re.compile(r"^extension_[0-9a-fA-F]{32}_\w+$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,12})?)?(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,12})?)?$")
_DURATION = re.compile(
    r"^-?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
)
_INT_RANGES = {
    "Edm.Byte": (0, 255),
    "Edm.SByte": (-128, 127),
    "Edm.Int16": (-(2**15), 2**15 - 1),
    "Edm.Int32": (-(2**31), 2**31 - 1),
    "Edm.Int64": (-(2**63), 2**63 - 1),
}
_FLOATS = {"Edm.Double", "Edm.Single", "Edm.Decimal"}


class _Validator:
    def __init__(self, schema: Schema, errors: list[str]) -> None:
        self.schema = schema
        self.errors = errors

    def object(self, declared: StructuredType, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.errors.append(f"{path}: expected a {declared.short} object, got {_kind(value)}")
            return
        actual = declared
        odata_type = value.get("@odata.type")
        if odata_type is not None:
            named = self.schema._lookup(odata_type) if isinstance(odata_type, str) else None
            if not isinstance(named, StructuredType):
                self.errors.append(f"{path}.@odata.type: {odata_type!r} is not a known type")
                return
            if not self.schema.is_assignable(named.name, declared.name):
                self.errors.append(
                    f"{path}.@odata.type: {named.short} is not a {declared.short} "
                    "or a type derived from it"
                )
                return
            actual = named
        props = self.schema.properties(actual.name)
        for key, item in value.items():
            if "@" in key:
                continue  # instance annotations: @odata.*, members@delta, @removed, …
            prop = props.get(key)
            if prop is None:
                # Open types take dynamic properties: any on a pure property bag
                # (customSecurityAttributeValue), directory extensions elsewhere.
                if actual.open and (not props or _EXTENSION.match(key)):
                    continue
                self.errors.append(f"{path}.{key}: {actual.short} has no property {key!r}")
                continue
            self.property(prop, item, f"{path}.{key}")

    def property(self, prop: Prop, value: Any, path: str) -> None:
        if value is None:
            if not prop.nullable:
                self.errors.append(f"{path}: null is not allowed")
            return
        if not prop.collection:
            self.value(prop.type, value, path)
            return
        if not isinstance(value, list):
            self.errors.append(
                f"{path}: expected a list of {_short(prop.type)}, got {_kind(value)}"
            )
            return
        for index, item in enumerate(value):
            if item is None:
                if not prop.nullable:
                    self.errors.append(f"{path}[{index}]: null is not allowed")
                continue
            self.value(prop.type, item, f"{path}[{index}]")

    def value(self, type_name: str, value: Any, path: str) -> None:
        if type_name.startswith("Edm."):
            problem = _primitive_problem(type_name, value)
            if problem:
                self.errors.append(f"{path}: {problem}")
            return
        named = self.schema._lookup(type_name)
        if isinstance(named, EnumType):
            problem = _enum_problem(named, value)
            if problem:
                self.errors.append(f"{path}: {problem}")
        elif isinstance(named, StructuredType):
            self.object(named, value, path)
        # A type the schema does not define (none today) cannot be checked.


def _primitive_problem(edm: str, value: Any) -> str | None:
    expected = edm.removeprefix("Edm.")
    if edm in ("Edm.Stream", "Edm.Untyped"):
        return None
    if edm == "Edm.String":
        return None if isinstance(value, str) else f"expected a string, got {_kind(value)}"
    if edm == "Edm.Boolean":
        return None if isinstance(value, bool) else f"expected true or false, got {_kind(value)}"
    if edm in _INT_RANGES:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"expected an integer ({expected}), got {_kind(value)}"
        low, high = _INT_RANGES[edm]
        return None if low <= value <= high else f"{value} is out of range for {expected}"
    if edm in _FLOATS:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return None
        if value in ("NaN", "INF", "-INF"):
            return None
        return f"expected a number ({expected}), got {_kind(value)}"
    if not isinstance(value, str):
        return f"expected a {expected} string, got {_kind(value)}"
    checks = {
        "Edm.Guid": _is_guid,
        "Edm.DateTimeOffset": _is_datetime,
        "Edm.Date": _is_date,
        "Edm.TimeOfDay": lambda v: bool(_TIME.match(v)),
        "Edm.Duration": lambda v: bool(_DURATION.match(v)),
        "Edm.Binary": _is_base64,
    }
    check = checks.get(edm)
    if check is None or check(value):
        return None
    return f"{value[:60]!r} is not a valid {expected}"


def _enum_problem(enum: EnumType, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"expected a {_short(enum.name)} member name, got {_kind(value)}"
    names = [v.strip() for v in value.split(",")] if enum.is_flags else [value]
    unknown = [n for n in names if n not in enum.members]
    if unknown:
        return f"{unknown[0]!r} is not a member of {_short(enum.name)}"
    return None


def _is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


def _is_datetime(value: str) -> bool:
    if not _DATETIME.match(value):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_date(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_base64(value: str) -> bool:
    # OData uses base64url; Graph also sends standard base64. Accept both alphabets.
    normalized = value.replace("-", "+").replace("_", "/")
    normalized += "=" * (-len(normalized) % 4)
    try:
        base64.b64decode(normalized, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return f"the string {value[:60]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(name: str) -> str:
    return name.removeprefix(f"{NAMESPACE}.")


# -- loading ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def load_schema(path: Path = CSDL_PATH) -> Schema:
    root = ET.fromstring(gzip.decompress(path.read_bytes()))
    schemas = list(root.iter(f"{_EDM}Schema"))
    # Aliases are document-wide: the main schema refers to microsoft.graph.security as "self".
    aliases = {s.get("Alias", ""): s.get("Namespace", "") for s in schemas if s.get("Alias")}

    def qualify(name: str) -> str:
        prefix, dot, rest = name.partition(".")
        return f"{aliases[prefix]}.{rest}" if dot and prefix in aliases else name

    flags = _annotated_flags(schemas, qualify)
    types: dict[str, StructuredType] = {}
    enums: dict[str, EnumType] = {}
    for schema in schemas:
        namespace = schema.get("Namespace", "")
        for element in schema:
            tag = element.tag.removeprefix(_EDM)
            qualified = f"{namespace}.{element.get('Name')}"
            if tag == "EnumType":
                enums[qualified] = EnumType(
                    qualified,
                    frozenset(m.get("Name", "") for m in element.iter(f"{_EDM}Member")),
                    element.get("IsFlags") == "true",
                )
            elif tag in ("EntityType", "ComplexType"):
                base = element.get("BaseType")
                t = StructuredType(
                    qualified,
                    "entity" if tag == "EntityType" else "complex",
                    qualify(base) if base else None,
                    element.get("Abstract") == "true",
                    element.get("OpenType") == "true",
                )
                for child in element:
                    prop = _prop(child, qualified, qualify, flags)
                    if prop is not None:
                        t.own[prop.name] = prop
                types[qualified] = t
    return Schema(types, enums, aliases)


def _prop(
    element: ET.Element,
    owner: str,
    qualify: Callable[[str], str],
    flags: dict[str, set[str]],
) -> Prop | None:
    tag = element.tag.removeprefix(_EDM)
    if tag not in ("Property", "NavigationProperty"):
        return None
    name = element.get("Name", "")
    raw_type = element.get("Type", "")
    collection = raw_type.startswith("Collection(")
    element_type = raw_type[len("Collection(") : -1] if collection else raw_type
    terms = flags.get(f"{owner}/{name}", set())
    return Prop(
        name=name,
        type=qualify(element_type),
        collection=collection,
        nullable=element.get("Nullable") != "false",
        computed=_COMPUTED in terms,
        immutable=_IMMUTABLE in terms,
        navigation=tag == "NavigationProperty",
        contains_target=element.get("ContainsTarget") == "true",
    )


def _annotated_flags(
    schemas: list[ET.Element], qualify: Callable[[str], str]
) -> dict[str, set[str]]:
    """Computed/Immutable terms by "qualified.type/property" target.

    Graph's CSDL puts them out of line (``<Annotations Target=…>``), and not always in the
    schema of the type they describe.
    """
    found: dict[str, set[str]] = {}
    for schema in schemas:
        for block in schema.iter(f"{_EDM}Annotations"):
            target = qualify(block.get("Target", ""))
            for annotation in block.iter(f"{_EDM}Annotation"):
                term = annotation.get("Term")
                if term in (_COMPUTED, _IMMUTABLE) and annotation.get("Bool", "true") == "true":
                    found.setdefault(target, set()).add(term)
    return found
