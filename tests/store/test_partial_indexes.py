"""Searches on a token's text and on a canonical reference still use their (partial) indexes.

Migration 0011 keeps out of these indexes the rows that have no text or no url; a search compares
the column, which implies it is not NULL, so both databases may still use them.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from socle.store.repository import FhirStore


def plan(engine: Engine, sql: str) -> str:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            rows = connection.execute(text(f"EXPLAIN {sql}")).scalars()
        else:
            rows = (row[-1] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        return "\n".join(rows)


def test_a_canonical_reference_search_uses_the_url_index(store: FhirStore) -> None:
    sql = (
        "SELECT resource_pk FROM idx_reference WHERE res_type = 'Questionnaire' AND param = 'definition' "
        "AND url = 'http://example.org/q'"
    )
    assert "ix_idx_reference_url" in plan(store.engine, sql)


def test_a_text_search_uses_the_token_text_index_on_postgresql(store: FhirStore) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's LIKE is case-insensitive and never had a token-text index")
    sql = (
        "SELECT resource_pk FROM idx_token WHERE res_type = 'Observation' AND param = 'code' "
        "AND text LIKE 'poids%'"
    )
    assert "ix_idx_token_text" in plan(store.engine, sql)
