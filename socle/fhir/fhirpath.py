"""A compiler and evaluator for the FHIRPath subset that FHIR R4 search-parameter expressions use.

Search parameters are data: each one carries a FHIRPath `expression` saying which parts of a resource
it indexes. This module turns such an expression into a `CompiledPath` once, and evaluates it on
resource JSON (plain dicts and lists, as `orjson` gives them) many times. Every result item carries
its FHIR type, known from the definition tables (`socle.fhir.definitions.structures`): evaluation
starts from a typed node and walks element by element, so `Observation.value` knows it found a
`valueQuantity` and returns it typed "Quantity".

Supported (everything the 1,400 R4 SearchParameters use, plus a few neighbours):
- paths `Type.a.b` (a leading capitalised identifier is a type filter on the focus), choice elements
  resolved through the type tables, `[n]` indexing, `%resource`, `$this`;
- `a | b` union (duplicates removed), `=` / `!=`, `and` / `or` with three-valued logic,
  literals 'string', true/false, integers and decimals;
- `x as T`, `x is T`, `.as(T)`, `.is(T)`, `.ofType(T)`, with FHIR type names and System ones
  (`DateTime`, `String`…);
- functions `where(criteria)`, `exists([criteria])`, `empty()`, `not()`, `first()`,
  `extension('url')`, `hasExtension('url')`, `resolve()`.

`resolve()` does not fetch anything: it yields the target's type (from a literal reference such as
`Patient/1` or `http://x/fhir/Patient/1`, or `Reference.type`) so that `where(resolve() is Patient)`
works at index time; `#id` references resolve to the contained resource itself.

Anything else is refused at compile time with `UnsupportedExpression` (never silently empty), as are
element names that no possible input type has. Out of scope: arithmetic, comparison operators,
date/quantity semantics of equality, extensions on primitives (`_birthDate`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from types import MappingProxyType
from typing import Any, Final

from socle.fhir.definitions import resource_types, structures

Item = tuple[Any, str]
"""An evaluation item: a JSON value and its FHIR type name (internal form of `TypedValue`)."""

Types = frozenset[str] | None
"""The statically possible FHIR types of a collection; None when only known at run time."""


class UnsupportedExpression(ValueError):
    """The expression uses FHIRPath outside the supported subset, or names an unknown element/type."""


@dataclass(frozen=True, slots=True)
class TypedValue:
    """One result item: the JSON value (dict, list item, str, bool, number) and its FHIR type."""

    value: Any
    fhir_type: str


# --- type tables -------------------------------------------------------------------------------

# FHIRPath System types (`value.as(DateTime)`), and the one each FHIR primitive lineage maps onto.
_SYSTEM_TYPES: Final = frozenset({"Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time"})
_SYSTEM_OF_PRIMITIVE: Final = {
    "boolean": "Boolean",
    "string": "String",
    "uri": "String",
    "base64Binary": "String",
    "xhtml": "String",
    "integer": "Integer",
    "decimal": "Decimal",
    "date": "Date",
    "dateTime": "DateTime",
    "instant": "DateTime",
    "time": "Time",
}
# Elements typed `Resource` hold any resource: their item type is read from `resourceType`.
_ANY_RESOURCE: Final = frozenset({"Resource", "DomainResource"})
_UNRESOLVED: Final[MappingProxyType[str, Any]] = MappingProxyType({})
"""Stands for a resolved reference whose content is not at hand: it has a type and no elements."""


@cache
def _base_chain(type_name: str) -> tuple[str, ...]:
    chain: list[str] = []
    current: str | None = type_name
    defs = structures()
    while current is not None and current not in chain:
        chain.append(current)
        definition = defs.get(current)
        current = definition.get("base") if definition is not None else None
    return tuple(chain)


@cache
def conforms_to(type_name: str, wanted: str) -> bool:
    """Whether a value of FHIR type `type_name` is a `wanted` (same type, subtype, or System type)."""
    if wanted.startswith("System."):
        root = next((t for t in _base_chain(type_name) if t in _SYSTEM_OF_PRIMITIVE), None)
        return root is not None and "System." + _SYSTEM_OF_PRIMITIVE[root] == wanted
    return wanted in _base_chain(type_name)


def _resolve_type_name(name: str) -> str:
    """A type specifier as written (`Patient`, `FHIR.Quantity`, `DateTime`) → canonical name."""
    namespace, _, bare = name.rpartition(".")
    if namespace in ("", "FHIR") and bare in structures():
        return bare
    if namespace in ("", "System") and bare in _SYSTEM_TYPES:
        return "System." + bare
    raise UnsupportedExpression(f"Unknown type {name!r}")


@cache
def _member_keys(type_name: str, name: str) -> tuple[tuple[str, str], ...]:
    """The JSON keys holding element `name` of `type_name`, with their types (several for choices)."""
    definition = structures().get(type_name)
    if definition is None:
        return ()
    element = definition.get("elements", {}).get(name)
    if element is None:
        return ()
    types = element.get("types", [])
    if element.get("choice"):
        return tuple((name + t[0].upper() + t[1:], t) for t in types)
    return ((name, types[0]),) if types else ()


_RELATIVE_REFERENCE = re.compile(
    r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([A-Za-z0-9\-.]{1,64}))?"
)
_ABSOLUTE_REFERENCE = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*://.*?/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/([A-Za-z0-9\-.]{1,64}))?"
)


def split_reference(reference: str) -> tuple[str, str, str | None] | None:
    """`Type/id[/_history/v]`, relative or at the end of an absolute URL → (type, id, version).

    None when the reference does not name a known resource type that way (`urn:uuid:`, `#id`, a
    canonical URL, a conditional reference).
    """
    match = _RELATIVE_REFERENCE.fullmatch(reference) or _ABSOLUTE_REFERENCE.fullmatch(reference)
    if match is None or match.group(1) not in resource_types():
        return None
    return match.group(1), match.group(2), match.group(3)


# --- tokenizer and parser ----------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<quoted>`(?:[^`\\]|\\.)*`)
  | (?P<var>%[A-Za-z_][A-Za-z0-9_]*|%'(?:[^'\\]|\\.)*'|%`(?:[^`\\]|\\.)*`)
  | (?P<special>\$[a-z]+)
  | (?P<op>!=|!~|<=|>=|[.()\[\],|=<>~+\-*/&{}])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES: Final = {
    "'": "'",
    '"': '"',
    "`": "`",
    "/": "/",
    "\\": "\\",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
# Binary operators by precedence (higher binds tighter), as in the FHIRPath grammar.
_PRECEDENCE: Final = {
    "implies": 1, "or": 2, "xor": 2, "and": 3, "in": 4, "contains": 4,
    "=": 5, "!=": 5, "~": 5, "!~": 5, "<": 6, ">": 6, "<=": 6, ">=": 6,
    "|": 7, "is": 8, "as": 8, "+": 9, "-": 9, "&": 9, "*": 10, "/": 10, "div": 10, "mod": 10,
}  # fmt: skip
_SUPPORTED_OPERATORS: Final = frozenset({"or", "and", "=", "!=", "|", "is", "as"})


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # string | number | ident | quoted (`identifier`: never a keyword) | var | special | op | end
    text: str
    pos: int


def _unescape(body: str) -> str:
    return re.sub(
        r"\\(u[0-9a-fA-F]{4}|.)",
        lambda m: (
            chr(int(m.group(1)[1:], 16)) if len(m.group(1)) == 5 else _ESCAPES.get(m.group(1), m.group(1))
        ),
        body,
    )


def _tokenize(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None:
            raise UnsupportedExpression(
                f"Unexpected character {expression[pos]!r} at {pos} in {expression!r}"
            )
        kind = match.lastgroup or ""
        if kind != "space":
            text = match.group()
            if kind in ("string", "quoted"):
                text = _unescape(text[1:-1])
            elif kind == "var" and text[1] in "'`":
                text = "%" + _unescape(text[2:-1])
            tokens.append(_Token(kind, text, pos))
        pos = match.end()
    tokens.append(_Token("end", "", pos))
    return tokens


# AST: plain frozen dataclasses, compiled right after parsing.
@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any
    fhir_type: str


@dataclass(frozen=True, slots=True)
class _Empty:
    pass


@dataclass(frozen=True, slots=True)
class _Name:
    """An identifier: `source.name`, or on the focus when `source` is None."""

    source: _Node | None
    name: str


@dataclass(frozen=True, slots=True)
class _Call:
    source: _Node | None
    name: str
    args: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Indexer:
    source: _Node
    index: _Node


@dataclass(frozen=True, slots=True)
class _Binary:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True, slots=True)
class _TypeOperation:
    op: str  # is | as
    source: _Node
    type_name: str


@dataclass(frozen=True, slots=True)
class _Variable:
    name: str  # %resource, $this


_Node = _Literal | _Empty | _Name | _Call | _Indexer | _Binary | _TypeOperation | _Variable


class _Parser:
    """Precedence-climbing parser over the FHIRPath grammar; unsupported operators fail here."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = _tokenize(expression)
        self.pos = 0

    def fail(self, message: str, token: _Token | None = None) -> UnsupportedExpression:
        at = (token or self.tokens[self.pos]).pos
        return UnsupportedExpression(f"{message} at {at} in {self.expression!r}")

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, text: str) -> None:
        token = self.advance()
        if token.kind != "op" or token.text != text:
            raise self.fail(f"Expected {text!r}, found {token.text or 'end of expression'!r}", token)

    def parse(self) -> _Node:
        node = self.expression_(0)
        if self.peek().kind != "end":
            raise self.fail(f"Unexpected {self.peek().text!r}")
        return node

    def operator(self) -> str | None:
        token = self.peek()
        if (token.kind == "op" or token.kind == "ident") and token.text in _PRECEDENCE:
            return token.text
        return None

    def expression_(self, min_precedence: int) -> _Node:
        left = self.postfix()
        while (op := self.operator()) is not None and _PRECEDENCE[op] >= min_precedence:
            token = self.advance()
            if op not in _SUPPORTED_OPERATORS:
                raise self.fail(f"Unsupported operator {op!r}", token)
            if op in ("is", "as"):
                left = _TypeOperation(op, left, self.type_specifier())
            else:  # left-associative
                left = _Binary(op, left, self.expression_(_PRECEDENCE[op] + 1))
        return left

    def type_specifier(self) -> str:
        token = self.advance()
        if token.kind not in ("ident", "quoted"):
            raise self.fail("Expected a type name", token)
        name = token.text
        # Qualified names only for the two namespaces: `x as Quantity.unit` is not a type name.
        if name in ("FHIR", "System") and self.peek().text == ".":
            self.advance()
            name += "." + self.advance().text
        return name

    def postfix(self) -> _Node:
        node = self.primary()
        while True:
            token = self.peek()
            if token.kind == "op" and token.text == ".":
                self.advance()
                name = self.advance()
                if name.kind not in ("ident", "quoted"):
                    raise self.fail("Expected an identifier after '.'", name)
                node = self.invocation(node, name.text)
            elif token.kind == "op" and token.text == "[":
                self.advance()
                index = self.expression_(0)
                self.expect("]")
                node = _Indexer(node, index)
            else:
                return node

    def invocation(self, source: _Node | None, name: str) -> _Node:
        if self.peek().kind == "op" and self.peek().text == "(":
            self.advance()
            args: list[_Node] = []
            if not (self.peek().kind == "op" and self.peek().text == ")"):
                args.append(self.expression_(0))
                while self.peek().kind == "op" and self.peek().text == ",":
                    self.advance()
                    args.append(self.expression_(0))
            self.expect(")")
            return _Call(source, name, tuple(args))
        return _Name(source, name)

    def primary(self) -> _Node:
        token = self.advance()
        if token.kind == "op" and token.text == "(":
            node = self.expression_(0)
            self.expect(")")
            return node
        if token.kind == "op" and token.text == "{":
            self.expect("}")
            return _Empty()
        if token.kind == "string":
            return _Literal(token.text, "string")
        if token.kind == "number":
            if "." in token.text:
                return _Literal(Decimal(token.text), "decimal")
            return _Literal(int(token.text), "integer")
        if token.kind == "ident" and token.text in ("true", "false"):
            return _Literal(token.text == "true", "boolean")
        if token.kind in ("ident", "quoted"):
            return self.invocation(None, token.text)
        if token.kind in ("var", "special"):
            return _Variable(token.text)
        raise self.fail(f"Unexpected {token.text or 'end of expression'!r}", token)


# --- compiled steps ----------------------------------------------------------------------------


class _Step:
    """A compiled node: maps the focus collection to a result collection; `root` is %resource."""

    __slots__ = ()

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        raise NotImplementedError

    def reads(self) -> frozenset[str] | None:
        """The keys of the starting node this step can give nothing without; None if not that simple."""
        return None


class _Focus(_Step):
    __slots__ = ()

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        return focus


class _Constant(_Step):
    __slots__ = ("items",)

    def __init__(self, items: list[Item]) -> None:
        self.items = items

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        return self.items  # shared: steps never modify their inputs (see compile_path for the top)


class _Root(_Step):
    __slots__ = ()

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        if isinstance(root, dict):
            return [(root, root.get("resourceType", "Resource"))]
        return []


class _Member(_Step):
    """Element access. `table` maps each input type to its JSON keys (and their types), filled at
    compile time for the statically known types and memoised on first sight of any other type."""

    __slots__ = ("name", "source", "table", "wanted")

    def __init__(self, source: _Step, name: str, wanted: str | None = None) -> None:
        self.source = source
        self.name = name
        self.wanted = wanted  # a fused `as(T)`/`ofType(T)`: keep only keys of that type
        self.table: dict[str, tuple[tuple[str, str], ...]] = {}

    def keys_for(self, type_name: str) -> tuple[tuple[str, str], ...]:
        keys = _member_keys(type_name, self.name)
        if self.wanted is not None:
            wanted = self.wanted
            keys = tuple(k for k in keys if k[1] in _ANY_RESOURCE or conforms_to(k[1], wanted))
        self.table[type_name] = keys
        return keys

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        # The hot loop of indexing: plain loops and local names, no generators.
        out: list[Item] = []
        append = out.append
        table = self.table
        for value, type_name in self.source.run(focus, root):
            if type(value) is not dict:
                continue
            keys = table.get(type_name)
            if keys is None:
                keys = self.keys_for(type_name)
            for key, result_type in keys:
                found = value.get(key)
                if found is None:
                    continue
                if result_type in _ANY_RESOURCE:
                    self.resources(found, result_type, append)
                elif type(found) is list:
                    for element in found:
                        if element is not None:
                            append((element, result_type))
                else:
                    append((found, result_type))
        return out

    def reads(self) -> frozenset[str] | None:
        if not isinstance(self.source, _Focus):
            return self.source.reads()
        if not self.table:  # types known only at run time
            return None
        return frozenset(key for keys in self.table.values() for key, _ in keys)

    def resources(self, found: Any, declared: str, append: Callable[[Item], None]) -> None:
        """Resources held by an element typed Resource, typed by their own `resourceType`."""
        wanted = self.wanted
        for resource in found if type(found) is list else (found,):
            if type(resource) is dict:
                actual = resource.get("resourceType", declared)
                if wanted is None or conforms_to(actual, wanted):
                    append((resource, actual))


class _TypeFilter(_Step):
    """`as T` / `ofType(T)`, and a leading type name in a path (`Patient.name`)."""

    __slots__ = ("source", "wanted")

    def __init__(self, source: _Step, wanted: str) -> None:
        self.source = source
        self.wanted = wanted

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        wanted = self.wanted
        return [item for item in self.source.run(focus, root) if conforms_to(item[1], wanted)]

    def reads(self) -> frozenset[str] | None:
        return self.source.reads()


class _Is(_Step):
    __slots__ = ("source", "wanted")

    def __init__(self, source: _Step, wanted: str) -> None:
        self.source = source
        self.wanted = wanted

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        items = self.source.run(focus, root)
        if not items:
            return []
        return [(len(items) == 1 and conforms_to(items[0][1], self.wanted), "boolean")]


class _Index(_Step):
    __slots__ = ("index", "source")

    def __init__(self, source: _Step, index: int) -> None:
        self.source = source
        self.index = index

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        return self.source.run(focus, root)[self.index : self.index + 1]

    def reads(self) -> frozenset[str] | None:
        return self.source.reads()


_PRIMITIVE_VALUES: Final = frozenset({str, bool, int, float, Decimal})


class _Union(_Step):
    __slots__ = ("parts",)

    def __init__(self, parts: list[_Step]) -> None:
        self.parts = parts

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        runs: Iterable[list[Item]]
        if len(self.parts) == 1:
            # Most search expressions compiled for one type keep a single member (`Observation.subject`
            # of a long union): with at most one item there is no duplicate to remove. A copy, since
            # a _Constant's list is shared.
            items = self.parts[0].run(focus, root)
            if len(items) < 2:
                return list(items)
            runs = (items,)
        else:
            runs = (part.run(focus, root) for part in self.parts)
        # Primitives are duplicates when equal (and of the same type: true is not 1); elements when
        # they are the same JSON node.
        seen: dict[tuple[Any, ...], Item] = {}
        primitive = _PRIMITIVE_VALUES
        for items in runs:
            for item in items:
                value = item[0]
                key = (type(value), value, item[1]) if type(value) in primitive else (id(value), item[1])
                if key not in seen:
                    seen[key] = item
        return list(seen.values())

    def reads(self) -> frozenset[str] | None:
        keys: set[str] = set()
        for part in self.parts:
            part_keys = part.reads()
            if part_keys is None:
                return None
            keys |= part_keys
        return frozenset(keys)


class _Where(_Step):
    __slots__ = ("criteria", "source")

    def __init__(self, source: _Step, criteria: _Step) -> None:
        self.source = source
        self.criteria = criteria

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        criteria = self.criteria
        return [item for item in self.source.run(focus, root) if _truth(criteria.run([item], root)) is True]

    def reads(self) -> frozenset[str] | None:
        return self.source.reads()


def _truth(items: list[Item]) -> bool | None:
    """FHIRPath singleton evaluation to Boolean: empty is unknown, a non-boolean item counts as true.

    A collection of several items is an error in FHIRPath; indexing must not fail on data, so it
    counts as true (non-empty)."""
    if not items:
        return None
    if len(items) == 1 and type(items[0][0]) is bool:
        return bool(items[0][0])
    return True


class _Exists(_Step):
    __slots__ = ("criteria", "negate", "source")

    def __init__(self, source: _Step, criteria: _Step | None, negate: bool) -> None:
        self.source = source
        self.criteria = criteria
        self.negate = negate  # empty() is exists() negated

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        items = self.source.run(focus, root)
        criteria = self.criteria
        if criteria is not None:
            found = any(_truth(criteria.run([item], root)) is True for item in items)
        else:
            found = bool(items)
        return [(found != self.negate, "boolean")]


class _Not(_Step):
    __slots__ = ("source",)

    def __init__(self, source: _Step) -> None:
        self.source = source

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        value = _truth(self.source.run(focus, root))
        return [] if value is None else [(not value, "boolean")]


def _equal(left: Any, right: Any) -> bool:
    # bool is an int in Python, not in FHIRPath: true = 1 is false.
    if type(left) is bool or type(right) is bool:
        return type(left) is type(right) and left == right
    return bool(left == right)


class _Equality(_Step):
    __slots__ = ("left", "negate", "right")

    def __init__(self, left: _Step, right: _Step, negate: bool) -> None:
        self.left = left
        self.right = right
        self.negate = negate

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        left = self.left.run(focus, root)
        right = self.right.run(focus, root)
        if not left or not right:
            return []
        same = len(left) == len(right) and all(_equal(a[0], b[0]) for a, b in zip(left, right, strict=True))
        return [(same != self.negate, "boolean")]


class _Logic(_Step):
    """`and` / `or` with FHIRPath's three-valued logic (empty is unknown)."""

    __slots__ = ("is_and", "left", "right")

    def __init__(self, left: _Step, right: _Step, is_and: bool) -> None:
        self.left = left
        self.right = right
        self.is_and = is_and

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        left = _truth(self.left.run(focus, root))
        right = _truth(self.right.run(focus, root))
        decisive = not self.is_and  # false decides `and`, true decides `or`
        if left is decisive or right is decisive:
            return [(decisive, "boolean")]
        if left is None or right is None:
            return []
        return [(not decisive, "boolean")]


class _Extension(_Step):
    __slots__ = ("as_boolean", "source", "url")

    def __init__(self, source: _Step, url: str, as_boolean: bool) -> None:
        self.source = source
        self.url = url
        self.as_boolean = as_boolean  # hasExtension(url)

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        url = self.url
        found: list[Item] = []
        for value, _ in self.source.run(focus, root):
            if type(value) is dict:
                for extension in value.get("extension", ()):
                    if type(extension) is dict and extension.get("url") == url:
                        found.append((extension, "Extension"))
        if self.as_boolean:
            return [(bool(found), "boolean")]
        return found

    def reads(self) -> frozenset[str] | None:
        if self.as_boolean:
            return None
        return frozenset({"extension"}) if isinstance(self.source, _Focus) else self.source.reads()


class _Resolve(_Step):
    __slots__ = ("source",)

    def __init__(self, source: _Step) -> None:
        self.source = source

    def run(self, focus: list[Item], root: Any) -> list[Item]:
        out: list[Item] = []
        for value, type_name in self.source.run(focus, root):
            if type(value) is dict:  # Reference
                reference = value.get("reference")
                if isinstance(reference, str):
                    if reference.startswith("#"):
                        out.extend(_contained(root, reference[1:]))
                        continue
                    target = split_reference(reference)
                    if target is not None:
                        out.append((_UNRESOLVED, target[0]))
                        continue
                declared = value.get("type")
                if isinstance(declared, str):
                    declared = declared.rsplit("/", 1)[-1]
                    if declared in resource_types():
                        out.append((_UNRESOLVED, declared))
            elif isinstance(value, str) and conforms_to(type_name, "uri"):  # canonical / uri
                target = split_reference(value.split("|", 1)[0])
                if target is not None:
                    out.append((_UNRESOLVED, target[0]))
        return out

    def reads(self) -> frozenset[str] | None:
        return self.source.reads()


def _contained(root: Any, local_id: str) -> list[Item]:
    if type(root) is dict:
        for resource in root.get("contained", ()):
            if type(resource) is dict and resource.get("id") == local_id:
                return [(resource, resource.get("resourceType", "Resource"))]
    return []


# --- compiler ----------------------------------------------------------------------------------


class _Compiler:
    """Compiles an AST into steps, inferring the possible FHIR types of every collection."""

    def __init__(self, expression: str, root_type: str | None) -> None:
        self.expression = expression
        self.root_type = root_type

    def fail(self, message: str) -> UnsupportedExpression:
        return UnsupportedExpression(f"{message} in {self.expression!r}")

    def compile(self, node: _Node, focus: _Step, types: Types) -> tuple[_Step, Types]:
        if isinstance(node, _Literal):
            return _Constant([(node.value, node.fhir_type)]), frozenset({node.fhir_type})
        if isinstance(node, _Empty):
            return _Constant([]), frozenset()
        if isinstance(node, _Variable):
            return self.variable(node, focus, types)
        if isinstance(node, _Name):
            return self.name(node, focus, types)
        if isinstance(node, _Call):
            return self.call(node, focus, types)
        if isinstance(node, _Indexer):
            if not isinstance(node.index, _Literal) or type(node.index.value) is not int:
                raise self.fail("Only integer literal indexes are supported")
            source, source_types = self.compile(node.source, focus, types)
            return _Index(source, node.index.value), source_types
        if isinstance(node, _TypeOperation):
            source, source_types = self.compile(node.source, focus, types)
            if node.op == "as":
                return self.type_filter(source, source_types, _resolve_type_name(node.type_name))
            return _Is(source, _resolve_type_name(node.type_name)), frozenset({"boolean"})
        return self.binary(node, focus, types)

    def variable(self, node: _Variable, focus: _Step, types: Types) -> tuple[_Step, Types]:
        if node.name in ("%resource", "%rootResource"):
            return _Root(), None if self.root_type is None else frozenset({self.root_type})
        if node.name == "$this":
            return focus, types
        raise self.fail(f"Unsupported variable {node.name!r}")

    def name(self, node: _Name, focus: _Step, types: Types) -> tuple[_Step, Types]:
        if node.source is None and node.name[:1].isupper() and node.name in structures():
            # A leading type name filters the focus (`Patient.name` on a Person yields nothing).
            return self.type_filter(focus, types, node.name)
        source, source_types = (
            (focus, types) if node.source is None else self.compile(node.source, focus, types)
        )
        step = _Member(source, node.name)
        if source_types is None or source_types & _ANY_RESOURCE:
            # Unknown, or any resource (`Bundle.entry.resource`): elements are looked up at run time.
            return step, None
        result: set[str] = set()
        for type_name in source_types:
            result.update(t for _, t in step.keys_for(type_name))
        if source_types and not result:
            raise self.fail(f"{node.name!r} is not an element of {', '.join(sorted(source_types))}")
        return step, frozenset(result)

    def type_filter(self, source: _Step, types: Types, wanted: str) -> tuple[_Step, Types]:
        if types and all(conforms_to(t, wanted) for t in types):
            # Statically always true (`Patient.` on a Patient): no run-time check at all.
            return source, types
        if types is None:
            result: Types = None if wanted.startswith("System.") else frozenset({wanted})
        else:
            narrowed = {t for t in types if conforms_to(t, wanted)}
            # A statically wider type (an element typed Resource) may hold the wanted subtype.
            narrowed.update(
                wanted for t in types if not wanted.startswith("System.") and conforms_to(wanted, t)
            )
            result = frozenset(narrowed)
        if isinstance(source, _Member) and source.wanted is None:
            # Fuse `value.as(Quantity)` into the member step: one key lookup instead of eleven.
            fused = _Member(source.source, source.name, wanted)
            for type_name in source.table:
                fused.keys_for(type_name)
            return fused, result
        return _TypeFilter(source, wanted), result

    def arguments(self, node: _Call, count: int) -> None:
        if len(node.args) != count:
            raise self.fail(f"{node.name}() takes {count} argument(s), got {len(node.args)}")

    def string_argument(self, node: _Call) -> str:
        self.arguments(node, 1)
        argument = node.args[0]
        if not isinstance(argument, _Literal) or not isinstance(argument.value, str):
            raise self.fail(f"{node.name}() needs a string literal")
        return argument.value

    def type_argument(self, node: _Call) -> str:
        self.arguments(node, 1)
        argument = node.args[0]
        parts: list[str] = []
        while isinstance(argument, _Name):
            parts.append(argument.name)
            if argument.source is None:
                return _resolve_type_name(".".join(reversed(parts)))
            argument = argument.source
        raise self.fail(f"{node.name}() needs a type name")

    def call(self, node: _Call, focus: _Step, types: Types) -> tuple[_Step, Types]:
        source, source_types = (
            (focus, types) if node.source is None else self.compile(node.source, focus, types)
        )
        boolean = frozenset({"boolean"})
        name = node.name
        if source_types == frozenset() and name not in ("exists", "empty", "not", "is", "hasExtension"):
            return _Constant([]), frozenset()  # nothing in, nothing out: lets unions drop the member
        if name in ("as", "ofType"):
            return self.type_filter(source, source_types, self.type_argument(node))
        if name == "is":
            return _Is(source, self.type_argument(node)), boolean
        if name == "where":
            self.arguments(node, 1)
            criteria, _ = self.compile(node.args[0], _Focus(), source_types)
            return _Where(source, criteria), source_types
        if name in ("exists", "empty"):
            if len(node.args) > 1 or (name == "empty" and node.args):
                raise self.fail(f"{name}() takes at most {1 if name == 'exists' else 0} argument")
            condition = self.compile(node.args[0], _Focus(), source_types)[0] if node.args else None
            return _Exists(source, condition, negate=name == "empty"), boolean
        if name == "not":
            self.arguments(node, 0)
            return _Not(source), boolean
        if name == "first":
            self.arguments(node, 0)
            return _Index(source, 0), source_types
        if name in ("extension", "hasExtension"):
            url = self.string_argument(node)
            step = _Extension(source, url, as_boolean=name == "hasExtension")
            return step, boolean if name == "hasExtension" else frozenset({"Extension"})
        if name == "resolve":
            self.arguments(node, 0)
            return _Resolve(source), None
        raise self.fail(f"Unsupported function {name}()")

    def binary(self, node: _Binary, focus: _Step, types: Types) -> tuple[_Step, Types]:
        if node.op == "|":
            parts: list[tuple[_Step, Types]] = []
            for operand in _union_operands(node):
                step, step_types = self.compile(operand, focus, types)
                if step_types != frozenset():  # statically empty: `Person.name` on a Patient
                    parts.append((step, step_types))
            if not parts:
                return _Constant([]), frozenset()
            # A single remaining member still goes through _Union: a union removes duplicates.
            all_types: set[str] = set()
            for _, step_types in parts:
                if step_types is None:
                    return _Union([p for p, _ in parts]), None
                all_types |= step_types
            return _Union([p for p, _ in parts]), frozenset(all_types)
        left, _ = self.compile(node.left, focus, types)
        right, _ = self.compile(node.right, focus, types)
        if node.op in ("=", "!="):
            return _Equality(left, right, negate=node.op == "!="), frozenset({"boolean"})
        return _Logic(left, right, is_and=node.op == "and"), frozenset({"boolean"})


def _union_operands(node: _Node) -> Iterable[_Node]:
    if isinstance(node, _Binary) and node.op == "|":
        yield from _union_operands(node.left)
        yield from _union_operands(node.right)
    else:
        yield node


class CompiledPath:
    """A compiled FHIRPath expression; immutable once built, safe to share between threads."""

    __slots__ = ("_step", "_untyped", "context_type", "expression", "reads", "result_types")

    def __init__(self, expression: str, step: _Step, result_types: Types, context_type: str | None) -> None:
        self.expression = expression
        self._step = step
        self.result_types = result_types  # the possible FHIR types of results; None if only known at run time
        self.context_type = context_type  # the node type it was compiled for
        # On a node of `context_type`, the keys it can give nothing without (None: not known).
        # Indexing skips a path whose keys are all absent from the resource without evaluating it.
        self.reads = step.reads() if context_type is not None else None
        self._untyped: CompiledPath | None = None

    @property
    def is_empty(self) -> bool:
        """True when no node of the compiled-for type can ever give a result (no union member applies)."""
        return self.result_types == frozenset()

    def evaluate_items(self, node: Any, node_type: str, resource: Any = None) -> list[Item]:
        """Like `evaluate`, as (value, fhir_type) tuples: the indexing hot path skips the wrapping."""
        if node_type != self.context_type and self.context_type is not None:
            # Compiled for another type, whose static shortcuts may not hold: use an untyped twin.
            if self._untyped is None:
                self._untyped = compile_path(self.expression)
            return self._untyped.evaluate_items(node, node_type, resource)
        return self._step.run([(node, node_type)], node if resource is None else resource)

    def evaluate(self, node: Any, node_type: str, resource: Any = None) -> list[TypedValue]:
        """Evaluate on `node` of FHIR type `node_type`; `resource` is `%resource` (default: `node`),
        also used to resolve `#id` references to contained resources."""
        return [
            TypedValue(value, type_name)
            for value, type_name in self.evaluate_items(node, node_type, resource)
        ]

    def __repr__(self) -> str:
        return f"CompiledPath({self.expression!r})"


def compile_path(expression: str, resource_type: str | None = None) -> CompiledPath:
    """Compile `expression` for nodes of type `resource_type` (a resource type, or an element type
    such as "UsageContext" for a composite's component expressions).

    With a type, union members that cannot apply to it are dropped (`Patient.name | Person.name`
    for Patient keeps `Patient.name`) and element names are checked against the type tables.
    Without one, relative paths are resolved at evaluation time from the items' types.
    """
    if resource_type is not None and resource_type not in structures():
        raise UnsupportedExpression(f"Unknown type {resource_type!r}")
    tree = _Parser(expression).parse()
    root_type = resource_type if resource_type in resource_types() else None
    types: Types = None if resource_type is None else frozenset({resource_type})
    step, result_types = _Compiler(expression, root_type).compile(tree, _Focus(), types)
    if isinstance(step, _Constant):  # results belong to the caller: never hand out the shared list
        step = _Union([step])
    return CompiledPath(expression, step, result_types, resource_type)
