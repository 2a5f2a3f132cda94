"""The search parameters Socle knows, as data: the official R4 SearchParameter definitions.

`SearchParameterRegistry` answers "which parameters apply to this resource type" (including the
Resource-level `_id`, `_lastUpdated`, `_tag`, `_profile`, `_security`, `_source`, …) and "what is
parameter `code` on this type". It does not evaluate expressions (that is `socle.search.extract`)
nor plan queries.

The core package's definitions are taken as published with two corrections, listed in `_ERRATA`
and `_SPEC_EXAMPLES` below, where the published data is plainly wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from types import MappingProxyType
from typing import Any, Final

from socle.fhir.definitions import resource_types, search_parameter_definitions, structures


@dataclass(frozen=True, slots=True)
class SearchParameter:
    code: str
    type: str  # number | date | string | token | reference | composite | quantity | uri | special
    base: tuple[str, ...]
    expression: str | None  # FHIRPath; None for parameters the server implements itself (_text, _filter…)
    targets: tuple[str, ...]  # reference parameters: the resource types they may point to
    components: tuple[tuple[str, str], ...]  # composites: (component definition url, relative expression)
    url: str

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> SearchParameter:
        """From a SearchParameter resource (or the reduced form `search_parameter_definitions()` gives)."""
        return cls(
            code=definition["code"],
            type=definition["type"],
            base=tuple(definition.get("base", ())),
            expression=definition.get("expression"),
            targets=tuple(definition.get("target", ())),
            components=tuple((c["definition"], c["expression"]) for c in definition.get("component", ())),
            url=definition["url"],
        )


_CORE: Final = "http://hl7.org/fhir/SearchParameter/"

# SearchParameter *examples* shipped inside the core package: a second `_id` on Resource, a
# `Condition.subject` limited to Organization, and a Patient parameter whose expression is on
# DocumentReference. Registering them would shadow or contradict the real definitions.
_SPEC_EXAMPLES: Final = frozenset(
    {_CORE + "example", _CORE + "example-reference", _CORE + "example-extension"}
)

# DocumentReference `relationship` gives each component the other one's expression (the `relatesto`
# reference reads `code`, the `relation` token reads `target`). The definitions keep their order, so
# a search value stays `relatesto$relation`; the expressions are swapped back (as later releases do).
_ERRATA: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    _CORE + "DocumentReference-relationship": (
        (_CORE + "DocumentReference-relatesto", "target"),
        (_CORE + "DocumentReference-relation", "code"),
    ),
}

_ABSTRACT_BASES: Final = ("Resource", "DomainResource")


class SearchParameterRegistry:
    """Search parameters by (resource type, code) and by canonical URL; immutable once built.

    A parameter whose base is `Resource` applies to every resource type, one on `DomainResource` to
    every type but Bundle, Binary and Parameters; a parameter defined on the type itself wins over
    an inherited one with the same code.
    """

    def __init__(self, parameters: Iterable[SearchParameter]) -> None:
        by_url: dict[str, SearchParameter] = {}
        direct: dict[str, dict[str, SearchParameter]] = {}
        for parameter in parameters:
            by_url.setdefault(parameter.url, parameter)
            for base in parameter.base:
                direct.setdefault(base, {}).setdefault(parameter.code, parameter)
        self._by_url = MappingProxyType(by_url)
        self._by_type: dict[str, Mapping[str, SearchParameter]] = {}
        for resource_type in resource_types():
            merged: dict[str, SearchParameter] = {}
            lineage = [resource_type, *(b for b in _ABSTRACT_BASES if _inherits(resource_type, b))]
            for base in reversed(lineage):  # most specific last, so it overrides
                merged.update(direct.get(base, {}))
            self._by_type[resource_type] = MappingProxyType(merged)
        self._empty: Mapping[str, SearchParameter] = MappingProxyType({})

    def get(self, resource_type: str, code: str) -> SearchParameter | None:
        return self.for_type(resource_type).get(code)

    def for_type(self, resource_type: str) -> Mapping[str, SearchParameter]:
        """Every parameter usable on `resource_type`, by code (empty for an unknown type)."""
        return self._by_type.get(resource_type, self._empty)

    def by_url(self, url: str) -> SearchParameter | None:
        return self._by_url.get(url)


def _inherits(type_name: str, ancestor: str) -> bool:
    current = structures()[type_name].get("base")
    while current is not None:
        if current == ancestor:
            return True
        current = structures()[current].get("base")
    return False


def core_parameters() -> list[SearchParameter]:
    """The R4 core definitions that apply to a resource type, corrected by `_ERRATA`."""
    parameters: list[SearchParameter] = []
    for definition in search_parameter_definitions():
        # Definitions without a base come from extension packs that name no resource: unusable.
        if definition["url"] in _SPEC_EXAMPLES or not definition.get("base"):
            continue
        parameter = SearchParameter.from_definition(definition)
        if parameter.url in _ERRATA:
            parameter = replace(parameter, components=_ERRATA[parameter.url])
        parameters.append(parameter)
    return parameters


@cache
def default_registry() -> SearchParameterRegistry:
    """The registry of the R4 core search parameters, built once per process."""
    return SearchParameterRegistry(core_parameters())
