"""Structural validation of FHIR R4 resources: the JSON representation rules of the base spec.

The store calls `ResourceValidator.validate()` on every write and refuses a resource when an issue has
severity "error" or "fatal"; warnings are kept and returned. `StructuralValidator` checks a parsed
JSON resource (a `dict`) against the base R4 structure tables of `socle.fhir.definitions`:

- the shape: a JSON object with a concrete `resourceType`, known element names only, choice elements
  (`value[x]`) with allowed type suffixes and at most one variant, single values versus arrays, no empty
  arrays, objects or strings, `null` only inside primitive arrays aligned with their `_x` array;
- cardinality: elements with min >= 1 are present;
- primitives: the JSON type, the spec's regex, integer ranges and real calendar dates;
- primitive extensions (`_birthDate`, `_given`), Extension (url, value or nested extensions, not both),
  Narrative.div (an xhtml `<div>`), literal references (target resource type), contained resources.

Out of scope, for a profile-aware validator behind the same interface: profiles, FHIRPath invariants,
terminology bindings, resolving references, business rules.

Speed matters (this runs on every write): every type is compiled once into a lookup table from JSON
property name to what that property may hold (choice suffixes expanded, regexes compiled), and the
JSON tree is walked once. Element paths are only built for objects and for issues, never per primitive.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol

from socle.errors import Issue
from socle.fhir.definitions import ElementDefinition, structures

__all__ = ["ResourceValidator", "StructuralValidator", "default_validator"]


class ResourceValidator(Protocol):
    """What the store needs from a validator: every problem found in one resource, never an exception."""

    def validate(self, resource: object) -> list[Issue]: ...


# A primitive check returns None when the value is fine, else (severity, message).
_Problem = tuple[str, str]
_Check = Callable[[object], _Problem | None]

# What a JSON property holds.
_PRIMITIVE = 0  # a primitive value (`birthDate`, `given`)
_PRIMITIVE_EXT = 1  # the id/extensions of a primitive (`_birthDate`, `_given`)
_COMPLEX = 2  # a complex type or backbone element, an object
_RESOURCE = 3  # any resource, typed by its own resourceType (contained, Bundle.entry.resource)
_RESOURCE_TYPE = 4  # `resourceType` itself, checked by `_resource`

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # FHIR integers are 32-bit signed
_STRING_MAX = 1024 * 1024  # "strings SHALL NOT exceed 1MB"
_XHTML_NS = "http://www.w3.org/1999/xhtml"
_TAG_END = frozenset(" \t\r\n>/")  # what may follow `<div` for it to be a div start tag

# base64Binary is checked without the spec's regex `(\s*([0-9a-zA-Z\+/=]){4}\s*)+`: on attachments of
# tens of kilobytes a regex walk costs milliseconds (and its adjacent `\s*` backtrack badly on bad values).
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c"  # Java's \s, which the spec's regexes use

# Reference.reference shapes (http://hl7.org/fhir/R4/references.html#literal).
_RELATIVE_REF = re.compile(r"([A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?", re.ASCII)
_ABSOLUTE_REF = re.compile(
    r"https?://.*/([A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?", re.ASCII
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:", re.ASCII)


def _show(value: object) -> str:
    """A value as quoted in a message: strings in single quotes (cut when long), JSON spelling otherwise."""
    if isinstance(value, str):
        return f"'{value[:100]}…'" if len(value) > 100 else f"'{value}'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return str(value)


def _wrong_json(name: str, value: object, expected: str) -> _Problem:
    """A primitive of the wrong JSON type: quote scalars, name the shape of objects and arrays."""
    if isinstance(value, dict | list):
        return "error", f"Invalid {name} value: expected {expected}, not {_show(value)}"
    return "error", f"Invalid {name} value {_show(value)}: expected {expected}"


def _is_base64(value: str) -> bool:
    """The spec's base64Binary grammar: groups of 4 alphabet characters, whitespace only between groups."""
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        return False
    others = raw.translate(None, _BASE64_ALPHABET)
    if not others:
        return len(raw) % 4 == 0
    if others.translate(None, _ASCII_WHITESPACE):
        return False  # a character outside the alphabet
    # Wrapped lines: every run between whitespace is whole groups (bytes.split() splits on Java's \s).
    return all(len(run) % 4 == 0 for run in raw.split())


def _primitive_check(name: str, regex: str | None) -> _Check:
    """Compile the check of one primitive type: JSON type first, then range or regex (full match)."""
    if name == "boolean":

        def check_boolean(value: object) -> _Problem | None:
            if value is True or value is False:
                return None
            return _wrong_json("boolean", value, "JSON true or false")

        return check_boolean

    if name in ("integer", "positiveInt", "unsignedInt"):
        low = {"integer": _INT_MIN, "positiveInt": 1, "unsignedInt": 0}[name]

        def check_integer(value: object) -> _Problem | None:
            # bool is an int subclass in Python, and `1.0` is a JSON number with a fraction: both refused.
            if type(value) is int:
                if low <= value <= _INT_MAX:
                    return None
                return "error", f"Invalid {name} value {value}: expected an integer in [{low}, {_INT_MAX}]"
            return _wrong_json(name, value, "a JSON integer")

        return check_integer

    if name == "decimal":

        def check_decimal(value: object) -> _Problem | None:
            if type(value) is int or (type(value) is float and math.isfinite(value)):
                return None
            return _wrong_json("decimal", value, "a JSON number")

        return check_decimal

    if name == "xhtml":

        def check_xhtml(value: object) -> _Problem | None:
            if type(value) is not str or not value.startswith("<div") or value[4:5] not in _TAG_END:
                return _wrong_json("xhtml", value, "a string starting with '<div'")
            # Lenient on purpose: many producers omit the namespace; the content is still usable.
            if _XHTML_NS not in value[: value.find(">")]:
                return "warning", f"The narrative div should declare the xhtml namespace '{_XHTML_NS}'"
            return None

        return check_xhtml

    # Every other primitive is a JSON string. The spec's regexes are Java regexes, where \s and \S are
    # ASCII-only: re.ASCII gives the same meaning (a no-break space is not whitespace).
    matches: Callable[[str], object] = (
        _is_base64 if name == "base64Binary" else re.compile(regex or ".+", re.ASCII | re.DOTALL).fullmatch
    )
    dated = name in ("date", "dateTime", "instant")
    sized = name in ("string", "markdown")

    def check_string(value: object) -> _Problem | None:
        if type(value) is not str:
            return _wrong_json(name, value, "a JSON string")
        if not value.strip():
            return "error", f"Invalid {name} value {_show(value)}: must not be empty or only whitespace"
        if not matches(value):
            return "error", f"Invalid {name} value {_show(value)}"
        # The regexes accept day 31 in every month: check the calendar when the day could be wrong.
        if dated and len(value) >= 10 and value[8:10] > "28":
            year, month, day = int(value[0:4]), int(value[5:7]), int(value[8:10])
            if day > calendar.monthrange(year, month)[1]:
                return "error", f"Invalid {name} value {_show(value)}: no such day in the calendar"
        if sized and len(value) > _STRING_MAX:
            return "error", f"Invalid {name} value: longer than {_STRING_MAX} characters"
        return None

    return check_string


class _Prop:
    """One JSON property name allowed on a type, and what it may hold."""

    __slots__ = ("check", "choice", "element", "kind", "many", "sibling", "spec", "targets")

    def __init__(self, kind: int, element: str, many: bool) -> None:
        self.kind = kind
        self.element = element  # the name used in paths: `birthDate` for `_birthDate` too
        self.many = many
        self.choice: str | None = None  # the stem of a choice element (`value`) this is a variant of
        self.check: _Check | None = None  # primitives
        self.spec: _TypeSpec | None = None  # complex types and backbone elements
        self.targets: frozenset[str] | None = None  # Reference targets; None: any resource type
        self.sibling = ""  # `_given` for `given` and `given` for `_given`: the aligned array


class _TypeSpec:
    """A complex type, backbone element or resource, compiled for lookups by JSON property name."""

    __slots__ = ("choices", "extension_values", "is_extension", "is_reference", "name", "props", "required")

    def __init__(self, name: str) -> None:
        self.name = name
        self.props: dict[str, _Prop] = {}
        # (name in messages and paths, JSON property names any of which satisfies min >= 1)
        self.required: tuple[tuple[str, tuple[str, ...]], ...] = ()
        self.choices: dict[str, tuple[str, ...]] = {}  # choice stem -> allowed JSON names (messages)
        self.is_reference = name == "Reference"
        self.is_extension = name == "Extension"
        self.extension_values: frozenset[str] = frozenset()


def _suffix(type_name: str) -> str:
    return type_name[0].upper() + type_name[1:]


class StructuralValidator:
    """Validates resources against the base R4 structures (see the module docstring for the rules).

    Immutable once built, so one instance serves every thread of the process.
    """

    def __init__(self) -> None:
        defs = structures()
        self._checks = {
            name: _primitive_check(name, t.get("regex"))
            for name, t in defs.items()
            if t["kind"] == "primitive-type"
        }
        # Two passes, because types refer to each other (and to themselves: Questionnaire.item.item).
        self._specs = {
            name: _TypeSpec(name)
            for name, t in defs.items()
            if t["kind"] != "primitive-type" and name not in ("Resource", "DomainResource")
        }
        for spec in self._specs.values():
            self._compile(spec, defs[spec.name]["elements"], defs[spec.name]["kind"] == "resource")
        self._resources = {
            name: spec
            for name, spec in self._specs.items()
            if defs[name]["kind"] == "resource" and not defs[name].get("abstract")
        }
        # `_birthDate`: the id and extensions a primitive value may carry.
        self._element = self._specs["Element"]

    def _compile(self, spec: _TypeSpec, elements: dict[str, ElementDefinition], is_resource: bool) -> None:
        required: list[tuple[str, tuple[str, ...]]] = []
        if is_resource:
            spec.props["resourceType"] = _Prop(_RESOURCE_TYPE, "resourceType", False)
        for name, element in elements.items():
            many = element["max"] == "*"
            stem = name if element.get("choice", False) else None
            targets = element.get("targets")
            # Element.id and Extension.url are XML attributes: they carry no id or extensions (no `_id`).
            attribute = (name == "id" and not is_resource) or (spec.is_extension and name == "url")
            names: list[str] = []
            for type_name in element["types"]:
                json_name = name + _suffix(type_name) if stem else name
                if type_name in self._checks:
                    prop = _Prop(_PRIMITIVE, json_name, many)
                    prop.check = self._checks[type_name]
                    if not attribute:
                        ext = _Prop(_PRIMITIVE_EXT, json_name, many)
                        ext.choice = stem
                        prop.sibling, ext.sibling = "_" + json_name, json_name
                        spec.props["_" + json_name] = ext
                        names.append("_" + json_name)
                elif type_name == "Resource":
                    prop = _Prop(_RESOURCE, json_name, many)
                else:
                    prop = _Prop(_COMPLEX, json_name, many)
                    prop.spec = self._specs[type_name]
                    if type_name == "Reference" and targets and "Resource" not in targets:
                        prop.targets = frozenset(targets)
                prop.choice = stem
                spec.props[json_name] = prop
                names.append(json_name)
            if stem:
                spec.choices[stem] = tuple(n for n in names if not n.startswith("_"))
            if element["min"] >= 1:
                # Present means a value or, for a primitive, only extensions (`_status`): both count.
                required.append((f"{name}[x]" if stem else name, tuple(names)))
        spec.required = tuple(required)
        if spec.is_extension:
            spec.extension_values = frozenset(n for n, p in spec.props.items() if p.choice == "value")

    # -- the walk ------------------------------------------------------------------------------------

    def validate(self, resource: object) -> list[Issue]:
        issues: list[Issue] = []
        if not isinstance(resource, dict):
            issues.append(
                Issue("fatal", "structure", f"A resource must be a JSON object, not {_show(resource)}")
            )
            return issues
        self._resource(resource, "", issues, False)
        return issues

    def _resource(self, obj: dict[str, Any], path: str, issues: list[Issue], contained: bool) -> None:
        """A resource at the top (`path` empty) or nested (contained, Bundle.entry.resource, ...)."""
        resource_type = obj.get("resourceType")
        if not isinstance(resource_type, str):
            issues.append(
                Issue("error", "structure", "Missing resourceType: expected a string", path or None)
            )
            return
        spec = self._resources.get(resource_type)
        if spec is None:
            issues.append(
                Issue("error", "structure", f"Unknown resource type {_show(resource_type)}", path or None)
            )
            return
        self._object(obj, spec, path or resource_type, issues, contained)

    def _object(
        self, obj: dict[str, Any], spec: _TypeSpec, path: str, issues: list[Issue], contained: bool
    ) -> None:
        """One JSON object of type `spec` at `path`; `contained` is true inside a contained resource."""
        if not obj:
            issues.append(Issue("error", "structure", "Empty objects are not allowed", path))
            return
        props = spec.props
        seen_choices: dict[str, str] | None = None
        for key, value in obj.items():
            prop = props.get(key)
            if prop is None:
                self._unknown(key, spec, path, issues)
                continue
            kind = prop.kind
            if kind == _RESOURCE_TYPE:
                continue
            if prop.choice is not None:
                if seen_choices is None:
                    seen_choices = {}
                first = seen_choices.setdefault(prop.choice, prop.element)
                if first != prop.element:
                    issues.append(
                        Issue(
                            "error",
                            "structure",
                            f"Only one of '{first}' and '{prop.element}' may be present"
                            f" (choice element '{prop.choice}[x]')",
                            f"{path}.{prop.element}",
                        )
                    )
                    continue
            if value is None:
                issues.append(
                    Issue("error", "structure", f"Element '{key}' must not be null", f"{path}.{prop.element}")
                )
                continue
            if prop.many:
                if type(value) is not list:
                    issues.append(
                        Issue(
                            "error",
                            "structure",
                            f"Element '{key}' must be an array, not a single value",
                            f"{path}.{prop.element}",
                        )
                    )
                    continue
                if not value:
                    issues.append(
                        Issue(
                            "error",
                            "structure",
                            f"Element '{key}' must not be an empty array",
                            f"{path}.{prop.element}",
                        )
                    )
                    continue
                if kind == _PRIMITIVE:
                    self._primitives(obj, prop, value, path, issues)
                elif kind == _COMPLEX:
                    child = prop.spec
                    assert child is not None
                    for i, item in enumerate(value):
                        self._complex(item, prop, child, f"{path}.{key}[{i}]", issues, contained)
                elif kind == _PRIMITIVE_EXT:
                    self._primitive_extensions(obj, prop, value, path, issues, contained)
                else:
                    for i, item in enumerate(value):
                        self._nested_resource(item, f"{path}.{key}[{i}]", issues, contained, key)
            elif type(value) is list:
                issues.append(
                    Issue(
                        "error",
                        "structure",
                        f"Element '{prop.element}' must be a single value, not an array",
                        f"{path}.{prop.element}",
                    )
                )
            elif kind == _PRIMITIVE:
                assert prop.check is not None
                problem = prop.check(value)
                if problem is not None:
                    self._bad_primitive(problem, value, f"{path}.{key}", issues)
            elif kind == _COMPLEX:
                assert prop.spec is not None
                self._complex(value, prop, prop.spec, f"{path}.{key}", issues, contained)
            elif kind == _PRIMITIVE_EXT:
                self._complex(value, prop, self._element, f"{path}.{prop.element}", issues, contained)
            else:
                self._nested_resource(value, f"{path}.{key}", issues, contained, key)
        for element, names in spec.required:
            for name in names:
                if name in obj:
                    break
            else:
                issues.append(
                    Issue("error", "required", f"Missing required element '{element}'", f"{path}.{element}")
                )
        if spec.is_extension:
            self._extension(obj, spec, path, issues)

    def _complex(
        self,
        value: object,
        prop: _Prop,
        spec: _TypeSpec,
        path: str,
        issues: list[Issue],
        contained: bool,
    ) -> None:
        if type(value) is not dict:
            if value is None:
                # Only primitive arrays may hold nulls (aligned with their `_x` array).
                issues.append(Issue("error", "structure", "Null is not allowed here", path))
            else:
                issues.append(
                    Issue("error", "structure", f"Expected an object ({spec.name}), not {_show(value)}", path)
                )
            return
        self._object(value, spec, path, issues, contained)
        if spec.is_reference:
            reference = value.get("reference")
            if type(reference) is str:
                self._reference(reference, prop.targets, f"{path}.reference", issues)

    def _primitives(
        self, obj: dict[str, Any], prop: _Prop, values: list[Any], path: str, issues: list[Issue]
    ) -> None:
        """A primitive array; a null is allowed where the aligned `_x` array has the item's extensions."""
        check = prop.check
        assert check is not None
        extensions = obj.get(prop.sibling)
        for i, value in enumerate(values):
            if value is None:
                if type(extensions) is list and i < len(extensions) and extensions[i] is not None:
                    continue
                issues.append(
                    Issue(
                        "error",
                        "structure",
                        f"Null in '{prop.element}' without extensions at the same index in '{prop.sibling}'",
                        f"{path}.{prop.element}[{i}]",
                    )
                )
                continue
            problem = check(value)
            if problem is not None:
                self._bad_primitive(problem, value, f"{path}.{prop.element}[{i}]", issues)
        if type(extensions) is list and len(extensions) != len(values):
            issues.append(
                Issue(
                    "error",
                    "structure",
                    f"Arrays '{prop.element}' and '{prop.sibling}' must have the same length"
                    f" ({len(values)} and {len(extensions)})",
                    f"{path}.{prop.element}",
                )
            )

    def _primitive_extensions(
        self,
        obj: dict[str, Any],
        prop: _Prop,
        items: list[Any],
        path: str,
        issues: list[Issue],
        contained: bool,
    ) -> None:
        """`_given`: one id/extension object per item of `given`, null where an item has none."""
        values = obj.get(prop.sibling)
        for i, item in enumerate(items):
            item_path = f"{path}.{prop.element}[{i}]"
            if item is None:
                if type(values) is list and i < len(values):
                    continue  # fine next to a value; a null in both arrays is reported by `_primitives`
                issues.append(
                    Issue(
                        "error",
                        "structure",
                        f"Null in '_{prop.element}' without a value at the same index in '{prop.element}'",
                        item_path,
                    )
                )
                continue
            self._complex(item, prop, self._element, item_path, issues, contained)
        # Different lengths are reported by `_primitives` when both arrays are there.

    def _nested_resource(
        self, value: object, path: str, issues: list[Issue], contained: bool, key: str
    ) -> None:
        if type(value) is not dict:
            issues.append(Issue("error", "structure", f"Expected a resource, not {_show(value)}", path))
            return
        if contained:
            # dom-2: a contained resource must not contain resources (no nesting of containers).
            issues.append(
                Issue("error", "structure", "A contained resource must not contain resources", path)
            )
        self._resource(value, path, issues, contained or key == "contained")

    def _unknown(self, key: str, spec: _TypeSpec, path: str, issues: list[Issue]) -> None:
        message = f"Unknown element '{key}'"
        if key == "resourceType":
            message += ": resourceType is only allowed on a resource"
        else:
            stem = key.lstrip("_")
            for choice, names in spec.choices.items():
                if stem == choice or (
                    stem.startswith(choice) and stem[len(choice) : len(choice) + 1].isupper()
                ):
                    message += f": '{choice}[x]' allows {', '.join(names)}"
                    break
        issues.append(Issue("error", "structure", message, f"{path}.{key.lstrip('_')}"))

    @staticmethod
    def _bad_primitive(problem: _Problem, value: object, path: str, issues: list[Issue]) -> None:
        severity, message = problem
        # A structure where a primitive belongs is a shape error, not a bad value.
        code = "structure" if isinstance(value, dict | list) else "value"
        issues.append(Issue(severity, code, message, path))

    @staticmethod
    def _extension(obj: dict[str, Any], spec: _TypeSpec, path: str, issues: list[Issue]) -> None:
        """ext-1: an extension has either a value or nested extensions, not both and not neither."""
        has_value = not spec.extension_values.isdisjoint(obj)
        has_children = "extension" in obj
        if has_value and has_children:
            issues.append(
                Issue(
                    "error",
                    "invalid",
                    "An extension must have either a value or nested extensions, not both",
                    path,
                )
            )
        elif not has_value and not has_children:
            issues.append(
                Issue("error", "invalid", "An extension must have a value or nested extensions", path)
            )

    def _reference(
        self, reference: str, targets: frozenset[str] | None, path: str, issues: list[Issue]
    ) -> None:
        """A literal reference: the resource type it names must exist and be an allowed target."""
        if reference.startswith("#"):
            return  # contained resource (or "#": the container itself)
        resource_type: str | None = None
        if _SCHEME.match(reference):
            # urn:uuid:, urn:oid:, or an absolute URL: typed only when it has the RESTful shape.
            match = _ABSOLUTE_REF.fullmatch(reference)
            if match is None or match.group(1) not in self._resources:
                return
            resource_type = match.group(1)
        elif "?" in reference:
            resource_type = reference.split("?", 1)[0]  # conditional reference: Patient?identifier=...
        else:
            match = _RELATIVE_REF.fullmatch(reference)
            if match is None:
                issues.append(
                    Issue(
                        "error",
                        "value",
                        f"Invalid reference {_show(reference)}: expected 'Type/id', an absolute URL,"
                        " '#id', 'urn:uuid:…', 'urn:oid:…' or 'Type?search'",
                        path,
                    )
                )
                return
            resource_type = match.group(1)
        if resource_type not in self._resources:
            issues.append(
                Issue(
                    "error",
                    "value",
                    f"Unknown resource type {_show(resource_type)} in reference {_show(reference)}",
                    path,
                )
            )
        elif targets is not None and resource_type not in targets:
            expected = ", ".join(sorted(targets))
            issues.append(
                Issue(
                    "error",
                    "structure",
                    f"Reference to '{resource_type}' not allowed here; expected one of: {expected}",
                    path,
                )
            )


@cache
def default_validator() -> ResourceValidator:
    """The process-wide validator (compiling the type tables takes a few tens of milliseconds)."""
    return StructuralValidator()
