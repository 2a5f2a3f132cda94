"""FHIR search: from query parameters to a searchset Bundle.

Each search parameter becomes one SQL condition on `resource.pk`, built from the parameter's type
and read against its index table (the tables the indexing pipeline fills). Repeated parameters are
ANDed, comma-separated values ORed. Chains, reverse chains (`_has`), `_include`/`_revinclude`,
`_sort`, `_summary`/`_elements` and paging are planned here; the SQL runs unchanged on SQLite and
PostgreSQL.

Paging: results in the default order (creation order) page by key (`_cursor`): a page never shifts
when resources are created or deleted meanwhile. Sorted results page by offset within a snapshot
(`_snapshot` = highest key at the first page), so new resources do not shift later pages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import orjson
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
)

from socle.clock import to_micros, utc_now
from socle.errors import InvalidRequest, Issue, PreconditionFailed
from socle.fhir.definitions import resource_types, structures
from socle.fhir.exchange import for_exchange
from socle.search.geo import near_condition
from socle.search.normalize import date_range, decimal_range, normalize_text
from socle.search.parameters import SearchParameter, default_registry
from socle.store import schema
from socle.store.engine import is_sqlite
from socle.store.repository import StoredResource, StoreSession

r = schema.resource

CONTROL = frozenset(
    {
        "_count",
        "_sort",
        "_include",
        "_revinclude",
        "_summary",
        "_elements",
        "_total",
        "_format",
        "_pretty",
        "_cursor",
        "_before",
        "_offset",
        "_snapshot",
        "_contained",
        "_containedType",
    }
)
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
ROW_CHECK_ABOVE = 500
"""Inner keys of a chain or `_has` above which matches are checked row by row (see RowCheck)."""
ESCAPE = "\\"


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _split_or(value: str) -> list[str]:
    """Split on commas not escaped with a backslash; unescape `\\,` `\\|` `\\$` `\\\\`."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            current.append(value[i : i + 2])
            i += 2
            continue
        if ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _split_unescaped(value: str, sep: str, maxsplit: int = -1) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            current.append(value[i : i + 2])
            i += 2
            continue
        if ch == sep and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _prefix(value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES and not value[2].isalpha():
        return value[:2], value[2:]
    return "eq", value


@dataclass(frozen=True, slots=True)
class RowCheck:
    """A chain or `_has` criterion in its two SQL forms, chosen when the search runs.

    `as_set` computes every match (`pk IN (...)`) and the page is sorted out of them: right when
    the inner criterion is selective. When it is not (`subject.family=martin` at 1M resources:
    3,000 patients, 45,000 observations), that costs hundreds of milliseconds to return 20 rows,
    and walking the resources in key order, checking each one (`per_row`, a correlated EXISTS that
    `OFFSET 0` keeps PostgreSQL from turning back into a join), finds a page in a few hundred
    probes. PostgreSQL cannot tell the two cases apart (it sees no correlation across the index
    tables and underestimates such criteria a thousandfold), so the search counts the `inner` keys
    up to ROW_CHECK_ABOVE first. On PostgreSQL only: SQLite already runs `IN (subquery)` as a list
    built once, and would evaluate the EXISTS for every resource of the type.
    """

    as_set: ColumnElement[bool]
    per_row: ColumnElement[bool]
    inner: Select[Any]


@dataclass
class SearchPlan:
    res_type: str
    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    count: int = 20
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (param code, descending)
    includes: list[tuple[str, bool]] = field(default_factory=list)  # (value, iterate)
    revincludes: list[tuple[str, bool]] = field(default_factory=list)
    summary: str | None = None
    elements: str | None = None
    total: str | None = None
    cursor: int | None = None
    before: int | None = None
    offset: int = 0
    snapshot: int | None = None
    warnings: list[str] = field(default_factory=list)
    echo: list[tuple[str, str]] = field(default_factory=list)  # the criteria, for the self/next links
    pinned: bool = False  # a criterion already admits only res_type (see SearchPlanner.pins_type)
    row_checks: list[RowCheck] = field(default_factory=list)


class SearchPlanner:
    """Turns search parameters into SQL conditions for one resource type."""

    def __init__(self, base_url: str, *, strict: bool = False) -> None:
        self.registry = default_registry()
        self.base_url = base_url.rstrip("/")
        self.strict = strict

    # -- entry points --------------------------------------------------------------------------

    def plan(
        self, res_type: str, params: list[tuple[str, str]], *, default_count: int, max_count: int
    ) -> SearchPlan:
        plan = SearchPlan(res_type, count=default_count)
        for name, raw in params:
            if name in CONTROL or name.split(":")[0] in ("_include", "_revinclude"):
                self._control(plan, name, raw, max_count)
                continue
            condition = self.condition(res_type, name, raw, plan)
            if condition is not None:
                plan.conditions.append(condition)
                plan.echo.append((name, raw))
                plan.pinned = plan.pinned or self.pins_type(name)
        return plan

    def _control(self, plan: SearchPlan, name: str, raw: str, max_count: int) -> None:
        base, _, modifier = name.partition(":")
        if base == "_count":
            plan.count = min(_non_negative_int(name, raw), max_count)
        elif base == "_sort":
            for key in raw.split(","):
                key = key.strip()
                descending = key.startswith("-")
                code = key.lstrip("-")
                if code not in ("_id", "_lastUpdated") and self.registry.get(plan.res_type, code) is None:
                    raise InvalidRequest(f"Unknown sort parameter '{code}' for {plan.res_type}")
                plan.sort.append((code, descending))
        elif base in ("_include", "_revinclude"):
            source, _code, _target = _include_spec(self, raw)  # refuse a bad include even with no match
            if base == "_revinclude" and source == "*":
                raise InvalidRequest("_revinclude=* is not supported: name the source type and parameter")
            targets = plan.includes if base == "_include" else plan.revincludes
            targets.append((raw, modifier == "iterate"))
        elif base == "_summary":
            if raw not in ("true", "false", "text", "data", "count"):
                raise InvalidRequest(f"Invalid _summary '{raw}': expected true, false, text, data or count")
            plan.summary = raw
        elif base == "_elements":
            plan.elements = raw
        elif base == "_total":
            if raw not in ("none", "estimate", "accurate"):
                raise InvalidRequest(f"Invalid _total '{raw}': expected none, estimate or accurate")
            plan.total = raw
        elif base == "_cursor":
            plan.cursor = _non_negative_int(name, raw)
        elif base == "_before":
            plan.before = _non_negative_int(name, raw)
        elif base == "_offset":
            plan.offset = _non_negative_int(name, raw)
        elif base == "_snapshot":
            plan.snapshot = _non_negative_int(name, raw)
        elif base == "_format" and raw not in ("json", "application/json", "application/fhir+json"):
            raise InvalidRequest(f"Unsupported _format '{raw}': this server speaks FHIR JSON only")

    # -- one parameter -------------------------------------------------------------------------

    def condition(
        self, res_type: str, name: str, raw: str, plan: SearchPlan | None = None
    ) -> ColumnElement[bool] | None:
        if name.startswith("_has:"):
            return self._has(res_type, name, raw, plan)
        if name == "_type":
            return None
        code, _, modifier = name.partition(":")
        chain = None
        if "." in code:
            code, chain = code.split(".", 1)
        elif "." in modifier:
            modifier, chain = modifier.split(".", 1)
        if code in ("_id", "_lastUpdated"):
            if chain is not None:
                raise InvalidRequest(f"'{code}' cannot be chained")
            return self._resource_column(code, modifier, raw)
        param = self.registry.get(res_type, code)
        if param is not None and param.type == "special" and param.code == "near" and chain is None:
            # Location.position: planned by socle.search.geo (bounding box + great-circle distance).
            return near_condition(res_type, param.code, modifier, raw)
        if (
            param is None
            or param.type == "special"
            or (param.expression is None and param.type != "composite")
        ):
            message = f"Unknown search parameter '{code}' for {res_type}"
            if self.strict:
                raise InvalidRequest(message)
            if plan is not None:
                plan.warnings.append(message + " (ignored)")
            return None
        if chain is not None:
            return self._chain(res_type, param, modifier, chain, raw, plan)
        if modifier == "missing":
            if raw not in ("true", "false"):
                raise InvalidRequest(f"':missing' expects true or false, not '{raw}'")
            has_rows = r.c.pk.in_(self._rows_of(res_type, param).where(true()))
            return not_(has_rows) if raw == "true" else has_rows
        if param.type == "token" and modifier == "not":
            # :not means "no row matches any of the values" (resources without the element included).
            matching = [self._token(res_type, param, "", v) for v in _split_or(raw)]
            return not_(r.c.pk.in_(matching[0].union(*matching[1:]).subquery().select()))
        return r.c.pk.in_(self._keys(res_type, param, name, modifier, raw))

    def key_set(self, res_type: str, name: str, raw: str) -> Select[Any] | None:
        """The keys a plain criterion selects from its index table (no chain, `_has`, negation).

        What the row-by-row forms of chains and `_has` probe, and what they count to choose.
        """
        if name.startswith("_has:") or not self.pins_type(name):
            return None
        code, _, modifier = name.partition(":")
        if "." in name:
            return None
        param = self.registry.get(res_type, code)
        if (
            param is None
            or param.type == "special"
            or (param.expression is None and param.type != "composite")
        ):
            return None
        return self._keys(res_type, param, name, modifier, raw)

    def _keyed_condition(
        self, res_type: str, name: str, raw: str
    ) -> tuple[ColumnElement[bool] | None, Select[Any] | None]:
        """A nested criterion's condition and, when it is a plain one, the keys it selects: planned
        once for both the set form and the row-by-row form of a chain or `_has`."""
        keys = self.key_set(res_type, name, raw)
        if keys is not None:
            return r.c.pk.in_(keys), keys  # what condition() builds for a plain criterion
        return self.condition(res_type, name, raw), None

    def _keys(self, res_type: str, param: SearchParameter, name: str, modifier: str, raw: str) -> Select[Any]:
        builder = {
            "string": self._string,
            "token": self._token,
            "reference": self._reference,
            "date": self._date,
            "number": self._number,
            "quantity": self._quantity,
            "uri": self._uri,
            "composite": self._composite,
        }.get(param.type)
        if builder is None:
            raise InvalidRequest(f"Search parameter '{param.code}' of type {param.type} is not supported")
        subqueries = [builder(res_type, param, modifier, v) for v in _split_or(raw) if v != ""]
        if not subqueries:
            raise InvalidRequest(f"Search parameter '{name}' has an empty value")
        if len(subqueries) == 1:
            return subqueries[0]
        return subqueries[0].union(*subqueries[1:]).subquery().select()

    def _rows_of(self, res_type: str, param: SearchParameter) -> Select[Any]:
        table = _table_for(param.type)
        return select(table.c.resource_pk).where(table.c.res_type == res_type, table.c.param == param.code)

    def _resource_column(self, code: str, modifier: str, raw: str) -> ColumnElement[bool]:
        if code == "_id":
            if modifier not in ("", "not"):
                raise InvalidRequest(f"Unsupported modifier ':{modifier}' on _id")
            ids = [_unescape(v) for v in _split_or(raw)]
            condition = r.c.res_id.in_(ids)
            return not_(condition) if modifier == "not" else condition
        if modifier:
            raise InvalidRequest(f"Unsupported modifier ':{modifier}' on _lastUpdated")
        conditions = []
        for value in _split_or(raw):
            prefix, text = _prefix(value)
            low, high = _date_value(code, text)
            conditions.append(_range_compare(prefix, r.c.last_updated, r.c.last_updated, low, high))
        return or_(*conditions)

    def _string(self, res_type: str, param: SearchParameter, modifier: str, value: str) -> Select[Any]:
        t = schema.idx_string
        query = select(t.c.resource_pk).where(t.c.res_type == res_type, t.c.param == param.code)
        text = _unescape(value)
        if modifier == "exact":
            return query.where(t.c.exact == text)
        normalized = _like_escape(normalize_text(text))
        if modifier == "contains":
            return query.where(t.c.normalized.like(f"%{normalized}%", escape=ESCAPE))
        if modifier:
            raise InvalidRequest(f"Unsupported modifier ':{modifier}' on string parameter '{param.code}'")
        return query.where(t.c.normalized.like(f"{normalized}%", escape=ESCAPE))

    def _token(self, res_type: str, param: SearchParameter, modifier: str, value: str) -> Select[Any]:
        t = schema.idx_token
        code = param.code
        query = select(t.c.resource_pk).where(t.c.res_type == res_type)
        if modifier == "text":
            normalized = _like_escape(normalize_text(_unescape(value)))
            return query.where(t.c.param == code, t.c.text.like(f"{normalized}%", escape=ESCAPE))
        if modifier == "of-type":
            parts = _split_unescaped(value, "|")
            if len(parts) != 3 or not all(parts):
                raise InvalidRequest(f"':of-type' expects system|code|value, not '{value}'")
            system, type_code, ident = (_unescape(p) for p in parts)
            return query.where(
                t.c.param == f"{code}:of-type",
                t.c.system == system,
                t.c.code == type_code,
                t.c.value == ident,
            )
        if modifier not in ("",):
            raise InvalidRequest(f"Unsupported modifier ':{modifier}' on token parameter '{code}'")
        query = query.where(t.c.param == code)
        return _token_match(query, t.c.system, t.c.code, value)

    def _reference(self, res_type: str, param: SearchParameter, modifier: str, value: str) -> Select[Any]:
        t = schema.idx_reference
        query = select(t.c.resource_pk).where(t.c.res_type == res_type, t.c.param == param.code)
        if modifier == "identifier":
            tok = schema.idx_token
            ident = select(tok.c.resource_pk).where(
                tok.c.res_type == res_type, tok.c.param == f"{param.code}:identifier"
            )
            return _token_match(ident, tok.c.system, tok.c.code, value)
        if modifier and modifier not in resource_types():
            raise InvalidRequest(f"Unsupported modifier ':{modifier}' on reference parameter '{param.code}'")
        value = _unescape(value)
        if value.startswith(self.base_url + "/"):
            value = value[len(self.base_url) + 1 :]
        if "://" in value or value.startswith("urn:"):
            url, _, version = value.partition("|")
            query = query.where(t.c.url == url)
            return query.where(t.c.version == version) if version else query
        parts = value.split("/")
        if len(parts) >= 4 and parts[-2] == "_history":
            parts = parts[:-2]
        if len(parts) == 2:
            target_type, target_id = parts
            if modifier and modifier != target_type:
                raise InvalidRequest(f"Reference '{value}' contradicts the type modifier ':{modifier}'")
            return query.where(t.c.target_type == target_type, t.c.target_id == target_id)
        if len(parts) == 1:
            query = query.where(t.c.target_id == value)
            return query.where(t.c.target_type == modifier) if modifier else query
        raise InvalidRequest(f"Invalid reference value '{value}' for '{param.code}'")

    def _date(self, res_type: str, param: SearchParameter, modifier: str, value: str) -> Select[Any]:
        if modifier:
            raise InvalidRequest(f"Unsupported modifier ':{modifier}' on date parameter '{param.code}'")
        t = schema.idx_date
        prefix, text = _prefix(value)
        low, high = _date_value(param.code, text)
        query = select(t.c.resource_pk).where(t.c.res_type == res_type, t.c.param == param.code)
        return query.where(_range_compare(prefix, t.c.low, t.c.high, low, high))

    def _number(self, res_type: str, param: SearchParameter, modifier: str, value: str) -> Select[Any]:
        if modifier:
            raise InvalidRequest(f"Unsupported modifier ':{modifier}' on number parameter '{param.code}'")
        t = schema.idx_number
        prefix, text = _prefix(value)
        number, low, high = _decimal_value(param.code, text)
        query = select(t.c.resource_pk).where(t.c.res_type == res_type, t.c.param == param.code)
        return query.where(_number_compare(prefix, t.c.value, number, low, high))

    def _quantity(self, res_type: str, param: SearchParameter, modifier: str, value: str) -> Select[Any]:
        if modifier:
            raise InvalidRequest(f"Unsupported modifier ':{modifier}' on quantity parameter '{param.code}'")
        t = schema.idx_quantity
        query = select(t.c.resource_pk).where(t.c.res_type == res_type, t.c.param == param.code)
        return query.where(_quantity_condition(param.code, value, t.c.value, t.c.system, t.c.code, t.c.unit))

    def _uri(self, res_type: str, param: SearchParameter, modifier: str, value: str) -> Select[Any]:
        t = schema.idx_uri
        query = select(t.c.resource_pk).where(t.c.res_type == res_type, t.c.param == param.code)
        uri = _unescape(value)
        if modifier == "below":
            return query.where(t.c.uri.like(f"{_like_escape(uri)}%", escape=ESCAPE))
        if modifier == "above":
            # Every stored uri that is a prefix of the value (a "parent" of it).
            prefixes = {uri[:i] for i in range(1, len(uri) + 1)}
            return query.where(t.c.uri.in_(sorted(prefixes)))
        if modifier:
            raise InvalidRequest(f"Unsupported modifier ':{modifier}' on uri parameter '{param.code}'")
        return query.where(t.c.uri == uri)

    def _composite(self, res_type: str, param: SearchParameter, modifier: str, value: str) -> Select[Any]:
        if modifier:
            raise InvalidRequest(f"Unsupported modifier ':{modifier}' on composite parameter '{param.code}'")
        parts = _split_unescaped(value, "$")
        if len(parts) != len(param.components) or len(parts) > 2:
            raise InvalidRequest(
                f"Composite parameter '{param.code}' expects {len(param.components)} values joined by '$', "
                f"got '{value}'"
            )
        t = schema.idx_composite
        query = select(t.c.resource_pk).where(t.c.res_type == res_type, t.c.param == param.code)
        columns = [
            (t.c.c1_system, t.c.c1_code, t.c.c1_low, t.c.c1_high),
            (t.c.c2_system, t.c.c2_code, t.c.c2_low, t.c.c2_high),
        ]
        for part, (url, _expr), (c_sys, c_code, c_low, c_high) in zip(
            parts, param.components, columns, strict=False
        ):
            component = self.registry.by_url(url)
            ctype = component.type if component else "token"
            if ctype == "token":
                query = _token_match(query, c_sys, c_code, part)
            elif ctype == "quantity":
                midpoint = (c_low + c_high) / 2
                query = query.where(_quantity_condition(param.code, part, midpoint, c_sys, c_code, None))
            elif ctype in ("date", "number"):
                prefix, text = _prefix(part)
                if ctype == "date":
                    low, high = _date_value(param.code, text)
                    query = query.where(_range_compare(prefix, c_low, c_high, float(low), float(high)))
                else:
                    number, nlow, nhigh = _decimal_value(param.code, text)
                    query = query.where(_number_compare(prefix, (c_low + c_high) / 2, number, nlow, nhigh))
            elif ctype == "string":
                query = query.where(
                    c_code.like(f"{_like_escape(normalize_text(_unescape(part)))}%", escape=ESCAPE)
                )
            else:
                query = query.where(c_code == _unescape(part))
        return query

    # -- chains ----------------------------------------------------------------------------------

    def _chain(
        self,
        res_type: str,
        param: SearchParameter,
        modifier: str,
        chain: str,
        raw: str,
        plan: SearchPlan | None = None,
    ) -> ColumnElement[bool]:
        if param.type != "reference":
            raise InvalidRequest(f"'{param.code}' is not a reference parameter and cannot be chained")
        targets = [modifier] if modifier else [t for t in param.targets if t in resource_types()]
        if modifier and modifier not in resource_types():
            raise InvalidRequest(f"Unknown resource type ':{modifier}' in chain '{param.code}'")
        chained_code = chain.split(".", 1)[0].split(":", 1)[0]
        candidates = [
            t
            for t in targets
            if chained_code in ("_id", "_lastUpdated") or self.registry.get(t, chained_code)
        ]
        if not candidates:
            raise InvalidRequest(f"No target of '{param.code}' has a search parameter '{chained_code}'")
        ref = schema.idx_reference
        options = []
        targets_of_options: list[tuple[str, Select[Any] | None]] = []
        for target in candidates:
            inner, keys = self._keyed_condition(target, chain, raw)
            if inner is None:
                continue
            target_ids = select(r.c.res_id).where(
                r.c.deleted == false(), inner, *self._type_filter(target, chain)
            )
            targets_of_options.append((target, keys))
            options.append(
                select(ref.c.resource_pk).where(
                    ref.c.res_type == res_type,
                    ref.c.param == param.code,
                    ref.c.target_type == target,
                    ref.c.target_id.in_(target_ids),
                )
            )
        if not options:
            return false()
        if len(options) > 1:
            return r.c.pk.in_(options[0].union(*options[1:]).subquery().select())
        as_set = r.c.pk.in_(options[0])
        target, keys = targets_of_options[0]
        if plan is not None and keys is not None:
            # Per resource: its reference rows -> the target resource -> is it one of the keys?
            link, target_row = schema.idx_reference.alias("chain_link"), r.alias("chain_target")
            probe = (
                select(literal(1))
                .select_from(
                    link.join(
                        target_row,
                        and_(target_row.c.res_type == target, target_row.c.res_id == link.c.target_id),
                    )
                )
                .where(
                    link.c.resource_pk == r.c.pk,
                    link.c.res_type == res_type,
                    link.c.param == param.code,
                    link.c.target_type == target,
                    target_row.c.deleted == false(),
                    target_row.c.pk.in_(keys),
                )
                .correlate(r)
                .offset(0)
            )
            plan.row_checks.append(RowCheck(as_set, exists(probe), keys))
        return as_set

    def _has(self, res_type: str, name: str, raw: str, plan: SearchPlan | None = None) -> ColumnElement[bool]:
        parts = name.split(":", 3)
        if len(parts) != 4 or not all(parts):
            raise InvalidRequest(f"Invalid _has parameter '{name}': expected _has:Type:reference:parameter")
        _, source_type, ref_code, rest = parts
        if source_type not in resource_types():
            raise InvalidRequest(f"Unknown resource type '{source_type}' in '{name}'")
        ref_param = self.registry.get(source_type, ref_code)
        if ref_param is None or ref_param.type != "reference":
            raise InvalidRequest(f"'{ref_code}' is not a reference parameter of {source_type}")
        inner, keys = self._keyed_condition(source_type, rest, raw)
        if inner is None:
            raise InvalidRequest(f"Unknown search parameter '{rest}' for {source_type} in '{name}'")
        ref = schema.idx_reference
        source_pks = select(r.c.pk).where(
            r.c.deleted == false(), inner, *self._type_filter(source_type, rest)
        )
        referenced_ids = select(ref.c.target_id).where(
            ref.c.res_type == source_type,
            ref.c.param == ref_code,
            ref.c.target_type == res_type,
            ref.c.resource_pk.in_(source_pks),
        )
        as_set = r.c.res_id.in_(referenced_ids)
        if plan is not None and keys is not None:
            # Per resource: the rows referencing it -> their (live) source -> is it one of the keys?
            link, source = schema.idx_reference.alias("has_link"), r.alias("has_source")
            probe = (
                select(literal(1))
                .select_from(link.join(source, source.c.pk == link.c.resource_pk))
                .where(
                    link.c.target_id == r.c.res_id,
                    link.c.target_type == res_type,
                    link.c.res_type == source_type,
                    link.c.param == ref_code,
                    source.c.deleted == false(),
                    source.c.pk.in_(keys),
                )
                .correlate(r)
                .offset(0)
            )
            plan.row_checks.append(RowCheck(as_set, exists(probe), keys))
        return as_set

    @staticmethod
    def pins_type(name: str) -> bool:
        """Whether the criterion `name` only admits resources of the type it is planned for.

        Most criteria select keys from index rows filed under that type, so `resource.res_type = T`
        adds nothing, and it costs: PostgreSQL takes the two as independent and divides its row
        estimate by the share of T in the store (20 for Patient), which made it sort every match of
        a chain or `_has` instead of walking the keys in order. `_id`, `_lastUpdated`, `_has` (by
        id, which other types may share) and the negated criteria (`:not`, `:missing`) do not pin.
        """
        if name.startswith("_has:") or name == "_type":
            return False
        code, _, modifier = name.partition(":")
        if "." in code:
            return True  # a chain: keys of the referencing index rows
        return code not in ("_id", "_lastUpdated") and modifier.split(".", 1)[0] not in ("missing", "not")

    def _type_filter(self, res_type: str, name: str) -> list[ColumnElement[bool]]:
        return [] if self.pins_type(name) else [r.c.res_type == res_type]

    # -- sort ------------------------------------------------------------------------------------

    def sort_columns(self, plan: SearchPlan) -> list[Any]:
        columns: list[Any] = []
        for code, descending in plan.sort:
            if code == "_id":
                column: Any = r.c.res_id
            elif code == "_lastUpdated":
                column = r.c.last_updated
            else:
                param = self.registry.get(plan.res_type, code)
                assert param is not None
                column = self._sort_key(plan.res_type, param, descending)
            columns.append(column.desc().nulls_last() if descending else column.asc().nulls_last())
        return columns

    def _sort_key(self, res_type: str, param: SearchParameter, descending: bool) -> Any:
        table = _table_for(param.type)
        value = {
            "string": "normalized",
            "token": "code",
            "date": "high" if descending else "low",
            "number": "value",
            "quantity": "value",
            "uri": "uri",
            "reference": "target_id",
        }.get(param.type)
        if value is None:
            raise InvalidRequest(f"Cannot sort on '{param.code}' (type {param.type})")
        aggregate = func.max if descending else func.min
        # One probe per match, by key: `|| ''` keeps the type and parameter from being index
        # constraints, so SQLite without statistics does not prefer the covering value index
        # (res_type, param, ..., resource_pk) and scan every row of the parameter per match.
        return (
            select(aggregate(table.c[value]))
            .where(
                table.c.resource_pk == r.c.pk,
                (table.c.param + "") == param.code,
                (table.c.res_type + "") == res_type,
            )
            .scalar_subquery()
        )


def _non_negative_int(name: str, raw: str) -> int:
    if not raw.isdigit():
        raise InvalidRequest(f"'{name}' expects a non-negative integer, not '{raw}'")
    return int(raw)


def _date_value(code: str, text: str) -> tuple[int, int]:
    try:
        low, high = date_range(text)
        return low, high
    except ValueError as exc:
        raise InvalidRequest(f"Invalid date '{text}' for '{code}': {exc}") from exc


def _decimal_value(code: str, text: str) -> tuple[float, float, float]:
    try:
        value, low, high = decimal_range(text)
        return value, low, high
    except ValueError as exc:
        raise InvalidRequest(f"Invalid number '{text}' for '{code}': {exc}") from exc


def _token_match(query: Select[Any], system_col: Any, code_col: Any, value: str) -> Select[Any]:
    parts = _split_unescaped(value, "|", 1)
    if len(parts) == 1:
        return query.where(code_col == _unescape(parts[0]))
    system, code = _unescape(parts[0]), _unescape(parts[1])
    if system == "" and code == "":
        raise InvalidRequest("A token value needs a code or a system")
    if system == "":
        return query.where(code_col == code, system_col.is_(None))
    if code == "":
        return query.where(system_col == system)
    return query.where(system_col == system, code_col == code)


def _range_compare(prefix: str, low_col: Any, high_col: Any, low: float, high: float) -> Any:
    """Compare the stored range [low_col, high_col] with the search range [low, high] (R4 search rules)."""
    if prefix == "eq":
        return and_(low_col >= low, high_col <= high)
    if prefix == "ne":
        return not_(and_(low_col >= low, high_col <= high))
    if prefix == "gt":
        return high_col > high
    if prefix == "lt":
        return low_col < low
    if prefix == "ge":
        return high_col >= low
    if prefix == "le":
        return low_col <= high
    if prefix == "sa":
        return low_col > high
    if prefix == "eb":
        return high_col < low
    # ap: the ranges overlap once the search range is widened by 10% of its distance from now.
    now = to_micros(utc_now())
    margin = max(abs(now - low), abs(now - high)) * 0.1
    return and_(low_col <= high + margin, high_col >= low - margin)


def _number_compare(prefix: str, column: Any, value: float, low: float, high: float) -> Any:
    if prefix == "eq":
        return and_(column >= low, column < high)
    if prefix == "ne":
        return or_(column < low, column >= high)
    if prefix in ("gt", "sa"):
        return column > value
    if prefix in ("lt", "eb"):
        return column < value
    if prefix == "ge":
        return column >= value
    if prefix == "le":
        return column <= value
    margin = abs(value) * 0.1
    return and_(column >= value - margin, column <= value + margin)


def _quantity_condition(
    code: str, raw: str, value_col: Any, system_col: Any, code_col: Any, unit_col: Any
) -> Any:
    parts = _split_unescaped(raw, "|")
    if len(parts) not in (1, 3):
        raise InvalidRequest(f"Invalid quantity '{raw}' for '{code}': expected [prefix]number[|system|code]")
    prefix, number_text = _prefix(parts[0])
    number, low, high = _decimal_value(code, number_text)
    condition = _number_compare(prefix, value_col, number, low, high)
    if len(parts) == 3:
        system, unit_code = _unescape(parts[1]), _unescape(parts[2])
        if system:
            condition = and_(condition, system_col == system, code_col == unit_code)
        elif unit_code:
            unit_match = (
                code_col == unit_code
                if unit_col is None
                else or_(code_col == unit_code, unit_col == unit_code)
            )
            condition = and_(condition, unit_match)
    return condition


def _table_for(param_type: str) -> Any:
    return {
        "string": schema.idx_string,
        "token": schema.idx_token,
        "reference": schema.idx_reference,
        "date": schema.idx_date,
        "number": schema.idx_number,
        "quantity": schema.idx_quantity,
        "uri": schema.idx_uri,
        "composite": schema.idx_composite,
    }[param_type]


# -- running a search ------------------------------------------------------------------------------


def _base_query(plan: SearchPlan, conditions: list[ColumnElement[bool]] | None = None) -> Select[Any]:
    # A walk checking rows one by one (conditions replaced) skips other types before probing them.
    type_filter = [] if plan.pinned and conditions is None else [r.c.res_type == plan.res_type]
    criteria = plan.conditions if conditions is None else conditions
    return select(r.c.pk).where(*type_filter, r.c.deleted == false(), *criteria)


def _page_conditions(session: StoreSession, plan: SearchPlan) -> list[ColumnElement[bool]] | None:
    """The plan's conditions with the chains and `_has` of many inner keys checked row by row;
    None when every criterion stays a set."""
    if is_sqlite(session.store.engine):
        # SQLite runs an IN (subquery) as a list built once and probed per row, which is what the
        # walk buys on PostgreSQL; its planner would instead evaluate the correlated EXISTS for
        # every resource of the type before sorting (Patient?_has: 16 ms as a set, 660 ms so).
        return None
    per_row = {}
    for check in plan.row_checks:
        capped = check.inner.limit(ROW_CHECK_ABOVE + 1).subquery()
        keys = session.connection.execute(select(func.count()).select_from(capped)).scalar_one()
        if keys > ROW_CHECK_ABOVE:
            per_row[id(check.as_set)] = check.per_row
    if not per_row:
        return None
    return [per_row.get(id(condition), condition) for condition in plan.conditions]


def search_pks(session: StoreSession, plan: SearchPlan) -> tuple[list[int], bool]:
    """The page's resource keys, in order, and whether more results follow."""
    session.flush()
    query = _base_query(plan, _page_conditions(session, plan) if plan.row_checks else None)
    limit = plan.count + 1
    if plan.sort:
        if plan.snapshot is not None:
            query = query.where(r.c.pk <= plan.snapshot)
        planner = SearchPlanner("")
        query = query.order_by(*planner.sort_columns(plan), r.c.pk).offset(plan.offset).limit(limit)
        pks = [row[0] for row in session.connection.execute(query)]
    elif plan.before is not None:
        query = query.where(r.c.pk < plan.before).order_by(r.c.pk.desc()).limit(plan.count)
        pks = [row[0] for row in session.connection.execute(query)][::-1]
        return pks, True
    else:
        if plan.cursor is not None:
            query = query.where(r.c.pk > plan.cursor)
        query = query.order_by(r.c.pk).limit(limit)
        pks = [row[0] for row in session.connection.execute(query)]
    more = len(pks) > plan.count
    return pks[: plan.count], more


def count_matches(session: StoreSession, plan: SearchPlan) -> int:
    query = select(func.count()).select_from(_base_query(plan).subquery())
    return int(session.connection.execute(query).scalar_one())


def search_bundle(
    session: StoreSession,
    res_type: str,
    params: list[tuple[str, str]],
    base_url: str,
    *,
    strict: bool = False,
    default_count: int = 20,
    max_count: int = 1000,
    restriction: ColumnElement[bool] | None = None,
    visible: Callable[[list[int]], list[int]] | None = None,
) -> dict[str, Any]:
    """Run a search; `restriction` (the actor's reach) joins every criterion, `visible` filters includes."""
    planner = SearchPlanner(base_url, strict=strict)
    plan = planner.plan(res_type, params, default_count=default_count, max_count=max_count)
    if restriction is not None:
        plan.conditions.append(restriction)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if plan.summary == "count":
        bundle["total"] = count_matches(session, plan)
        bundle["link"] = [{"relation": "self", "url": _link(base_url, res_type, plan, {})}]
        return bundle
    if plan.sort and plan.snapshot is None:
        plan.snapshot = _max_pk(session)
    pks: list[int] = []
    more = False
    if plan.count > 0:
        pks, more = search_pks(session, plan)
    first_page = plan.cursor is None and plan.before is None and plan.offset == 0
    if plan.total == "accurate" or plan.count == 0 or (first_page and not more and plan.total != "none"):
        bundle["total"] = (
            len(pks) if (first_page and not more and plan.count > 0) else count_matches(session, plan)
        )
    links = [{"relation": "self", "url": _link(base_url, res_type, plan, _position(plan))}]
    if pks and more:
        nxt = {"_offset": str(plan.offset + plan.count)} if plan.sort else {"_cursor": str(pks[-1])}
        links.append({"relation": "next", "url": _link(base_url, res_type, plan, nxt)})
    if pks and not first_page:
        prev = {"_offset": str(max(plan.offset - plan.count, 0))} if plan.sort else {"_before": str(pks[0])}
        links.append({"relation": "previous", "url": _link(base_url, res_type, plan, prev)})
    bundle["link"] = links
    matched = session.fetch_current(pks)
    entries = []
    for pk in pks:
        stored = matched.get(pk)
        if stored is not None and stored.data is not None:
            entries.append(_entry(base_url, stored, "match", plan))
    included = _includes(session, planner, plan, [matched[pk] for pk in pks if pk in matched])
    if visible is not None and included:
        allowed = set(visible([stored.pk for stored in included]))
        included = [stored for stored in included if stored.pk in allowed]
    entries += [_entry(base_url, stored, "include", plan) for stored in included]
    if plan.warnings:
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [Issue("warning", "not-supported", w).to_fhir() for w in plan.warnings],
        }
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle


def _max_pk(session: StoreSession) -> int:
    return int(session.connection.execute(select(func.coalesce(func.max(r.c.pk), 0))).scalar_one())


def _position(plan: SearchPlan) -> dict[str, str]:
    if plan.cursor is not None:
        return {"_cursor": str(plan.cursor)}
    if plan.before is not None:
        return {"_before": str(plan.before)}
    if plan.offset:
        return {"_offset": str(plan.offset)}
    return {}


def _link(base_url: str, res_type: str, plan: SearchPlan, position: dict[str, str]) -> str:
    params = list(plan.echo)
    for code, descending in plan.sort:
        params.append(("_sort", ("-" if descending else "") + code))
    for value, iterate in plan.includes:
        params.append(("_include:iterate" if iterate else "_include", value))
    for value, iterate in plan.revincludes:
        params.append(("_revinclude:iterate" if iterate else "_revinclude", value))
    for name, option in (("_summary", plan.summary), ("_elements", plan.elements), ("_total", plan.total)):
        if option:
            params.append((name, option))
    params.append(("_count", str(plan.count)))
    if plan.snapshot is not None:
        params.append(("_snapshot", str(plan.snapshot)))
    params += list(position.items())
    return f"{base_url}/{res_type}?{urlencode(params, quote_via=quote, safe=':|,$/')}"


def _entry(base_url: str, stored: StoredResource, mode: str, plan: SearchPlan) -> dict[str, Any]:
    data = for_exchange(stored.res_type, stored.data) if stored.data is not None else None
    resource: Any = orjson.Fragment(data) if data is not None else None
    if data is not None and (plan.summary in ("true", "text", "data") or plan.elements):
        resource = shape_resource(orjson.loads(data), plan.summary, plan.elements)
    return {
        "fullUrl": f"{base_url}/{stored.res_type}/{stored.res_id}",
        "resource": resource,
        "search": {"mode": mode},
    }


# -- includes --------------------------------------------------------------------------------------


def _includes(
    session: StoreSession, planner: SearchPlanner, plan: SearchPlan, matches: list[StoredResource]
) -> list[StoredResource]:
    if not (plan.includes or plan.revincludes) or not matches:
        return []
    seen = {m.pk for m in matches}
    found: list[StoredResource] = []
    frontier = list(matches)
    first = True
    while frontier:
        new: list[StoredResource] = []
        for value, iterate in plan.includes:
            if first or iterate:
                new += _forward(session, planner, value, frontier)
        for value, iterate in plan.revincludes:
            if first or iterate:
                new += _reverse(session, planner, value, frontier)
        frontier = []
        for stored in new:
            if stored.pk not in seen and stored.data is not None:
                seen.add(stored.pk)
                found.append(stored)
                frontier.append(stored)
        first = False
        if not any(it for _, it in plan.includes + plan.revincludes):
            break
    return found


def _include_spec(planner: SearchPlanner, value: str) -> tuple[str, str | None, str | None]:
    parts = value.split(":")
    if parts == ["*"]:
        return "*", None, None
    if len(parts) not in (2, 3) or parts[0] not in resource_types():
        raise InvalidRequest(f"Invalid include '{value}': expected Type:parameter[:targetType]")
    source, code = parts[0], parts[1]
    if code != "*":
        param = planner.registry.get(source, code)
        if param is None or param.type != "reference":
            raise InvalidRequest(f"'{code}' is not a reference parameter of {source} (in '{value}')")
    return source, code, parts[2] if len(parts) == 3 else None


def _forward(
    session: StoreSession, planner: SearchPlanner, value: str, frontier: list[StoredResource]
) -> list[StoredResource]:
    source, code, target_type = _include_spec(planner, value)
    ref = schema.idx_reference
    pks = [s.pk for s in frontier if source == "*" or s.res_type == source]
    if not pks:
        return []
    query = (
        select(r.c.pk)
        .join(ref, and_(ref.c.target_type == r.c.res_type, ref.c.target_id == r.c.res_id))
        .where(ref.c.resource_pk.in_(pks), r.c.deleted == false())
    )
    if code not in (None, "*"):
        query = query.where(ref.c.param == code)
    if target_type:
        query = query.where(r.c.res_type == target_type)
    targets = sorted({row[0] for row in session.connection.execute(query)})
    return list(session.fetch_current(targets).values())


def _reverse(
    session: StoreSession, planner: SearchPlanner, value: str, frontier: list[StoredResource]
) -> list[StoredResource]:
    source, code, target_type = _include_spec(planner, value)
    if source == "*":
        raise InvalidRequest("_revinclude=* is not supported: name the source type and parameter")
    ref = schema.idx_reference
    keys = [(s.res_type, s.res_id) for s in frontier if target_type is None or s.res_type == target_type]
    if not keys:
        return []
    query = select(ref.c.resource_pk).where(
        ref.c.res_type == source, tuple_(ref.c.target_type, ref.c.target_id).in_(keys)
    )
    if code not in (None, "*"):
        query = query.where(ref.c.param == code)
    pks = sorted({row[0] for row in session.connection.execute(query)})
    return [s for s in session.fetch_current(pks).values() if not s.deleted]


# -- conditional interactions ----------------------------------------------------------------------


def match_conditional(
    session: StoreSession, res_type: str, query: str, restriction: ColumnElement[bool] | None = None
) -> list[StoredResource]:
    """Resources matching the criteria of a conditional create/update/delete (at most 2 fetched)."""
    if query.startswith(res_type + "?"):
        query = query[len(res_type) + 1 :]
    query = query.lstrip("?")
    params = parse_qsl(query, keep_blank_values=True)
    if not params:
        raise InvalidRequest(f"Conditional criteria '{query}' contain no search parameter")
    planner = SearchPlanner("", strict=True)
    plan = planner.plan(
        res_type, [(k, v) for k, v in params if k not in CONTROL], default_count=2, max_count=2
    )
    if not plan.conditions:
        raise PreconditionFailed(f"Conditional criteria '{query}' select nothing usable")
    if restriction is not None:
        plan.conditions.append(restriction)
    pks, _ = search_pks(session, plan)
    found = session.fetch_current(pks)
    return [found[pk] for pk in pks if pk in found]


# -- shaping (_summary, _elements) -----------------------------------------------------------------


def _summary_elements(res_type: str) -> frozenset[str]:
    definition = structures().get(res_type, {})
    elements = definition.get("elements", {})
    return frozenset(name for name, e in elements.items() if e.get("summary") or e.get("min", 0) > 0)


def _mandatory_elements(res_type: str) -> frozenset[str]:
    elements = structures().get(res_type, {}).get("elements", {})
    return frozenset(name for name, e in elements.items() if e.get("min", 0) > 0)


def _choice_stem(res_type: str, key: str) -> str:
    elements = structures().get(res_type, {}).get("elements", {})
    if key in elements:
        return key
    for name, element in elements.items():
        if element.get("choice") and key.startswith(name) and key[len(name) : len(name) + 1].isupper():
            return name
    return key


def shape_resource(resource: dict[str, Any], summary: str | None, elements: str | None) -> dict[str, Any]:
    """Apply `_summary` / `_elements`, marking the result SUBSETTED as the spec asks."""
    res_type = resource.get("resourceType", "")
    keep: frozenset[str] | None = None
    drop: frozenset[str] = frozenset()
    if summary == "true":
        keep = _summary_elements(res_type)
    elif summary == "text":
        keep = frozenset({"text"}) | _mandatory_elements(res_type)
    elif summary == "data":
        drop = frozenset({"text"})
    if elements:
        wanted = frozenset(e.strip() for e in elements.split(",") if e.strip())
        keep = wanted | _mandatory_elements(res_type)
    if keep is None and not drop:
        return resource
    shaped: dict[str, Any] = {}
    for key, value in resource.items():
        stem = _choice_stem(res_type, key.lstrip("_"))
        if (
            key in ("resourceType", "id", "meta")
            or (keep is not None and stem in keep and stem not in drop)
            or (keep is None and stem not in drop)
        ):
            shaped[key] = value
    meta = dict(shaped.get("meta") or {})
    tags = list(meta.get("tag", []))
    tags.append({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"})
    meta["tag"] = tags
    shaped["meta"] = meta
    return shaped
