"""The RNIV identity status machine (pure): statuses, transitions, attributes, identity documents.

The rules are a table, `data/rniv.json`, loaded once by `rniv_table()`:

- four exclusive statuses from two criteria (RNIV volet 1, EXI SI 07):

  |                               | not retrieved via INSi | retrieved via INSi |
  |-------------------------------|------------------------|--------------------|
  | not checked against a document| PROV                   | RECUP              |
  | checked, high-trust document  | VALI                   | QUAL               |

- transitions: retrieving via INSi adds the INSi criterion (PROV->RECUP, VALI->QUAL); checking a
  high-trust document adds the document criterion (PROV->VALI, RECUP->QUAL), a low-trust one gives no
  criterion; editing a strict trait drops the INSi criterion (RECUP->PROV, QUAL->VALI);
- attributes and what they allow: a doubtful identity ("identité douteuse") cannot be validated
  (VALI/QUAL); marking a validated one doubtful drops its document criterion. A fictitious identity
  ("identité fictive") stays provisional: no INSi retrieval, no validation. Homonym, duplicate and
  collision flags constrain no status;
- identity documents (FR Core `validationMode` codes) and whether they are high-trust.

Each function takes an `IdentityRecord` and returns the new one, or raises `ForbiddenTransition` (or
`InsiMismatch`, `UnknownDocumentType`, `InvalidTrait`) with a French message. Dates are passed in:
these functions read no clock and no store.

    record = retrieve_from_insi(record, insi_result, on=date(2024, 5, 17))   # PROV -> RECUP
    record = verify_with_document(record, "PA", on=date(2024, 5, 17))        # RECUP -> QUAL
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from socle.identity.errors import ForbiddenTransition, InsiMismatch, InvalidTrait, UnknownDocumentType
from socle.identity.nir import nir_disagreements
from socle.identity.record import Attribute, IdentityRecord, InsiResult, Status
from socle.identity.traits import STRICT_TRAIT_NAMES, Sex

DATA_FILE = Path(__file__).resolve().parent / "data" / "rniv.json"

RETRIEVE_FROM_INSI = "retrieve_from_insi"
VERIFY_WITH_DOCUMENT = "verify_with_document"
EDIT_STRICT_TRAIT = "edit_strict_trait"
EVENTS = (RETRIEVE_FROM_INSI, VERIFY_WITH_DOCUMENT, EDIT_STRICT_TRAIT)
# What adding an attribute does when the current status is not allowed with it.
KEEP, REFUSE = "keep", "refuse"


@dataclass(frozen=True, slots=True)
class Criteria:
    """The two RNIV criteria a status is made of."""

    retrieved_via_insi: bool
    checked_with_document: bool


@dataclass(frozen=True, slots=True)
class StatusRule:
    label: str
    criteria: Criteria


@dataclass(frozen=True, slots=True)
class AttributeRule:
    label: str
    allowed_statuses: frozenset[Status]
    when_added: str  # "keep", "refuse", or the transition applied (e.g. "cast_doubt")


@dataclass(frozen=True, slots=True)
class DocumentType:
    code: str
    label: str
    high_trust: bool
    source: str


@dataclass(frozen=True, slots=True)
class RnivTable:
    statuses: dict[Status, StatusRule]
    transitions: dict[str, dict[Status, Status]]
    attributes: dict[Attribute, AttributeRule]
    documents: dict[str, DocumentType]


def load_rniv_table(raw: dict[str, Any]) -> RnivTable:
    """The table from its JSON form, checked: every status, event and attribute fully described."""
    statuses = {
        Status(code): StatusRule(
            entry["label"], Criteria(bool(entry["retrieved_via_insi"]), bool(entry["checked_with_document"]))
        )
        for code, entry in raw["statuses"].items()
    }
    transitions = {
        event: {Status(before): Status(after) for before, after in moves.items()}
        for event, moves in raw["transitions"].items()
    }
    attributes = {
        Attribute(code): AttributeRule(
            entry["label"], frozenset(Status(s) for s in entry["allowed_statuses"]), entry["when_added"]
        )
        for code, entry in raw["attributes"].items()
    }
    documents = {
        code: DocumentType(code, entry["label"], bool(entry["high_trust"]), entry["source"])
        for code, entry in raw["documents"].items()
    }
    table = RnivTable(statuses, transitions, attributes, documents)
    _check_table(table)
    return table


def _check_table(table: RnivTable) -> None:
    if set(table.statuses) != set(Status):
        raise ValueError("the RNIV table must describe the four statuses")
    if len({rule.criteria for rule in table.statuses.values()}) != len(Status):
        raise ValueError("each status must have its own pair of criteria")
    for event in EVENTS:
        if event not in table.transitions:
            raise ValueError(f"the RNIV table has no transitions for {event}")
    for event, moves in table.transitions.items():
        if set(moves) != set(Status):
            raise ValueError(f"transitions {event} must say where each status goes")
    if set(table.attributes) != set(Attribute):
        raise ValueError("the RNIV table must describe every attribute")
    for code, rule in table.attributes.items():
        if rule.when_added not in (KEEP, REFUSE) and rule.when_added not in table.transitions:
            raise ValueError(f"attribute {code}: unknown effect {rule.when_added}")


@cache
def rniv_table() -> RnivTable:
    with DATA_FILE.open(encoding="utf-8") as handle:
        return load_rniv_table(json.load(handle))


# -- statuses and criteria ------------------------------------------------------------------------


def status_of(criteria: Criteria) -> Status:
    """The status two criteria make (PROV, RECUP, VALI or QUAL)."""
    for status, rule in rniv_table().statuses.items():
        if rule.criteria == criteria:
            return status
    raise AssertionError(f"no status for {criteria}")  # the table check makes this unreachable


def criteria_of(status: Status) -> Criteria:
    return rniv_table().statuses[status].criteria


def status_label(status: Status) -> str:
    return rniv_table().statuses[status].label


def document_type(code: str) -> DocumentType:
    found = rniv_table().documents.get(code)
    if found is None:
        known = ", ".join(sorted(rniv_table().documents))
        raise UnknownDocumentType(f"type de document d'identité inconnu : {code} (attendu : {known})")
    return found


def check_record(record: IdentityRecord) -> None:
    """What a record must satisfy before it is stored: the RNIV's status/attribute combinations, an
    INS behind the INSi criterion, a high-trust document behind the document criterion."""
    criteria = criteria_of(record.status)
    if criteria.retrieved_via_insi and record.ins is None:
        raise ForbiddenTransition(f"{status_label(record.status)} sans matricule INS : l'INS vient de l'INSi")
    if criteria.checked_with_document:
        if record.validation_document is None:
            raise ForbiddenTransition(f"{status_label(record.status)} sans document d'identité vérifié")
        document = document_type(record.validation_document)
        if not document.high_trust:
            raise ForbiddenTransition(
                f"{status_label(record.status)} : « {document.label} » n'est pas un dispositif "
                "d'identification à haut niveau de confiance"
            )
    for attribute in sorted(record.attributes):
        rule = rniv_table().attributes[attribute]
        if record.status not in rule.allowed_statuses:
            raise ForbiddenTransition(
                f"interdit par le RNIV : une identité {rule.label} ne peut pas avoir le statut "
                f"« {status_label(record.status)} »"
            )


def _move(record: IdentityRecord, event: str, **changes: Any) -> IdentityRecord:
    """Apply one transition of the table, refusing a target status an attribute forbids."""
    target = rniv_table().transitions[event][record.status]
    attributes: frozenset[Attribute] = changes.get("attributes", record.attributes)
    for attribute in sorted(attributes):
        rule = rniv_table().attributes[attribute]
        if target not in rule.allowed_statuses:
            raise ForbiddenTransition(
                f"transition interdite par le RNIV : une identité {rule.label} ne peut pas devenir "
                f"« {status_label(target)} »"
            )
    criteria = criteria_of(target)
    # A criterion the new status no longer has takes its evidence with it.
    if not criteria.retrieved_via_insi:
        changes["insi_date"] = None
    if not criteria.checked_with_document:
        changes.update(validation_document=None, validation_date=None)
    return replace(record, status=target, **changes)


# -- transitions ----------------------------------------------------------------------------------


def retrieve_from_insi(record: IdentityRecord, result: InsiResult, *, on: date) -> IdentityRecord:
    """Apply an INSi answer: the INS traits replace the local ones, the INS is recorded.

    PROV -> RECUP, VALI -> QUAL (RECUP and QUAL stay). A validated identity is only qualified when the
    INSi traits are those checked on the document (the RNIV's "contrôle de cohérence"); otherwise
    InsiMismatch, and nothing changes. A fictitious identity is never retrieved.
    """
    ins, traits = result.found()
    mismatch = nir_disagreements(ins.parsed(), sex=traits.sex, birth_date=traits.birth_date)
    if mismatch:
        raise InsiMismatch(f"matricule INS incohérent avec les traits INSi : {' ; '.join(mismatch)}")
    if criteria_of(record.status).checked_with_document:
        differences = record.traits.differences(traits)
        if differences:
            raise InsiMismatch(
                "traits INSi incohérents avec l'identité validée (local ≠ INSi) : " + " ; ".join(differences)
            )
    previous = tuple(p for p in record.previous_ins if p != ins)
    if record.ins is not None and record.ins != ins:
        previous = (*previous, record.ins)
    return _move(record, RETRIEVE_FROM_INSI, traits=traits, ins=ins, previous_ins=previous, insi_date=on)


def verify_with_document(record: IdentityRecord, document_code: str, *, on: date) -> IdentityRecord:
    """Record that the traits were checked against an identity document.

    A high-trust document adds the document criterion (PROV -> VALI, RECUP -> QUAL); a low-trust one
    (driving licence, Carte Vitale...) gives no criterion: the record comes back unchanged. A doubtful
    or fictitious identity cannot be validated.
    """
    document = document_type(document_code)
    if not document.high_trust:
        return record
    return _move(record, VERIFY_WITH_DOCUMENT, validation_document=document.code, validation_date=on)


def edit_strict_trait(
    record: IdentityRecord, trait: str, value: str | Sex | tuple[str, ...] | list[str]
) -> IdentityRecord:
    """Change one strict trait; a real change drops the INSi criterion (RECUP -> PROV, QUAL -> VALI).

    `trait` is one of birth_name, birth_given_names, birth_date, sex, birthplace_code. Writing the
    same value (after normalization) changes nothing.
    """
    if trait not in STRICT_TRAIT_NAMES:
        raise InvalidTrait(f"trait strict inconnu : {trait} (attendu : {', '.join(STRICT_TRAIT_NAMES)})")
    change: dict[str, Any] = {trait: tuple(value) if isinstance(value, list) else value}
    traits = replace(record.traits, **change)
    if traits == record.traits:
        return record
    return _move(record, EDIT_STRICT_TRAIT, traits=traits)


def add_attribute(record: IdentityRecord, attribute: Attribute) -> IdentityRecord:
    """Flag the identity (douteuse, fictive, homonyme, doublon, collision) as the RNIV table says.

    When the current status is not allowed with the attribute, the table decides: apply a transition
    (a doubtful validated identity loses its document criterion) or refuse (a retrieved or validated
    identity cannot be declared fictitious).
    """
    attribute = Attribute(attribute)
    if attribute in record.attributes:
        return record
    rule = rniv_table().attributes[attribute]
    attributes = record.attributes | {attribute}
    if record.status in rule.allowed_statuses:
        return replace(record, attributes=attributes)
    if rule.when_added == REFUSE:
        raise ForbiddenTransition(
            f"transition interdite par le RNIV : une {status_label(record.status)} ne peut pas être "
            f"déclarée {rule.label}"
        )
    return _move(record, rule.when_added, attributes=attributes)


def remove_attribute(record: IdentityRecord, attribute: Attribute) -> IdentityRecord:
    """Lift a flag; the status does not change (a lifted doubt does not re-validate an identity)."""
    return replace(record, attributes=record.attributes - {Attribute(attribute)})


# -- an identity written whole (by another door than the transitions above) -----------------------
# The FHIR API receives a whole Patient, not an RNIV event. These say what such a write may store,
# comparing the identity it carries (`after`) with the one stored (`before`, None for a new one).


def drop_insi_on_trait_edit(before: IdentityRecord | None, after: IdentityRecord) -> IdentityRecord:
    """Strict traits changed under the same INS matricule are a local edit, not what INSi returned:
    the INSi criterion goes, as with `edit_strict_trait` (RECUP -> PROV, QUAL -> VALI). A different
    matricule is another retrieval, judged by `check_ins_origin` and `check_record`."""
    if before is None or after.traits == before.traits or after.ins != before.ins:
        return after
    if not criteria_of(after.status).retrieved_via_insi:
        return after
    return _move(after, EDIT_STRICT_TRAIT)


def apply_added_attributes(before: IdentityRecord | None, after: IdentityRecord) -> IdentityRecord:
    """Each attribute `after` has and `before` had not is added as `add_attribute` does: a doubtful
    validated identity loses its document criterion; a fictitious retrieved one is refused."""
    added = after.attributes - (before.attributes if before is not None else frozenset())
    record = replace(after, attributes=after.attributes - added)
    for attribute in sorted(added):
        record = add_attribute(record, attribute)
    return record


def check_ins_origin(before: IdentityRecord | None, after: IdentityRecord) -> None:
    """An INS matricule comes from INSi. A new one needs the INSi criterion (RECUP or QUAL): on any
    other identity it would expose an unverified matricule. A gained INSi criterion (or a new
    matricule) is a claimed INSi retrieval: it needs its date and a matricule that agrees with the
    sex and birth date."""
    criteria = criteria_of(after.status)
    new_ins = after.ins is not None and (before is None or after.ins != before.ins)
    if new_ins and not criteria.retrieved_via_insi:
        assert after.ins is not None
        raise ForbiddenTransition(
            f"matricule INS {after.ins.value} sur une {status_label(after.status)} : seul le "
            "téléservice INSi fournit l'INS (statut « identité récupérée » ou « identité qualifiée »)"
        )
    gained = criteria.retrieved_via_insi and (
        before is None or not criteria_of(before.status).retrieved_via_insi
    )
    if not (new_ins or gained) or after.ins is None:
        return  # nothing claimed; an INSi criterion without a matricule is check_record's refusal
    if after.insi_date is None:
        raise ForbiddenTransition(
            f"{status_label(after.status)} sans date de récupération INSi (dateCollection)"
        )
    mismatch = nir_disagreements(after.ins.parsed(), sex=after.traits.sex, birth_date=after.traits.birth_date)
    if mismatch:
        raise InsiMismatch(f"matricule INS incohérent avec les traits : {' ; '.join(mismatch)}")
