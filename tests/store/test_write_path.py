"""A transaction bundle's writes: what the store holds after it equals what the generic pieces say.

The bulk write path takes shortcuts for speed (one dict writer per row class, no savepoint for ids
the server drew, memoised indexing plans); these tests check the database itself after synthetic
bundles: each version's bytes are the canonical bytes of its stamped resource, each resource's index
rows are exactly those `extract_index_rows` gives for it, and the transaction took no savepoint.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from sqlalchemy import Engine, event, select

from socle.fhir.bundles import process_bundle
from socle.search.extract import extract_index_rows
from socle.search.rows import (
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
from socle.store import schema
from socle.store.repository import FhirStore, canonical_bytes, component_key
from socle.synthetic import patient_bundles
from tests.conftest import BASE, SYSTEM_TESTER


def _expected_values(row: IndexRow) -> tuple[str, dict[str, Any]]:
    """Table and column values of an index row, spelled out field by field (independent of the store)."""
    if isinstance(row, TokenRow):
        return "idx_token", {"system": row.system, "code": row.code, "text": row.text, "value": row.value}
    if isinstance(row, StringRow):
        return "idx_string", {"normalized": row.normalized, "exact": row.exact}
    if isinstance(row, ReferenceRow):
        values = {"target_type": row.target_type, "target_id": row.target_id, "url": row.url}
        return "idx_reference", {**values, "version": row.version}
    if isinstance(row, DateRow):
        return "idx_date", {"low": row.low, "high": row.high}
    if isinstance(row, QuantityRow):
        values = {"value": row.value, "low": row.low, "high": row.high}
        return "idx_quantity", {**values, "system": row.system, "code": row.code, "unit": row.unit}
    if isinstance(row, NumberRow):
        return "idx_number", {"value": row.value, "low": row.low, "high": row.high}
    if isinstance(row, UriRow):
        return "idx_uri", {"uri": row.uri}
    assert isinstance(row, CompositeRow)
    values = {}
    for i in (1, 2):
        part = component_key(row.components[i - 1]) if len(row.components) >= i else (None,) * 4
        values.update(dict(zip((f"c{i}_system", f"c{i}_code", f"c{i}_low", f"c{i}_high"), part, strict=True)))
    return "idx_composite", values


def _frozen(values: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(values.items()))


def test_bundles_store_canonical_bytes_and_the_generic_index_rows(store: FhirStore, engine: Engine) -> None:
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        for bundle in patient_bundles(6, seed=11):
            process_bundle(store, bundle, BASE, "return=minimal", SYSTEM_TESTER)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "SAVEPOINT" in s.upper()], (
        "a transaction of drawn ids needs no savepoint"
    )

    with engine.connect() as connection:
        r, v = schema.resource, schema.resource_version
        versions = connection.execute(
            select(r.c.pk, r.c.res_type, v.c.data)
            .join(v, v.c.resource_pk == r.c.pk)
            .where(r.c.res_type != "AuditEvent")
        ).all()
        assert len(versions) > 100
        stored: dict[str, Counter[tuple[int, str, str, tuple[tuple[str, Any], ...]]]] = {}
        for table in schema.INDEX_TABLES:
            extra = {"resource_pk", "res_type", "param"}
            for row in connection.execute(select(table)).mappings():
                values = {k: val for k, val in row.items() if k not in extra}
                key = (row["resource_pk"], row["res_type"], row["param"], _frozen(values))
                stored.setdefault(table.name, Counter())[key] += 1
    expected: dict[str, Counter[tuple[int, str, str, tuple[tuple[str, Any], ...]]]] = {}
    audit_pks = set()
    for pk, res_type, data in versions:
        resource = orjson.loads(data)
        assert bytes(data) == canonical_bytes(resource)
        assert list(resource)[:3] == ["resourceType", "id", "meta"]
        for row in extract_index_rows(resource):
            table, values = _expected_values(row)
            expected.setdefault(table, Counter())[(pk, res_type, row.param, _frozen(values))] += 1
    for name, rows in stored.items():
        rows_of_clinical = Counter({k: n for k, n in rows.items() if k[1] != "AuditEvent"})
        audit_pks.update(k[0] for k in rows if k[1] == "AuditEvent")
        assert rows_of_clinical == expected.get(name, Counter()), name
    assert audit_pks, "each transaction's AuditEvent is indexed too"
