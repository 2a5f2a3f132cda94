"""Extended planner statistics on the search index tables (PostgreSQL)

Revision ID: 0010
Revises: 0007

Every index row carries `res_type` and `param`, and a token's `code` all but determines its `system`
and its `param`: the columns are strongly correlated. PostgreSQL multiplies per-column selectivities
as if they were independent, so `Condition.code = 44054006` (one condition in three at 1M resources)
was estimated at 1 row instead of 16,000, and it chose plans that compute every match before
sorting a page of 20. Multivariate statistics (functional dependencies and MCV lists of the value
combinations) give it the real frequencies. SQLite has no equivalent: nothing to do there.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None

# name, table, columns, statistics target (None: the server default, 100)
STATISTICS = [
    ("st_idx_token_value", "idx_token", "res_type, param, system, code", 1000),
    ("st_idx_string_param", "idx_string", "res_type, param", None),
    ("st_idx_reference_param", "idx_reference", "res_type, param, target_type", None),
    ("st_idx_date_param", "idx_date", "res_type, param", None),
    ("st_idx_number_param", "idx_number", "res_type, param", None),
    ("st_idx_quantity_param", "idx_quantity", "res_type, param, system, code", None),
    ("st_idx_uri_param", "idx_uri", "res_type, param", None),
    ("st_idx_composite_param", "idx_composite", "res_type, param, c1_code", None),
    ("st_resource_type", "resource", "res_type, deleted", None),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, columns, target in STATISTICS:
        op.execute(f"CREATE STATISTICS IF NOT EXISTS {name} (dependencies, mcv) ON {columns} FROM {table}")
        if target is not None:
            op.execute(f"ALTER STATISTICS {name} SET STATISTICS {target}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, *_ in STATISTICS:
        op.execute(f"DROP STATISTICS IF EXISTS {name}")
