"""Identity vigilance: potential duplicates among the stored Patients, and merging two identities.

Detection (`find_potential_duplicates`) never compares all pairs. Each Patient gets a few blocking
keys and only Patients sharing a key are compared:
- birth date + first letter of the birth name (the usual duplicate: same person typed twice);
- any INS matricule, in use or former (the same INS on two Patients is a duplicate or a collision);
- birth name + first birth first name + birth year (a day and month typed the wrong way round).
Patients are read by keyset pages of the store, so memory holds one small tuple per Patient, not
their JSON. Each candidate pair gets a score in [0, 1] and the French reasons behind it.

Merge (`do_merge_identities`) keeps everything: the merged Patient becomes inactive with a
`replaced-by` link to the kept one (which gets a `replaces` link back), and every resource that
refers to the merged Patient (found through the reference index, rewritten wherever the reference
sits in its JSON) gets a new version pointing at the kept one. All of it in the caller's session
(one transaction), checked before it ends: the resources that referred to either Patient are exactly
those that refer to the kept one afterwards.

    with store.session() as session:
        for candidate in find_potential_duplicates(session):
            print(candidate.patient_a, candidate.patient_b, candidate.score, candidate.reasons)
        do_merge_identities(session, ctx, kept_id="a", merged_id="b", reason="doublon créé aux urgences")
"""

from __future__ import annotations

import copy
import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from sqlalchemy import false, select

from socle.auth import policy
from socle.auth.context import RequestContext
from socle.errors import Gone, InvalidRequest, NotFound, SocleError, Unprocessable
from socle.fhir.fhirpath import split_reference
from socle.identity.fhir import (
    BIRTH_LIST_GIVEN_NAME_URL,
    BIRTH_PLACE_URL,
    INSEE_CODE_URL,
    patient_to_record,
)
from socle.identity.record import INS_KIND_BY_SYSTEM, IdentityRecord, Status
from socle.identity.traits import UNKNOWN_BIRTHPLACE
from socle.store import schema
from socle.store.repository import StoredResource, StoreSession

log = logging.getLogger(__name__)

# -- errors ---------------------------------------------------------------------------------------


class MergeRefused(Unprocessable):
    """A merge the identitovigilance rules forbid (422)."""


class MergeIncomplete(SocleError):
    """A merge that would lose a reference; the transaction is rolled back (500: a bug, not the
    caller's fault)."""

    status = 500
    default_code = "exception"


# -- what vigilance compares ----------------------------------------------------------------------

_LIGATURES = str.maketrans({"Œ": "OE", "œ": "OE", "Æ": "AE", "æ": "AE", "ß": "SS"})
_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "‘": "'", "`": "'"})


def name_key(raw: str) -> str:
    """A name as vigilance compares it: capitals, no diacritics, single spaces, none around - and '.

    Tolerant where `traits.normalize_name` refuses (digits, stray punctuation): a Patient written
    through the plain FHIR API must still be comparable.
    """
    text = unicodedata.normalize("NFKD", raw.translate(_LIGATURES).translate(_APOSTROPHES))
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    text = " ".join(text.split())
    return text.replace(" -", "-").replace("- ", "-").replace(" '", "'").replace("' ", "'")


@dataclass(frozen=True, slots=True)
class PatientTraits:
    """The traits of one stored Patient, read tolerantly (any Patient with a name and a birth date)."""

    patient_id: str
    birth_name: str
    given_names: tuple[str, ...]
    birth_date: str
    sex: str | None
    birthplace_code: str | None  # None when absent or unknown (99999)
    ins: str | None  # "system|value" of the INS in use
    old_ins: frozenset[str]
    replaced_by: str | None  # the Patient it was merged into
    linked: frozenset[str]  # Patients it links to (Patient.link), whatever the link type

    @property
    def first_given_name(self) -> str:
        return self.given_names[0] if self.given_names else ""

    @property
    def all_ins(self) -> frozenset[str]:
        """The INS in use and the former ones."""
        return self.old_ins | {self.ins} if self.ins is not None else self.old_ins


def patient_traits(patient: dict[str, Any]) -> PatientTraits | None:
    """What vigilance needs from a Patient; None when it has no name or no birth date to compare."""
    names = [n for n in patient.get("name", []) if isinstance(n, dict) and n.get("family")]
    if not names or not isinstance(patient.get("birthDate"), str):
        return None
    # The birth name is the official name (FR Core); without one, the first name written.
    name = next((n for n in names if n.get("use") == "official"), names[0])
    birth_list = next(
        (
            e.get("valueString")
            for e in name.get("extension", [])
            if e.get("url") == BIRTH_LIST_GIVEN_NAME_URL and isinstance(e.get("valueString"), str)
        ),
        None,
    )
    given = birth_list.split() if birth_list else [g for g in name.get("given", []) if isinstance(g, str)]
    ins, old = None, set()
    for identifier in patient.get("identifier", []):
        if identifier.get("system") in INS_KIND_BY_SYSTEM and isinstance(identifier.get("value"), str):
            key = f"{identifier['system']}|{identifier['value']}"
            if identifier.get("use") == "old":
                old.add(key)
            else:
                ins = key
    replaced_by, linked = None, set()
    for link in patient.get("link", []):
        target = split_reference(str((link.get("other") or {}).get("reference", "")))
        if target is None or target[0] != "Patient":
            continue
        linked.add(target[1])
        if link.get("type") == "replaced-by":
            replaced_by = target[1]
    return PatientTraits(
        patient_id=str(patient["id"]),
        birth_name=name_key(str(name["family"])),
        given_names=tuple(name_key(" ".join(given)).split()),
        birth_date=patient["birthDate"],
        sex=patient.get("gender"),
        birthplace_code=_birthplace(patient),
        ins=ins,
        old_ins=frozenset(old),
        replaced_by=replaced_by,
        linked=frozenset(linked),
    )


def _birthplace(patient: dict[str, Any]) -> str | None:
    for extension in patient.get("extension", []):
        if extension.get("url") != BIRTH_PLACE_URL:
            continue
        for part in (extension.get("valueAddress") or {}).get("extension", []):
            code = (part.get("valueCoding") or {}).get("code") if part.get("url") == INSEE_CODE_URL else None
            if isinstance(code, str) and code != UNKNOWN_BIRTHPLACE:
                return code
    return None


# -- scoring --------------------------------------------------------------------------------------

# How much each agreeing trait weighs; a trait unknown on either side is left out and the others are
# rescaled, so that a missing birthplace neither helps nor hurts.
WEIGHTS = {"birth_name": 0.30, "given_name": 0.20, "birth_date": 0.25, "sex": 0.10, "birthplace": 0.15}
# Half the weight when a trait is only close (one typing error).
CLOSE = 0.5
SAME_INS_FLOOR = 0.9  # the same INS on two Patients: a duplicate unless proven a collision
DIFFERENT_INS_FACTOR = 0.5  # two different INS: rather two people (homonyms)


@dataclass(frozen=True, slots=True)
class DuplicateCandidate:
    """Two Patients that may be one person: `patient_a` < `patient_b`, score in [0, 1], reasons."""

    patient_a: str
    patient_b: str
    score: float
    reasons: tuple[str, ...]


def edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (optimal string alignment): a swap of two letters counts one."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, previous2[j - 2] + 1)
            current.append(value)
        previous2, previous = previous, current
    return previous[-1]


def close_names(a: str, b: str) -> bool:
    """One typing error apart (two for long names), or one is a part of the other's compound name
    ("JEAN" and "JEAN-PIERRE")."""
    if not a or not b or a == b:
        return False
    allowed = 1 if max(len(a), len(b)) <= 8 else 2
    if edit_distance(a, b) <= allowed:
        return True
    return a in b.split("-") or b in a.split("-")


def close_dates(a: str, b: str) -> bool:
    """Same year and day and month swapped, or one digit apart (complete dates only)."""
    if len(a) != 10 or len(b) != 10 or a == b:
        return False
    if a[:4] == b[:4] and a[5:7] == b[8:10] and a[8:10] == b[5:7]:
        return True
    return sum(x != y for x, y in zip(a, b, strict=True)) == 1


def score_pair(a: PatientTraits, b: PatientTraits) -> tuple[float, tuple[str, ...]]:
    """The likelihood that two Patients are one person, and why (French reasons)."""
    earned, possible, reasons = 0.0, 0.0, []

    def weigh(trait: str, same: bool, close: bool, same_reason: str, close_reason: str) -> None:
        nonlocal earned, possible
        possible += WEIGHTS[trait]
        if same:
            earned += WEIGHTS[trait]
            reasons.append(same_reason)
        elif close:
            earned += WEIGHTS[trait] * CLOSE
            reasons.append(close_reason)

    weigh(
        "birth_name",
        a.birth_name == b.birth_name,
        close_names(a.birth_name, b.birth_name),
        "nom de naissance identique",
        "nom de naissance proche",
    )
    first_a, first_b = a.first_given_name, b.first_given_name
    weigh(
        "given_name", first_a == first_b, close_names(first_a, first_b), "prénom identique", "prénom proche"
    )
    weigh(
        "birth_date",
        a.birth_date == b.birth_date,
        close_dates(a.birth_date, b.birth_date),
        "même date de naissance",
        "date de naissance proche",
    )
    if a.sex is not None and b.sex is not None and "unknown" not in (a.sex, b.sex):
        weigh("sex", a.sex == b.sex, False, "même sexe", "")
    if a.birthplace_code is not None and b.birthplace_code is not None:
        weigh("birthplace", a.birthplace_code == b.birthplace_code, False, "même lieu de naissance", "")
    score = earned / possible if possible else 0.0
    if a.all_ins & b.all_ins:
        score = max(score, SAME_INS_FLOOR)
        reasons.insert(0, "même INS")
    elif a.ins is not None and b.ins is not None:
        score *= DIFFERENT_INS_FACTOR
        reasons.append("INS différents")
    return round(score, 3), tuple(reasons)


# -- detection ------------------------------------------------------------------------------------


def _blocking_keys(traits: PatientTraits) -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = [("date", traits.birth_date, traits.birth_name[:1])]
    keys.extend(("ins", ins) for ins in sorted(traits.all_ins))
    keys.append(("name", traits.birth_name, traits.first_given_name, traits.birth_date[:4]))
    return keys


def current_patients(session: StoreSession, *, page: int = 500) -> Iterator[StoredResource]:
    """Every current (not deleted) Patient, by keyset pages of `page`: memory stays flat."""
    session.flush()
    r = schema.resource
    last = 0
    while True:
        pks = [
            row[0]
            for row in session.connection.execute(
                select(r.c.pk)
                .where(r.c.res_type == "Patient", r.c.deleted == false(), r.c.pk > last)
                .order_by(r.c.pk)
                .limit(page)
            )
        ]
        if not pks:
            return
        found = session.fetch_current(pks)
        for pk in pks:
            if pk in found and found[pk].data is not None:
                yield found[pk]
        last = pks[-1]


def find_potential_duplicates(
    session: StoreSession, *, min_score: float = 0.6, max_block: int = 1000
) -> list[DuplicateCandidate]:
    """Pairs of current Patients that may be one person, best score first.

    Merged Patients (`replaced-by`) and pairs already linked to each other are left out. A block
    larger than `max_block` (a placeholder birth date such as 01/01/1900 shared by thousands) is
    skipped with a warning rather than compared pair by pair.
    """
    people: dict[str, PatientTraits] = {}
    blocks: dict[tuple[str, ...], list[str]] = {}
    for stored in current_patients(session):
        traits = patient_traits(stored.json())
        if traits is None or traits.replaced_by is not None:
            continue
        people[traits.patient_id] = traits
        for key in _blocking_keys(traits):
            blocks.setdefault(key, []).append(traits.patient_id)
    pairs: set[tuple[str, str]] = set()
    for key, ids in blocks.items():
        if len(ids) > max_block:
            log.warning("duplicate detection: block %s of %d Patients skipped", key[0], len(ids))
            continue
        pairs.update((min(x, y), max(x, y)) for x, y in combinations(ids, 2))
    found = []
    for first, second in pairs:
        a, b = people[first], people[second]
        if second in a.linked or first in b.linked:
            continue
        score, reasons = score_pair(a, b)
        if score >= min_score:
            found.append(DuplicateCandidate(first, second, score, reasons))
    return sorted(found, key=lambda c: (-c.score, c.patient_a, c.patient_b))


# -- merge ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    """What a merge did: what the audit trail will record."""

    kept_id: str
    merged_id: str
    reason: str
    repointed: tuple[str, ...]  # "Type/id" of every resource that now refers to the kept Patient


def _audit_merge(session: StoreSession, outcome: MergeOutcome) -> None:
    """Seam for the audit trail: write the AuditEvent of a merge in `session` (not yet built)."""


def repoint_references(resource: Any, merged_id: str, kept_id: str) -> tuple[Any, int]:
    """A copy of `resource` where every reference to Patient/`merged_id`, wherever it sits (nested,
    in contained resources, in extensions), names Patient/`kept_id`; and how many were rewritten.

    Relative and absolute references are rewritten in place ("…/fhir/Patient/b" -> "…/fhir/Patient/a");
    a versioned one ("Patient/b/_history/2") loses its version, which belongs to the merged Patient.
    """
    out = copy.deepcopy(resource)
    count = 0

    def walk(node: Any) -> None:
        nonlocal count
        if isinstance(node, dict):
            reference = node.get("reference")
            if isinstance(reference, str):
                target = split_reference(reference)
                if target is not None and target[0] == "Patient" and target[1] == merged_id:
                    start = reference.rfind(f"Patient/{merged_id}")
                    node["reference"] = f"{reference[:start]}Patient/{kept_id}"
                    count += 1
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(out)
    return out, count


def _referring(session: StoreSession, patient_id: str) -> set[int]:
    """Keys of the current resources whose indexed references point at Patient/`patient_id`."""
    ref, r = schema.idx_reference, schema.resource
    rows = session.connection.execute(
        select(ref.c.resource_pk)
        .distinct()
        .join(r, r.c.pk == ref.c.resource_pk)
        .where(ref.c.target_type == "Patient", ref.c.target_id == patient_id, r.c.deleted == false())
    )
    return {row[0] for row in rows}


def _load(session: StoreSession, patient_id: str) -> StoredResource:
    stored = session.current("Patient", patient_id, for_update=True)
    if stored is None:
        # PostgreSQL re-check after waiting for a lock: see queries.load_identity.
        stored = session.current("Patient", patient_id, for_update=True)
    if stored is None:
        raise NotFound(f"Patient/{patient_id} inconnu")
    if stored.deleted:
        raise Gone(f"Patient/{patient_id} supprimé")
    return stored


def _identity(patient: dict[str, Any]) -> IdentityRecord | None:
    try:
        return patient_to_record(patient)
    except SocleError:
        return None  # a Patient without strict traits can still be merged


def _with_link(patient: dict[str, Any], link_type: str, other_id: str) -> dict[str, Any]:
    out = copy.deepcopy(patient)
    out.setdefault("link", []).append({"other": {"reference": f"Patient/{other_id}"}, "type": link_type})
    return out


def do_merge_identities(
    session: StoreSession, ctx: RequestContext, kept_id: str, merged_id: str, reason: str
) -> MergeOutcome:
    """Merge Patient/`merged_id` into Patient/`kept_id` (see the module docstring); MergeRefused for a
    patient merged into itself, an already merged patient, or two qualified identities whose INS
    differ. The caller's session is the transaction: any error leaves the store unchanged."""
    if not reason or not reason.strip():
        raise InvalidRequest("fusion : le motif est obligatoire")
    if kept_id == merged_id:
        raise MergeRefused(f"fusion impossible : Patient/{kept_id} ne peut pas être fusionné avec lui-même")
    policy.check_interaction(ctx, "update", "Patient")
    for pid in (kept_id, merged_id):
        current = session.current("Patient", pid)
        if current is not None:  # an unknown patient gets the domain's own "inconnu" from _load
            policy.check_resource(session, ctx, "Patient", current.pk)
    # Lock both rows in one order, so that two merges of the same pair cannot deadlock.
    loaded = {pid: _load(session, pid) for pid in sorted((kept_id, merged_id))}
    kept, merged = loaded[kept_id], loaded[merged_id]
    kept_json, merged_json = kept.json(), merged.json()
    _refuse(kept_id, kept_json, merged_id, merged_json)

    both = {kept.pk, merged.pk}
    to_repoint = _referring(session, merged_id) - both
    expected = to_repoint | (_referring(session, kept_id) - both)
    repointed: list[str] = []
    pks = sorted(to_repoint)
    for start in range(0, len(pks), 500):
        found = session.fetch_current(pks[start : start + 500])
        for pk in pks[start : start + 500]:
            stored = found[pk]
            resource, count = repoint_references(stored.json(), merged_id, kept_id)
            if count:
                session.update(resource, stored.res_id, if_match=stored.version)
                repointed.append(f"{stored.res_type}/{stored.res_id}")

    retired = _with_link(merged_json, "replaced-by", kept_id)
    retired["active"] = False
    session.update(retired, merged_id, if_match=merged.version)
    session.update(_with_link(kept_json, "replaces", merged_id), kept_id, if_match=kept.version)

    session.flush()
    left = _referring(session, merged_id) - both
    now = _referring(session, kept_id) - both
    if left or now != expected:
        raise MergeIncomplete(
            f"fusion annulée : {len(expected)} ressources désignaient Patient/{merged_id} ou "
            f"Patient/{kept_id}, {len(now)} désignent Patient/{kept_id} après réécriture "
            f"({len(left)} désignent encore Patient/{merged_id})"
        )
    outcome = MergeOutcome(kept_id, merged_id, reason.strip(), tuple(repointed))
    _audit_merge(session, outcome)
    return outcome


def _refuse(kept_id: str, kept: dict[str, Any], merged_id: str, merged: dict[str, Any]) -> None:
    """The identitovigilance rules a merge must pass, one per condition."""
    for patient_id, patient in ((merged_id, merged), (kept_id, kept)):
        target = _replaced_by(patient)
        if target is not None:
            raise MergeRefused(
                f"fusion impossible : Patient/{patient_id} a déjà été fusionné dans Patient/{target}"
            )
    kept_record, merged_record = _identity(kept), _identity(merged)
    if (
        kept_record is not None
        and merged_record is not None
        and kept_record.status is Status.QUAL
        and merged_record.status is Status.QUAL
        and kept_record.ins != merged_record.ins
    ):
        kept_ins = kept_record.ins.value if kept_record.ins else "?"
        merged_ins = merged_record.ins.value if merged_record.ins else "?"
        raise MergeRefused(
            f"fusion refusée : Patient/{kept_id} et Patient/{merged_id} sont deux identités qualifiées "
            f"d'INS différents ({kept_ins} ≠ {merged_ins}) : deux personnes distinctes, à signaler à la "
            "cellule d'identitovigilance (collision)"
        )


def _replaced_by(patient: dict[str, Any]) -> str | None:
    for link in patient.get("link", []):
        target = split_reference(str((link.get("other") or {}).get("reference", "")))
        if link.get("type") == "replaced-by" and target is not None and target[0] == "Patient":
            return target[1]
    return None
