"""Prefix searches use the string and uri indexes on PostgreSQL whatever the database collation

Revision ID: 0002
Revises: 0001

`family=mar` is `normalized LIKE 'mar%'`: PostgreSQL uses a B-tree for it only under the C collation
or with `text_pattern_ops`, which also serves equality. SQLite's LIKE never uses these indexes
(it is case-insensitive); its prefix search stays a range scan on (res_type, param).
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_idx_string_value", "idx_string", "res_type, param, normalized"),
    ("ix_idx_uri_value", "idx_uri", "res_type, param, uri"),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, columns in INDEXES:
        patterned = columns.rsplit(", ", 1)
        op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(f"CREATE INDEX {name} ON {table} ({patterned[0]}, {patterned[1]} text_pattern_ops)")
    op.execute("CREATE INDEX ix_idx_token_text ON idx_token (res_type, param, text text_pattern_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_idx_token_text")
    for name, table, columns in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(f"CREATE INDEX {name} ON {table} ({columns})")
