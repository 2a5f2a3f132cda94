"""What an identity record is: strict traits, used names, RNIV status and attributes, INS matricule.

Plain frozen values, checked on construction (traits normalized, INS number parsed). Which status and
attribute combinations the RNIV allows is not checked here but in `rules`; how a record is stored as a
FHIR Patient is in `fhir`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from socle.identity.errors import InsiMismatch, InvalidTrait
from socle.identity.nir import ParsedNir, parse_nia, parse_nir
from socle.identity.traits import StrictTraits


class Status(StrEnum):
    """The four exclusive RNIV statuses (codes as FR Core's identityStatus carries them)."""

    PROV = "PROV"  # identité provisoire
    RECUP = "RECUP"  # identité récupérée (via INSi, not checked against a document)
    VALI = "VALI"  # identité validée (checked against a high-trust document)
    QUAL = "QUAL"  # identité qualifiée (both)


class Attribute(StrEnum):
    """RNIV identity attributes and identitovigilance flags (FR Core v2-0445 codes)."""

    DOUBTFUL = "DOUT"  # identité douteuse
    FICTITIOUS = "FICT"  # identité fictive
    HOMONYM = "HOMA"  # identité homonyme (homonyme avéré)
    POTENTIAL_DUPLICATE = "DPOT"  # doublon potentiel
    DUPLICATE = "DOUA"  # doublon avéré
    POTENTIAL_COLLISION = "COLP"  # collision potentielle
    COLLISION = "COLV"  # collision avérée


class InsKind(StrEnum):
    """Which assigning authority an INS matricule comes from; the value is its FR Core identifier type."""

    NIR = "INS-NIR"
    NIA = "INS-NIA"
    NIR_TEST = "INS-NIR-TEST"
    NIR_DEMO = "INS-NIR-DEMO"


INS_OIDS = {
    InsKind.NIR: "1.2.250.1.213.1.4.8",
    InsKind.NIA: "1.2.250.1.213.1.4.9",
    InsKind.NIR_TEST: "1.2.250.1.213.1.4.10",
    InsKind.NIR_DEMO: "1.2.250.1.213.1.4.11",
}
INS_KIND_BY_SYSTEM = {f"urn:oid:{oid}": kind for kind, oid in INS_OIDS.items()}


@dataclass(frozen=True, slots=True)
class InsMatricule:
    """The INS matricule: a NIR or NIA and the OID of its assigning authority.

    >>> InsMatricule(InsKind.NIR, "185017511504281").system
    'urn:oid:1.2.250.1.213.1.4.8'
    """

    kind: InsKind
    value: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", InsKind(self.kind))
        object.__setattr__(self, "value", self.parsed().value)

    def parsed(self) -> ParsedNir:
        return parse_nia(self.value) if self.kind is InsKind.NIA else parse_nir(self.value)

    @property
    def oid(self) -> str:
        return INS_OIDS[self.kind]

    @property
    def system(self) -> str:
        return f"urn:oid:{self.oid}"

    @classmethod
    def from_system(cls, system: str, value: str) -> InsMatricule:
        kind = INS_KIND_BY_SYSTEM.get(system)
        if kind is None:
            raise InvalidTrait(f"système d'identifiant INS inconnu : {system}")
        return cls(kind, value)


INSI_FOUND = "00"
INSI_RETURN_CODES = {
    "00": "une identité trouvée",
    "01": "aucune identité trouvée",
    "02": "plusieurs identités trouvées (ajouter les autres prénoms, puis le lieu de naissance)",
}


@dataclass(frozen=True, slots=True)
class InsiResult:
    """An answer of the INSi teleservice: a return code and, for "00", the INS and its traits."""

    code: str
    ins: InsMatricule | None = None
    traits: StrictTraits | None = None

    def found(self) -> tuple[InsMatricule, StrictTraits]:
        """The identity of a "00" answer; InsiMismatch for "01", "02" or an incomplete answer."""
        if self.code != INSI_FOUND:
            meaning = INSI_RETURN_CODES.get(self.code, "code inconnu")
            raise InsiMismatch(
                f"le téléservice INSi n'a pas renvoyé une identité unique : {self.code} ({meaning})"
            )
        if self.ins is None or self.traits is None:
            raise InsiMismatch("réponse INSi 00 sans matricule INS ou sans traits")
        return self.ins, self.traits


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """One person's identity as Socle keeps it; `patient_id` and `version` once stored."""

    traits: StrictTraits
    used_name: str | None = None  # nom utilisé
    used_given_name: str | None = None  # prénom utilisé
    status: Status = Status.PROV
    attributes: frozenset[Attribute] = frozenset()
    ins: InsMatricule | None = None
    # Matricules that were this person's INS before (a NIA replaced by a NIR, a NIR after a change of
    # sex): FR Core carries them with use "old".
    previous_ins: tuple[InsMatricule, ...] = ()
    validation_document: str | None = None  # FR Core validationMode code of the high-trust document
    validation_date: date | None = None
    insi_date: date | None = None  # when the INS was last retrieved or verified via INSi
    patient_id: str | None = field(default=None, compare=False)
    version: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "attributes", frozenset(Attribute(a) for a in self.attributes))
        for name in ("used_name", "used_given_name"):
            value = getattr(self, name)
            if value is not None:
                # Used names are not strict traits: kept as written, only trimmed.
                object.__setattr__(self, name, " ".join(value.split()) or None)
