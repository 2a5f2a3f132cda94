"""Identity actions through the store (SQLite and PostgreSQL): each writes one new Patient version."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import date

import orjson
import pytest

from socle.auth.context import RequestContext
from socle.errors import NotFound, PreconditionFailed
from socle.identity import actions
from socle.identity.actions import (
    do_add_attribute,
    do_create_identity,
    do_edit_strict_trait,
    do_retrieve_from_insi,
    do_verify_with_document,
)
from socle.identity.errors import DuplicateIns, ForbiddenTransition
from socle.identity.fhir import patient_to_record
from socle.identity.queries import load_identity
from socle.identity.record import Attribute, IdentityRecord, Status
from socle.search.engine import search_bundle
from socle.store.repository import FhirStore
from tests.identity.factories import JEANNE_NIR, OPERATOR, insi_found, jeanne_ins, provisional_jeanne

DAY = date(2024, 5, 17)


def create(store: FhirStore, record: IdentityRecord | None = None) -> IdentityRecord:
    with store.session() as session:
        return do_create_identity(session, OPERATOR, record or provisional_jeanne())


def stored(store: FhirStore, patient_id: str) -> tuple[IdentityRecord, int]:
    with store.session(readonly=True) as session:
        current = session.read("Patient", patient_id)
        return patient_to_record(current.json()), current.version


def test_a_new_identity_is_a_provisional_patient(store: FhirStore) -> None:
    created = create(store)
    assert created.patient_id is not None
    assert (created.status, created.version) == (Status.PROV, 1)
    assert stored(store, created.patient_id) == (created, 1)


def test_provisional_to_qualified_one_version_per_step(store: FhirStore) -> None:
    patient_id = create(store).patient_id
    assert patient_id is not None
    with store.session() as session:
        recup = do_retrieve_from_insi(session, OPERATOR, patient_id, insi_found(), on=DAY)
    with store.session() as session:
        qual = do_verify_with_document(session, OPERATOR, patient_id, "PA", on=DAY)
    assert (recup.status, recup.version) == (Status.RECUP, 2)
    assert (qual.status, qual.version) == (Status.QUAL, 3)
    assert stored(store, patient_id) == (qual, 3)
    with store.session(readonly=True) as session:
        assert len(session.history("Patient", patient_id)) == 3


def test_editing_the_birth_name_of_a_qualified_identity_stores_it_validated(store: FhirStore) -> None:
    patient_id = create(store).patient_id
    assert patient_id is not None
    with store.session() as session:
        do_retrieve_from_insi(session, OPERATOR, patient_id, insi_found(), on=DAY)
        do_verify_with_document(session, OPERATOR, patient_id, "CN", on=DAY)
        edited = do_edit_strict_trait(session, OPERATOR, patient_id, "birth_name", "Martin-Durand")
    assert (edited.status, edited.traits.birth_name, edited.version) == (Status.VALI, "MARTIN-DURAND", 4)


def test_a_low_trust_document_writes_no_new_version(store: FhirStore) -> None:
    patient_id = create(store).patient_id
    assert patient_id is not None
    with store.session() as session:
        same = do_verify_with_document(session, OPERATOR, patient_id, "PC", on=DAY)
    assert (same.status, same.version) == (Status.PROV, 1)


def test_a_forbidden_transition_leaves_the_store_unchanged(store: FhirStore) -> None:
    patient_id = create(store).patient_id
    assert patient_id is not None
    with pytest.raises(ForbiddenTransition), store.session() as session:
        do_add_attribute(session, OPERATOR, patient_id, Attribute.FICTITIOUS)
        do_retrieve_from_insi(session, OPERATOR, patient_id, insi_found(), on=DAY)
    record, version = stored(store, patient_id)
    assert (record.status, record.attributes, version) == (Status.PROV, frozenset(), 1)


def test_an_ins_already_carried_by_another_patient_is_a_duplicate(store: FhirStore) -> None:
    first = create(store).patient_id
    second = create(store).patient_id
    assert first is not None and second is not None
    with store.session() as session:
        do_retrieve_from_insi(session, OPERATOR, first, insi_found(), on=DAY)
    with pytest.raises(DuplicateIns) as caught, store.session() as session:
        do_retrieve_from_insi(session, OPERATOR, second, insi_found(), on=DAY)
    assert caught.value.status == 409
    assert caught.value.message == (
        f"le matricule INS {JEANNE_NIR} est déjà porté par Patient/{first} : doublon potentiel, "
        "à traiter par la cellule d'identitovigilance"
    )
    # Retrieving the same INS again for the same Patient is a re-verification, not a duplicate.
    with store.session() as session:
        assert do_retrieve_from_insi(session, OPERATOR, first, insi_found(), on=DAY).status is Status.RECUP


def test_the_patient_is_found_by_its_ins(store: FhirStore) -> None:
    patient_id = create(store).patient_id
    assert patient_id is not None
    with store.session() as session:
        do_retrieve_from_insi(session, OPERATOR, patient_id, insi_found(), on=DAY)
    ins = jeanne_ins()
    with store.session(readonly=True) as session:
        bundle = search_bundle(
            session, "Patient", [("identifier", f"{ins.system}|{ins.value}")], "http://x/fhir"
        )
    assert [e["fullUrl"] for e in bundle["entry"]] == [f"http://x/fhir/Patient/{patient_id}"]


def test_an_action_writes_against_the_version_it_read(store: FhirStore) -> None:
    patient_id = create(store).patient_id
    assert patient_id is not None
    with pytest.raises(PreconditionFailed), store.session() as session:
        loaded = load_identity(session, patient_id)
        session.update({**loaded.patient, "active": True}, patient_id)  # someone else's write
        actions._write(session, OPERATOR, loaded, replace(loaded.record, used_name="Durand"), "test")


def test_two_actions_at_the_same_instant_both_apply(store: FhirStore) -> None:
    patient_id = create(store).patient_id
    assert patient_id is not None

    def run(action: Callable[..., IdentityRecord], *args: object) -> Callable[[], None]:
        def go() -> None:
            with store.session() as session:
                action(session, OPERATOR, patient_id, *args)

        return go

    threads = [
        threading.Thread(target=run(do_verify_with_document, "PA")),
        threading.Thread(target=run(do_add_attribute, Attribute.HOMONYM)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    record, version = stored(store, patient_id)
    assert (record.status, record.attributes, version) == (Status.VALI, frozenset({Attribute.HOMONYM}), 3)


def test_an_unknown_patient_is_not_found(store: FhirStore) -> None:
    with pytest.raises(NotFound) as caught, store.session() as session:
        do_verify_with_document(session, OPERATOR, "nobody", "PA")
    assert caught.value.message == "Patient/nobody inconnu"


def test_every_identity_action_leaves_its_audit_event(store: FhirStore) -> None:
    patient_id = create(store).patient_id
    assert patient_id is not None
    with store.session() as session:
        do_verify_with_document(session, OPERATOR, patient_id, "PA", on=DAY)
    with store.session(readonly=True) as session:
        bundle = search_bundle(session, "AuditEvent", [("patient", patient_id)], "http://x/fhir")
    events = [orjson.loads(orjson.dumps(e["resource"])) for e in bundle["entry"]]  # entries hold raw bytes
    assert sorted(e["subtype"][0]["code"] for e in events) == ["create", "update"]
    assert any("verify_with_document" in e.get("outcomeDesc", "") for e in events)


def test_an_actor_without_reach_cannot_act_on_an_identity(store: FhirStore) -> None:
    patient_id = create(store).patient_id
    assert patient_id is not None
    stranger = RequestContext(
        actor_type="practitioner",
        actor_id="Practitioner/unrelated",
        display="Dr Sans Lien",
        scopes=frozenset({"user/*.cruds"}),
    )
    with pytest.raises(NotFound), store.session() as session:
        do_verify_with_document(session, stranger, patient_id, "PA", on=DAY)
    assert stored(store, patient_id)[1] == 1
