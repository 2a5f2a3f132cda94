"""The FHIR store's tables, for SQLite and PostgreSQL alike (SQLAlchemy Core).

- `resource`: one row per logical resource (type, id) with its current version; its integer `pk` is
  what the index tables point at (small keys, fast joins; the sharding key on PostgreSQL is the
  patient compartment, added later, not the pk).
- `resource_version`: every version ever written, as canonical JSON bytes served as they are; `seq`
  orders the whole store's history.
- `idx_*`: the search index, one table per search-parameter type, rows for the current version only;
  each value index ends with `resource_pk` so criteria are answered from the index alone.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for a store this size.
BigId = BigInteger().with_variant(Integer(), "sqlite")

resource = Table(
    "resource",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),  # epoch microseconds, UTC
    Column("deleted", Boolean, nullable=False, default=False),
    UniqueConstraint("res_type", "res_id", name="uq_resource_type_id"),
)
Index("ix_resource_type_updated", resource.c.res_type, resource.c.last_updated)

resource_version = Table(
    "resource_version",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("resource_pk", BigInteger, nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),  # POST | PUT | PATCH | DELETE
    Column("deleted", Boolean, nullable=False, default=False),
    Column("data", LargeBinary, nullable=True),  # canonical JSON; NULL for a delete
    UniqueConstraint("resource_pk", "version", name="uq_resource_version"),
)
Index("ix_version_updated", resource_version.c.last_updated)
Index("ix_version_type_updated", resource_version.c.res_type, resource_version.c.last_updated)


def _index_table(name: str, *columns: Column[object]) -> Table:
    return Table(
        name,
        metadata,
        Column("resource_pk", BigInteger, nullable=False),
        Column("res_type", String(64), nullable=False),
        Column("param", String(100), nullable=False),
        *columns,
    )


idx_string = _index_table(
    "idx_string",
    Column("normalized", Text, nullable=False),
    Column("exact", Text, nullable=False),
)
Index(
    "ix_idx_string_value",
    idx_string.c.res_type,
    idx_string.c.param,
    idx_string.c.normalized,
    idx_string.c.resource_pk,
)
Index("ix_idx_string_pk", idx_string.c.resource_pk)

idx_token = _index_table(
    "idx_token",
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("text", Text, nullable=True),
    Column("value", Text, nullable=True),
)
Index(
    "ix_idx_token_code",
    idx_token.c.res_type,
    idx_token.c.param,
    idx_token.c.code,
    idx_token.c.system,
    idx_token.c.resource_pk,
)
Index("ix_idx_token_pk", idx_token.c.resource_pk)

idx_date = _index_table(
    "idx_date",
    Column("low", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
)
Index(
    "ix_idx_date_range",
    idx_date.c.res_type,
    idx_date.c.param,
    idx_date.c.low,
    idx_date.c.high,
    idx_date.c.resource_pk,
)
Index("ix_idx_date_pk", idx_date.c.resource_pk)

idx_number = _index_table(
    "idx_number",
    Column("value", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
)
Index(
    "ix_idx_number_value",
    idx_number.c.res_type,
    idx_number.c.param,
    idx_number.c.value,
    idx_number.c.resource_pk,
)
Index("ix_idx_number_pk", idx_number.c.resource_pk)

idx_quantity = _index_table(
    "idx_quantity",
    Column("value", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("unit", Text, nullable=True),
)
Index(
    "ix_idx_quantity_value",
    idx_quantity.c.res_type,
    idx_quantity.c.param,
    idx_quantity.c.value,
    idx_quantity.c.resource_pk,
)
Index("ix_idx_quantity_pk", idx_quantity.c.resource_pk)

idx_uri = _index_table("idx_uri", Column("uri", Text, nullable=False))
Index("ix_idx_uri_value", idx_uri.c.res_type, idx_uri.c.param, idx_uri.c.uri, idx_uri.c.resource_pk)
Index("ix_idx_uri_pk", idx_uri.c.resource_pk)

idx_reference = _index_table(
    "idx_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("url", Text, nullable=True),
    Column("version", String(64), nullable=True),
)
Index(
    "ix_idx_reference_target",
    idx_reference.c.target_id,
    idx_reference.c.target_type,
    idx_reference.c.res_type,
    idx_reference.c.param,
    idx_reference.c.resource_pk,
)
# Partial: only canonical references carry a url (none of a clinical load's), and every search on
# it is a comparison, which implies `url IS NOT NULL` (migration 0011).
Index(
    "ix_idx_reference_url",
    idx_reference.c.res_type,
    idx_reference.c.param,
    idx_reference.c.url,
    postgresql_where=idx_reference.c.url.isnot(None),
    sqlite_where=idx_reference.c.url.isnot(None),
)
Index("ix_idx_reference_pk", idx_reference.c.resource_pk)

# A composite row keeps two components taken from the same element (all R4 composites have two).
# Each component is stored as a token-like key (system, code) and a numeric range, whichever its
# type needs: tokens/strings/references/uris use the key, quantities key + range, dates the range.
idx_composite = _index_table(
    "idx_composite",
    Column("c1_system", Text, nullable=True),
    Column("c1_code", Text, nullable=True),
    Column("c1_low", Float, nullable=True),
    Column("c1_high", Float, nullable=True),
    Column("c2_system", Text, nullable=True),
    Column("c2_code", Text, nullable=True),
    Column("c2_low", Float, nullable=True),
    Column("c2_high", Float, nullable=True),
)
Index("ix_idx_composite_c1", idx_composite.c.res_type, idx_composite.c.param, idx_composite.c.c1_code)
Index("ix_idx_composite_pk", idx_composite.c.resource_pk)

# The audit trail's hash chain: one link per AuditEvent (stored as a FHIR resource), each carrying
# the hash of the previous link, so that a modified, deleted or reordered entry breaks the chain.
audit_chain = Table(
    "audit_chain",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("resource_pk", BigInteger, nullable=False, unique=True),
    Column("recorded", BigInteger, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
)

INDEX_TABLES: tuple[Table, ...] = (
    idx_string,
    idx_token,
    idx_date,
    idx_number,
    idx_quantity,
    idx_uri,
    idx_reference,
    idx_composite,
)
