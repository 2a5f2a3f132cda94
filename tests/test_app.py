"""The app as the server builds it: process-wide settings applied once at start-up."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from socle.app import create_app
from socle.config import Settings
from socle.store.repository import FhirStore


@pytest.fixture
def restored_switch_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("restored_switch_interval")
def test_the_server_sets_python_default_switch_interval_unless_told_otherwise(store: FhirStore) -> None:
    sys.setswitchinterval(0.001)
    create_app(Settings(database_url="sqlite://"), store)
    assert sys.getswitchinterval() == pytest.approx(0.005)


@pytest.mark.usefixtures("restored_switch_interval")
def test_the_switch_interval_is_a_setting(store: FhirStore) -> None:
    create_app(Settings(database_url="sqlite://", switch_interval=0.002), store)
    assert sys.getswitchinterval() == pytest.approx(0.002)
