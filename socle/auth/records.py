"""OAuth state in the database: authorization codes, refresh tokens, revocations, assertion ids.

Each change is one atomic statement, so concurrent requests cannot both win:

- a code is consumed by `UPDATE ... WHERE used_at IS NULL`; presenting a consumed code again
  revokes the whole grant (RFC 6749 §4.1.2: the code was stolen, and so may be its tokens);
- a refresh token is rotated the same way; presenting a rotated one again revokes the grant
  (refresh-token reuse detection, RFC 9700 §4.14.2);
- revoking a grant marks its refresh tokens revoked and records the grant id, which every access
  token of the grant carries as `sid`, so they all stop verifying at once;
- every revocation is also announced to this process's token verifiers
  (`socle.auth.revocations`): effective here at once, in other processes within their bound.

Codes, refresh tokens and sessions are stored as SHA-256 digests of the values handed out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from socle.auth import schema
from socle.auth.db import digest, reading, writing
from socle.auth.revocations import announce_revocation


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """A consumed authorization code, in the shape Authlib's grants and OIDC extension read."""

    client_id: str
    account_id: str
    grant_id: str
    redirect_uri: str | None
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    launch_patient: str | None
    auth_time: int
    amr: tuple[str, ...]

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str]:
        return list(self.amr)


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    token_hash: str
    grant_id: str
    client_id: str
    account_id: str
    scope: str
    launch_patient: str | None
    auth_time: int
    amr: tuple[str, ...]
    created_at: int
    expires_at: int
    rotated_at: int | None
    revoked_at: int | None

    # Authlib's TokenMixin (what its refresh, introspection and revocation code calls)
    def check_client(self, client: Any) -> bool:
        return bool(client.client_id == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_at - self.created_at

    def is_revoked(self) -> bool:
        return self.revoked_at is not None or self.rotated_at is not None

    def is_expired_at(self, now: int) -> bool:
        return now >= self.expires_at


def _amr(value: str | None) -> tuple[str, ...]:
    return tuple(json.loads(value)) if value else ()


# -- authorization codes ------------------------------------------------------------------------


def save_code(
    engine: Engine,
    code: str,
    *,
    client_id: str,
    account_id: str,
    grant_id: str,
    redirect_uri: str | None,
    scope: str,
    nonce: str | None,
    code_challenge: str | None,
    code_challenge_method: str | None,
    launch_patient: str | None,
    auth_time: int,
    amr: tuple[str, ...],
    now: int,
    lifetime: int,
) -> None:
    with writing(engine) as connection:
        connection.execute(
            insert(schema.authorization_code).values(
                code_hash=digest(code),
                client_id=client_id,
                account_id=account_id,
                grant_id=grant_id,
                redirect_uri=redirect_uri,
                scope=scope,
                nonce=nonce,
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
                launch_patient=launch_patient,
                auth_time=auth_time,
                amr=json.dumps(list(amr)),
                created_at=now,
                expires_at=now + lifetime,
            )
        )


def consume_code(engine: Engine, code: str, client_id: str, now: int) -> CodeRecord | None:
    """The code's record if it is fresh, unused and the client's; None otherwise.

    A code presented a second time revokes every token its first use produced.
    """
    t = schema.authorization_code
    code_hash = digest(code)
    with writing(engine) as connection:
        claimed = connection.execute(
            update(t)
            .where(t.c.code_hash == code_hash, t.c.used_at.is_(None), t.c.expires_at > now)
            .values(used_at=now)
        )
        row = connection.execute(select(t).where(t.c.code_hash == code_hash)).first()
        if row is None:
            return None
        if claimed.rowcount != 1:
            if row.used_at is not None:
                _revoke_grant(connection, row.grant_id, now)
            return None
    if row.client_id != client_id:
        # Issued to another client: refuse (and the code is spent, which is what we want).
        return None
    return CodeRecord(
        client_id=row.client_id,
        account_id=row.account_id,
        grant_id=row.grant_id,
        redirect_uri=row.redirect_uri,
        scope=row.scope,
        nonce=row.nonce,
        code_challenge=row.code_challenge,
        code_challenge_method=row.code_challenge_method,
        launch_patient=row.launch_patient,
        auth_time=row.auth_time,
        amr=_amr(row.amr),
    )


def nonce_seen(engine: Engine, client_id: str, nonce: str) -> bool:
    t = schema.authorization_code
    with reading(engine) as connection:
        found = connection.execute(
            select(t.c.code_hash).where(t.c.client_id == client_id, t.c.nonce == nonce).limit(1)
        ).first()
    return found is not None


# -- refresh tokens ----------------------------------------------------------------------------------


def save_refresh_token(
    engine: Engine,
    token: str,
    *,
    grant_id: str,
    client_id: str,
    account_id: str,
    scope: str,
    launch_patient: str | None,
    auth_time: int,
    amr: tuple[str, ...],
    now: int,
    lifetime: int,
) -> None:
    with writing(engine) as connection:
        connection.execute(
            insert(schema.refresh_token).values(
                token_hash=digest(token),
                grant_id=grant_id,
                client_id=client_id,
                account_id=account_id,
                scope=scope,
                launch_patient=launch_patient,
                auth_time=auth_time,
                amr=json.dumps(list(amr)),
                created_at=now,
                expires_at=now + lifetime,
            )
        )


def _refresh(row: Row[Any]) -> RefreshRecord:
    return RefreshRecord(
        token_hash=row.token_hash,
        grant_id=row.grant_id,
        client_id=row.client_id,
        account_id=row.account_id,
        scope=row.scope,
        launch_patient=row.launch_patient,
        auth_time=row.auth_time,
        amr=_amr(row.amr),
        created_at=row.created_at,
        expires_at=row.expires_at,
        rotated_at=row.rotated_at,
        revoked_at=row.revoked_at,
    )


def find_refresh_token(engine: Engine, token: str) -> RefreshRecord | None:
    t = schema.refresh_token
    with reading(engine) as connection:
        row = connection.execute(select(t).where(t.c.token_hash == digest(token))).first()
    return _refresh(row) if row else None


def rotate_refresh_token(engine: Engine, record: RefreshRecord, now: int) -> bool:
    """Mark the refresh token used; False if it already was (then the whole grant is revoked)."""
    t = schema.refresh_token
    with writing(engine) as connection:
        claimed = connection.execute(
            update(t)
            .where(
                t.c.token_hash == record.token_hash,
                t.c.rotated_at.is_(None),
                t.c.revoked_at.is_(None),
                t.c.expires_at > now,
            )
            .values(rotated_at=now)
        )
        if claimed.rowcount == 1 and not grant_revoked(connection, record.grant_id):
            return True
        _revoke_grant(connection, record.grant_id, now)
        return False


# -- revocation ----------------------------------------------------------------------------------


def _insert_ignoring_duplicates(connection: Connection, values: dict[str, Any]) -> None:
    t = schema.revocation
    if connection.dialect.name == "postgresql":
        connection.execute(postgresql.insert(t).values(**values).on_conflict_do_nothing())
    else:
        connection.execute(sqlite.insert(t).values(**values).on_conflict_do_nothing())


# A revoked grant is remembered as long as any of its tokens could live: a refresh token saved by
# a request racing the revocation must still find its grant revoked (the settings cap refresh
# tokens at 90 days). Grant revocations are rare; the table stays small.
GRANT_MEMORY_SECONDS = 90 * 24 * 3600 + 3600


def _revoke_grant(connection: Connection, grant_id: str, now: int) -> None:
    t = schema.refresh_token
    connection.execute(
        update(t).where(t.c.grant_id == grant_id, t.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    _insert_ignoring_duplicates(
        connection,
        {
            "revoked_id": grant_id,
            "kind": "grant",
            "revoked_at": now,
            "expires_at": now + GRANT_MEMORY_SECONDS,
        },
    )
    # Announced before the commit: if the transaction fails, a token is refused that could have
    # passed (fail closed); announced after, a request could pass in between.
    announce_revocation(connection.engine, grant_id, until=now + GRANT_MEMORY_SECONDS, now=now)


def grant_revoked(connection: Connection, grant_id: str) -> bool:
    t = schema.revocation
    return connection.execute(select(t.c.revoked_id).where(t.c.revoked_id == grant_id)).first() is not None


def revoke_grant(engine: Engine, grant_id: str, now: int) -> None:
    with writing(engine) as connection:
        _revoke_grant(connection, grant_id, now)


def revoke_access_token(engine: Engine, jti: str, expires_at: int, now: int) -> None:
    with writing(engine) as connection:
        _insert_ignoring_duplicates(
            connection, {"revoked_id": jti, "kind": "jti", "revoked_at": now, "expires_at": expires_at + 60}
        )
        announce_revocation(engine, jti, until=expires_at + 60, now=now)


# -- client assertions ---------------------------------------------------------------------------


def remember_assertion(engine: Engine, client_id: str, jti: str, expires_at: int) -> bool:
    """Record a client assertion's jti; False if it was seen before (a replay)."""
    try:
        with writing(engine) as connection:
            connection.execute(
                insert(schema.assertion_jti).values(client_id=client_id, jti=jti, expires_at=expires_at)
            )
    except IntegrityError:
        return False
    return True


# -- housekeeping -------------------------------------------------------------------------------------


def purge_expired(engine: Engine, now: int, *, keep_used_codes: int = 3600) -> None:
    """Drop rows nobody can use any more (run at start-up and from time to time)."""
    with writing(engine) as connection:
        connection.execute(delete(schema.session).where(schema.session.c.expires_at < now))
        connection.execute(
            delete(schema.authorization_code).where(
                schema.authorization_code.c.expires_at < now - keep_used_codes
            )
        )
        connection.execute(delete(schema.refresh_token).where(schema.refresh_token.c.expires_at < now))
        connection.execute(delete(schema.revocation).where(schema.revocation.c.expires_at < now))
        connection.execute(delete(schema.assertion_jti).where(schema.assertion_jti.c.expires_at < now))
