"""The FHIR R4 definition tables Socle runs on, generated from the official core package.

`scripts/build_fhir_definitions.py` derives them from `hl7.fhir.r4.core` 4.0.1 (CC0); this module only
loads them, once per process.
"""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources
from typing import Any, TypedDict

import orjson


class ElementDefinition(TypedDict, total=False):
    min: int
    max: int | str
    types: list[str]
    targets: list[str]
    choice: bool
    summary: bool
    system: str  # code elements with a required binding to a one-system value set


class TypeDefinition(TypedDict, total=False):
    kind: str  # resource | complex-type | primitive-type | backbone
    base: str | None
    abstract: bool
    elements: dict[str, ElementDefinition]
    regex: str


def _load(name: str) -> Any:
    raw = resources.files(__package__).joinpath(name).read_bytes()
    return orjson.loads(gzip.decompress(raw))


@cache
def structures() -> dict[str, TypeDefinition]:
    """Every base type by name; backbone elements are named by their path (`Patient.contact`)."""
    loaded: dict[str, TypeDefinition] = _load("structures.json.gz")
    return loaded


@cache
def resource_types() -> frozenset[str]:
    """The concrete resource types of R4 (what may appear as `resourceType`)."""
    return frozenset(
        name for name, t in structures().items() if t["kind"] == "resource" and not t.get("abstract")
    )


@cache
def search_parameter_definitions() -> list[dict[str, Any]]:
    """The spec's SearchParameter resources, reduced to the fields indexing and search read."""
    loaded: list[dict[str, Any]] = _load("search-parameters.json.gz")
    return loaded


@cache
def compartment_parameters(compartment: str) -> dict[str, list[str]]:
    """Resource type -> the search parameters placing it in `compartment` (Observation: subject...)."""
    loaded: dict[str, dict[str, list[str]]] = _load("compartments.json.gz")
    return loaded.get(compartment, {})
