"""FHIR resources of a synthetic household: Patients (FR Core INS shape), legal representatives of
minors, and each person's clinical history as transaction Bundle entries.

A history is drawn from the person's own seeded generator (the same person always gets the same
history) and covers the last `history_years` of `data/clinical.json`:
- chronic conditions by age and sex prevalence (SNOMED CT + CIM-10), each with its treatment
  (MedicationRequest, WHO ATC code, prescribed by the médecin traitant) and lab follow-up;
- consultations (Encounter) with the médecin traitant, as often as people of that age go, each with
  vital signs (LOINC, UCUM units: weight and height for children, blood pressure and weight for
  adults) and the follow-up tests of their conditions; a specialist visit for some conditions;
- immunizations from the vaccination calendar (`vaccination.calendar_doses`), ATC codes.

References inside a household's bundle are `urn:uuid:` fullUrls, numbered (deterministic);
references to the directory use the professionals' ids (`Practitioner/rpps-…`).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

from socle.canonical import identifier_system
from socle.identity.fhir import record_to_patient
from socle.identity.record import IdentityRecord, Status
from socle.identity.rules import criteria_of
from socle.synthetic.people import Duplicate, Person, age_on
from socle.synthetic.professionals import Directory, Professional
from socle.synthetic.tables import (
    Clinical,
    ConditionKind,
    ObservationKind,
    Vaccine,
    clinical,
    vaccination_calendar,
)
from socle.synthetic.vaccination import calendar_doses

Resource = dict[str, Any]
Entry = dict[str, Any]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CIM10 = "http://hl7.org/fhir/sid/icd-10"
ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
TRE_R216_RELATION = "https://mos.esante.gouv.fr/NOS/TRE_R216-HL7RoleCode/FHIR/TRE-R216-HL7RoleCode"
TRE_R260_ROLE = "https://mos.esante.gouv.fr/NOS/TRE_R260-HL7RoleClass/FHIR/TRE-R260-HL7RoleClass"
PRESCRIPTION_ID_SYSTEM = identifier_system("prescription")  # no ANS system for the unique id yet
LOT_LETTERS = "ABCDEFGHKLMNPRSTUVWXYZ"


@dataclass
class Urns:
    """Numbered `urn:uuid:` fullUrls, unique within one bundle (and the same from run to run)."""

    count: int = 0

    def next(self) -> str:
        self.count += 1
        return f"urn:uuid:{uuid.UUID(int=self.count)}"


def _entry(full_url: str, resource: Resource) -> Entry:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _at(day: date, rng: random.Random) -> str:
    hour = rng.choice((8, 9, 10, 11, 14, 15, 16, 17, 18))
    return f"{day.isoformat()}T{hour:02d}:{rng.choice((0, 15, 30, 45)):02d}:00+01:00"


def _practitioner(professional: Professional) -> dict[str, str]:
    return {
        "reference": f"Practitioner/{professional.practitioner_id}",
        "display": professional_name(professional),
    }


def professional_name(professional: Professional) -> str:
    prefix = "Dr " if professional.profession.title else ""
    return f"{prefix}{professional.given} {professional.family}"


# -- Patient and legal representatives -------------------------------------------------------------


def identity_record(
    person: Person, *, traits_override: Any = None, status: Status | None = None
) -> IdentityRecord:
    """The record the store keeps for `person` (the INS only behind the INSi criterion)."""
    status = status or person.status
    criteria = criteria_of(status)
    insi = criteria.retrieved_via_insi
    document = person.validation_document if criteria.checked_with_document else None
    return IdentityRecord(
        traits=traits_override or person.traits,
        used_name=person.used_name,
        used_given_name=person.used_given_name,
        status=status,
        ins=person.ins if insi else None,
        previous_ins=person.previous_ins if insi else (),
        validation_document=document,
        validation_date=date(2024, 1, 1) + timedelta(days=person.index % 700) if document else None,
        insi_date=date(2024, 1, 1) + timedelta(days=person.index % 700) if insi else None,
    )


def patient_resource(
    person: Person, gp: Professional | None, record: IdentityRecord | None = None
) -> Resource:
    patient = record_to_patient(record or identity_record(person))
    patient["telecom"] = [{"system": "phone", "value": person.phone, "use": "mobile"}]
    if person.email:
        patient["telecom"].append({"system": "email", "value": person.email, "use": "home"})
    patient["address"] = [person.address.fhir()]
    if gp is not None:
        patient["generalPractitioner"] = [_practitioner(gp)]
    return patient


def related_person(child_url: str, parent: Person) -> Resource:
    """A parent as the legal representative of a minor (FR Core RelatedPerson slices)."""
    relation = "MTH" if parent.female else "FTH"
    name: dict[str, Any] = {
        "use": "official",
        "family": parent.traits.birth_name,
        "given": [parent.given_names[0]],
    }
    names = [name]
    if parent.used_name:
        names.append({"use": "usual", "family": parent.used_name})
    return {
        "resourceType": "RelatedPerson",
        "active": True,
        "patient": {"reference": child_url},
        "relationship": [
            {
                "coding": [
                    {
                        "system": TRE_R216_RELATION,
                        "code": relation,
                        "display": "Mère" if parent.female else "Père",
                    }
                ]
            },
            {"coding": [{"system": TRE_R260_ROLE, "code": "GUARD", "display": "Responsable légal"}]},
        ],
        "name": names,
        "telecom": [{"system": "phone", "value": parent.phone, "use": "mobile"}],
        "gender": parent.traits.sex.value,
        "birthDate": parent.birth.isoformat(),
        "address": [parent.address.fhir()],
    }


# -- history --------------------------------------------------------------------------------------


@dataclass
class History:
    """What one person's history produced (for tests and the seeding report)."""

    conditions: list[str] = field(default_factory=list)  # ConditionKind keys
    vaccines: list[tuple[str, int, date]] = field(default_factory=list)  # (vaccine, dose, date)
    encounters: int = 0


_CHILD_HEIGHT = ((0, 50.0), (1, 75.0), (2, 87.0), (3, 96.0), (4, 103.0), (5, 110.0), (6, 116.0), (8, 128.0),
                 (10, 138.0), (12, 150.0), (14, 160.0), (16, 167.0), (18, 170.0))  # fmt: skip


def _height(age_years: float, female: bool, rng: random.Random) -> float:
    if age_years >= 18:
        return rng.gauss(163.0 if female else 176.0, 6.5)
    for (a0, h0), (a1, h1) in pairwise(_CHILD_HEIGHT):
        if a0 <= age_years < a1:
            return (h0 + (h1 - h0) * (age_years - a0) / (a1 - a0)) * rng.gauss(1.0, 0.04)
    return 170.0


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _observation(
    kind: ObservationKind, subject: str, encounter: str, when: str, performer: Professional, value: Any
) -> Resource:
    resource: Resource = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": kind.category}]}],
        "code": {
            "coding": [{"system": LOINC, "code": kind.loinc, "display": kind.label}],
            "text": kind.label,
        },
        "subject": {"reference": subject},
        "encounter": {"reference": encounter},
        "effectiveDateTime": when,
        "performer": [_practitioner(performer)],
    }
    if kind.components:
        resource["component"] = [
            {
                "code": {"coding": [{"system": LOINC, "code": code, "display": label}]},
                "valueQuantity": _quantity(v, kind.unit),
            }
            for (code, label), v in zip(kind.components, value, strict=True)
        ]
    else:
        resource["valueQuantity"] = _quantity(value, kind.unit)
    return resource


def _vaccine_resource(
    vaccine: Vaccine, dose: int, given: date, subject: str, gp: Professional | None, rng: random.Random
) -> Resource:
    resource: Resource = {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {
            "coding": [{"system": ATC, "code": vaccine.atc, "display": vaccine.label}],
            "text": vaccine.product,
        },
        "patient": {"reference": subject},
        "occurrenceDateTime": given.isoformat(),
        "primarySource": True,
        "lotNumber": f"{rng.choice(LOT_LETTERS)}{rng.choice(LOT_LETTERS)}{rng.randrange(10000):04d}",
        "protocolApplied": [{"series": vaccine.series, "doseNumberPositiveInt": dose}],
    }
    if gp is not None:
        resource["performer"] = [{"actor": _practitioner(gp)}]
    return resource


def _condition(kind: ConditionKind, subject: str, onset: date, recorder: Professional | None) -> Resource:
    resource: Resource = {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]},
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "problem-list-item"}]}],
        "code": {
            "coding": [
                {"system": SNOMED, "code": kind.snomed, "display": kind.label},
                {"system": CIM10, "code": kind.cim10},
            ],
            "text": kind.label,
        },
        "subject": {"reference": subject},
        "onsetDateTime": onset.isoformat(),
        "recordedDate": onset.isoformat(),
    }
    if recorder is not None:
        resource["recorder"] = _practitioner(recorder)
    return resource


def _visit_dates(rng: random.Random, rate: float, start: date, end: date) -> list[date]:
    span = (end - start).days
    expected = rate * span / 365.25
    count = int(expected) + (rng.random() < expected - int(expected))
    return sorted(start + timedelta(days=rng.randrange(max(span, 1))) for _ in range(count))


def person_history(
    person: Person,
    subject: str,
    gp: Professional | None,
    directory: Directory,
    as_of: date,
    urns: Urns,
    *,
    seed: int,
) -> tuple[list[Entry], History]:
    """The Bundle entries of one person's history (their Patient is `subject`)."""
    rng = random.Random(f"socle-history:{seed}:{person.index}")
    table: Clinical = clinical()
    entries: list[Entry] = []
    history = History()
    age = person.age(as_of)
    female = person.female
    # Conditions first: they decide treatments, follow-up tests and specialist visits.
    conditions: list[tuple[ConditionKind, date]] = []
    for kind in table.conditions:
        if age >= kind.onset_min_age and rng.random() < kind.probability(age, female):
            onset_age = rng.randint(kind.onset_min_age, max(kind.onset_min_age, age))
            onset = min(date(person.birth.year + onset_age, rng.randint(1, 12), rng.randint(1, 28)), as_of)
            conditions.append((kind, onset))
    start = max(as_of - timedelta(days=round(365.25 * table.history_years)), person.birth)
    visits = _visit_dates(rng, table.visits(age), start, as_of) if gp is not None else []
    if conditions and gp is not None and not visits:
        visits = [as_of - timedelta(days=rng.randrange(1, 365))]  # a treated condition is followed
    last_encounter: str | None = None
    height = _height(min(age, 18) if age < 18 else 30, female, rng)
    bmi = rng.gauss(17.0 if age < 12 else 25.5, 2.0 if age < 12 else 4.0)
    hypertensive = any(k.key == "hypertension" for k, _ in conditions)
    for day in visits:
        encounter_url = urns.next()
        when = _at(day, rng)
        assert gp is not None
        entries.append(
            _entry(encounter_url, _encounter(subject, gp, when, "Consultation de médecine générale"))
        )
        history.encounters += 1
        last_encounter = encounter_url
        age_then = (day - person.birth).days / 365.25
        obs = table.observations
        if age_then < 18:
            child_height = _height(age_then, female, rng)
            weight = round(max(2.5, bmi * (child_height / 100) ** 2), 1)
            entries.append(
                _entry(
                    urns.next(),
                    _observation(obs["8302-2"], subject, encounter_url, when, gp, round(child_height, 1)),
                )
            )
            entries.append(
                _entry(urns.next(), _observation(obs["29463-7"], subject, encounter_url, when, gp, weight))
            )
        else:
            systolic = rng.gauss(138.0 if hypertensive else 112.0 + 0.45 * age_then, 11.0)
            diastolic = systolic * rng.gauss(0.62, 0.04)
            pressure = (round(systolic), round(diastolic))
            entries.append(
                _entry(urns.next(), _observation(obs["85354-9"], subject, encounter_url, when, gp, pressure))
            )
            if rng.random() < 0.3:
                weight = round(bmi * (height / 100) ** 2 * rng.gauss(1.0, 0.02), 1)
                entries.append(
                    _entry(
                        urns.next(), _observation(obs["29463-7"], subject, encounter_url, when, gp, weight)
                    )
                )
    # Follow-up tests: once, at the last visit.
    if last_encounter is not None and gp is not None:
        when = _at(visits[-1], rng)
        for code in dict.fromkeys(c for kind, _ in conditions for c in kind.follow_up):
            kind_obs = table.observations[code]
            low, high = kind_obs.value_range or (0.0, 1.0)
            value = round(rng.uniform(low, high), 2)
            entries.append(
                _entry(urns.next(), _observation(kind_obs, subject, last_encounter, when, gp, value))
            )
    prescription = f"{seed}-{person.index}"
    for kind, onset in conditions:
        condition = _condition(kind, subject, onset, gp)
        if last_encounter is not None:
            condition["encounter"] = {"reference": last_encounter}
        entries.append(_entry(urns.next(), condition))
        history.conditions.append(kind.key)
        if kind.medication is not None and gp is not None and visits:
            entries.append(
                _entry(
                    urns.next(),
                    _medication_request(kind, subject, gp, visits[-1], prescription, last_encounter),
                )
            )
        if kind.specialty and rng.random() < 0.3:
            specialist = directory.nearest(
                kind.specialty, person.address.latitude, person.address.longitude, 1
            )
            if specialist:
                day = as_of - timedelta(days=rng.randrange(1, 365))
                entries.append(
                    _entry(
                        urns.next(),
                        _encounter(subject, specialist[0], _at(day, rng), "Consultation spécialisée"),
                    )
                )
                history.encounters += 1
    calendar = vaccination_calendar()
    for dose in calendar_doses(person.birth, female, as_of, rng):
        vaccine = calendar.vaccines[dose.vaccine]
        entries.append(
            _entry(urns.next(), _vaccine_resource(vaccine, dose.dose, dose.given, subject, gp, rng))
        )
        history.vaccines.append((dose.vaccine, dose.dose, dose.given))
    return entries, history


def _encounter(subject: str, professional: Professional, when: str, label: str) -> Resource:
    end = when[:11] + f"{int(when[11:13]):02d}:{int(when[14:16]) + 14:02d}" + when[16:]
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": [{"text": label}],
        "subject": {"reference": subject},
        "participant": [{"individual": _practitioner(professional)}],
        "period": {"start": when, "end": end},
        "location": [{"location": {"reference": f"Location/{professional.site.id}"}}],
        "serviceProvider": {"reference": f"Organization/{professional.site.id}"},
    }


def _medication_request(
    kind: ConditionKind, subject: str, gp: Professional, day: date, prescription: str, encounter: str | None
) -> Resource:
    medication = kind.medication
    assert medication is not None
    resource: Resource = {
        "resourceType": "MedicationRequest",
        "groupIdentifier": {"system": PRESCRIPTION_ID_SYSTEM, "value": prescription},
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": ATC, "code": medication.atc}],
            "text": medication.label,
        },
        "subject": {"reference": subject},
        "authoredOn": day.isoformat(),
        "requester": _practitioner(gp),
        "reasonCode": [{"coding": [{"system": SNOMED, "code": kind.snomed, "display": kind.label}]}],
        "dosageInstruction": [{"text": medication.dosage}],
    }
    if encounter is not None:
        resource["encounter"] = {"reference": encounter}
    return resource


# -- a household ----------------------------------------------------------------------------------


def household_entries(
    members: list[Person],
    duplicates: list[Duplicate],
    gp: Professional | None,
    directory: Directory,
    as_of: date,
    urns: Urns,
    *,
    seed: int,
    people: dict[int, Person],
) -> tuple[list[Entry], dict[int, History]]:
    """Every entry of a household: Patients, legal representatives of minors, histories, and the
    duplicate records of its members."""
    entries: list[Entry] = []
    urls = {person.index: urns.next() for person in members}
    patients = {person.index: patient_resource(person, gp) for person in members}
    for person in members:
        entries.append(_entry(urls[person.index], patients[person.index]))
    for person in members:
        if person.age(as_of) >= 18:
            continue
        for parent_index in person.parents:
            parent = people[parent_index]
            related_url = urns.next()
            entries.append(_entry(related_url, related_person(urls[person.index], parent)))
            if parent_index in patients:
                links = patients[parent_index].setdefault("link", [])
                links.append({"other": {"reference": related_url}, "type": "seealso"})
    histories: dict[int, History] = {}
    for person in members:
        history_entries, histories[person.index] = person_history(
            person, urls[person.index], gp, directory, as_of, urns, seed=seed
        )
        entries.extend(history_entries)
    for duplicate in duplicates:
        person = people[duplicate.person]
        record = identity_record(person, traits_override=duplicate.traits, status=Status.PROV)
        url = urns.next()
        entries.append(_entry(url, patient_resource(person, gp, record)))
        if gp is not None:
            day = as_of - timedelta(days=30 + duplicate.person % 300)
            entries.append(
                _entry(
                    urns.next(),
                    _encounter(
                        url, gp, f"{day.isoformat()}T10:00:00+01:00", "Consultation de médecine générale"
                    ),
                )
            )
    return entries, histories


def household_gp(members: list[Person], directory: Directory, rng: random.Random) -> Professional | None:
    """The household's médecin traitant: one of the three GPs nearest to their home."""
    if not members:
        return None
    home = members[0].address
    candidates = directory.nearest("gp", home.latitude, home.longitude, 3)
    return rng.choice(candidates) if candidates else None


def age_at(person: Person, day: date) -> int:
    return age_on(person.birth, day)
