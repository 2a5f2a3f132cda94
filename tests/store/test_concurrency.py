"""Concurrent writers: optimistic locking holds and a lost race is a clean 409/412, never a half-write."""

from __future__ import annotations

import threading
from typing import Any

from socle.errors import Conflict, PreconditionFailed, SocleError
from socle.store.repository import FhirStore
from tests.factories import patient


def run_together(*actions: Any) -> list[object]:
    """Run the actions at the same instant in threads; return each one's result or exception."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def worker(index: int, action: Any) -> None:
        barrier.wait()
        try:
            results[index] = action()
        except Exception as exc:  # collected and asserted by the test
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_updates_with_the_same_if_match_one_wins(store: FhirStore) -> None:
    with store.session() as session:
        created = session.create(patient()).json()

    def update(gender: str) -> Any:
        with store.session() as session:
            return session.update({**created, "gender": gender}, created["id"], if_match=1)

    results = run_together(lambda: update("male"), lambda: update("female"))
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1 and len(losers) == 1
    assert isinstance(losers[0], PreconditionFailed)
    with store.session(readonly=True) as session:
        current = session.read("Patient", created["id"])
    assert current.version == 2


def test_concurrent_create_at_the_same_client_id_gives_one_resource(store: FhirStore) -> None:
    def put(family: str) -> Any:
        with store.session() as session:
            return session.update({**patient(family), "id": "same-id"}, "same-id")

    results = run_together(lambda: put("A"), lambda: put("B"), lambda: put("C"))
    failures = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(f, Conflict | PreconditionFailed) for f in failures), failures
    with store.session(readonly=True) as session:
        current = session.read("Patient", "same-id")
        history = session.history("Patient", "same-id")
    assert current.version == len(history) == len(results) - len(failures)


def test_many_concurrent_creates_all_land(store: FhirStore) -> None:
    def create(i: int) -> Any:
        with store.session() as session:
            return session.create(patient(f"C{i}")).res_id

    results = run_together(*[lambda i=i: create(i) for i in range(8)])
    assert not [r for r in results if isinstance(r, SocleError | Exception)]
    with store.session(readonly=True) as session:
        assert len(session.history("Patient", limit=100)) == 8


def test_concurrent_updates_without_if_match_all_become_versions(store: FhirStore) -> None:
    with store.session() as session:
        created = session.create(patient()).json()

    def update(family: str) -> Any:
        with store.session() as session:
            return session.update({**created, "name": [{"family": family}]}, created["id"])

    results = run_together(*[lambda f=f: update(f) for f in ("A", "B", "C", "D")])
    assert not [r for r in results if isinstance(r, Exception)], results
    with store.session(readonly=True) as session:
        assert session.read("Patient", created["id"]).version == 5
