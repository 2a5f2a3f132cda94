"""The request context: who acts, in which role and structure, with which scopes, for what purpose.

Built once per request from a verified access token (or for a CLI/system action) and passed
explicitly to the policy layer, the store's callers and the audit trail. Nothing reads "the current
user" from module state.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

ActorType = Literal["practitioner", "patient", "system", "anonymous"]
PurposeOfUse = Literal["normal", "bris-de-glace", "regulation"]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says (produced by `socle.auth.tokens.verify_access_token`)."""

    subject: str  # the token's `sub`
    actor_type: ActorType
    client_id: str
    scopes: tuple[str, ...]
    token_id: str
    expires_at: int  # epoch seconds
    fhir_user: str | None = None  # "Practitioner/<id>" | "Patient/<id>" for users
    patient: str | None = None  # SMART launch context: the patient id the app works on
    national_id: str | None = None  # idNatPs for professionals, INS matricule for citizens
    display: str | None = None
    profession: str | None = None  # TRE_G15 code
    specialty: str | None = None  # TRE_R38 code
    structure: str | None = None  # idNatSt of the structure the professional acts for
    structure_sector: str | None = None  # TRE_R02 sector of activity
    represented_patients: tuple[str, ...] = ()  # Patient ids a citizen may act for (their minors)


@dataclass(frozen=True, slots=True)
class RequestContext:
    actor_type: ActorType
    actor_id: str  # "Practitioner/<id>", "Patient/<id>", "Client/<client_id>", "anonymous"
    display: str
    scopes: frozenset[str] = frozenset()
    client_id: str | None = None
    profession: str | None = None
    specialty: str | None = None
    structure: str | None = None
    patient_ids: frozenset[str] = frozenset()  # a citizen's own record and those they represent
    launch_patient: str | None = None
    purpose_of_use: PurposeOfUse = "normal"
    purpose_reason: str | None = None  # required for bris de glace
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    source_ip: str | None = None

    @classmethod
    def from_claims(
        cls,
        claims: AccessClaims,
        *,
        request_id: str | None = None,
        source_ip: str | None = None,
        purpose_of_use: PurposeOfUse = "normal",
        purpose_reason: str | None = None,
    ) -> RequestContext:
        if claims.actor_type == "system":
            actor_id = f"Client/{claims.client_id}"
        else:
            actor_id = claims.fhir_user or f"{claims.actor_type}/{claims.subject}"
        own = {actor_id.split("/", 1)[1]} if actor_id.startswith("Patient/") else set()
        return cls(
            actor_type=claims.actor_type,
            actor_id=actor_id,
            display=claims.display or claims.subject,
            scopes=frozenset(claims.scopes),
            client_id=claims.client_id,
            profession=claims.profession,
            specialty=claims.specialty,
            structure=claims.structure,
            patient_ids=frozenset(own | set(claims.represented_patients)),
            launch_patient=claims.patient,
            purpose_of_use=purpose_of_use,
            purpose_reason=purpose_reason,
            request_id=request_id or uuid.uuid4().hex,
            source_ip=source_ip,
        )

    @classmethod
    def anonymous(cls, source_ip: str | None = None) -> RequestContext:
        """A caller without (valid) credentials: refused by the policy, still traced with its address."""
        return cls(actor_type="anonymous", actor_id="anonymous", display="anonyme", source_ip=source_ip)

    @classmethod
    def operator(cls, name: str = "socle-cli") -> RequestContext:
        """A local operator acting through the CLI on the machine itself (full system scope)."""
        return cls(
            actor_type="system", actor_id=f"Client/{name}", display=name, scopes=frozenset({"system/*.*"})
        )
