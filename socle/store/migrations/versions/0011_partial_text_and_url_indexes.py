"""The token-text and reference-url indexes hold only the rows that have a value

Revision ID: 0011
Revises: 0010

Most token rows have no text (a status, an identifier, a code without display: 87 % of the rows of
a store of Synthea-like patients and their audit trail) and almost no reference row has a url
(only canonical references do). Indexing the NULLs cost one B-tree insertion per such row on every
write, audit traces included, for searches that never look for them: `:text` is a `LIKE` and a
canonical reference an equality, and both PostgreSQL and SQLite use a partial index
`WHERE column IS NOT NULL` for a comparison on that column. The token-text index exists on
PostgreSQL only (migration 0002).
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_idx_reference_url")
    op.execute(
        "CREATE INDEX ix_idx_reference_url ON idx_reference (res_type, param, url) WHERE url IS NOT NULL"
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_idx_token_text")
    op.execute(
        "CREATE INDEX ix_idx_token_text ON idx_token (res_type, param, text text_pattern_ops) "
        "WHERE text IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_idx_reference_url")
    op.execute("CREATE INDEX ix_idx_reference_url ON idx_reference (res_type, param, url)")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_idx_token_text")
    op.execute("CREATE INDEX ix_idx_token_text ON idx_token (res_type, param, text text_pattern_ops)")
