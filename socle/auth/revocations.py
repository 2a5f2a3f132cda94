"""Is an access token revoked? The answer every authenticated request needs, at almost no cost.

Revocations live in `auth_revocation` (written by `socle.auth.records`: a revoked access token's
`jti`, a revoked grant's id, which its access tokens carry as `sid`). Probing that table on every
FHIR request cost a pooled connection and a round trip each (p50 3.4 ms under load on PostgreSQL).
`RevocationLookup` keeps the rule and drops the per-request probe:

- a revocation made **in this process** (the revocation endpoint, a replayed code or refresh token,
  `records.revoke_*`) is effective at once: `records` announces it here (`announce_revocation`)
  before the revoking request answers;
- a revocation made **by another process** on the same database (another worker, the CLI) is
  effective within `fresh_for` seconds (`SOCLE_AUTH_REVOCATION_CHECK_SECONDS`, default 2; 0 probes
  the table on every request): a token found not revoked is trusted that long, then probed again;
- a token found revoked stays refused (a revocation is never undone).

The re-probe is staggered: once half of `fresh_for` has passed, the first request to see it probes
for everyone (the others keep trusting meanwhile, still within the bound). Without it, the 16-40
concurrent requests of one client all found the trust expired at the same instant and all probed,
each taking a pooled connection.

The probe itself is one primary-key lookup for the jti and the grant. Through SQLAlchemy's
Connection it cost a pool checkout with pre-ping, BEGIN and ROLLBACK (~450 µs on PostgreSQL,
~230 µs on SQLite); here it is a raw DBAPI cursor on a companion autocommit pool without pre-ping on
PostgreSQL (~70 µs, retried once on a dropped connection), and on SQLite the store's own
connections, which run outside transactions at the driver level (a bare SELECT sees the last commit).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Engine, create_engine

# Memory bounds: entries are small, and both maps are pruned of what can no longer matter.
MAX_TRUSTED = 50_000
MAX_ANNOUNCED = 100_000


class _Announced:
    """Ids revoked by this process on one database, with when they stop mattering (epoch s)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.until: dict[str, float] = {}

    def add(self, revoked_id: str, until: float, now: float) -> None:
        with self.lock:
            if len(self.until) >= MAX_ANNOUNCED:
                # The table still holds them: dropping one only makes the next check probe it.
                self.until = {k: v for k, v in self.until.items() if v >= now}
                if len(self.until) >= MAX_ANNOUNCED:
                    self.until.clear()
            self.until[revoked_id] = until


_announced: weakref.WeakKeyDictionary[Engine, _Announced] = weakref.WeakKeyDictionary()
_announced_lock = threading.Lock()


def _announced_for(engine: Engine) -> _Announced:
    with _announced_lock:
        found = _announced.get(engine)
        if found is None:
            found = _announced[engine] = _Announced()
        return found


def announce_revocation(engine: Engine, revoked_id: str, *, until: float, now: float) -> None:
    """Tell this process's lookups on `engine` that `revoked_id` (a jti or a grant) is revoked."""
    _announced_for(engine).add(revoked_id, until, now)


class RevocationLookup:
    """`any_revoked(jti, grant)` for one database; thread-safe, one per token verifier."""

    SQL = "SELECT 1 FROM auth_revocation WHERE revoked_id IN ({0}, {0}) LIMIT 1"

    def __init__(self, engine: Engine, *, fresh_for: float, clock: Callable[[], float]) -> None:
        self.fresh_for = fresh_for
        self.clock = clock
        self._announced = _announced_for(engine)
        # (jti, grant) -> when the table last said "not revoked"
        self._trusted: dict[tuple[str, str], float] = {}
        self._prune_lock = threading.Lock()
        self._refreshing: set[tuple[str, str]] = set()  # keys one request is re-probing early
        if engine.dialect.name == "postgresql":
            self.engine = _autocommit_companion(engine)
            self.sql = self.SQL.format("%s")
        else:
            self.engine = engine
            self.sql = self.SQL.format("?")

    def any_revoked(self, first: str, second: str) -> bool:
        announced = self._announced.until
        if first in announced or second in announced:
            return True
        key = (first, second)
        now = self.clock()
        trusted_at = self._trusted.get(key)
        if trusted_at is not None and 0 <= now - trusted_at < self.fresh_for:
            if now - trusted_at < self.fresh_for / 2 or not self._claim_refresh(key):
                return False
            try:  # this request refreshes the trust early, for every request of this token
                return self._probed(key, first, second, now)
            finally:
                with self._prune_lock:
                    self._refreshing.discard(key)
        return self._probed(key, first, second, now)

    def _claim_refresh(self, key: tuple[str, str]) -> bool:
        with self._prune_lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
            return True

    def _probed(self, key: tuple[str, str], first: str, second: str, now: float) -> bool:
        if self.probe(first, second):
            self._trusted.pop(key, None)
            return True
        if self.fresh_for > 0:
            if len(self._trusted) >= MAX_TRUSTED:
                self._prune(now)
            self._trusted[key] = now
        return False

    def _prune(self, now: float) -> None:
        with self._prune_lock:
            fresh = {k: at for k, at in self._trusted.items() if 0 <= now - at < self.fresh_for}
            self._trusted = fresh if len(fresh) < MAX_TRUSTED else {}

    def probe(self, first: str, second: str) -> bool:
        """The table's answer, now (one primary-key lookup)."""
        for attempt in (1, 2):
            raw = self.engine.raw_connection()
            try:
                cursor = raw.cursor()
                try:
                    cursor.execute(self.sql, (first, second))
                    return cursor.fetchone() is not None
                finally:
                    cursor.close()
            except Exception as error:
                if attempt == 2 or not _is_disconnect(self.engine, error):
                    raise
                raw.invalidate()
            finally:
                raw.close()
        raise AssertionError("unreachable")


_companions: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_companions_lock = threading.Lock()


def _autocommit_companion(engine: Engine) -> Engine:
    """One small autocommit pool per store engine, shared by every verifier on it."""
    with _companions_lock:
        companion = _companions.get(engine)
        if companion is None:
            companion = create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_size=4, max_overflow=16)
            _companions[engine] = companion
        return companion


def _is_disconnect(engine: Engine, error: Exception) -> bool:
    return bool(engine.dialect.is_disconnect(cast(Any, error), None, None))
