"""Sealing secrets at rest: private signing keys and TOTP secrets, under the key-encryption key.

AES-256-GCM (from `cryptography`) with a key derived by HKDF-SHA256 from the configured secret, a
random 96-bit nonce per value, and the owner of the value (a kid, an account id) as associated
data, so a sealed value copied onto another row does not open. The key-encryption key comes from
`SOCLE_AUTH_KEY_ENCRYPTION_KEY`; in local/dev/test without one, a random key is created once in
`auth_key_file` (mode 0600, outside the repository).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from socle.auth.settings import AuthSettings

SEAL_VERSION = b"\x01"
NONCE_BYTES = 12


class VaultError(Exception):
    """A sealed value does not open: wrong key-encryption key, or tampered data."""


class Vault:
    def __init__(self, secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"socle-auth-vault-v1").derive(
            secret.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, *, owner: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return SEAL_VERSION + nonce + self._aead.encrypt(nonce, plaintext, owner.encode())

    def open(self, sealed: bytes, *, owner: str) -> bytes:
        if sealed[:1] != SEAL_VERSION or len(sealed) < 1 + NONCE_BYTES + 16:
            raise VaultError("unknown seal format")
        nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, ciphertext, owner.encode())
        except InvalidTag as error:
            raise VaultError("the sealed value does not open with this key-encryption key") from error

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Vault:
        if settings.auth_key_encryption_key is not None:
            return cls(settings.auth_key_encryption_key.get_secret_value())
        if not settings.relaxed:  # AuthSettings already refuses this; keep the guard next to the use
            raise VaultError("SOCLE_AUTH_KEY_ENCRYPTION_KEY is required outside local/dev")
        return cls(_local_key(settings.auth_key_file))


def _local_key(path: Path) -> str:
    """The local/dev key-encryption key, created on first use with owner-only permissions."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it meanwhile: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
