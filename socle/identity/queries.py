"""Reads of the identity domain: an identity record from its Patient, Patients carrying an INS.

Reads go through a `StoreSession`; nothing here writes. `load_identity(..., for_update=True)` locks the
Patient row (PostgreSQL) so that a `do_*` action reads and rewrites it without a lost update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from socle.errors import Gone, NotFound
from socle.identity.fhir import patient_to_record
from socle.identity.record import IdentityRecord, InsMatricule
from socle.search.engine import match_conditional
from socle.store.repository import StoreSession


@dataclass(frozen=True, slots=True)
class LoadedIdentity:
    """A Patient as read, the record it holds, and the version to write against (If-Match)."""

    patient: dict[str, Any]
    record: IdentityRecord
    version: int


def load_identity(session: StoreSession, patient_id: str, *, for_update: bool = False) -> LoadedIdentity:
    """The identity held by Patient/`patient_id`; NotFound, Gone or NotAnIdentity otherwise."""
    stored = session.current("Patient", patient_id, for_update=for_update)
    if stored is None and for_update:
        # PostgreSQL: when another writer commits while this query waits for the row lock, the
        # re-checked row no longer joins its old version row and the query returns nothing (and
        # locks nothing). A new statement sees the committed version and takes the lock.
        stored = session.current("Patient", patient_id, for_update=True)
    if stored is None:
        raise NotFound(f"Patient/{patient_id} inconnu")
    if stored.deleted:
        raise Gone(f"Patient/{patient_id} supprimé")
    patient = stored.json()
    return LoadedIdentity(patient, patient_to_record(patient), stored.version)


def patients_carrying_ins(session: StoreSession, ins: InsMatricule) -> list[str]:
    """Ids of the Patients (at most two) whose INS in use is `ins`: more than one is a duplicate."""
    found = match_conditional(session, "Patient", f"identifier={ins.system}|{ins.value}")
    ids = []
    for stored in found:
        record = patient_to_record(stored.json())
        # The search also matches former matricules (use "old"), which do not make a duplicate.
        if record.ins == ins:
            ids.append(stored.res_id)
    return ids
