"""The index rows a resource produces, one dataclass per search-parameter type.

The indexing pipeline (`socle.search.extract`) turns a resource into these rows by evaluating each
search parameter's expression; the store writes them into one table per type and the query planner
reads those tables. Normalised forms are computed here, at write time, so that searching is plain
comparison.

Encodings shared by the extractor and the query planner:
- dates and periods are inclusive ranges of epoch microseconds (UTC) [low, high];
  a missing bound is `DATE_MIN` / `DATE_MAX`;
- numbers and quantities are ranges from the implicit precision of the stored value
  (`100` is [99.5, 100.5]) plus the exact value;
- `identifier:of-type` rows: param `"<code>:of-type"`, system/code of the identifier type coding,
  `value` = identifier.value;
- `reference:identifier` rows: a TokenRow with param `"<code>:identifier"`.
"""

from __future__ import annotations

from dataclasses import dataclass

DATE_MIN = -62135596800000000  # 0001-01-01T00:00:00Z in epoch microseconds
DATE_MAX = 253402300799999999  # 9999-12-31T23:59:59.999999Z


@dataclass(frozen=True, slots=True)
class StringRow:
    param: str
    normalized: str  # casefolded, accents removed, whitespace collapsed: for default and :contains
    exact: str


@dataclass(frozen=True, slots=True)
class TokenRow:
    param: str
    system: str | None
    code: str | None
    text: str | None = None  # normalised display / CodeableConcept.text / Identifier.type.text for :text
    value: str | None = None  # only for the :of-type encoding


@dataclass(frozen=True, slots=True)
class DateRow:
    param: str
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class NumberRow:
    param: str
    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class QuantityRow:
    param: str
    value: float
    low: float
    high: float
    system: str | None
    code: str | None
    unit: str | None


@dataclass(frozen=True, slots=True)
class UriRow:
    param: str
    uri: str


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    param: str
    target_type: str | None  # resource type when the reference is relative (or absolute to this server)
    target_id: str | None
    url: str | None  # the reference as written when it is absolute or canonical
    version: str | None = None


@dataclass(frozen=True, slots=True)
class CompositeRow:
    """One combination of component values taken from the same element (e.g. one Observation.component)."""

    param: str
    components: tuple[TokenRow | QuantityRow | DateRow | StringRow | ReferenceRow | NumberRow | UriRow, ...]


IndexRow = StringRow | TokenRow | DateRow | NumberRow | QuantityRow | UriRow | ReferenceRow | CompositeRow
