"""Login accounts: professionals (Pro Santé Connect-like) and citizens, with their second factor.

- A professional is identified by the national id idNatPs ("8" + RPPS). The first factor is
  password-less (a stand-in for the e-CPS card or app); the TOTP second factor, standing in for the
  e-CPS app, is mandatory. The account points at its Practitioner in the FHIR store and carries
  the profession (TRE_G15), specialty (TRE_R38) and structure (idNatSt, TRE_R02 sector) it acts with.
- A citizen logs in with an e-mail or user name, a password (Argon2id) and a TOTP code. The account
  points at the citizen's Patient (INS identity) and lists the Patient ids of the minors the
  citizen may act for (`represented_patients`).

FHIR data stays in the FHIR store: these rows are credentials plus the few attributes that go into
tokens. TOTP secrets are sealed by the vault; a TOTP step is accepted once (no replay).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import pyotp
from argon2 import PasswordHasher, Type
from sqlalchemy import Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from socle.auth import schema
from socle.auth.db import epoch_now, reading, writing
from socle.auth.settings import AuthSettings
from socle.auth.vault import Vault
from socle.errors import Conflict, InvalidRequest

AccountKind = Literal["professional", "citizen"]
ID_NAT_PS = re.compile(r"^8\d{11}$")  # "8" + RPPS (11 digits)
MIN_PASSWORD_LENGTH = 12
TOTP_DIGITS = 6
TOTP_PERIOD = 30
TOTP_ISSUER = "Socle"


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    kind: AccountKind
    login: str
    fhir_type: str  # Practitioner | Patient
    fhir_id: str
    given_name: str
    family_name: str
    national_id: str | None = None
    profession: str | None = None
    specialty: str | None = None
    structure_id: str | None = None
    structure_name: str | None = None
    structure_sector: str | None = None
    represented_patients: tuple[str, ...] = ()
    disabled: bool = False

    @property
    def actor_type(self) -> Literal["practitioner", "patient"]:
        return "practitioner" if self.kind == "professional" else "patient"

    @property
    def fhir_reference(self) -> str:
        return f"{self.fhir_type}/{self.fhir_id}"

    @property
    def display(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass(frozen=True, slots=True)
class EnrolledAccount:
    """A new account and its TOTP secret, to hand to the person once (QR code / otpauth URI)."""

    account: Account
    totp_secret: str

    @property
    def otpauth_uri(self) -> str:
        return totp_uri(self.totp_secret, self.account.login)


def _account(row: Row[Any]) -> Account:
    return Account(
        account_id=row.account_id,
        kind=row.kind,
        login=row.login,
        fhir_type=row.fhir_type,
        fhir_id=row.fhir_id,
        given_name=row.given_name,
        family_name=row.family_name,
        national_id=row.national_id,
        profession=row.profession,
        specialty=row.specialty,
        structure_id=row.structure_id,
        structure_name=row.structure_name,
        structure_sector=row.structure_sector,
        represented_patients=tuple(json.loads(row.represented_patients)),
        disabled=bool(row.disabled),
    )


# -- identifiers and passwords -------------------------------------------------------------------


def normalize_login(kind: AccountKind, login: str) -> str:
    cleaned = login.strip()
    if kind == "professional":
        return cleaned.replace(" ", "")
    return cleaned.casefold()


def login_key(kind: AccountKind, login: str) -> str:
    """The key failures are counted under: a digest, so mistyped secrets are never stored in clear."""
    return hashlib.sha256(f"{kind}:{normalize_login(kind, login)}".encode()).hexdigest()


def password_hasher(settings: AuthSettings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.auth_argon2_time_cost,
        memory_cost=settings.auth_argon2_memory_cost,
        parallelism=settings.auth_argon2_parallelism,
        type=Type.ID,
    )


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"Le mot de passe doit compter au moins {MIN_PASSWORD_LENGTH} caractères")


# -- TOTP -------------------------------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()  # 160 bits, the RFC 4226 recommendation


def totp_uri(secret: str, login: str) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).provisioning_uri(
        name=login, issuer_name=TOTP_ISSUER
    )


def totp_now(secret: str, now: float | None = None) -> str:
    """The current code (for the demo helper and tests; a real user reads it from their app)."""
    moment = epoch_now() if now is None else now
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).at(int(moment))


def matching_totp_step(secret: str, code: str, now: float) -> int | None:
    """The time step (previous, current or next: clock drift) whose code is `code`, or None.

    Every candidate is compared in constant time, and all three are always computed.
    """
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD)
    current = int(now) // TOTP_PERIOD
    found = None
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


# -- creation ---------------------------------------------------------------------------------------


def create_professional_account(
    engine: Engine,
    vault: Vault,
    *,
    id_nat_ps: str,
    practitioner_id: str,
    given_name: str,
    family_name: str,
    profession: str,
    specialty: str | None = None,
    structure_id: str | None = None,
    structure_name: str | None = None,
    structure_sector: str | None = None,
    totp_secret: str | None = None,
) -> EnrolledAccount:
    """A professional's account, linked to Practitioner/`practitioner_id`; returns its TOTP secret."""
    login = normalize_login("professional", id_nat_ps)
    if not ID_NAT_PS.match(login):
        raise InvalidRequest("idNatPs invalide : « 8 » suivi des 11 chiffres du RPPS attendu")
    secret = totp_secret or new_totp_secret()
    account = Account(
        account_id=str(uuid.uuid4()),
        kind="professional",
        login=login,
        fhir_type="Practitioner",
        fhir_id=practitioner_id,
        given_name=given_name,
        family_name=family_name,
        national_id=login,
        profession=profession,
        specialty=specialty,
        structure_id=structure_id,
        structure_name=structure_name,
        structure_sector=structure_sector,
    )
    _insert(engine, vault, account, password_hash=None, totp_secret=secret)
    return EnrolledAccount(account, secret)


def create_citizen_account(
    engine: Engine,
    vault: Vault,
    hasher: PasswordHasher,
    *,
    login: str,
    password: str,
    patient_id: str,
    given_name: str,
    family_name: str,
    ins: str | None = None,
    represented_patients: tuple[str, ...] = (),
    totp_secret: str | None = None,
) -> EnrolledAccount:
    """A citizen's account, linked to Patient/`patient_id` and to the minors they represent."""
    normalized = normalize_login("citizen", login)
    if not normalized or len(normalized) > 255:
        raise InvalidRequest("Identifiant invalide")
    check_password_strength(password)
    secret = totp_secret or new_totp_secret()
    account = Account(
        account_id=str(uuid.uuid4()),
        kind="citizen",
        login=normalized,
        fhir_type="Patient",
        fhir_id=patient_id,
        given_name=given_name,
        family_name=family_name,
        national_id=ins,
        represented_patients=tuple(represented_patients),
    )
    _insert(engine, vault, account, password_hash=hasher.hash(password), totp_secret=secret)
    return EnrolledAccount(account, secret)


def _insert(
    engine: Engine, vault: Vault, account: Account, *, password_hash: str | None, totp_secret: str
) -> None:
    try:
        with writing(engine) as connection:
            connection.execute(
                insert(schema.account).values(
                    account_id=account.account_id,
                    kind=account.kind,
                    login=account.login,
                    password_hash=password_hash,
                    totp_secret=vault.seal(totp_secret.encode(), owner=account.account_id),
                    totp_last_step=0,
                    fhir_type=account.fhir_type,
                    fhir_id=account.fhir_id,
                    given_name=account.given_name,
                    family_name=account.family_name,
                    national_id=account.national_id,
                    profession=account.profession,
                    specialty=account.specialty,
                    structure_id=account.structure_id,
                    structure_name=account.structure_name,
                    structure_sector=account.structure_sector,
                    represented_patients=json.dumps(list(account.represented_patients)),
                    created_at=epoch_now(),
                    disabled=False,
                )
            )
    except IntegrityError:
        raise Conflict(f"Un compte existe déjà pour l'identifiant {account.login}") from None


# -- reads and updates ------------------------------------------------------------------------------


def get_account(engine: Engine, account_id: str) -> Account | None:
    with reading(engine) as connection:
        row = connection.execute(
            select(schema.account).where(schema.account.c.account_id == account_id)
        ).first()
    return _account(row) if row else None


def find_account(engine: Engine, kind: AccountKind, login: str) -> Account | None:
    with reading(engine) as connection:
        row = connection.execute(
            select(schema.account).where(
                schema.account.c.kind == kind, schema.account.c.login == normalize_login(kind, login)
            )
        ).first()
    return _account(row) if row else None


def account_credentials(engine: Engine, kind: AccountKind, login: str) -> tuple[Account, str | None] | None:
    """The account and its password hash, for the login check (None if no such login)."""
    with reading(engine) as connection:
        row = connection.execute(
            select(schema.account).where(
                schema.account.c.kind == kind, schema.account.c.login == normalize_login(kind, login)
            )
        ).first()
    return (_account(row), row.password_hash) if row else None


def account_totp_secret(engine: Engine, vault: Vault, account_id: str) -> str | None:
    with reading(engine) as connection:
        sealed = connection.execute(
            select(schema.account.c.totp_secret).where(schema.account.c.account_id == account_id)
        ).scalar()
    return vault.open(sealed, owner=account_id).decode() if sealed is not None else None


def accept_totp_step(engine: Engine, account_id: str, step: int) -> bool:
    """Record `step` as used; False if it (or a later one) was already used: a replayed code."""
    t = schema.account
    with writing(engine) as connection:
        result = connection.execute(
            update(t)
            .where(t.c.account_id == account_id, t.c.totp_last_step < step)
            .values(totp_last_step=step)
        )
    return result.rowcount == 1


def update_password_hash(engine: Engine, account_id: str, password_hash: str) -> None:
    with writing(engine) as connection:
        connection.execute(
            update(schema.account)
            .where(schema.account.c.account_id == account_id)
            .values(password_hash=password_hash)
        )


def set_represented_patients(engine: Engine, account_id: str, patient_ids: tuple[str, ...]) -> None:
    with writing(engine) as connection:
        connection.execute(
            update(schema.account)
            .where(schema.account.c.account_id == account_id)
            .values(represented_patients=json.dumps(list(patient_ids)))
        )


def set_account_disabled(engine: Engine, account_id: str, disabled: bool = True) -> None:
    with writing(engine) as connection:
        connection.execute(
            update(schema.account).where(schema.account.c.account_id == account_id).values(disabled=disabled)
        )


def dummy_password_hash(hasher: PasswordHasher) -> str:
    """A hash to verify against when the login is unknown, so both cases cost one Argon2 run."""
    return hasher.hash(secrets.token_urlsafe(16))
