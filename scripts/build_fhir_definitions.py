"""Generate Socle's compact FHIR R4 definition tables from the official core package.

The official package `hl7.fhir.r4.core` 4.0.1 (CC0) carries the StructureDefinitions and
SearchParameters. Socle keeps two compact tables derived from it in the repository, so that the
platform runs without the package:

- `socle/fhir/definitions/structures.json.gz`: every base type (resources, complex and primitive
  types, and the backbone elements named by their path) with, per element, its cardinality, its
  allowed types and, for references, the allowed target resource types; primitives carry their regex.
- `socle/fhir/definitions/search-parameters.json.gz`: the spec's search parameters (the fields the
  indexer and the query planner read).
- `socle/fhir/definitions/compartments.json.gz`: for each compartment (Patient, Practitioner, ...),
  the search parameters that put a resource of each type in it.

Usage: python scripts/build_fhir_definitions.py [path/to/hl7.fhir.r4.core-4.0.1.tgz]
"""

from __future__ import annotations

import gzip
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACKAGE = ROOT.parent / "shared" / "data" / "hl7.fhir.r4.core-4.0.1.tgz"
OUT = ROOT / "socle" / "fhir" / "definitions"

FHIRPATH_TYPES = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Time": "time",
}
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"


def _load_package(path: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if not name.endswith(".json"):
                continue
            if not name.startswith(
                ("StructureDefinition-", "SearchParameter-", "ValueSet-", "CompartmentDefinition-")
            ):
                continue
            handle = tar.extractfile(member)
            assert handle is not None
            found[name] = json.loads(handle.read())
    return found


def _type_code(type_entry: dict[str, Any]) -> str:
    code: str = type_entry["code"]
    if code in FHIRPATH_TYPES:
        for ext in type_entry.get("extension", []):
            if ext.get("url") == FHIR_TYPE_EXT:
                return str(ext["valueUrl"])
        return FHIRPATH_TYPES[code]
    return code


def _value_set_systems(files: dict[str, dict[str, Any]]) -> dict[str, str]:
    """ValueSet url -> its one CodeSystem, for value sets drawn from a single code system."""
    systems: dict[str, str] = {}
    for vs in files.values():
        if vs.get("resourceType") != "ValueSet":
            continue
        includes = vs.get("compose", {}).get("include", [])
        found = {i.get("system") for i in includes}
        if len(found) == 1 and None not in found and not any(i.get("valueSet") for i in includes):
            systems[vs["url"]] = found.pop()
    return systems


def _build_structures(files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    types: dict[str, Any] = {}
    value_set_systems = _value_set_systems(files)
    for sd in files.values():
        if sd.get("resourceType") != "StructureDefinition":
            continue
        if sd.get("derivation") == "constraint" or sd["kind"] == "logical":
            continue
        name = sd["type"]
        kind = sd["kind"]
        base = sd.get("baseDefinition", "").rsplit("/", 1)[-1] or None
        types[name] = {"kind": kind, "base": base, "abstract": sd.get("abstract", False), "elements": {}}
        for element in sd["snapshot"]["element"]:
            path: str = element["path"]
            if "." not in path:
                continue
            parent, child = path.rsplit(".", 1)
            if kind == "primitive-type":
                if child == "value":
                    for t in element.get("type", []):
                        for ext in t.get("extension", []):
                            if ext.get("url") == REGEX_EXT:
                                types[name]["regex"] = ext["valueString"]
                continue
            if parent not in types:
                types[parent] = {
                    "kind": "backbone",
                    "base": "BackboneElement",
                    "abstract": False,
                    "elements": {},
                }
            max_ = element.get("max", "*")
            entry: dict[str, Any] = {"min": element.get("min", 0), "max": max_ if max_ == "*" else int(max_)}
            if element.get("isSummary"):
                entry["summary"] = True
            if "contentReference" in element:
                entry["types"] = [element["contentReference"].lstrip("#")]
            else:
                codes = [_type_code(t) for t in element.get("type", [])]
                if codes in (["BackboneElement"], ["Element"]) and any(
                    e["path"].startswith(path + ".") for e in sd["snapshot"]["element"]
                ):
                    codes = [path]
                entry["types"] = codes
                targets: list[str] = []
                for t in element.get("type", []):
                    for profile in t.get("targetProfile", []):
                        targets.append(profile.rsplit("/", 1)[-1])
                if targets:
                    entry["targets"] = sorted(set(targets))
            binding = element.get("binding", {})
            if entry.get("types") == ["code"] and binding.get("strength") == "required":
                # A required binding to a one-system value set tells which system the code is from,
                # so `gender=http://hl7.org/fhir/administrative-gender|male` can be searched.
                system = value_set_systems.get(binding.get("valueSet", "").split("|")[0])
                if system:
                    entry["system"] = system
            if path.endswith("[x]"):
                child = child[:-3]
                entry["choice"] = True
            if child == "id" and kind == "resource" and parent == name:
                entry["types"] = ["id"]
            types[parent]["elements"][child] = entry
    return types


SEARCH_FIELDS = (
    "code",
    "base",
    "type",
    "expression",
    "target",
    "multipleOr",
    "multipleAnd",
    "modifier",
    "chain",
)


def _build_search_parameters(files: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for sp in files.values():
        if sp.get("resourceType") != "SearchParameter":
            continue
        entry = {"url": sp["url"], **{k: sp[k] for k in SEARCH_FIELDS if k in sp}}
        if "component" in sp:
            entry["component"] = [
                {"definition": c["definition"], "expression": c["expression"]} for c in sp["component"]
            ]
        params.append(entry)
    params.sort(key=lambda p: p["url"])
    return params


def _build_compartments(files: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """Compartment type -> resource type -> the search parameters that put a resource in it."""
    compartments: dict[str, dict[str, list[str]]] = {}
    for cd in files.values():
        if cd.get("resourceType") != "CompartmentDefinition":
            continue
        compartments[cd["code"]] = {
            r["code"]: sorted(r["param"]) for r in cd.get("resource", []) if r.get("param")
        }
    return compartments


def _write(name: str, data: Any) -> None:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    # mtime=0 keeps the file byte-identical across runs.
    with gzip.GzipFile(OUT / name, "wb", mtime=0) as handle:
        handle.write(raw)


def main() -> None:
    package = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PACKAGE
    files = _load_package(package)
    OUT.mkdir(parents=True, exist_ok=True)
    structures = _build_structures(files)
    params = _build_search_parameters(files)
    _write("structures.json.gz", structures)
    _write("search-parameters.json.gz", params)
    _write("compartments.json.gz", _build_compartments(files))
    print(f"{len(structures)} types, {len(params)} search parameters written to {OUT}")


if __name__ == "__main__":
    main()
