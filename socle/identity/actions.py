"""Writes of the identity domain: each `do_*` loads the Patient, applies an RNIV rule, writes the new
version through the `StoreSession` (If-Match on the version it read) and returns the new record.

The caller owns the session (one transaction): an error raised here leaves the store unchanged when
the session rolls back. Every action is authorised by the same policy as the FHIR API and ends with
`_audit`, which writes its AuditEvent in the same transaction.

    with store.session() as session:
        record = do_create_identity(session, ctx, IdentityRecord(traits=...))
        record = do_verify_with_document(session, ctx, record.patient_id, "PA")   # PROV -> VALI
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from socle.audit.trail import AccessTrace, record
from socle.auth import policy
from socle.auth.context import RequestContext
from socle.clock import utc_now
from socle.identity import rules
from socle.identity.errors import DuplicateIns
from socle.identity.fhir import apply_record, patient_to_record, record_to_patient
from socle.identity.queries import LoadedIdentity, load_identity, patients_carrying_ins
from socle.identity.record import Attribute, IdentityRecord, InsiResult, InsMatricule
from socle.identity.traits import Sex
from socle.store.repository import StoreSession


@dataclass(frozen=True, slots=True)
class IdentityChange:
    """What one action did: what the audit trail will record."""

    action: str
    patient_id: str
    before: IdentityRecord | None
    after: IdentityRecord

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _audit(session: StoreSession, ctx: RequestContext, change: IdentityChange) -> None:
    """Write the AuditEvent of `change` in `session`'s transaction (no action without its trace).

    Called after every action, including those that changed nothing (a low-trust document shown),
    since identitovigilance wants to know what was attempted too.
    """
    interaction = "create" if change.before is None else "update"
    outcome = "modifiée" if change.changed else "inchangée"
    trace = AccessTrace(
        interaction=interaction,
        status=201 if change.before is None else 200,
        resource=f"Patient/{change.patient_id}",
        resource_type="Patient",
        patients=(change.patient_id,),
        description=f"identité {outcome} : {change.action}",
    )
    record(session, ctx, trace)


def _authorise(session: StoreSession, ctx: RequestContext, patient_id: str | None) -> None:
    """The same gatekeeper as the FHIR API: scopes on Patient, then the actor's reach."""
    policy.check_interaction(ctx, "create" if patient_id is None else "update", "Patient")
    current = session.current("Patient", patient_id) if patient_id is not None else None
    if current is not None:  # an unknown patient gets the domain's own "inconnu" right after
        policy.check_resource(session, ctx, "Patient", current.pk)


def _today() -> date:
    # The date of a check or an INSi call, as FR Core's validationDate / dateCollection record it.
    return utc_now().date()


def do_create_identity(session: StoreSession, ctx: RequestContext, record: IdentityRecord) -> IdentityRecord:
    """Store a new identity as a Patient (server-assigned id); refuses what the RNIV forbids and an
    INS another Patient already carries."""
    _authorise(session, ctx, None)
    rules.check_record(record)
    if record.ins is not None:
        _refuse_duplicate(session, record.ins, None)
    stored = session.create(record_to_patient(replace(record, patient_id=None)))
    created = patient_to_record(stored.json())
    _audit(session, ctx, IdentityChange("create_identity", stored.res_id, None, created))
    return created


def do_retrieve_from_insi(
    session: StoreSession,
    ctx: RequestContext,
    patient_id: str,
    insi_result: InsiResult,
    *,
    on: date | None = None,
) -> IdentityRecord:
    """Apply an INSi answer (PROV -> RECUP, VALI -> QUAL): INS traits and matricule recorded."""
    _authorise(session, ctx, patient_id)
    loaded = load_identity(session, patient_id, for_update=True)
    record = rules.retrieve_from_insi(loaded.record, insi_result, on=on or _today())
    if record.ins is not None:
        _refuse_duplicate(session, record.ins, patient_id)
    return _write(session, ctx, loaded, record, "retrieve_from_insi")


def do_verify_with_document(
    session: StoreSession, ctx: RequestContext, patient_id: str, document_type: str, *, on: date | None = None
) -> IdentityRecord:
    """Record an identity document check (PROV -> VALI, RECUP -> QUAL; low-trust: no change)."""
    _authorise(session, ctx, patient_id)
    loaded = load_identity(session, patient_id, for_update=True)
    record = rules.verify_with_document(loaded.record, document_type, on=on or _today())
    return _write(session, ctx, loaded, record, "verify_with_document")


def do_edit_strict_trait(
    session: StoreSession,
    ctx: RequestContext,
    patient_id: str,
    trait: str,
    value: str | Sex | tuple[str, ...] | list[str],
) -> IdentityRecord:
    """Change one strict trait; a real change drops the INSi criterion (RECUP -> PROV, QUAL -> VALI)."""
    _authorise(session, ctx, patient_id)
    loaded = load_identity(session, patient_id, for_update=True)
    record = rules.edit_strict_trait(loaded.record, trait, value)
    return _write(session, ctx, loaded, record, "edit_strict_trait")


def do_add_attribute(
    session: StoreSession, ctx: RequestContext, patient_id: str, attribute: Attribute
) -> IdentityRecord:
    """Flag the identity (douteuse, fictive, homonyme, doublon, collision) as the RNIV allows."""
    _authorise(session, ctx, patient_id)
    loaded = load_identity(session, patient_id, for_update=True)
    record = rules.add_attribute(loaded.record, attribute)
    return _write(session, ctx, loaded, record, "add_attribute")


def do_remove_attribute(
    session: StoreSession, ctx: RequestContext, patient_id: str, attribute: Attribute
) -> IdentityRecord:
    _authorise(session, ctx, patient_id)
    loaded = load_identity(session, patient_id, for_update=True)
    record = rules.remove_attribute(loaded.record, attribute)
    return _write(session, ctx, loaded, record, "remove_attribute")


def _write(
    session: StoreSession, ctx: RequestContext, loaded: LoadedIdentity, record: IdentityRecord, action: str
) -> IdentityRecord:
    patient_id = str(loaded.patient["id"])
    after = loaded.record
    if record != loaded.record:
        patient = apply_record(loaded.patient, record)
        stored, _ = session.update(patient, patient_id, if_match=loaded.version)
        after = patient_to_record(stored.json())
    _audit(session, ctx, IdentityChange(action, patient_id, loaded.record, after))
    return after


def _refuse_duplicate(session: StoreSession, ins: InsMatricule, patient_id: str | None) -> None:
    others = [other for other in patients_carrying_ins(session, ins) if other != patient_id]
    if others:
        raise DuplicateIns(
            f"le matricule INS {ins.value} est déjà porté par Patient/{others[0]} : doublon potentiel, "
            "à traiter par la cellule d'identitovigilance"
        )
