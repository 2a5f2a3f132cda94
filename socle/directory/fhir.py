"""Directory records as FHIR R4 resources, shaped like the ANS directory (pure functions).

Shapes copied from the ANS implementation guide "Annuaire Santé" (IG-fhir-annuaire 1.2) and FR Core
2.2 examples: identifier types from `fr-core-cs-v2-0203` (IDNPS, RPPS, IDNST, FINEG, FINEJ, SIRET,
RPPSRG), nomenclature codings with their MOS FHIR URLs, addresses with the INSEE commune extension
and ISO 21090 line parts, MSSanté mailboxes as `telecom` email entries carrying the
`fr-core-contact-point-email-type` = MSSANTE coding and the `as-ext-mailbox-mss-metadata` type
(PER personal, ORG organisational, APP applicative).

Choices made where the ANS guide says nothing:
- Geographic position: on a `Location` (one per FINESS establishment, `managingOrganization` -> its
  Organization) in `Location.position`, the R4 element the standard `near` search parameter reads.
  The ANS directory publishes no coordinates; FR Core's Location profile keeps `position`.
- The practitioner's title (civilité d'exercice DR / PR) goes in `HumanName.prefix` as "Dr" / "Pr",
  the R4 element for what is written before the name. (The ANS guide puts the TRE_R11 code in
  `suffix`; a generic FHIR reader would then print "Sophie Martin DR".)
- "Accepts new patients" and "offers teleconsultation" are facts about one activity at one place,
  so they are two boolean extensions on PractitionerRole (R4 has no element for them; the US
  Plan-Net guide made the same choice with its `newpatients` extension). They are set by the
  professional (`actions.do_set_role_availability`), never by an import, and an import keeps them.
- HealthcareService: neither extraction describes services (FINESS authorised activities come in
  another file), so none is produced here; `healthcare_service` builds one for an establishment's
  offer when a caller has it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from socle.canonical import structure_definition
from socle.directory.extractions import FinessEstablishment, RppsSite
from socle.directory.geodesy import LatLon
from socle.directory.identifiers import (
    FINESS_SYSTEM,
    ID_NAT_PS_SYSTEM,
    ID_NAT_ST_SYSTEM,
    RPPS_RANG_SYSTEM,
    RPPS_SYSTEM,
    SIRET_SYSTEM,
    id_nat_ps,
    id_nat_st,
)
from socle.directory.nomenclatures import (
    SPECIALTY_SKILL_TYPE,
    TRE_R02_SECTEUR_ACTIVITE,
    TRE_R04_TYPE_SAVOIR_FAIRE,
    TRE_R09_CATEGORIE_PROFESSIONNELLE,
    TRE_R13_COMMUNE,
    TRE_R21_FONCTION,
    TRE_R22_GENRE_ACTIVITE,
    TRE_R23_MODE_EXERCICE,
    TRE_R66_CATEGORIE_ETABLISSEMENT,
    TRE_R256_TYPE_MESSAGERIE,
    TRE_R257_TYPE_BAL,
    profession_codings,
    specialty_coding,
)
from socle.directory.rules import (
    finess_resource_id,
    insee_commune_code,
    is_mssante_address,
    practitioner_id,
    split_routing_line,
)

Resource = dict[str, Any]

IDENTIFIER_TYPE_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
ORGANIZATION_TYPE_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-3307"
EMAIL_TYPE_EXTENSION = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type"
INSEE_CODE_EXTENSION = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code"
MAILBOX_MSS_EXTENSION = (
    "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata"
)
ORGANIZATION_TYPES_EXTENSION = (
    "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-organization-types"
)
ORGANIZATION_PERIOD_EXTENSION = "http://hl7.org/fhir/StructureDefinition/organization-period"
ADXP = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-"

# Socle's own extensions: neither FR Core nor the ANS directory guide defines these two flags.
ACCEPTING_NEW_PATIENTS_EXTENSION = structure_definition("practitionerrole-accepting-new-patients")
TELECONSULTATION_EXTENSION = structure_definition("practitionerrole-teleconsultation")
AVAILABILITY_EXTENSIONS = (ACCEPTING_NEW_PATIENTS_EXTENSION, TELECONSULTATION_EXTENSION)

MAILBOX_TYPES = ("PER", "ORG", "APP")

# Where the records come from, in `meta.source` (as the ANS directory writes it).
RPPS_SOURCE = "https://annuaire.esante.gouv.fr"
FINESS_SOURCE = "https://finess.esante.gouv.fr"


# -- identifiers, telecom, addresses ---------------------------------------------------------------


def _identifier(system: str, value: str, type_code: str) -> dict[str, Any]:
    return {
        "use": "official",
        "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": type_code}]},
        "system": system,
        "value": value,
    }


def practitioner_identifiers(rpps: str) -> list[dict[str, Any]]:
    """idNatPs ("8" + RPPS) then RPPS, as the ANS directory lists them."""
    return [_identifier(ID_NAT_PS_SYSTEM, id_nat_ps(rpps), "IDNPS"), _identifier(RPPS_SYSTEM, rpps, "RPPS")]


def finess_identifiers(finess: str, *, legal_entity: bool = False) -> list[dict[str, Any]]:
    """idNatSt ("1" + FINESS) then FINESS (FINEG for an establishment, FINEJ for a legal entity)."""
    return [
        _identifier(ID_NAT_ST_SYSTEM, id_nat_st(finess), "IDNST"),
        _identifier(FINESS_SYSTEM, finess, "FINEJ" if legal_entity else "FINEG"),
    ]


def _siret_identifier(siret: str) -> list[dict[str, Any]]:
    siret = siret.replace(" ", "")
    return [_identifier(SIRET_SYSTEM, siret, "SIRET")] if len(siret) == 14 and siret.isdigit() else []


def mssante_telecom(
    address: str, mailbox_type: str = "PER", *, description: str | None = None
) -> dict[str, Any]:
    """An MSSanté mailbox as a telecom entry (ANS `as-mailbox-mss` shape)."""
    if mailbox_type not in MAILBOX_TYPES:
        raise ValueError(f"unknown MSSanté mailbox type {mailbox_type!r}: expected PER, ORG or APP")
    metadata: list[dict[str, Any]] = [
        {
            "url": "type",
            "valueCodeableConcept": {"coding": [{"system": TRE_R257_TYPE_BAL, "code": mailbox_type}]},
        }
    ]
    if description:
        metadata.append({"url": "description", "valueString": description})
    return {
        "extension": [
            {
                "url": EMAIL_TYPE_EXTENSION,
                "valueCoding": {"system": TRE_R256_TYPE_MESSAGERIE, "code": "MSSANTE"},
            },
            {"url": MAILBOX_MSS_EXTENSION, "extension": metadata},
        ],
        "system": "email",
        "value": address,
    }


def email_telecom(address: str, mailbox_type: str) -> dict[str, Any]:
    """An e-mail address: an MSSanté mailbox of `mailbox_type` when it belongs to the MSSanté space."""
    if is_mssante_address(address):
        return mssante_telecom(address, mailbox_type)
    return {"system": "email", "value": address}


def is_mssante_telecom(telecom: dict[str, Any]) -> bool:
    return any(
        e.get("url") == EMAIL_TYPE_EXTENSION and e.get("valueCoding", {}).get("code") == "MSSANTE"
        for e in telecom.get("extension", [])
    )


def _telecoms(phone: str, phone2: str, fax: str, email: str, mailbox_type: str) -> list[dict[str, Any]]:
    telecom: list[dict[str, Any]] = []
    if phone:
        telecom.append({"system": "phone", "value": phone, "rank": 1})
    if phone2:
        telecom.append({"system": "phone", "value": phone2})
    if fax:
        telecom.append({"system": "fax", "value": fax})
    if email:
        telecom.append(email_telecom(email, mailbox_type))
    return telecom


@dataclass(frozen=True, slots=True)
class AddressParts:
    """An address as the RPPS and FINESS give it (each part optional)."""

    care_of: str = ""  # complément destinataire
    additional_locator: str = ""  # complément point géographique / lieu-dit
    house_number: str = ""
    repetition: str = ""  # B, T, Q...
    street_type: str = ""
    street_name: str = ""
    post_box: str = ""  # mention distribution (BP, CS...)
    postal_code: str = ""
    city: str = ""
    insee_code: str = ""
    country: str = ""


def address(parts: AddressParts) -> dict[str, Any] | None:
    """An FR Core / ANS address: line texts with their ISO 21090 parts, postcode, city, INSEE code."""
    lines: list[str] = []
    line_parts: list[dict[str, Any] | None] = []

    def add(text: str, extensions: list[tuple[str, str]]) -> None:
        values = [(name, value) for name, value in extensions if value]
        if not text or not values:
            return
        lines.append(text)
        line_parts.append(
            {"extension": [{"url": ADXP + name, "valueString": value} for name, value in values]}
        )

    add(parts.care_of, [("careOf", parts.care_of)])
    add(parts.additional_locator, [("additionalLocator", parts.additional_locator)])
    number = f"{parts.house_number}{' ' + parts.repetition if parts.repetition else ''}"
    street = " ".join(p for p in (number, parts.street_type, parts.street_name) if p)
    add(
        street,
        [
            ("houseNumber", parts.house_number),
            ("buildingNumberSuffix", parts.repetition),
            ("streetNameType", parts.street_type),
            ("streetNameBase", parts.street_name),
        ],
    )
    add(parts.post_box, [("postBox", parts.post_box)])
    result: dict[str, Any] = {}
    if parts.insee_code:
        result["extension"] = [
            {
                "url": INSEE_CODE_EXTENSION,
                "valueCoding": {"system": TRE_R13_COMMUNE, "code": parts.insee_code},
            }
        ]
    result["use"] = "work"
    if lines:
        result["line"] = lines
        result["_line"] = line_parts
    if parts.city:
        result["city"] = parts.city
    if parts.postal_code:
        result["postalCode"] = parts.postal_code
    if parts.country:
        result["country"] = parts.country
    return result if len(result) > 1 else None


_FRENCH_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")


def fhir_date(value: str) -> str | None:
    """A FHIR date from the extraction's dates (ISO in current files, dd/mm/yyyy in older ones)."""
    value = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value
    match = _FRENCH_DATE.match(value)
    return f"{match.group(3)}-{match.group(2)}-{match.group(1)}" if match else None


# -- Practitioner / PractitionerRole ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profession:
    code: str
    category: str = ""  # TRE_R09: C civil, M militaire, E étudiant


@dataclass(frozen=True, slots=True)
class Specialty:
    code: str
    label: str = ""


def practitioner(
    rpps: str,
    *,
    family: str,
    given: str,
    title: str | None,
    professions: Iterable[Profession],
    specialties: Iterable[Specialty],
) -> Resource:
    """The Practitioner of an RPPS professional, with its professions and specialties."""
    name: dict[str, Any] = {"use": "usual", "family": family}
    if given:
        name["given"] = [given]
    if title:
        name["prefix"] = [title]
    qualifications: list[dict[str, Any]] = []
    for profession in professions:
        codings = profession_codings(profession.code)
        if profession.category:
            codings.append({"system": TRE_R09_CATEGORIE_PROFESSIONNELLE, "code": profession.category})
        qualifications.append({"code": {"coding": codings}})
    for specialty in specialties:
        qualifications.append(
            {
                "code": {
                    "coding": [
                        {"system": TRE_R04_TYPE_SAVOIR_FAIRE, "code": SPECIALTY_SKILL_TYPE},
                        specialty_coding(specialty.code, specialty.label),
                    ]
                }
            }
        )
    resource: Resource = {
        "resourceType": "Practitioner",
        "id": practitioner_id(rpps),
        "meta": {"source": RPPS_SOURCE},
        "identifier": practitioner_identifiers(rpps),
        "active": True,
        "name": [name],
    }
    if qualifications:
        resource["qualification"] = qualifications
    return resource


@dataclass(frozen=True, slots=True)
class Activity:
    """One activity of a professional: where, as what, how."""

    role_id: str
    rpps: str
    profession_code: str
    organization_id: str | None = None
    location_id: str | None = None
    mode_code: str = ""
    mode_label: str = ""
    role_code: str = ""
    role_label: str = ""
    kind_code: str = ""
    kind_label: str = ""
    specialties: tuple[Specialty, ...] = ()


def _coded(system: str, code: str, label: str) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if label:
        coding["display"] = label
    return {"coding": [coding]}


def practitioner_role(activity: Activity, *, availability: list[dict[str, Any]] | None = None) -> Resource:
    """The PractitionerRole of one activity; `availability` carries the professional's own flags."""
    codes: list[dict[str, Any]] = [{"coding": profession_codings(activity.profession_code)}]
    if activity.mode_code:
        codes.append(_coded(TRE_R23_MODE_EXERCICE, activity.mode_code, activity.mode_label))
    if activity.role_code:
        codes.append(_coded(TRE_R21_FONCTION, activity.role_code, activity.role_label))
    if activity.kind_code:
        codes.append(_coded(TRE_R22_GENRE_ACTIVITE, activity.kind_code, activity.kind_label))
    resource: Resource = {
        "resourceType": "PractitionerRole",
        "id": activity.role_id,
        "meta": {"source": RPPS_SOURCE},
    }
    if availability:
        resource["extension"] = availability
    resource.update(
        {"active": True, "practitioner": {"reference": f"Practitioner/{practitioner_id(activity.rpps)}"}}
    )
    if activity.organization_id:
        resource["organization"] = {"reference": f"Organization/{activity.organization_id}"}
    resource["code"] = codes
    if activity.specialties:
        resource["specialty"] = [
            {"coding": [specialty_coding(s.code, s.label)]} for s in activity.specialties
        ]
    if activity.location_id:
        resource["location"] = [{"reference": f"Location/{activity.location_id}"}]
    return resource


def availability_extensions(
    *, accepting_new_patients: bool | None, teleconsultation: bool | None
) -> list[dict[str, Any]]:
    """The professional's availability flags as PractitionerRole extensions (None: not said)."""
    extensions = []
    if accepting_new_patients is not None:
        extensions.append({"url": ACCEPTING_NEW_PATIENTS_EXTENSION, "valueBoolean": accepting_new_patients})
    if teleconsultation is not None:
        extensions.append({"url": TELECONSULTATION_EXTENSION, "valueBoolean": teleconsultation})
    return extensions


def availability_of(role: Resource) -> list[dict[str, Any]]:
    """The availability extensions a stored PractitionerRole carries (kept across imports)."""
    return [e for e in role.get("extension", []) if e.get("url") in AVAILABILITY_EXTENSIONS]


def with_availability(role: Resource, availability: list[dict[str, Any]]) -> Resource:
    """`role` with its availability extensions replaced by `availability` (other extensions kept)."""
    others = [e for e in role.get("extension", []) if e.get("url") not in AVAILABILITY_EXTENSIONS]
    updated = {k: v for k, v in role.items() if k != "extension"}
    extensions = others + availability
    if not extensions:
        return updated
    # Keep the element order of the builders: extension right after meta.
    ordered: Resource = {}
    for key, value in updated.items():
        ordered[key] = value
        if key == "meta":
            ordered["extension"] = extensions
    ordered.setdefault("extension", extensions)
    return ordered


# -- Organization / Location -----------------------------------------------------------------------


def _typed(slice_name: str | None, system: str, code: str, display: str = "") -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if slice_name:
        concept["extension"] = [{"url": ORGANIZATION_TYPES_EXTENSION, "valueCode": slice_name}]
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    concept["coding"] = [coding]
    return concept


def rpps_site_address(site: RppsSite) -> dict[str, Any] | None:
    postal_code, cedex_city = split_routing_line(site.cedex) if site.cedex else (None, None)
    return address(
        AddressParts(
            care_of=site.recipient if site.recipient != site.name else "",
            additional_locator=site.geo_complement,
            house_number=site.street_number,
            repetition=site.street_repetition,
            street_type=site.street_type,
            street_name=site.street_name,
            post_box=site.distribution,
            postal_code=site.postcode or postal_code or "",
            city=site.commune_label or cedex_city or "",
            insee_code=site.commune_code,
            country=site.country_code,
        )
    )


def organization_from_rpps_site(organization_id: str, site: RppsSite) -> Resource:
    """The Organization of an RPPS structure (a cabinet, a company...) or a placeholder for a FINESS
    site the FINESS import has not written yet."""
    identifiers: list[dict[str, Any]] = []
    if site.finess_site:
        identifiers += finess_identifiers(site.finess_site)
    if site.structure_id:
        identifiers.append(_identifier(RPPS_RANG_SYSTEM, site.structure_id, "RPPSRG"))
    identifiers += _siret_identifier(site.siret)
    resource: Resource = {
        "resourceType": "Organization",
        "id": organization_id,
        "meta": {"source": RPPS_SOURCE},
        "identifier": identifiers,
        "active": True,
    }
    types = [_typed("organizationType", ORGANIZATION_TYPE_SYSTEM, "GEOGRAPHICAL-ENTITY")]
    if site.sector_code:
        types.append(
            _typed("secteurActiviteRASS", TRE_R02_SECTEUR_ACTIVITE, site.sector_code, site.sector_label)
        )
    resource["type"] = types
    resource["name"] = site.name or site.brand or site.structure_id
    if site.brand and site.brand != resource["name"]:
        resource["alias"] = [site.brand]
    telecom = _telecoms(site.phone, site.phone2, site.fax, site.email, "ORG")
    if telecom:
        resource["telecom"] = telecom
    site_address = rpps_site_address(site)
    if site_address:
        resource["address"] = [site_address]
    if site.finess_legal and site.finess_legal != site.finess_site:
        resource["partOf"] = _legal_entity_reference(site.finess_legal)
    return resource


def _legal_entity_reference(finess_legal: str) -> dict[str, Any]:
    # A logical reference: the legal entities (EJ) come in another FINESS extraction.
    return {"identifier": _identifier(FINESS_SYSTEM, finess_legal, "FINEJ")}


def finess_address(establishment: FinessEstablishment) -> dict[str, Any] | None:
    postal_code, city = split_routing_line(establishment.routing_line)
    return address(
        AddressParts(
            care_of=establishment.distribution_complement,
            additional_locator=establishment.street_complement,
            house_number=establishment.street_number,
            street_type=establishment.street_type,
            street_name=establishment.street_name,
            post_box=establishment.locality,
            postal_code=postal_code or "",
            city=city or "",
            insee_code=insee_commune_code(establishment.departement, establishment.commune) or "",
        )
    )


def organization_from_finess(establishment: FinessEstablishment) -> Resource:
    """The Organization of a FINESS geographic establishment (entité géographique)."""
    e = establishment
    name = e.long_name or e.short_name
    resource: Resource = {
        "resourceType": "Organization",
        "id": finess_resource_id(e.finess),
        "meta": {"source": FINESS_SOURCE},
    }
    opening = fhir_date(e.opening_date)
    if opening:
        resource["extension"] = [{"url": ORGANIZATION_PERIOD_EXTENSION, "valuePeriod": {"start": opening}}]
    resource["identifier"] = finess_identifiers(e.finess) + _siret_identifier(e.siret)
    resource["active"] = True
    types = [_typed("organizationType", ORGANIZATION_TYPE_SYSTEM, "GEOGRAPHICAL-ENTITY")]
    if e.category_code:
        types.append(_typed(None, TRE_R66_CATEGORIE_ETABLISSEMENT, e.category_code, e.category_label))
    resource["type"] = types
    resource["name"] = name
    aliases = [a for a in dict.fromkeys((e.short_name, e.name_complement)) if a and a != name]
    if aliases:
        resource["alias"] = aliases
    telecom = _telecoms(e.phone, "", e.fax, "", "ORG")
    if telecom:
        resource["telecom"] = telecom
    finess_place = finess_address(e)
    if finess_place:
        resource["address"] = [finess_place]
    if e.finess_legal and e.finess_legal != e.finess:
        resource["partOf"] = _legal_entity_reference(e.finess_legal)
    return resource


def location_from_finess(establishment: FinessEstablishment, position: LatLon | None) -> Resource:
    """The Location of a FINESS establishment: its address and, when known, its WGS84 position."""
    e = establishment
    resource: Resource = {
        "resourceType": "Location",
        "id": finess_resource_id(e.finess),
        "meta": {"source": FINESS_SOURCE},
        "identifier": [_identifier(FINESS_SYSTEM, e.finess, "FINEG")],
        "status": "active",
        "name": e.long_name or e.short_name,
        "mode": "instance",
    }
    finess_place = finess_address(e)
    if finess_place:
        resource["address"] = finess_place
    if position is not None:
        # 7 decimals is about a centimetre: more would only make the stored bytes noisier.
        resource["position"] = {
            "longitude": round(position.longitude, 7),
            "latitude": round(position.latitude, 7),
        }
    resource["managingOrganization"] = {"reference": f"Organization/{finess_resource_id(e.finess)}"}
    return resource


def healthcare_service(
    service_id: str,
    *,
    organization_id: str,
    name: str,
    location_ids: Iterable[str] = (),
    specialties: Iterable[Specialty] = (),
    teleconsultation: bool = False,
) -> Resource:
    """A HealthcareService an establishment offers (with "téléconsultation" as a characteristic)."""
    resource: Resource = {
        "resourceType": "HealthcareService",
        "id": service_id,
        "active": True,
        "providedBy": {"reference": f"Organization/{organization_id}"},
        "name": name,
    }
    specialty = [{"coding": [specialty_coding(s.code, s.label)]} for s in specialties]
    if specialty:
        resource["specialty"] = specialty
    locations = [{"reference": f"Location/{i}"} for i in location_ids]
    if locations:
        resource["location"] = locations
    if teleconsultation:
        resource["characteristic"] = [{"text": "téléconsultation"}]
    return resource
