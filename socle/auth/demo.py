"""Ready-made demo logins: a citizen with a minor child, a GP, a pharmacist, a nurse, a hospital system.

`seed_demo_accounts` creates (or finds again: it is idempotent) the FHIR resources the accounts
point at (Patient, Practitioner, Organization, with fixed ids and synthetic identifiers), the
accounts themselves, a demo SMART app (public client) and the hospital software's system client,
whose private key is written outside the repository (`SOCLE_AUTH_DEMO_DIR`, mode 0600). The TOTP
secrets are printed with an otpauth URI (scan it) and the current code. Refused outside
local/dev/test: demo passwords are public.

Identifiers are synthetic but well-formed (RPPS and FINESS Luhn keys, NIR key).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey
from sqlalchemy import Engine

from socle.auth.accounts import (
    EnrolledAccount,
    account_totp_secret,
    create_citizen_account,
    create_professional_account,
    find_account,
    password_hasher,
    set_represented_patients,
    totp_now,
    totp_uri,
)
from socle.auth.clients import get_client, register_client
from socle.auth.settings import AuthSettings
from socle.auth.vault import Vault
from socle.errors import Forbidden
from socle.store.repository import FhirStore

DEMO_CITIZEN_PASSWORD = "demo-socle-citoyenne"  # public on purpose: demo data, refused in production
DEMO_APP_CLIENT_ID = "demo-app"
DEMO_HOSPITAL_CLIENT_ID = "demo-hopital"

INS_NIR_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
ID_NAT_PS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
ID_NAT_ST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
TRE_G15_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
TRE_R38_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"


@dataclass(frozen=True, slots=True)
class DemoAccount:
    role: str
    display: str
    login: str
    fhir_user: str | None = None
    password: str | None = None
    totp_secret: str | None = None
    represented_patients: tuple[str, ...] = ()
    private_key_path: Path | None = None
    scopes: tuple[str, ...] = ()

    @property
    def otpauth_uri(self) -> str | None:
        return totp_uri(self.totp_secret, self.login) if self.totp_secret else None

    def current_code(self) -> str | None:
        return totp_now(self.totp_secret) if self.totp_secret else None

    def describe(self) -> str:
        lines = [f"{self.role} — {self.display}", f"  identifiant : {self.login}"]
        if self.password:
            lines.append(f"  mot de passe : {self.password}")
        if self.totp_secret:
            lines.append(f"  TOTP : secret {self.totp_secret}  (code actuel : {self.current_code()})")
            lines.append(f"  {self.otpauth_uri}")
        if self.fhir_user:
            lines.append(f"  FHIR : {self.fhir_user}")
        if self.represented_patients:
            lines.append(f"  représente : {', '.join('Patient/' + p for p in self.represented_patients)}")
        if self.private_key_path:
            lines.append(f"  clé privée (private_key_jwt) : {self.private_key_path}")
        if self.scopes:
            lines.append(f"  scopes : {' '.join(self.scopes)}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Professional:
    role: str
    practitioner_id: str
    rpps: str
    given: str
    family: str
    profession: str
    specialty: str | None
    organization_id: str
    finess: str
    structure_name: str
    sector: str


PROFESSIONALS = (
    _Professional(
        "Médecin généraliste (médecin traitant)", "demo-dr-bernard", "10001234565", "Sophie", "Bernard",
        "10", "SM54", "demo-cabinet-bernard", "750001232", "Cabinet médical du Dr Bernard", "SA07",
    ),
    _Professional(
        "Pharmacien", "demo-ph-petit", "10002345675", "Julien", "Petit",
        "21", None, "demo-pharmacie-petit", "750002347", "Pharmacie Petit", "SA33",  # officine
    ),
    _Professional(
        "Infirmière", "demo-inf-robert", "10003456786", "Camille", "Robert",
        "60", None, "demo-cabinet-infirmier", "750003451", "Cabinet infirmier Robert", "SA08",
    ),
)  # fmt: skip
PARENT_ID, CHILD_ID = "demo-claire-martin", "demo-leo-martin"


def _fhir_resources(base_url: str) -> list[dict[str, Any]]:
    gp = PROFESSIONALS[0]
    resources: list[dict[str, Any]] = []
    for pro in PROFESSIONALS:
        resources.append(
            {
                "resourceType": "Organization",
                "id": pro.organization_id,
                "identifier": [{"system": ID_NAT_ST_SYSTEM, "value": "1" + pro.finess}],
                "active": True,
                "name": pro.structure_name,
            }
        )
        qualification: list[dict[str, Any]] = [
            {"code": {"coding": [{"system": TRE_G15_SYSTEM, "code": pro.profession}]}}
        ]
        if pro.specialty:
            qualification.append({"code": {"coding": [{"system": TRE_R38_SYSTEM, "code": pro.specialty}]}})
        resources.append(
            {
                "resourceType": "Practitioner",
                "id": pro.practitioner_id,
                "identifier": [
                    {"system": ID_NAT_PS_SYSTEM, "value": "8" + pro.rpps},
                    {"system": RPPS_SYSTEM, "value": pro.rpps},
                ],
                "active": True,
                "name": [{"family": pro.family, "given": [pro.given]}],
                "qualification": qualification,
            }
        )
    resources.append(
        {
            "resourceType": "Patient",
            "id": PARENT_ID,
            "identifier": [{"system": INS_NIR_SYSTEM, "value": "284037505601269"}],
            "name": [{"family": "Martin", "given": ["Claire"]}],
            "gender": "female",
            "birthDate": "1984-03-12",
            "generalPractitioner": [{"reference": f"Practitioner/{gp.practitioner_id}"}],
        }
    )
    resources.append(
        {
            "resourceType": "Patient",
            "id": CHILD_ID,
            "identifier": [{"system": INS_NIR_SYSTEM, "value": "116097505603433"}],
            "name": [{"family": "Martin", "given": ["Léo"]}],
            "gender": "male",
            "birthDate": "2016-09-03",
            "generalPractitioner": [{"reference": f"Practitioner/{gp.practitioner_id}"}],
            "contact": [
                {
                    "relationship": [
                        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}
                    ],
                    "name": {"family": "Martin", "given": ["Claire"]},
                }
            ],
        }
    )
    return resources


def seed_demo_accounts(
    store: FhirStore, engine: Engine, base_url: str, *, settings: AuthSettings | None = None
) -> list[DemoAccount]:
    """Create the demo logins and what they point at; running it again changes nothing."""
    settings = settings or AuthSettings(base_url=base_url)
    if not settings.relaxed:
        raise Forbidden("Demo accounts (public passwords) are refused outside local/dev/test")
    vault = Vault.from_settings(settings)
    fhir_base = base_url.rstrip("/") + "/fhir"
    with store.session() as session:
        for resource in _fhir_resources(base_url):
            session.update(resource, resource["id"])

    accounts: list[DemoAccount] = []
    existing = find_account(engine, "citizen", "claire.martin@example.fr")
    if existing is None:
        enrolled = create_citizen_account(
            engine,
            vault,
            password_hasher(settings),
            login="claire.martin@example.fr",
            password=DEMO_CITIZEN_PASSWORD,
            patient_id=PARENT_ID,
            given_name="Claire",
            family_name="Martin",
            ins="284037505601269",
            represented_patients=(CHILD_ID,),
        )
        citizen, secret = enrolled.account, enrolled.totp_secret
    else:
        if existing.represented_patients != (CHILD_ID,):
            set_represented_patients(engine, existing.account_id, (CHILD_ID,))
        citizen, secret = existing, _secret(engine, vault, existing.account_id)
    accounts.append(
        DemoAccount(
            role="Citoyenne (mère de Léo, mineur)",
            display="Claire Martin",
            login=citizen.login,
            password=DEMO_CITIZEN_PASSWORD,
            totp_secret=secret,
            fhir_user=f"{fhir_base}/Patient/{PARENT_ID}",
            represented_patients=(CHILD_ID,),
        )
    )

    for pro in PROFESSIONALS:
        id_nat_ps = "8" + pro.rpps
        found = find_account(engine, "professional", id_nat_ps)
        if found is None:
            enrolled_pro: EnrolledAccount = create_professional_account(
                engine,
                vault,
                id_nat_ps=id_nat_ps,
                practitioner_id=pro.practitioner_id,
                given_name=pro.given,
                family_name=pro.family,
                profession=pro.profession,
                specialty=pro.specialty,
                structure_id="1" + pro.finess,
                structure_name=pro.structure_name,
                structure_sector=pro.sector,
            )
            pro_secret = enrolled_pro.totp_secret
        else:
            pro_secret = _secret(engine, vault, found.account_id)
        accounts.append(
            DemoAccount(
                role=pro.role,
                display=f"{pro.given} {pro.family} — {pro.structure_name}",
                login=id_nat_ps,
                totp_secret=pro_secret,
                fhir_user=f"{fhir_base}/Practitioner/{pro.practitioner_id}",
            )
        )

    if get_client(engine, DEMO_APP_CLIENT_ID) is None:
        register_client(
            engine,
            client_id=DEMO_APP_CLIENT_ID,
            client_type="public",
            name="Application SMART de démonstration",
            redirect_uris=[base_url.rstrip("/") + "/auth/demo/callback"],
            allowed_scopes=[
                "openid",
                "fhirUser",
                "profile",
                "launch/patient",
                "offline_access",
                "patient/*.rs",
                "patient/*.read",
                "user/*.rs",
                "user/*.read",
            ],
        )
    accounts.append(_hospital_client(engine, settings.auth_demo_dir))
    return accounts


def _secret(engine: Engine, vault: Vault, account_id: str) -> str:
    secret = account_totp_secret(engine, vault, account_id)
    assert secret is not None
    return secret


HOSPITAL_SCOPES = ("system/*.rs", "system/Observation.cu", "system/DocumentReference.cu")


def _hospital_client(engine: Engine, demo_dir: Path) -> DemoAccount:
    key_path = demo_dir / f"{DEMO_HOSPITAL_CLIENT_ID}-private-key.pem"
    client = get_client(engine, DEMO_HOSPITAL_CLIENT_ID)
    if client is None or not key_path.exists():
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(key_path, private_key)
        public = RSAKey.import_key(private_key.public_key())
        jwk = {**public.as_dict(private=False), "kid": public.thumbprint(), "use": "sig", "alg": "RS384"}
        register_client(
            engine,
            client_id=DEMO_HOSPITAL_CLIENT_ID,
            client_type="system",
            name="Logiciel hospitalier de démonstration (CH Démo)",
            allowed_scopes=HOSPITAL_SCOPES,
            jwks={"keys": [jwk]},
            replace=client is not None,
        )
    return DemoAccount(
        role="Logiciel hospitalier (client système, private_key_jwt)",
        display="CH Démo",
        login=DEMO_HOSPITAL_CLIENT_ID,
        private_key_path=key_path,
        scopes=HOSPITAL_SCOPES,
    )


def _write_private(path: Path, private_key: rsa.RSAPrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def demo_summary(accounts: list[DemoAccount]) -> str:
    """The printable block the `socle demo` command shows."""
    return "\n\n".join(account.describe() for account in accounts)
