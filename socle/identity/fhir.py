"""IdentityRecord <-> FHIR Patient, shaped after FR Core 2.2.0 "FR Core Patient INS".

- INS matricule: `identifier` with use "official" (former matricules: use "old"), type from
  fr-core-cs-v2-0203 (INS-NIR, INS-NIA, INS-NIR-TEST, INS-NIR-DEMO) and system `urn:oid:` + the
  authority's OID (…4.8 NIR, …4.9 NIA, …4.10 test NIR, …4.11 demo NIR).
- Birth name and first names: the `official` name, `family` = birth name, `given` = the first birth
  first name only, and the whole list, space-separated, in the `fr-core-patient-birth-list-given-name`
  extension. Used name / first name: a `usual` name.
- Sex: `gender`; birth date: `birthDate`.
- Birthplace: the `patient-birthPlace` extension, an Address whose `fr-core-address-insee-code`
  extension holds the COG code (TRE-R13-CommuneOM for a commune, TRE-R20-Pays for 99xxx).
- Status and attributes: `fr-core-identity-reliability` extensions (0..* on the profile). The first
  carries the status in `identityStatus`, with `methodCollection` INSI + `dateCollection` behind the
  INSi criterion and `validationMode` + `validationDate` behind the document criterion; each
  attribute is one more extension whose `identityStatus` is the attribute's code (DOUT, FICT, HOMA…).

Deviation from FR Core 2.2.0, on purpose: `identityStatus` carries the RNIV code itself (PROV,
RECUP, VALI, QUAL). The published 2.2.0 CodeSystem v2-0445 has PROV and VALI but neither RECUP nor
QUAL, and its invariant fr-core-1 reads "VALI" as "has an INS"; the four RNIV statuses cannot be told
apart with it. FR Core pull request #306 (issue #298) adds RECUP and QUAL to that CodeSystem; Socle
follows it. For the same reason no `meta.profile` claims fr-core-patient-ins.

Only a qualified identity shows its INS matricule to other systems (RNIV EXI SI 08): the stored
Patient keeps it, `patient_for_exchange` leaves it out unless the status is QUAL.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import orjson

from socle.identity.communes import commune
from socle.identity.errors import NotAnIdentity
from socle.identity.record import INS_KIND_BY_SYSTEM, Attribute, IdentityRecord, InsMatricule, Status
from socle.identity.rules import criteria_of, document_type, status_label
from socle.identity.traits import ABROAD_PREFIX, UNKNOWN_BIRTHPLACE, Sex, StrictTraits

FR_CORE = "https://hl7.fr/ig/fhir/core"
RELIABILITY_URL = f"{FR_CORE}/StructureDefinition/fr-core-identity-reliability"
BIRTH_LIST_GIVEN_NAME_URL = f"{FR_CORE}/StructureDefinition/fr-core-patient-birth-list-given-name"
INSEE_CODE_URL = f"{FR_CORE}/StructureDefinition/fr-core-address-insee-code"
BIRTH_PLACE_URL = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
STATUS_SYSTEM = f"{FR_CORE}/CodeSystem/fr-core-cs-v2-0445"
METHOD_COLLECTION_SYSTEM = f"{FR_CORE}/CodeSystem/fr-core-cs-method-collection"
VALIDATION_MODE_SYSTEM = f"{FR_CORE}/CodeSystem/fr-core-cs-mode-validation-identity"
IDENTIFIER_TYPE_SYSTEM = f"{FR_CORE}/CodeSystem/fr-core-cs-v2-0203"
COMMUNE_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"
COUNTRY_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R20-Pays/FHIR/TRE-R20-Pays"
INSI_METHOD = "INSI"

ATTRIBUTE_DISPLAYS = {
    Attribute.DOUBTFUL: "Identité douteuse",
    Attribute.FICTITIOUS: "Identité fictive",
    Attribute.HOMONYM: "Homonyme avéré",
    Attribute.POTENTIAL_DUPLICATE: "Doublon potentiel",
    Attribute.DUPLICATE: "Doublon avéré",
    Attribute.POTENTIAL_COLLISION: "Collision potentielle",
    Attribute.COLLISION: "Collision avérée",
}


# -- record -> Patient ----------------------------------------------------------------------------


def record_to_patient(record: IdentityRecord) -> dict[str, Any]:
    """The Patient for a record (the stored form: with the INS whatever the status)."""
    return apply_record({"resourceType": "Patient"}, record)


def patient_for_exchange(record: IdentityRecord) -> dict[str, Any]:
    """The Patient other systems may receive: the INS matricule only when the identity is qualified."""
    patient = record_to_patient(record)
    if record.status is not Status.QUAL:
        others = [i for i in patient.get("identifier", []) if not is_ins_identifier(i)]
        _set_list(patient, "identifier", others)
    return patient


_INS_SYSTEM_MARK = b"urn:oid:1.2.250.1.213.1.4."


def stored_patient_for_exchange(data: bytes) -> bytes:
    """A stored Patient's bytes as other systems may receive them (RNIV EXI SI 08).

    The INS matricule identifiers are left out unless the identity is qualified; the stored
    Patient keeps them. Patients without an INS identifier (most of them, and every Patient of a
    plain FHIR client) are returned as they are without being parsed.
    """
    if _INS_SYSTEM_MARK not in data:
        return data
    patient = orjson.loads(data)
    identifiers = patient.get("identifier")
    if not isinstance(identifiers, list) or is_qualified(patient):
        return data
    kept = [i for i in identifiers if not is_ins_identifier(i)]
    if len(kept) == len(identifiers):
        return data
    _set_list(patient, "identifier", kept)
    return orjson.dumps(patient)


def stored_ins_identifiers(patient: dict[str, Any]) -> list[dict[str, Any]]:
    """The INS matricule identifiers a Patient carries (what `stored_patient_for_exchange` hides)."""
    return [i for i in patient.get("identifier", []) if is_ins_identifier(i)]


def is_ins_identifier(identifier: Any) -> bool:
    """An `identifier` entry holding an INS matricule (NIR, NIA, test or demo NIR)."""
    return isinstance(identifier, dict) and identifier.get("system") in INS_KIND_BY_SYSTEM


def is_qualified(patient: dict[str, Any]) -> bool:
    return _reliability(patient)[0] is Status.QUAL


def apply_record(patient: dict[str, Any], record: IdentityRecord) -> dict[str, Any]:
    """A copy of `patient` whose identity parts say what `record` says; everything else is kept
    (addresses, telecoms, contacts, other identifiers and extensions)."""
    out = copy.deepcopy(patient)
    out["resourceType"] = "Patient"
    if record.patient_id is not None:
        out["id"] = record.patient_id
    extensions = [
        e for e in out.get("extension", []) if e.get("url") not in (BIRTH_PLACE_URL, RELIABILITY_URL)
    ]
    extensions.append(_birthplace_extension(record.traits.birthplace_code))
    extensions.extend(_reliability_extensions(record))
    _set_list(out, "extension", extensions)
    identifiers = [i for i in out.get("identifier", []) if i.get("system") not in INS_KIND_BY_SYSTEM]
    if record.ins is not None:
        identifiers.append(_ins_identifier(record.ins, "official"))
    identifiers.extend(_ins_identifier(old, "old") for old in record.previous_ins)
    _set_list(out, "identifier", identifiers)
    names = [n for n in out.get("name", []) if n.get("use") not in ("official", "usual")]
    names.insert(0, _official_name(record.traits))
    if record.used_name is not None or record.used_given_name is not None:
        usual: dict[str, Any] = {"use": "usual"}
        if record.used_name is not None:
            usual["family"] = record.used_name
        if record.used_given_name is not None:
            usual["given"] = [record.used_given_name]
        names.insert(1, usual)
    out["name"] = names
    out["gender"] = record.traits.sex.value
    out["birthDate"] = record.traits.birth_date
    return out


def _set_list(resource: dict[str, Any], key: str, items: list[dict[str, Any]]) -> None:
    # FHIR JSON has no empty arrays: an empty list means the element is absent.
    if items:
        resource[key] = items
    else:
        resource.pop(key, None)


def _official_name(traits: StrictTraits) -> dict[str, Any]:
    return {
        "extension": [{"url": BIRTH_LIST_GIVEN_NAME_URL, "valueString": " ".join(traits.birth_given_names)}],
        "use": "official",
        "family": traits.birth_name,
        "given": [traits.first_given_name],
    }


def _birthplace_extension(code: str) -> dict[str, Any]:
    system = COUNTRY_SYSTEM if code.startswith(ABROAD_PREFIX) else COMMUNE_SYSTEM
    address: dict[str, Any] = {
        "extension": [{"url": INSEE_CODE_URL, "valueCoding": {"system": system, "code": code}}]
    }
    place = commune(code) if system == COMMUNE_SYSTEM else None
    if place is not None:
        address["city"] = place.name
    return {"url": BIRTH_PLACE_URL, "valueAddress": address}


def _reliability_extensions(record: IdentityRecord) -> list[dict[str, Any]]:
    criteria = criteria_of(record.status)
    parts: list[dict[str, Any]] = [
        {
            "url": "identityStatus",
            "valueCoding": {
                "system": STATUS_SYSTEM,
                "code": record.status.value,
                "display": status_label(record.status).capitalize(),
            },
        }
    ]
    if criteria.retrieved_via_insi:
        parts.append(
            {
                "url": "methodCollection",
                "valueCoding": {"system": METHOD_COLLECTION_SYSTEM, "code": INSI_METHOD},
            }
        )
        if record.insi_date is not None:
            parts.append({"url": "dateCollection", "valueDate": record.insi_date.isoformat()})
    if criteria.checked_with_document and record.validation_document is not None:
        document = document_type(record.validation_document)
        parts.append(
            {
                "url": "validationMode",
                "valueCoding": {
                    "system": VALIDATION_MODE_SYSTEM,
                    "code": document.code,
                    "display": document.label,
                },
            }
        )
        if record.validation_date is not None:
            parts.append({"url": "validationDate", "valueDate": record.validation_date.isoformat()})
    extensions = [{"url": RELIABILITY_URL, "extension": parts}]
    for attribute in sorted(record.attributes):
        coding = {"system": STATUS_SYSTEM, "code": attribute.value, "display": ATTRIBUTE_DISPLAYS[attribute]}
        extensions.append(
            {"url": RELIABILITY_URL, "extension": [{"url": "identityStatus", "valueCoding": coding}]}
        )
    return extensions


def _ins_identifier(ins: InsMatricule, use: str) -> dict[str, Any]:
    return {
        "use": use,
        "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": ins.kind.value}]},
        "system": ins.system,
        "value": ins.value,
    }


# -- Patient -> record ----------------------------------------------------------------------------


def patient_to_record(patient: dict[str, Any]) -> IdentityRecord:
    """The identity record a Patient holds; NotAnIdentity when strict traits are missing.

    A Patient written without identity extensions (e.g. through the plain FHIR API) reads as a
    provisional identity; a missing birthplace reads as unknown (99999).
    """
    where = f"Patient/{patient.get('id', '?')}"
    official = next((n for n in patient.get("name", []) if n.get("use") == "official"), None)
    if official is None or not official.get("family"):
        raise NotAnIdentity(f"{where} : pas de nom de naissance (name avec use = official)")
    birth_list = _extension_value(official, BIRTH_LIST_GIVEN_NAME_URL, "valueString")
    given = birth_list.split() if isinstance(birth_list, str) else official.get("given", [])
    if not given:
        raise NotAnIdentity(f"{where} : pas de prénom de naissance")
    gender = patient.get("gender")
    if gender not in {s.value for s in Sex}:
        raise NotAnIdentity(f"{where} : sexe {gender!r} absent ou non pris en charge (male, female, unknown)")
    if "birthDate" not in patient:
        raise NotAnIdentity(f"{where} : pas de date de naissance")
    traits = StrictTraits(
        official["family"], tuple(given), patient["birthDate"], Sex(gender), _birthplace_code(patient)
    )
    usual = next((n for n in patient.get("name", []) if n.get("use") == "usual"), None)
    ins, previous = _ins_identifiers(patient, where)
    status, attributes, details = _reliability(patient)
    version = patient.get("meta", {}).get("versionId")
    return IdentityRecord(
        traits=traits,
        used_name=usual.get("family") if usual else None,
        used_given_name=(usual.get("given") or [None])[0] if usual else None,
        status=status,
        attributes=attributes,
        ins=ins,
        previous_ins=previous,
        validation_document=_coding_code(details.get("validationMode")),
        validation_date=_date(details.get("validationDate")),
        insi_date=_date(details.get("dateCollection")),
        patient_id=patient.get("id"),
        version=int(version) if version is not None else None,
    )


def _extension_value(element: dict[str, Any], url: str, key: str) -> Any:
    for extension in element.get("extension", []):
        if extension.get("url") == url:
            return extension.get(key)
    return None


def _birthplace_code(patient: dict[str, Any]) -> str:
    address = _extension_value(patient, BIRTH_PLACE_URL, "valueAddress")
    if isinstance(address, dict):
        coding = _extension_value(address, INSEE_CODE_URL, "valueCoding")
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            return str(coding["code"])
    return UNKNOWN_BIRTHPLACE


def _ins_identifiers(
    patient: dict[str, Any], where: str
) -> tuple[InsMatricule | None, tuple[InsMatricule, ...]]:
    official: list[InsMatricule] = []
    old: list[InsMatricule] = []
    for identifier in patient.get("identifier", []):
        system = identifier.get("system")
        if system not in INS_KIND_BY_SYSTEM or "value" not in identifier:
            continue
        matricule = InsMatricule.from_system(system, identifier["value"])
        (old if identifier.get("use") == "old" else official).append(matricule)
    if len(official) > 1:
        raise NotAnIdentity(f"{where} : plusieurs matricules INS en usage (un seul attendu)")
    return (official[0] if official else None), tuple(old)


def _reliability(patient: dict[str, Any]) -> tuple[Status, frozenset[Attribute], dict[str, Any]]:
    status = Status.PROV
    details: dict[str, Any] = {}
    attributes: set[Attribute] = set()
    statuses = {s.value for s in Status}
    known_attributes = {a.value for a in Attribute}
    for extension in patient.get("extension", []):
        if extension.get("url") != RELIABILITY_URL:
            continue
        # Each sub-extension's url -> its value[x], whatever the type suffix.
        parts = {
            p.get("url"): next((v for k, v in p.items() if k.startswith("value")), None)
            for p in extension.get("extension", [])
        }
        code = _coding_code(parts.get("identityStatus"))
        if code in statuses:
            status, details = Status(code), parts
        elif code in known_attributes:
            attributes.add(Attribute(code))
    return status, frozenset(attributes), details


def _coding_code(coding: Any) -> str | None:
    if isinstance(coding, dict) and isinstance(coding.get("code"), str):
        return str(coding["code"])
    return None


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
