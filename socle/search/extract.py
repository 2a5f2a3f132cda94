"""The one indexing pipeline: a resource → its search index rows (`socle.search.rows`).

For every search parameter of the resource's type (from `socle.search.parameters`) the compiled
FHIRPath expression is evaluated, and each typed value it yields becomes rows according to the
parameter type and the value's FHIR type, following http://hl7.org/fhir/R4/search.html:

- string: string/markdown; HumanName → family, given, prefix, suffix, text; Address → line, city,
  district, state, postalCode, country, text;
- token: code/boolean/string/id/uri (no system); Coding; CodeableConcept (one row per coding, or a
  text-only row); Identifier (+ `<code>:of-type` rows); ContactPoint (its value);
- reference: literal references (relative, absolute, `urn:`), canonical/uri values, a resource in
  place (`Bundle.entry[0].resource`), and `Reference.identifier` as `<code>:identifier` token rows;
- date: date/dateTime/instant, Period (open ends → DATE_MIN/DATE_MAX), Timing (events and
  repeat.boundsPeriod);
- number: integer/decimal with implicit precision; quantity: Quantity and its profiles, Money
  (currency as an ISO 4217 code), a Range only when low = high;
- uri: uri/url/canonical/oid/uuid;
- composite: per element the base expression yields, the cartesian product of its components' rows.

Extensions found by `extension('url')` are indexed through their value[x]. Values that cannot be
indexed (a malformed date, a Quantity without value, SampledData, Age for a date) give no row rather
than an error: stored resources were validated on write, and indexing must not reject them.

Not here: `_id` and `_lastUpdated` (columns of the resource table), parameters without expression
(`_text`, `_content`, `_query`, `_filter`) and `special` ones but `near` (Location.position: two
number rows, see `socle.search.geo`), writing rows, querying.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache, partial
from itertools import product
from typing import Any, Final

from socle.fhir.definitions import structures
from socle.fhir.fhirpath import CompiledPath, compile_path, conforms_to, split_reference
from socle.search.geo import position_rows
from socle.search.normalize import date_range, decimal_range, normalize_text
from socle.search.parameters import SearchParameter, SearchParameterRegistry, default_registry
from socle.search.rows import (
    DATE_MAX,
    DATE_MIN,
    CompositeRow,
    DateRow,
    IndexRow,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)

ComponentRow = TokenRow | QuantityRow | DateRow | StringRow | ReferenceRow | NumberRow | UriRow
Handler = Callable[[str, Any, list[IndexRow]], None]
"""Turns one value of a given FHIR type into rows of parameter `code`, appended to the list."""

_SKIPPED_CODES: Final = frozenset({"_id", "_lastUpdated"})
_SHAPES_PER_TYPE: Final = 512  # distinct sets of top-level elements remembered per resource type
_ISO_4217: Final = "urn:iso:std:iso:4217"


def _text(value: Any) -> str | None:
    """A non-empty string found in JSON, else None (indexing reads data it did not validate)."""
    return value if type(value) is str and value else None


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    if type(value) is list:
        yield from (item for item in value if type(item) is dict)
    elif type(value) is dict:
        yield value


def _strings(value: Any) -> list[str]:
    if type(value) is str:
        return [value] if value else []
    if type(value) is list:
        return [item for item in value if type(item) is str and item]
    return []


# The same words come back under several parameters (name, family, phonetic…) and resources.
_normalize: Final = lru_cache(maxsize=16_384)(normalize_text)
# So do dates and numbers: an Observation's value is read by value-quantity, code-value-quantity
# and the combo-* parameters, and the observations of one encounter share their effective time.
# Pure functions of the text: a cached range is the range (an invalid text raises each time).
# Repeats are mostly within a bundle: a few thousand entries keep the hits and a flat RSS.
_date_range: Final = lru_cache(maxsize=4_096)(date_range)
_decimal_range: Final = lru_cache(maxsize=4_096)(decimal_range)


def _normalized(value: Any) -> str | None:
    text = _text(value)
    return _normalize(text) if text is not None else None


# --- string ------------------------------------------------------------------------------------


def _string(code: str, value: Any, out: list[IndexRow]) -> None:
    if type(value) is str and value:
        out.append(StringRow(code, _normalize(value), value))


def _parts(keys: tuple[str, ...]) -> Handler:
    def handler(code: str, value: Any, out: list[IndexRow]) -> None:
        for key in keys:
            for part in _strings(value.get(key)):
                out.append(StringRow(code, _normalize(part), part))

    return handler


_human_name = _parts(("family", "given", "prefix", "suffix", "text"))
_address = _parts(("line", "city", "district", "state", "postalCode", "country", "text"))


# --- token -------------------------------------------------------------------------------------


def _token_string(code: str, value: Any, out: list[IndexRow]) -> None:
    if type(value) is str and value:
        out.append(TokenRow(code, None, value))


def _bound_code(system: str) -> Handler:
    """A `code` whose element has a required binding to a one-system value set carries that system."""

    def handler(code: str, value: Any, out: list[IndexRow]) -> None:
        if type(value) is str and value:
            out.append(TokenRow(code, system, value))

    return handler


def _bound_system(expression: str, resource_type: str) -> str | None:
    """The binding system of a token parameter that is one plain path to a bound `code` element."""
    members = [m.strip() for m in expression.split("|") if m.strip().startswith(resource_type + ".")]
    if len(members) != 1 or not all(part.isidentifier() for part in members[0].split(".")):
        return None
    owner, *names = members[0].split(".")
    definitions = structures()
    for position, name in enumerate(names):
        element = definitions.get(owner, {}).get("elements", {}).get(name)
        if element is None:
            return None
        if position == len(names) - 1:
            return element.get("system")
        types = element.get("types", [])
        if len(types) != 1:
            return None
        owner = types[0]
    return None


def _token_boolean(code: str, value: Any, out: list[IndexRow]) -> None:
    if type(value) is bool:
        out.append(TokenRow(code, None, "true" if value else "false"))


def _coding(code: str, value: Any, out: list[IndexRow]) -> None:
    system, value_code = _text(value.get("system")), _text(value.get("code"))
    if system is not None or value_code is not None:
        out.append(TokenRow(code, system, value_code, _normalized(value.get("display"))))


def _codeable_concept(code: str, value: Any, out: list[IndexRow]) -> None:
    text = _normalized(value.get("text"))
    coded = False
    codings = value.get("coding")
    if type(codings) is list:
        for coding in codings:
            if type(coding) is dict:
                system, value_code = _text(coding.get("system")), _text(coding.get("code"))
                if system is not None or value_code is not None:
                    display = text or _normalized(coding.get("display"))
                    out.append(TokenRow(code, system, value_code, display))
                    coded = True
    if text is not None and not coded:  # still findable with :text
        out.append(TokenRow(code, None, None, text))


def _identifier(code: str, value: Any, out: list[IndexRow]) -> None:
    system, identifier = _text(value.get("system")), _text(value.get("value"))
    identifier_type = value.get("type")
    type_text = _normalized(identifier_type.get("text")) if type(identifier_type) is dict else None
    if system is not None or identifier is not None:
        out.append(TokenRow(code, system, identifier, type_text))
    if identifier is not None and type(identifier_type) is dict:
        for coding in _dicts(identifier_type.get("coding")):
            type_system, type_code = _text(coding.get("system")), _text(coding.get("code"))
            if type_system is not None or type_code is not None:
                out.append(TokenRow(f"{code}:of-type", type_system, type_code, None, identifier))


def _contact_point(code: str, value: Any, out: list[IndexRow]) -> None:
    # ContactPoint.system (phone, email…) is not a URI: the token is the value alone.
    contact = _text(value.get("value"))
    if contact is not None:
        out.append(TokenRow(code, None, contact))


# --- reference ---------------------------------------------------------------------------------


def _reference(code: str, value: Any, out: list[IndexRow]) -> None:
    literal = _text(value.get("reference"))
    if literal is not None and not literal.startswith("#"):  # contained: nothing to point at
        target = split_reference(literal)
        absolute = ":" in literal
        if target is not None:
            out.append(ReferenceRow(code, target[0], target[1], literal if absolute else None, target[2]))
        else:  # urn:uuid:, urn:oid:, an absolute URL not ending in Type/id, or unparsable
            out.append(ReferenceRow(code, None, None, literal))
    identifier = value.get("identifier")
    if type(identifier) is dict:
        system, identifier_value = _text(identifier.get("system")), _text(identifier.get("value"))
        if system is not None or identifier_value is not None:
            out.append(TokenRow(f"{code}:identifier", system, identifier_value))


def _canonical(code: str, value: Any, out: list[IndexRow]) -> None:
    if type(value) is str and value:
        url, _, version = value.partition("|")
        out.append(ReferenceRow(code, None, None, url, version or None))


def _resource(code: str, value: Any, out: list[IndexRow]) -> None:
    # A resource in place of a reference (Bundle.entry[0].resource): it points at itself.
    resource_id = _text(value.get("id"))
    resource_type = _text(value.get("resourceType"))
    if resource_id is not None and resource_type is not None:
        out.append(ReferenceRow(code, resource_type, resource_id, None))


# --- date --------------------------------------------------------------------------------------


def _date(code: str, value: Any, out: list[IndexRow]) -> None:
    if type(value) is str:
        try:
            low, high = _date_range(value)
        except ValueError:
            return
        out.append(DateRow(code, low, high))


def _period(code: str, value: Any, out: list[IndexRow]) -> None:
    start, end = _text(value.get("start")), _text(value.get("end"))
    if start is None and end is None:
        return
    try:
        low = _date_range(start)[0] if start is not None else DATE_MIN  # no start: open to the past
        high = _date_range(end)[1] if end is not None else DATE_MAX  # no end: open to the future
    except ValueError:
        return
    out.append(DateRow(code, low, high))


def _timing(code: str, value: Any, out: list[IndexRow]) -> None:
    for event in _strings(value.get("event")):
        _date(code, event, out)
    repeat = value.get("repeat")
    if type(repeat) is dict:
        bounds = repeat.get("boundsPeriod")
        if type(bounds) is dict:
            _period(code, bounds, out)


# --- number and quantity -----------------------------------------------------------------------


def _precision_range(number: Any) -> tuple[float, float, float] | None:
    # The parsed JSON number's repr keeps its written precision when the parser kept it ("1.50"
    # arrives as 1.5 from orjson: its trailing zero is already gone).
    if type(number) is bool or not isinstance(number, int | float):
        return None
    try:
        return _decimal_range(repr(number))
    except ValueError:  # nan / inf: not JSON, but Python may hand them over
        return None


def _number(code: str, value: Any, out: list[IndexRow]) -> None:
    found = _precision_range(value)
    if found is not None:
        out.append(NumberRow(code, *found))


def _quantity(code: str, value: Any, out: list[IndexRow]) -> None:
    found = _precision_range(value.get("value"))
    if found is not None:
        system, unit_code, unit = (
            _text(value.get("system")),
            _text(value.get("code")),
            _text(value.get("unit")),
        )
        out.append(QuantityRow(code, *found, system, unit_code, unit))


def _money(code: str, value: Any, out: list[IndexRow]) -> None:
    found = _precision_range(value.get("value"))
    if found is not None:
        out.append(QuantityRow(code, *found, _ISO_4217, _text(value.get("currency")), None))


def _range(code: str, value: Any, out: list[IndexRow]) -> None:
    # A quantity row holds one value: only a degenerate range (low = high) fits.
    low, high = value.get("low"), value.get("high")
    if type(low) is dict and type(high) is dict and low == high:
        _quantity(code, low, out)


# --- uri ---------------------------------------------------------------------------------------


def _uri(code: str, value: Any, out: list[IndexRow]) -> None:
    if type(value) is str and value:
        out.append(UriRow(code, value))


# --- dispatch ----------------------------------------------------------------------------------

# Per parameter type, the value types it indexes, most specific first; a value type matches its
# first entry it conforms to (Age is a Quantity, markdown a string, canonical a uri).
_HANDLERS: Final[dict[str, tuple[tuple[str, Handler], ...]]] = {
    "string": (("HumanName", _human_name), ("Address", _address), ("string", _string)),
    "token": (
        ("CodeableConcept", _codeable_concept),
        ("Coding", _coding),
        ("Identifier", _identifier),
        ("ContactPoint", _contact_point),
        ("boolean", _token_boolean),
        ("string", _token_string),
        ("uri", _token_string),
    ),
    "reference": (("Reference", _reference), ("uri", _canonical), ("Resource", _resource)),
    "date": (
        ("date", _date),
        ("dateTime", _date),
        ("instant", _date),
        ("Period", _period),
        ("Timing", _timing),
    ),
    "number": (("integer", _number), ("decimal", _number)),
    "quantity": (("Quantity", _quantity), ("Money", _money), ("Range", _range)),
    "uri": (("uri", _uri),),
}
_EXTENSION_VALUE: Final = compile_path("value", "Extension")


def _extension(param_type: str, code: str, value: Any, out: list[IndexRow]) -> None:
    for inner, inner_type in _EXTENSION_VALUE.evaluate_items(value, "Extension"):
        handler = _handler(param_type, inner_type)
        if handler is not None:
            handler(code, inner, out)


class _HandlerTable(dict[str, Handler | None]):
    """Value type → handler for one parameter type, resolved on first sight of each value type.

    `resource_targets` restricts resources found in place of a reference to the parameter's target
    types: `Bundle.entry[0].resource` is a `composition` only when it is a Composition.
    """

    def __init__(self, param_type: str, resource_targets: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.param_type = param_type
        self.resource_targets = resource_targets

    def __missing__(self, value_type: str) -> Handler | None:
        handler: Handler | None = None
        if self.resource_targets and conforms_to(value_type, "Resource"):
            handler = _resource if value_type in self.resource_targets else None
        elif value_type == "Extension":
            handler = partial(_extension, self.param_type)
        else:
            for wanted, candidate in _HANDLERS.get(self.param_type, ()):
                if conforms_to(value_type, wanted):
                    handler = candidate
                    break
        self[value_type] = handler
        return handler


_HANDLER_TABLES: Final = {param_type: _HandlerTable(param_type) for param_type in _HANDLERS}
# `near` (special, Location.position): latitude and longitude rows that socle.search.geo plans on.
_NEAR_HANDLERS: Final = _HandlerTable("near")
_NEAR_HANDLERS["Location.position"] = lambda code, value, out: out.extend(position_rows(code, value))


def _handler(param_type: str, value_type: str) -> Handler | None:
    table = _HANDLER_TABLES.get(param_type)
    return None if table is None else table[value_type]


# --- plans -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Component:
    code: str
    handlers: _HandlerTable
    expression: str
    paths: dict[str, CompiledPath]  # by the type of the element it is evaluated on

    def path_for(self, element_type: str) -> CompiledPath:
        path = self.paths.get(element_type)
        if path is None:  # a type the base expression's static types did not foresee: resolve at run time
            path = self.paths[element_type] = compile_path(self.expression)
        return path

    def values(self, element: Any, element_type: str, resource: Any) -> list[tuple[Any, str]]:
        return self.path_for(element_type).evaluate_items(element, element_type, resource)

    def rows(self, values: list[tuple[Any, str]]) -> list[ComponentRow]:
        found: list[IndexRow] = []
        handlers = self.handlers
        for value, value_type in values:
            handler = handlers[value_type]
            if handler is not None:
                handler(self.code, value, found)
        # Auxiliary rows (`:of-type`, `:identifier`) are not component values, and a composite value
        # always names a code: text-only token rows could never match.
        code = self.code
        kept: list[ComponentRow] = []
        for r in found:
            if isinstance(r, CompositeRow) or r.param != code or (isinstance(r, TokenRow) and r.code is None):
                continue
            kept.append(r)
        return kept if len(kept) < 2 else list(dict.fromkeys(kept))


@dataclass(slots=True)
class _Plan:
    """One search parameter, compiled for one resource type."""

    code: str
    path: CompiledPath
    handlers: _HandlerTable | None  # None for composites
    components: tuple[_Component, ...]


class Indexer:
    """Extracts index rows with the parameters of one registry; plans are compiled once per type."""

    def __init__(self, registry: SearchParameterRegistry) -> None:
        self.registry = registry
        self._plans: dict[str, tuple[_Plan, ...]] = {}
        # By type, then by the set of a resource's top-level element names: the plans that can give
        # rows. Resources of a type come in few shapes (an Observation has ≈ 40 plans and 8 elements),
        # so the test of every plan's keys is done once per shape instead of once per resource.
        self._applicable: dict[str, dict[frozenset[str], tuple[_Plan, ...]]] = {}

    def plans(self, resource_type: str) -> tuple[_Plan, ...]:
        plans = self._plans.get(resource_type)
        if plans is None:
            plans = self._plans[resource_type] = tuple(
                plan
                for parameter in self.registry.for_type(resource_type).values()
                if (plan := self._plan(parameter, resource_type)) is not None
            )
        return plans

    def _plan(self, parameter: SearchParameter, resource_type: str) -> _Plan | None:
        if parameter.type == "special" and parameter.code == "near" and parameter.expression is not None:
            position = compile_path(parameter.expression, resource_type)
            return _Plan(parameter.code, position, _NEAR_HANDLERS, ())
        if parameter.code in _SKIPPED_CODES or parameter.expression is None or parameter.type == "special":
            return None
        path = compile_path(parameter.expression, resource_type)
        if path.is_empty:
            return None
        if parameter.type != "composite":
            handlers = _HANDLER_TABLES[parameter.type]
            if parameter.type == "reference" and parameter.targets:
                handlers = _HandlerTable("reference", frozenset(parameter.targets))
            elif parameter.type == "token" and (system := _bound_system(parameter.expression, resource_type)):
                handlers = _HandlerTable("token")
                handlers["code"] = _bound_code(system)
            return _Plan(parameter.code, path, handlers, ())
        components: list[_Component] = []
        for definition, expression in parameter.components:
            component = self.registry.by_url(definition)
            if component is None or component.type not in _HANDLER_TABLES:
                raise ValueError(
                    f"Composite search parameter {parameter.url}: component {definition} is unknown "
                    "or not indexable"
                )
            element_types = path.result_types or frozenset()
            paths = {t: compile_path(expression, t) for t in element_types}
            components.append(_Component(component.code, _HANDLER_TABLES[component.type], expression, paths))
        return _Plan(parameter.code, path, None, tuple(components))

    def applicable(self, resource_type: str, resource: dict[str, Any]) -> tuple[_Plan, ...]:
        """The plans of `resource_type` whose expression reads an element `resource` has (or may)."""
        by_shape = self._applicable.get(resource_type)
        if by_shape is None:
            by_shape = self._applicable[resource_type] = {}
        shape = frozenset(resource)
        plans = by_shape.get(shape)
        if plans is None:
            plans = tuple(
                plan
                for plan in self.plans(resource_type)
                if plan.path.reads is None or not shape.isdisjoint(plan.path.reads)
            )
            # Clients choose the shapes: the memo stays bounded (it only saves work).
            if len(by_shape) >= _SHAPES_PER_TYPE:
                by_shape.clear()
            by_shape[shape] = plans
        return plans

    def rows(self, resource: dict[str, Any]) -> list[IndexRow]:
        resource_type = resource.get("resourceType")
        if type(resource_type) is not str:
            raise ValueError("Not a FHIR resource: resourceType is missing")
        out: list[IndexRow] = []
        # Composites of one resource evaluate the same component on the same element (`code` for
        # code-value-quantity and combo-code-value-quantity): values are computed once per rows().
        component_values: dict[tuple[str, str, int], list[tuple[Any, str]]] = {}
        for plan in self.applicable(resource_type, resource):
            items = plan.path.evaluate_items(resource, resource_type, resource)
            if not items:
                continue
            start = len(out)
            handlers = plan.handlers
            if handlers is None:
                _composite_rows(plan, items, resource, out, component_values)
            else:
                code = plan.code
                for value, value_type in items:
                    handler = handlers[value_type]
                    if handler is not None:
                        handler(code, value, out)
            # Rows of different parameters never coincide (their `param` differs): deduplicating
            # each parameter's rows is enough, and a single row needs no hashing at all.
            if len(out) - start > 1:
                out[start:] = dict.fromkeys(out[start:])
        return out


def _composite_rows(
    plan: _Plan,
    elements: list[tuple[Any, str]],
    resource: Any,
    out: list[IndexRow],
    memo: dict[tuple[str, str, int], list[tuple[Any, str]]],
) -> None:
    """Rows of composite `plan`; `memo` holds component values already found in this resource, by
    (component expression, element type, element identity): the elements live as long as it."""
    # Combinations are taken within one element only: an Observation.component's code never pairs
    # with another component's value.
    for element, element_type in elements:
        # Values first, rows only when every component has some: `code-value-date` on an
        # Observation without valueDateTime costs one lookup, not a conversion of its code. The
        # last component (usually the value, the one that is often missing) is looked up first.
        values: list[list[tuple[Any, str]]] = []
        for component in reversed(plan.components):
            key = (component.expression, element_type, id(element))
            found = memo.get(key)
            if found is None:
                found = memo[key] = component.values(element, element_type, resource)
            if not found:
                break
            values.append(found)
        else:
            values.reverse()
            rows = [component.rows(found) for component, found in zip(plan.components, values, strict=True)]
            if all(rows):
                out.extend(CompositeRow(plan.code, combination) for combination in product(*rows))


@cache
def default_indexer() -> Indexer:
    """The indexer over `default_registry()`, shared by the process."""
    return Indexer(default_registry())


def extract_index_rows(resource: dict[str, Any]) -> list[IndexRow]:
    """Every index row of `resource` (a parsed FHIR JSON resource), deduplicated, in a stable order."""
    return default_indexer().rows(resource)
