"""Synthetic, deterministic data: nobody real, same people for the same seed.

Two generators:
- a realistic France (`seed_france`, `generate_france`): households of people whose NIR agrees with
  their traits, French names weighted by INSEE frequencies, addresses in real communes, a health
  directory spread over the territory, clinical histories following the vaccination calendar, and
  the same people in the INSi registry. `socle seed` and `socle demo` load it;
- the benchmarks' Synthea-like bundles (`patient_bundles`, in `legacy`), unchanged so that
  benchmark runs stay comparable.

    report = seed_france(store, store.engine, people=10_000, seed=1, base_url=settings.fhir_base)
    print(report.summary())
"""

from __future__ import annotations

from socle.store.repository import FhirStore
from socle.synthetic.legacy import patient_bundle, patient_bundles
from socle.synthetic.seeding import (
    DEFAULT_AS_OF,
    France,
    SeedRefused,
    SeedReport,
    france_bundles,
    generate_france,
    seed_france,
)

__all__ = [
    "DEFAULT_AS_OF",
    "France",
    "SeedRefused",
    "SeedReport",
    "france_bundles",
    "generate_france",
    "patient_bundle",
    "patient_bundles",
    "seed_france",
    "seed_store",
]


def seed_store(store: FhirStore, *, people: int, base_url: str, seed: int = 1) -> int:
    """Fill an empty platform with a synthetic France of `people` people (the store and its INSi
    registry); returns the resources created, 0 when the platform already holds data."""
    try:
        report = seed_france(store, store.engine, people=people, seed=seed, base_url=base_url)
    except SeedRefused:
        return 0
    return report.total_resources
