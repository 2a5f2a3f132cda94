"""The provider's signing keys: generation, storage (sealed), rotation, JWKS, and the in-memory ring.

One key signs (the newest one not retired); rotating makes a new key current and retires the
others, which keep verifying the tokens they signed until `verify_until` (their tokens' lifetime
plus the leeway), then disappear from the JWKS and from verification. `remove_signing_key` drops
a key at once (a compromised key). Keys are RS256 (RSA 2048: ANSSI's RGS accepts 2048-bit moduli
until 2030; verification is ~35 µs); the kid is the RFC 7638 thumbprint.

Each process keeps a `KeyRing`: the public keys by kid and the current private key, re-read from
the table every `auth_key_cache_seconds` (so a rotation or removal done elsewhere is seen) and on an
unknown kid (at most once a second, so a flood of made-up kids cannot hammer the database).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey
from sqlalchemy import Connection, Engine, Row, delete, insert, select, update

from socle.auth import schema
from socle.auth.db import epoch_now, reading, writing
from socle.auth.settings import AuthSettings
from socle.auth.vault import Vault, VaultError

log = logging.getLogger(__name__)

SIGNING_ALG = "RS256"
RSA_KEY_BITS = 2048
KeyFactory = Callable[[], rsa.RSAPrivateKey]


def new_rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)


def verification_grace_seconds(settings: AuthSettings) -> int:
    """How long a retired key must keep verifying: the longest-lived token it may have signed."""
    longest = max(settings.auth_access_token_minutes, settings.auth_id_token_minutes) * 60
    return longest + settings.auth_leeway_seconds


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    key: RSAKey  # private


@dataclass(frozen=True, slots=True)
class _PublicKey:
    key: RSAKey
    jwk: dict[str, object]
    verify_until: int | None  # None while current


def _as_jwk_key(private_key: rsa.RSAPrivateKey) -> RSAKey:
    kid = RSAKey.import_key(private_key).thumbprint()
    return RSAKey.import_key(private_key, parameters={"kid": kid, "use": "sig", "alg": SIGNING_ALG})


def _insert_key(connection: Connection, vault: Vault, private_key: rsa.RSAPrivateKey, now: int) -> str:
    key = _as_jwk_key(private_key)
    kid = key.kid
    assert kid is not None
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    connection.execute(
        insert(schema.signing_key).values(
            kid=kid,
            alg=SIGNING_ALG,
            public_jwk=json.dumps(key.as_dict(private=False), sort_keys=True),
            private_key=vault.seal(der, owner=kid),
            created_at=now,
        )
    )
    return kid


def _retire_others(connection: Connection, keep_kid: str, now: int, grace: int) -> None:
    t = schema.signing_key
    connection.execute(
        update(t)
        .where(t.c.kid != keep_kid, t.c.retired_at.is_(None))
        .values(retired_at=now, verify_until=now + grace)
    )
    connection.execute(delete(t).where(t.c.verify_until.is_not(None), t.c.verify_until < now))


def rotate_signing_key(
    engine: Engine,
    *,
    settings: AuthSettings | None = None,
    key_factory: KeyFactory | None = None,
    now: int | None = None,
) -> str:
    """Make a fresh key current; the previous ones keep verifying their tokens until they expire.

    Returns the new kid. Other processes pick the new key up within `auth_key_cache_seconds`
    (until then they sign with the previous key, which stays valid).
    """
    settings = settings or AuthSettings()
    vault = Vault.from_settings(settings)
    now = epoch_now() if now is None else now
    private_key = (key_factory or new_rsa_private_key)()
    with writing(engine) as connection:
        kid = _insert_key(connection, vault, private_key, now)
        _retire_others(connection, kid, now, verification_grace_seconds(settings))
    log.info("Signing key rotated: %s is now current", kid)
    return kid


def remove_signing_key(engine: Engine, kid: str) -> bool:
    """Drop a key now (compromise): tokens it signed stop verifying. False if it was not there."""
    with writing(engine) as connection:
        removed = connection.execute(delete(schema.signing_key).where(schema.signing_key.c.kid == kid))
    return removed.rowcount > 0


class KeyRing:
    """The process's view of the signing keys (thread-safe; see the module docstring)."""

    MISS_RELOAD_INTERVAL = 1.0

    def __init__(
        self,
        engine: Engine,
        vault: Vault,
        settings: AuthSettings,
        *,
        key_factory: KeyFactory | None = None,
        clock: Callable[[], float] = epoch_now,
    ) -> None:
        self.engine = engine
        self.vault = vault
        self.settings = settings
        self.key_factory = key_factory or new_rsa_private_key
        self.clock = clock
        self._lock = threading.Lock()
        self._public: dict[str, _PublicKey] = {}
        self._signing: SigningKey | None = None
        self._loaded_at = float("-inf")
        self._miss_reload_at = float("-inf")

    # -- reads -----------------------------------------------------------------------------

    def signing_key(self) -> SigningKey:
        self._refresh_if_stale()
        signing = self._signing
        if signing is None:
            self.reload()
            signing = self._signing
        assert signing is not None
        return signing

    def public_key(self, kid: str) -> RSAKey | None:
        """The key that verifies tokens signed under `kid`, or None if unknown, removed or expired."""
        self._refresh_if_stale()
        entry = self._public.get(kid)
        if entry is None:
            now = self.clock()
            if now - self._miss_reload_at >= self.MISS_RELOAD_INTERVAL:
                self._miss_reload_at = now
                self.reload()
                entry = self._public.get(kid)
            if entry is None:
                return None
        if entry.verify_until is not None and self.clock() > entry.verify_until:
            return None
        return entry.key

    def jwks(self) -> dict[str, list[dict[str, object]]]:
        """The published key set: the current key and the retired ones still verifying."""
        self._refresh_if_stale()
        now = self.clock()
        return {
            "keys": [
                entry.jwk
                for entry in self._public.values()
                if entry.verify_until is None or now <= entry.verify_until
            ]
        }

    # -- changes ---------------------------------------------------------------------------

    def rotate(self) -> str:
        kid = rotate_signing_key(
            self.engine, settings=self.settings, key_factory=self.key_factory, now=int(self.clock())
        )
        self.reload()
        return kid

    def remove(self, kid: str) -> bool:
        removed = remove_signing_key(self.engine, kid)
        self.reload()
        return removed

    def reload(self) -> None:
        with self._lock:
            rows = self._read_rows()
            if not any(row.retired_at is None for row in rows):
                self._create_first_key()
                rows = self._read_rows()
            signing = self._open_current(rows)
            if signing is None:  # the current key does not open with our key-encryption key
                self._replace_unreadable_key()
                rows = self._read_rows()
                signing = self._open_current(rows)
            public = {}
            for row in rows:
                jwk = json.loads(row.public_jwk)
                public[row.kid] = _PublicKey(RSAKey.import_key(jwk), jwk, row.verify_until)
            self._public = public
            self._signing = signing
            self._loaded_at = self.clock()

    # -- internals -------------------------------------------------------------------------

    def _refresh_if_stale(self) -> None:
        if self.clock() - self._loaded_at >= self.settings.auth_key_cache_seconds:
            self.reload()

    def _read_rows(self) -> list[Row[Any]]:
        t = schema.signing_key
        with reading(self.engine) as connection:
            return list(connection.execute(select(t).order_by(t.c.created_at.desc(), t.c.kid.desc())))

    def _create_first_key(self) -> None:
        # Concurrent first starts may each create one; the newest wins and the other stays
        # published (not retired) so its tokens verify everywhere.
        with writing(self.engine) as connection:
            t = schema.signing_key
            if connection.execute(select(t.c.kid).where(t.c.retired_at.is_(None)).limit(1)).first():
                return
            kid = _insert_key(connection, self.vault, self.key_factory(), int(self.clock()))
        log.info("Signing key %s created (first start)", kid)

    def _open_current(self, rows: list[Row[Any]]) -> SigningKey | None:
        current = next(row for row in rows if row.retired_at is None)
        try:
            der = self.vault.open(current.private_key, owner=current.kid)
        except VaultError:
            if not self.settings.relaxed:
                raise
            return None
        # The GCM tag already proves these bytes are the key we sealed: the costly RSA consistency
        # check (~50 ms) would only re-prove it on every start and every `socle token`.
        private_key = serialization.load_der_private_key(
            der, password=None, unsafe_skip_rsa_key_validation=True
        )
        assert isinstance(private_key, rsa.RSAPrivateKey)
        return SigningKey(current.kid, _as_jwk_key(private_key))

    def _replace_unreadable_key(self) -> None:
        # Local/dev only: the key-encryption key file was lost (new machine, wiped home). Tokens
        # signed before stay verifiable until their expiry; new ones use a fresh key.
        log.warning("The current signing key does not open with this key-encryption key: rotating")
        now = int(self.clock())
        with writing(self.engine) as connection:
            kid = _insert_key(connection, self.vault, self.key_factory(), now)
            _retire_others(connection, kid, now, verification_grace_seconds(self.settings))
