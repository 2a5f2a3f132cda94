"""initial store schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idx_composite",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("c1_system", sa.Text(), nullable=True),
        sa.Column("c1_code", sa.Text(), nullable=True),
        sa.Column("c1_low", sa.Float(), nullable=True),
        sa.Column("c1_high", sa.Float(), nullable=True),
        sa.Column("c2_system", sa.Text(), nullable=True),
        sa.Column("c2_code", sa.Text(), nullable=True),
        sa.Column("c2_low", sa.Float(), nullable=True),
        sa.Column("c2_high", sa.Float(), nullable=True),
    )
    with op.batch_alter_table("idx_composite", schema=None) as batch_op:
        batch_op.create_index("ix_idx_composite_c1", ["res_type", "param", "c1_code"], unique=False)
        batch_op.create_index("ix_idx_composite_pk", ["resource_pk"], unique=False)

    op.create_table(
        "idx_date",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("low", sa.BigInteger(), nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False),
    )
    with op.batch_alter_table("idx_date", schema=None) as batch_op:
        batch_op.create_index("ix_idx_date_pk", ["resource_pk"], unique=False)
        batch_op.create_index("ix_idx_date_range", ["res_type", "param", "low", "high"], unique=False)

    op.create_table(
        "idx_number",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
    )
    with op.batch_alter_table("idx_number", schema=None) as batch_op:
        batch_op.create_index("ix_idx_number_pk", ["resource_pk"], unique=False)
        batch_op.create_index("ix_idx_number_value", ["res_type", "param", "value"], unique=False)

    op.create_table(
        "idx_quantity",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=True),
    )
    with op.batch_alter_table("idx_quantity", schema=None) as batch_op:
        batch_op.create_index("ix_idx_quantity_pk", ["resource_pk"], unique=False)
        batch_op.create_index("ix_idx_quantity_value", ["res_type", "param", "value"], unique=False)

    op.create_table(
        "idx_reference",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("target_type", sa.String(length=64), nullable=True),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
    )
    with op.batch_alter_table("idx_reference", schema=None) as batch_op:
        batch_op.create_index("ix_idx_reference_pk", ["resource_pk"], unique=False)
        batch_op.create_index(
            "ix_idx_reference_target", ["target_id", "target_type", "res_type", "param"], unique=False
        )
        batch_op.create_index("ix_idx_reference_url", ["res_type", "param", "url"], unique=False)

    op.create_table(
        "idx_string",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("normalized", sa.Text(), nullable=False),
        sa.Column("exact", sa.Text(), nullable=False),
    )
    with op.batch_alter_table("idx_string", schema=None) as batch_op:
        batch_op.create_index("ix_idx_string_pk", ["resource_pk"], unique=False)
        batch_op.create_index("ix_idx_string_value", ["res_type", "param", "normalized"], unique=False)

    op.create_table(
        "idx_token",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
    )
    with op.batch_alter_table("idx_token", schema=None) as batch_op:
        batch_op.create_index("ix_idx_token_code", ["res_type", "param", "code", "system"], unique=False)
        batch_op.create_index("ix_idx_token_pk", ["resource_pk"], unique=False)

    op.create_table(
        "idx_uri",
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=100), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
    )
    with op.batch_alter_table("idx_uri", schema=None) as batch_op:
        batch_op.create_index("ix_idx_uri_pk", ["resource_pk"], unique=False)
        batch_op.create_index("ix_idx_uri_value", ["res_type", "param", "uri"], unique=False)

    op.create_table(
        "resource",
        sa.Column(
            "pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("res_type", "res_id", name="uq_resource_type_id"),
    )
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.create_index("ix_resource_type_updated", ["res_type", "last_updated"], unique=False)

    op.create_table(
        "resource_version",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("resource_pk", "version", name="uq_resource_version"),
    )
    with op.batch_alter_table("resource_version", schema=None) as batch_op:
        batch_op.create_index("ix_version_type_updated", ["res_type", "last_updated"], unique=False)
        batch_op.create_index("ix_version_updated", ["last_updated"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("resource_version", schema=None) as batch_op:
        batch_op.drop_index("ix_version_updated")
        batch_op.drop_index("ix_version_type_updated")

    op.drop_table("resource_version")
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_type_updated")

    op.drop_table("resource")
    with op.batch_alter_table("idx_uri", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_uri_value")
        batch_op.drop_index("ix_idx_uri_pk")

    op.drop_table("idx_uri")
    with op.batch_alter_table("idx_token", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_token_pk")
        batch_op.drop_index("ix_idx_token_code")

    op.drop_table("idx_token")
    with op.batch_alter_table("idx_string", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_string_value")
        batch_op.drop_index("ix_idx_string_pk")

    op.drop_table("idx_string")
    with op.batch_alter_table("idx_reference", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_reference_url")
        batch_op.drop_index("ix_idx_reference_target")
        batch_op.drop_index("ix_idx_reference_pk")

    op.drop_table("idx_reference")
    with op.batch_alter_table("idx_quantity", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_quantity_value")
        batch_op.drop_index("ix_idx_quantity_pk")

    op.drop_table("idx_quantity")
    with op.batch_alter_table("idx_number", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_number_value")
        batch_op.drop_index("ix_idx_number_pk")

    op.drop_table("idx_number")
    with op.batch_alter_table("idx_date", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_date_range")
        batch_op.drop_index("ix_idx_date_pk")

    op.drop_table("idx_date")
    with op.batch_alter_table("idx_composite", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_composite_pk")
        batch_op.drop_index("ix_idx_composite_c1")

    op.drop_table("idx_composite")
