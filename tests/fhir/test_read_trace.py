"""A FHIR read over HTTP: its response leaves only once its trace is committed.

The endpoint does not hold a thread while the audit writer commits (`DeferredTrace`), so these
tests check the guarantee itself at the HTTP boundary: no response before the trace, and no data
at all when the trace cannot be written.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from socle.audit.trail import chain_length
from socle.audit.writer import AuditWriter
from socle.store.repository import FhirStore, StoreSession
from tests.factories import patient


def test_a_read_answers_only_once_its_trace_is_committed(client: TestClient, store: FhirStore) -> None:
    created = client.post("/fhir/Patient", json=patient(family="Attente")).json()
    writer: AuditWriter = store.audit_writer
    release = threading.Event()
    real_commit = writer.commit_batch

    def held_commit(batch: list[Any]) -> None:
        release.wait(timeout=10)
        real_commit(batch)

    writer.commit_batch = held_commit  # type: ignore[method-assign]
    answered: list[int] = []
    reader = threading.Thread(
        target=lambda: answered.append(client.get(f"/fhir/Patient/{created['id']}").status_code)
    )
    reader.start()
    reader.join(timeout=0.5)
    assert answered == [], "the response left before its trace was committed"
    traced_before = chain_length(store.engine)
    release.set()
    reader.join(timeout=10)
    assert answered == [200]
    assert chain_length(store.engine) == traced_before + 1


def test_a_read_whose_trace_cannot_be_written_returns_no_data(
    client: TestClient, store: FhirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = client.post("/fhir/Patient", json=patient(family="Secret")).json()
    real = StoreSession.create_built
    failing = {"on": True}

    def broken_once(self: StoreSession, *args: Any) -> int:
        if failing.pop("on", False):
            raise RuntimeError("disque plein")
        return real(self, *args)

    monkeypatch.setattr(StoreSession, "create_built", broken_once)
    response = client.get(f"/fhir/Patient/{created['id']}")
    assert response.status_code == 500
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "Secret" not in response.text
    # The failure itself is traced (the writer's next batch): the interaction left one AuditEvent.
