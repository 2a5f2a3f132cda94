"""The login checks: first factor, second factor, lock-out, and never telling who exists.

- Professionals: the idNatPs alone is the first factor (stand-in for the e-CPS); whether or not an
  account has it, the TOTP page follows, and only the code decides. So the first step says nothing.
- Citizens: login + password. An unknown login costs one Argon2 verification, like a wrong
  password (against a dummy hash), and gets the same message, so neither the answer nor its timing
  tells them apart.
- Failures are counted per submitted identifier, existing or not; after `auth_lockout_threshold`
  failures within `auth_lockout_minutes` the identifier is locked for that long. While locked,
  nothing is checked (a right password gets the same lock-out message as a wrong one).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from socle.auth import schema
from socle.auth.accounts import (
    ID_NAT_PS,
    Account,
    AccountKind,
    accept_totp_step,
    account_credentials,
    account_totp_secret,
    dummy_password_hash,
    get_account,
    login_key,
    matching_totp_step,
    normalize_login,
    update_password_hash,
)
from socle.auth.db import epoch_now, reading, writing
from socle.auth.errors import LoginRefused, TooManyAttempts
from socle.auth.settings import AuthSettings
from socle.auth.vault import Vault, VaultError
from socle.errors import InvalidRequest

WRONG_PASSWORD = "Identifiant ou mot de passe incorrect."
WRONG_CODE = "Identifiant ou code de vérification incorrect."


def locked_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Compte temporairement verrouillé : réessayez dans {minutes} {unit}"


@dataclass(frozen=True, slots=True)
class FirstFactor:
    """What the second step needs: which identifier is tried and, if it exists, its account."""

    kind: AccountKind
    login_key: str
    account_id: str | None


class LoginService:
    def __init__(
        self,
        engine: Engine,
        vault: Vault,
        hasher: PasswordHasher,
        settings: AuthSettings,
        *,
        clock: Callable[[], float] = epoch_now,
    ) -> None:
        self.engine = engine
        self.vault = vault
        self.hasher = hasher
        self.threshold = settings.auth_lockout_threshold
        self.lock_seconds = settings.auth_lockout_minutes * 60
        self.clock = clock
        self._dummy_hash_value: str | None = None

    @property
    def _dummy_hash(self) -> str:
        # Made on first use, not at start-up: `socle token` never needs it (one Argon2 run saved).
        if self._dummy_hash_value is None:
            self._dummy_hash_value = dummy_password_hash(self.hasher)
        return self._dummy_hash_value

    # -- the two steps --------------------------------------------------------------------

    def professional_first_factor(self, id_nat_ps: str) -> FirstFactor:
        login = normalize_login("professional", id_nat_ps)
        if not ID_NAT_PS.match(login):
            # A format error says nothing about which identifiers exist.
            raise InvalidRequest("Identifiant national invalide : « 8 » suivi des 11 chiffres du RPPS.")
        key = login_key("professional", login)
        self._refuse_if_locked(key)
        found = account_credentials(self.engine, "professional", login)
        account_id = found[0].account_id if found and not found[0].disabled else None
        return FirstFactor("professional", key, account_id)

    def citizen_first_factor(self, login: str, password: str) -> FirstFactor:
        key = login_key("citizen", login)
        self._refuse_if_locked(key)
        found = account_credentials(self.engine, "citizen", login) if login.strip() else None
        stored_hash = found[1] if found and found[1] else self._dummy_hash
        try:
            self.hasher.verify(stored_hash, password)
            valid = found is not None and found[1] is not None and not found[0].disabled
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            valid = False
        if not valid or found is None:
            self._fail(key)
            raise LoginRefused(WRONG_PASSWORD)
        account = found[0]
        if self.hasher.check_needs_rehash(stored_hash):  # costs raised since the hash was made
            update_password_hash(self.engine, account.account_id, self.hasher.hash(password))
        return FirstFactor("citizen", key, account.account_id)

    def second_factor(self, first: FirstFactor, code: str) -> Account:
        self._refuse_if_locked(first.login_key)
        code = code.strip().replace(" ", "")
        account = get_account(self.engine, first.account_id) if first.account_id else None
        secret = None
        if account is not None and not account.disabled:
            try:
                secret = account_totp_secret(self.engine, self.vault, account.account_id)
            except VaultError:
                secret = None
        # Without an account, check against a throwaway secret: same work, same answer.
        step = matching_totp_step(secret or "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", code, self.clock())
        if (
            account is None
            or secret is None
            or step is None
            or not accept_totp_step(self.engine, account.account_id, step)
        ):
            self._fail(first.login_key)
            raise LoginRefused(WRONG_CODE)
        self._clear(first.login_key)
        return account

    # -- lock-out -------------------------------------------------------------------------

    def locked_for(self, key: str) -> int:
        """Seconds left on the identifier's lock (0 if not locked)."""
        t = schema.login_failure
        with reading(self.engine) as connection:
            locked_until = connection.execute(select(t.c.locked_until).where(t.c.login_key == key)).scalar()
        return max(0, int(locked_until or 0) - int(self.clock()))

    def _refuse_if_locked(self, key: str) -> None:
        remaining = self.locked_for(key)
        if remaining > 0:
            raise TooManyAttempts(locked_message(remaining), retry_after=remaining)

    def _fail(self, key: str) -> None:
        now = int(self.clock())
        t = schema.login_failure
        with writing(self.engine) as connection:
            values = {"login_key": key, "failures": 0, "last_failure_at": now}
            if connection.dialect.name == "postgresql":
                connection.execute(postgresql.insert(t).values(**values).on_conflict_do_nothing())
            else:
                connection.execute(sqlite.insert(t).values(**values).on_conflict_do_nothing())
            row = connection.execute(select(t).where(t.c.login_key == key).with_for_update()).one()
            # Failures older than the lock-out window are forgotten.
            failures = (row.failures if row.last_failure_at > now - self.lock_seconds else 0) + 1
            locked_until = now + self.lock_seconds if failures >= self.threshold else None
            connection.execute(
                update(t)
                .where(t.c.login_key == key)
                .values(
                    failures=0 if locked_until else failures,
                    last_failure_at=now,
                    locked_until=locked_until,
                )
            )
        if locked_until:
            raise TooManyAttempts(
                locked_message(self.lock_seconds), retry_after=self.lock_seconds, locks_now=True
            )

    def _clear(self, key: str) -> None:
        with writing(self.engine) as connection:
            connection.execute(
                update(schema.login_failure)
                .where(schema.login_failure.c.login_key == key)
                .values(failures=0, locked_until=None)
            )
