"""Projections: the store hands each one the writes of its types, at flush, in the writer's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select

from socle.store import schema
from socle.store.projections import Change
from socle.store.repository import FhirStore


class Recorder:
    """A projection that remembers what it was given, and what the database held at that moment."""

    name = "recorder"
    resource_types = frozenset({"Patient"})

    def __init__(self) -> None:
        self.calls: list[list[Change]] = []
        self.versions_seen: list[int] = []

    def apply(self, connection: Connection, changes: Sequence[Change]) -> None:
        self.calls.append(list(changes))
        count = select(func.count()).select_from(schema.resource_version)
        self.versions_seen.append(int(connection.execute(count).scalar_one()))

    def rebuild(self, connection: Connection) -> int:
        return 0


def patient(family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family}]}


@pytest.fixture
def recorded(engine: Engine) -> tuple[FhirStore, Recorder]:
    recorder = Recorder()
    return FhirStore(engine, projections=[recorder]), recorder


def test_a_projection_gets_the_changes_of_its_types_once_their_rows_are_written(
    recorded: tuple[FhirStore, Recorder],
) -> None:
    store, recorder = recorded
    with store.session() as session:
        first = session.create(patient("Martin"))
        second = session.create(patient("Durand"))
        session.create({"resourceType": "Observation", "status": "final", "code": {"text": "poids"}})
    (changes,) = recorder.calls  # one flush, at commit: the buffered creates together
    assert [(c.res_id, c.created) for c in changes] == [(first.res_id, True), (second.res_id, True)]
    assert recorder.versions_seen == [3]  # the session's rows were in the database already
    with store.session() as session:
        session.update({**patient("Martin-Dupont"), "id": first.res_id}, first.res_id)
    body = recorder.calls[-1][0].body
    assert body is not None and body["name"] == [{"family": "Martin-Dupont"}]
    assert not recorder.calls[-1][0].created
    with store.session() as session:
        session.delete("Patient", first.res_id)
    assert [(c.body, c.created) for c in recorder.calls[-1]] == [(None, False)]


def test_an_unchanged_update_or_a_type_nobody_watches_calls_no_projection(
    recorded: tuple[FhirStore, Recorder],
) -> None:
    store, recorder = recorded
    with store.session() as session:
        created = session.create(patient("Martin"))
    with store.session() as session:
        session.update({**patient("Martin"), "id": created.res_id}, created.res_id)
        session.create({"resourceType": "Observation", "status": "final", "code": {"text": "poids"}})
    assert len(recorder.calls) == 1
    assert store.projections.watching("Observation") == ()


def test_rebuilding_an_unknown_projection_is_refused(recorded: tuple[FhirStore, Recorder]) -> None:
    store, _ = recorded
    assert store.rebuild_projections() == {"recorder": 0}
    with pytest.raises(KeyError):
        store.rebuild_projections("nothing")
