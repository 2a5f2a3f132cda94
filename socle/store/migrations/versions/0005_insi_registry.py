"""The simulated INSi teleservice's reference registry (socle.identity.insi)

Revision ID: 0005
Revises: 0004

Three tables of their own, not FHIR resources: `insi_person` (one row per person, keyed by the INS
matricule in use, with the INS traits as the registry spells them), `insi_carte_vitale` (card number
-> person, a card may carry several people) and `insi_previous_ins` (former matricules). Searches by
traits go through `ix_insi_person_traits` (birth name, birth date, sex).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "insi_person",
        sa.Column("ins_value", sa.String(length=15), nullable=False),
        sa.Column("ins_kind", sa.String(length=16), nullable=False),
        sa.Column("birth_name", sa.String(length=100), nullable=False),
        sa.Column("given_names", sa.String(length=255), nullable=False),
        sa.Column("first_given_name", sa.String(length=100), nullable=False),
        sa.Column("sex", sa.String(length=8), nullable=False),
        sa.Column("birth_date", sa.String(length=10), nullable=False),
        sa.Column("birthplace_code", sa.String(length=5), nullable=False),
        sa.PrimaryKeyConstraint("ins_value"),
    )
    op.create_index("ix_insi_person_traits", "insi_person", ["birth_name", "birth_date", "sex"])
    op.create_table(
        "insi_carte_vitale",
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("ins_value", sa.String(length=15), nullable=False),
        sa.PrimaryKeyConstraint("number", "ins_value"),
    )
    op.create_table(
        "insi_previous_ins",
        sa.Column("previous_value", sa.String(length=15), nullable=False),
        sa.Column("previous_kind", sa.String(length=16), nullable=False),
        sa.Column("ins_value", sa.String(length=15), nullable=False),
        sa.PrimaryKeyConstraint("previous_value"),
    )
    op.create_index("ix_insi_previous_person", "insi_previous_ins", ["ins_value"])


def downgrade() -> None:
    op.drop_index("ix_insi_previous_person", table_name="insi_previous_ins")
    op.drop_table("insi_previous_ins")
    op.drop_table("insi_carte_vitale")
    op.drop_index("ix_insi_person_traits", table_name="insi_person")
    op.drop_table("insi_person")
