"""Authentication: signing keys, clients, accounts, sessions, codes, refresh tokens, revocations

Revision ID: 0004
Revises: 0003

The tables of `socle.auth.schema` (credentials and OAuth state, never FHIR data). Secrets are stored
sealed or hashed; times are epoch seconds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_signing_key",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("private_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("retired_at", sa.BigInteger(), nullable=True),
        sa.Column("verify_until", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("kid"),
    )

    op.create_table(
        "auth_client",
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("client_type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("allowed_scopes", sa.Text(), nullable=False),
        sa.Column("grant_types", sa.Text(), nullable=False),
        sa.Column("auth_method", sa.String(length=32), nullable=False),
        sa.Column("jwks", sa.Text(), nullable=True),
        sa.Column("pkce_required", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
    )

    op.create_table(
        "auth_account",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("login", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("totp_secret", sa.LargeBinary(), nullable=False),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=False),
        sa.Column("fhir_type", sa.String(length=32), nullable=False),
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("given_name", sa.String(length=200), nullable=False),
        sa.Column("family_name", sa.String(length=200), nullable=False),
        sa.Column("national_id", sa.String(length=64), nullable=True),
        sa.Column("profession", sa.String(length=8), nullable=True),
        sa.Column("specialty", sa.String(length=16), nullable=True),
        sa.Column("structure_id", sa.String(length=64), nullable=True),
        sa.Column("structure_name", sa.String(length=255), nullable=True),
        sa.Column("structure_sector", sa.String(length=16), nullable=True),
        sa.Column("represented_patients", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
        sa.UniqueConstraint("kind", "login", name="uq_auth_account_login"),
    )

    op.create_table(
        "auth_login_failure",
        sa.Column("login_key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.BigInteger(), nullable=False),
        sa.Column("locked_until", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("login_key"),
    )

    op.create_table(
        "auth_session",
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("auth_time", sa.BigInteger(), nullable=True),
        sa.Column("amr", sa.Text(), nullable=True),
        sa.Column("pending_kind", sa.String(length=16), nullable=True),
        sa.Column("pending_login_key", sa.String(length=64), nullable=True),
        sa.Column("pending_account_id", sa.String(length=64), nullable=True),
        sa.Column("pending_until", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("session_hash"),
    )
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.create_index("ix_auth_session_expires", ["expires_at"], unique=False)

    op.create_table(
        "auth_code",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("nonce", sa.String(length=255), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("code_challenge_method", sa.String(length=16), nullable=True),
        sa.Column("launch_patient", sa.String(length=64), nullable=True),
        sa.Column("auth_time", sa.BigInteger(), nullable=False),
        sa.Column("amr", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    with op.batch_alter_table("auth_code", schema=None) as batch_op:
        batch_op.create_index("ix_auth_code_expires", ["expires_at"], unique=False)

    op.create_table(
        "auth_refresh_token",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("launch_patient", sa.String(length=64), nullable=True),
        sa.Column("auth_time", sa.BigInteger(), nullable=False),
        sa.Column("amr", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("rotated_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("auth_refresh_token", schema=None) as batch_op:
        batch_op.create_index("ix_auth_refresh_token_grant", ["grant_id"], unique=False)
        batch_op.create_index("ix_auth_refresh_token_expires", ["expires_at"], unique=False)

    op.create_table(
        "auth_revocation",
        sa.Column("revoked_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("revoked_id"),
    )
    with op.batch_alter_table("auth_revocation", schema=None) as batch_op:
        batch_op.create_index("ix_auth_revocation_expires", ["expires_at"], unique=False)

    op.create_table(
        "auth_assertion_jti",
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name="pk_auth_assertion_jti"),
    )
    with op.batch_alter_table("auth_assertion_jti", schema=None) as batch_op:
        batch_op.create_index("ix_auth_assertion_jti_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("auth_assertion_jti", schema=None) as batch_op:
        batch_op.drop_index("ix_auth_assertion_jti_expires")
    op.drop_table("auth_assertion_jti")
    with op.batch_alter_table("auth_revocation", schema=None) as batch_op:
        batch_op.drop_index("ix_auth_revocation_expires")
    op.drop_table("auth_revocation")
    with op.batch_alter_table("auth_refresh_token", schema=None) as batch_op:
        batch_op.drop_index("ix_auth_refresh_token_expires")
        batch_op.drop_index("ix_auth_refresh_token_grant")
    op.drop_table("auth_refresh_token")
    with op.batch_alter_table("auth_code", schema=None) as batch_op:
        batch_op.drop_index("ix_auth_code_expires")
    op.drop_table("auth_code")
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.drop_index("ix_auth_session_expires")
    op.drop_table("auth_session")
    op.drop_table("auth_login_failure")
    op.drop_table("auth_account")
    op.drop_table("auth_client")
    op.drop_table("auth_signing_key")
