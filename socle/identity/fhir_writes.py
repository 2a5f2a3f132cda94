"""The identity domain's check on a Patient written through the FHIR API (create, update, patch,
bundle entries): the RNIV rules the `do_*` actions follow, applied to a whole Patient.

`review_patient_write` is the FHIR layer's write rule for Patient (`socle.fhir.write_rules`). It
compares the identity the new Patient carries with the stored one and returns the Patient to store:

- refused (422, naming the RNIV rule and the element): a status without its criteria (QUAL without
  an INS or without a high-trust document), a new INS matricule on an identity not retrieved via
  INSi, a claimed INSi retrieval without its date or with a matricule that contradicts the sex or
  birth date, an attribute the status forbids (a fictitious qualified identity), strict traits
  removed from a retrieved or validated identity; an INS another Patient carries is a 409;
- applied as the RNIV says: strict traits changed under the same matricule drop the INSi
  criterion (RECUP -> PROV, QUAL -> VALI), doubt cast on a validated identity drops its document
  criterion; the Patient is then rewritten with the resulting status;
- untouched: a Patient that carries no identity (no reliability extension, no INS identifier) and
  replaces none, or whose identity the rules leave as it is.

Lowering a status is allowed: losing a criterion never exposes anything. What the API cannot check
is that a claimed INSi retrieval really happened (the calling software queried INSi itself); the
claim must carry the evidence FR Core records (matricule, method, date).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from socle.errors import SocleError
from socle.identity import rules
from socle.identity.errors import DuplicateIns, NotAnIdentity
from socle.identity.fhir import (
    RELIABILITY_URL,
    apply_record,
    is_qualified,
    patient_to_record,
    stored_ins_identifiers,
)
from socle.identity.queries import patients_carrying_ins
from socle.identity.record import IdentityRecord, Status
from socle.store.repository import StoreSession

STATUS_ELEMENT = f"Patient.extension('{RELIABILITY_URL}')"
INS_ELEMENT = "Patient.identifier"
TRAITS_ELEMENT = "Patient"


@contextmanager
def _rule(name: str, element: str) -> Iterator[None]:
    """Re-raise a domain refusal as the API shows it: which RNIV rule, on which element."""
    try:
        yield
    except SocleError as error:
        raise type(error)(f"Règle RNIV « {name} » : {error.message}", expression=element) from error


def carries_identity(patient: dict[str, Any]) -> bool:
    """Whether a Patient says anything the RNIV governs: a reliability extension or an INS."""
    return any(
        e.get("url") == RELIABILITY_URL for e in patient.get("extension", []) if isinstance(e, dict)
    ) or bool(stored_ins_identifiers(patient))


def review_patient_write(
    session: StoreSession, patient: dict[str, Any], res_id: str | None
) -> dict[str, Any]:
    """The Patient to store in place of Patient/`res_id` (None: a new one), or a refusal."""
    stored = session.current("Patient", res_id, for_update=True) if res_id is not None else None
    current = stored.json() if stored is not None and not stored.deleted else None
    patient = _with_hidden_ins(patient, current)
    if not carries_identity(patient) and (current is None or not carries_identity(current)):
        return patient
    before = _stored_identity(current)
    if not carries_identity(patient) and (before is None or before.status is Status.PROV):
        return patient  # a provisional identity may become a plain Patient: nothing is lost
    with _rule("traits stricts", TRAITS_ELEMENT):
        try:
            claimed = patient_to_record(patient)
        except NotAnIdentity as error:
            if before is not None:
                raise NotAnIdentity(
                    f"une {rules.status_label(before.status)} garde ses traits stricts ({error.message})"
                ) from error
            raise
    with _rule("modification d'un trait strict", STATUS_ELEMENT):
        after = rules.drop_insi_on_trait_edit(before, claimed)
    with _rule("attributs de l'identité", STATUS_ELEMENT):
        after = rules.apply_added_attributes(before, after)
    with _rule("origine du matricule INS", INS_ELEMENT):
        rules.check_ins_origin(before, after)
    with _rule("statut et critères", STATUS_ELEMENT):
        rules.check_record(after)
    if after.ins is not None and (before is None or before.ins != after.ins):
        with _rule("unicité du matricule INS", INS_ELEMENT):
            others = [other for other in patients_carrying_ins(session, after.ins) if other != res_id]
            if others:
                raise DuplicateIns(
                    f"le matricule INS {after.ins.value} est déjà porté par Patient/{others[0]} : "
                    "doublon potentiel, à traiter par la cellule d'identitovigilance"
                )
    return patient if after == claimed else apply_record(patient, after)


def _with_hidden_ins(patient: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """`patient` with the stored INS identifiers the API left out when it served them.

    A Patient whose identity is not qualified is served without its INS matricule
    (`socle.fhir.exchange`): written back without it, it does not ask to remove the matricule.
    """
    identifiers = patient.get("identifier", [])
    if current is None or is_qualified(current) or not isinstance(identifiers, list):
        return patient
    hidden = stored_ins_identifiers(current)
    if not hidden or stored_ins_identifiers(patient):
        return patient
    return {**patient, "identifier": [*identifiers, *hidden]}


def _stored_identity(current: dict[str, Any] | None) -> IdentityRecord | None:
    """The identity the stored Patient holds; None for a new Patient or one that holds none."""
    if current is None or not carries_identity(current):
        return None
    try:
        return patient_to_record(current)
    except SocleError:
        return None  # stored before these rules, without strict traits: judged as a new identity
