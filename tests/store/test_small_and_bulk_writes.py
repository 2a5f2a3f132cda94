"""A resource is stored the same whichever way its rows reach the database.

On PostgreSQL a small flush sends every table's rows as JSON in one statement
(`socle.store.repository.queue_inserts`) and a large one uses COPY; on SQLite both are multi-row
INSERTs. Values that JSON or COPY could bend (quotes, backslashes, control and non-ASCII
characters, extreme floats, bytes) must come back exactly.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select

from socle.store import repository, schema
from socle.store.repository import FhirStore, queue_inserts

TRICKY = 'l\'apostrophe "guillemets" \\ barre\\oblique\ttab\nligne é 中 \u2028 {accolade} [crochet],'


def tricky_observation() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "29463-7", "display": TRICKY}],
            "text": TRICKY,
        },
        "subject": {"reference": "Patient/p-1", "display": TRICKY},
        "valueQuantity": {
            "value": 1.7976931348623157e308,
            "unit": TRICKY,
            "system": "http://unitsofmeasure.org",
            "code": "kg",
        },
        "component": [
            {"code": {"text": "petit"}, "valueQuantity": {"value": 5e-324, "unit": "g"}},
            {"code": {"text": "négatif"}, "valueQuantity": {"value": -0.1, "unit": "g"}},
        ],
        "effectiveDateTime": "2024-02-29T23:59:59.999+14:00",
        "note": [{"text": TRICKY}],
    }


def index_rows(store: FhirStore, pk: int) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    with store.engine.connect() as connection:
        for table in schema.INDEX_TABLES:
            columns = [c for c in table.columns if c.name not in ("resource_pk", "seq", "id")]
            rows = connection.execute(select(*columns).where(table.c.resource_pk == pk)).all()
            found[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return found


def stored(store: FhirStore, res_id: str) -> tuple[int, dict[str, Any], dict[str, list[tuple[Any, ...]]]]:
    with store.session(readonly=True) as session:
        resource = session.read("Observation", res_id)
    assert resource.data is not None
    body = orjson.loads(resource.data)
    for key in ("id", "meta"):
        body.pop(key)
    return resource.pk, body, index_rows(store, resource.pk)


def test_a_small_write_and_a_bulk_write_store_the_same_values_and_index_rows(
    store: FhirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with store.session() as session:
        alone = session.create(tricky_observation()).res_id
    monkeypatch.setattr(repository, "_PIPELINED_ROWS", 50)  # the 20 resources below: the bulk path
    with store.session() as session:
        for n in range(20):
            session.create({"resourceType": "Basic", "code": {"text": f"remplissage {n}"}})
        in_bulk = session.create(tricky_observation()).res_id

    pk_alone, body_alone, rows_alone = stored(store, alone)
    pk_bulk, body_bulk, rows_bulk = stored(store, in_bulk)
    assert pk_alone != pk_bulk
    assert body_alone == body_bulk == tricky_observation()
    assert rows_alone == rows_bulk
    assert any(TRICKY in row for row in rows_alone["idx_quantity"]), "the unit went through unchanged"
    assert rows_alone["idx_quantity"], "the quantities were indexed"


def test_rows_sent_as_json_keep_infinities_bytes_and_order(store: FhirStore) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("JSON rows are PostgreSQL's small-write path only")
    number = {"res_type": "RiskAssessment", "param": "probability", "value": 0.5}
    rows = [
        {"resource_pk": 1, **number, "low": float("-inf"), "high": float("inf")},
        {"resource_pk": 2, **number, "low": -1e-300, "high": 1e300},
    ]
    version = {
        "resource_pk": 3,
        "res_type": "Binary",
        "res_id": "b",
        "version": 1,
        "last_updated": 0,
        "method": "POST",
        "deleted": False,
        "data": b"\x00\xff\xfe{\"json\": 'non'}\\",
    }
    with store.engine.begin() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            queue_inserts(cursor, [(schema.idx_number, rows), (schema.resource_version, [version])])
            links = [
                {"resource_pk": pk, "recorded": 0, "prev_hash": "p", "entry_hash": "e"} for pk in (30, 10, 20)
            ]
            queue_inserts(cursor, [(schema.audit_chain, links)])
        back = connection.execute(
            select(
                schema.idx_number.c.resource_pk, schema.idx_number.c.low, schema.idx_number.c.high
            ).order_by(schema.idx_number.c.resource_pk)
        ).all()
        data = connection.execute(select(schema.resource_version.c.data)).scalar_one()
        chained = connection.execute(
            select(schema.audit_chain.c.resource_pk).order_by(schema.audit_chain.c.seq)
        ).scalars()
        assert list(chained) == [30, 10, 20], "serial keys follow the rows' order"
    assert [tuple(row) for row in back] == [(1, float("-inf"), float("inf")), (2, -1e-300, 1e300)]
    assert data == version["data"]
