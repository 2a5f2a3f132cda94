"""Browser sessions of the login pages: the cookie, its CSRF token, and the step reached.

The cookie holds a random session id; the table holds its digest, the session's CSRF token, the
login under way between the two factors, then the authenticated account. The id changes when the
second factor succeeds (no session fixation). Every form carries the CSRF token, compared in
constant time with the session's; SameSite=Lax on the cookie is a second line, not the only one.

`AttemptLimiter` caps login attempts per client address inside one process (the per-account
lock-out, in the database, is what holds across processes).
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row, delete, insert, select, update

from socle.auth import schema
from socle.auth.db import digest, epoch_now, reading, writing

ANONYMOUS_SESSION_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class BrowserSession:
    session_id: str  # the cookie value (only ever in memory and in the cookie)
    csrf_token: str
    account_id: str | None = None
    auth_time: int | None = None
    amr: tuple[str, ...] = ()
    pending_kind: str | None = None
    pending_login_key: str | None = None
    pending_account_id: str | None = None
    pending_until: int | None = None

    def csrf_matches(self, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(self.csrf_token.encode(), (submitted or "").encode())


def _session(session_id: str, row: Row[Any]) -> BrowserSession:
    return BrowserSession(
        session_id=session_id,
        csrf_token=row.csrf_token,
        account_id=row.account_id,
        auth_time=row.auth_time,
        amr=tuple(json.loads(row.amr)) if row.amr else (),
        pending_kind=row.pending_kind,
        pending_login_key=row.pending_login_key,
        pending_account_id=row.pending_account_id,
        pending_until=row.pending_until,
    )


class SessionStore:
    def __init__(
        self, engine: Engine, *, lifetime: int, step_lifetime: int, clock: Callable[[], float] = epoch_now
    ) -> None:
        self.engine = engine
        self.lifetime = lifetime
        self.step_lifetime = step_lifetime
        self.clock = clock

    def load(self, session_id: str | None) -> BrowserSession | None:
        if not session_id or len(session_id) > 128:
            return None
        t = schema.session
        with reading(self.engine) as connection:
            row = connection.execute(
                select(t).where(t.c.session_hash == digest(session_id), t.c.expires_at > int(self.clock()))
            ).first()
        return _session(session_id, row) if row else None

    def create(self) -> BrowserSession:
        session = BrowserSession(session_id=secrets.token_urlsafe(32), csrf_token=secrets.token_urlsafe(32))
        now = int(self.clock())
        with writing(self.engine) as connection:
            connection.execute(
                insert(schema.session).values(
                    session_hash=digest(session.session_id),
                    csrf_token=session.csrf_token,
                    created_at=now,
                    expires_at=now + ANONYMOUS_SESSION_SECONDS,
                )
            )
        return session

    def begin_second_factor(
        self, session: BrowserSession, *, kind: str, login_key: str, account_id: str | None
    ) -> None:
        t = schema.session
        with writing(self.engine) as connection:
            connection.execute(
                update(t)
                .where(t.c.session_hash == digest(session.session_id))
                .values(
                    pending_kind=kind,
                    pending_login_key=login_key,
                    pending_account_id=account_id,
                    pending_until=int(self.clock()) + self.step_lifetime,
                )
            )

    def pending_step_valid(self, session: BrowserSession) -> bool:
        return session.pending_login_key is not None and (session.pending_until or 0) >= int(self.clock())

    def authenticate(
        self, session: BrowserSession, *, account_id: str, amr: tuple[str, ...]
    ) -> BrowserSession:
        """Both factors passed: the session gets a new id (and CSRF token) and names the account."""
        fresh = BrowserSession(
            session_id=secrets.token_urlsafe(32),
            csrf_token=secrets.token_urlsafe(32),
            account_id=account_id,
            auth_time=int(self.clock()),
            amr=amr,
        )
        now = int(self.clock())
        with writing(self.engine) as connection:
            connection.execute(
                delete(schema.session).where(schema.session.c.session_hash == digest(session.session_id))
            )
            connection.execute(
                insert(schema.session).values(
                    session_hash=digest(fresh.session_id),
                    csrf_token=fresh.csrf_token,
                    account_id=account_id,
                    auth_time=fresh.auth_time,
                    amr=json.dumps(list(amr)),
                    created_at=now,
                    expires_at=now + self.lifetime,
                )
            )
        return fresh

    def end(self, session: BrowserSession) -> None:
        with writing(self.engine) as connection:
            connection.execute(
                delete(schema.session).where(schema.session.c.session_hash == digest(session.session_id))
            )


class AttemptLimiter:
    """At most `limit` attempts per key in any `window` seconds (sliding window, thread-safe)."""

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = epoch_now) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._attempts: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            attempts = self._attempts.setdefault(key, deque())
            while attempts and attempts[0] <= now - self.window:
                attempts.popleft()
            if len(attempts) >= self.limit:
                return False
            attempts.append(now)
            if len(self._attempts) > 100_000:  # bound memory under a distributed flood
                self._attempts = {k: v for k, v in self._attempts.items() if v and v[-1] > now - self.window}
            return True
