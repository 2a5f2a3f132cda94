"""Fill an empty platform with a synthetic France: the directory, the people and their histories in
the FHIR store, and the same people in the INSi reference registry.

Three doors, each the one a real feed would use:
- the directory through the directory domain's batch action (`do_write_batch`), at the ids an
  RPPS / FINESS import gives (`rpps-…`, `finess-…`), so a later import updates rather than duplicates;
- people and histories through `process_bundle`: transaction Bundles of several households each
  (POST entries linked by `urn:uuid:`), traced in the audit trail like any client's;
- the INSi registry through `load_registry` (bulk, one transaction), so `do_qualify_with_insi`
  finds the people the store holds.

`seed_france` refuses a store or registry that already holds data (it fills an empty platform; use a
new database to seed again). Generation is deterministic for a seed; the store assigns its own ids
to Patients and histories.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Engine, func, select

from socle.errors import Conflict
from socle.identity.insi import RegistryPerson, load_registry, registry_size
from socle.store import schema
from socle.store.repository import FhirStore
from socle.synthetic.clinical import History, Urns, household_entries, household_gp
from socle.synthetic.people import TRICKY_KINDS, Population, generate_population
from socle.synthetic.professionals import Directory, generate_directory

DEFAULT_AS_OF = date(2026, 1, 1)
PEOPLE_PER_BUNDLE = 250
DIRECTORY_BATCH = 2000

Progress = Callable[[str, int, int], None]
"""progress(phase, done, total): phase is "annuaire", "personnes" or "référentiel INSi"."""


class SeedRefused(Conflict):
    """The platform already holds data: seeding fills an empty one (409)."""


@dataclass
class SeedReport:
    """What `seed_france` did."""

    seed: int
    as_of: date
    people: int
    households: int
    duplicates: int
    professionals: int
    sites: int
    registry: int
    bundles: int
    resources: Counter[str] = field(default_factory=Counter)
    tricky: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_resources(self) -> int:
        return sum(self.resources.values())

    def summary(self) -> str:
        """A few French lines for the command line."""
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.resources.items()))
        tricky = ", ".join(f"{count} {kind}" for kind, count in sorted(self.tricky.items()))
        return "\n".join(
            [
                f"France synthétique (graine {self.seed}, au {self.as_of.isoformat()}), "
                f"{self.seconds:.1f} s :",
                f"  {self.people} personnes dans {self.households} foyers, "
                f"{self.duplicates} doublons de dossier,",
                f"  {self.professionals} professionnels dans {self.sites} lieux d'exercice,",
                f"  {self.registry} identités dans le référentiel INSi,",
                f"  {self.total_resources} ressources FHIR ({kinds}),",
                f"  identités délicates : {tricky or 'aucune'}.",
            ]
        )


@dataclass
class France:
    """A generated population and directory, before loading (what the tests look at)."""

    population: Population
    directory: Directory
    seed: int
    as_of: date


def default_professionals(people: int) -> int:
    """More professionals per inhabitant than France has (1 in 5 rather than about 1 in 100):
    a sample of a few thousand people spread over the whole territory still finds a GP nearby."""
    return max(200, people // 5)


def generate_france(
    people: int, *, seed: int = 1, as_of: date = DEFAULT_AS_OF, professionals: int | None = None
) -> France:
    population = generate_population(people, seed=seed, as_of=as_of)
    directory = generate_directory(
        professionals if professionals is not None else default_professionals(people), seed=seed, as_of=as_of
    )
    return France(population, directory, seed, as_of)


def france_bundles(
    france: France, *, people_per_bundle: int = PEOPLE_PER_BUNDLE, histories: dict[int, History] | None = None
) -> Iterator[tuple[dict[str, Any], int]]:
    """Transaction Bundles of whole households (about `people_per_bundle` people each), with how many
    people each carries. `histories`, when given, receives each person's History."""
    population = france.population
    people = {p.index: p for p in population.people}
    duplicates_of: dict[int, list[Any]] = {}
    for duplicate in population.duplicates:
        household = people[duplicate.person].household
        duplicates_of.setdefault(household, []).append(duplicate)
    rng = random.Random(f"socle-gp:{france.seed}")
    entries: list[dict[str, Any]] = []
    urns = Urns()
    carried = 0
    for household, members in enumerate(population.households):
        persons = [people[i] for i in members]
        gp = household_gp(persons, france.directory, rng)
        found, stories = household_entries(
            persons,
            duplicates_of.get(household, []),
            gp,
            france.directory,
            france.as_of,
            urns,
            seed=france.seed,
            people=people,
        )
        entries.extend(found)
        carried += len(persons)
        if histories is not None:
            histories.update(stories)
        if carried >= people_per_bundle:
            yield {"resourceType": "Bundle", "type": "transaction", "entry": entries}, carried
            entries, urns, carried = [], Urns(), 0
    if entries:
        yield {"resourceType": "Bundle", "type": "transaction", "entry": entries}, carried


def registry_people(population: Population) -> Iterator[RegistryPerson]:
    """The people as the INSi registry knows them (their duplicates are not people)."""
    for person in population.people:
        yield RegistryPerson(person.ins, person.traits, person.cartes_vitale, person.previous_ins)


def _check_empty(store: FhirStore, engine: Engine) -> None:
    with store.session(readonly=True) as session:
        resources = session.connection.execute(select(func.count()).select_from(schema.resource)).scalar_one()
    registry = registry_size(engine)
    if resources or registry:
        raise SeedRefused(
            f"la plateforme contient déjà des données ({resources} ressources FHIR, {registry} identités "
            "dans le référentiel INSi) : le peuplement synthétique remplit une base vide ; utiliser une "
            "nouvelle base (SOCLE_DATABASE_URL) pour peupler de nouveau"
        )


def seed_france(
    store: FhirStore,
    engine: Engine,
    *,
    people: int,
    seed: int = 1,
    base_url: str,
    progress: Progress | None = None,
    professionals: int | None = None,
    as_of: date = DEFAULT_AS_OF,
    people_per_bundle: int = PEOPLE_PER_BUNDLE,
) -> SeedReport:
    """Generate a synthetic France of `people` people and load it (see the module docstring).

    `engine` is the INSi registry's database (the store's own in Socle). Raises SeedRefused when the
    store or the registry already holds data.
    """
    from socle.auth.context import RequestContext
    from socle.directory.actions import Write, do_write_batch
    from socle.fhir.bundles import process_bundle

    if people < 0:
        raise ValueError("people must be >= 0")
    started = time.perf_counter()
    _check_empty(store, engine)
    france = generate_france(people, seed=seed, as_of=as_of, professionals=professionals)
    population, directory = france.population, france.directory
    report = SeedReport(
        seed=seed,
        as_of=as_of,
        people=len(population.people),
        households=len(population.households),
        duplicates=len(population.duplicates),
        professionals=len(directory.professionals),
        sites=len(directory.sites),
        registry=0,
        bundles=0,
        tricky={kind: len(found) for kind, found in population.tricky.items() if kind in TRICKY_KINDS},
    )

    report.registry = load_registry(engine, registry_people(population))
    if progress:
        progress("référentiel INSi", report.registry, report.registry)

    batch: list[Write] = []
    written = 0
    directory_total = 2 * len(directory.sites) + 2 * len(directory.professionals)
    for resource in directory.resources():
        batch.append(Write(resource))
        if len(batch) >= DIRECTORY_BATCH:
            written += _write_directory(do_write_batch, store, batch, report)
            batch = []
            if progress:
                progress("annuaire", written, directory_total)
    if batch:
        written += _write_directory(do_write_batch, store, batch, report)
    if progress:
        progress("annuaire", written, directory_total)

    operator = RequestContext.operator("socle-seed")
    done = 0
    for bundle, carried in france_bundles(france, people_per_bundle=people_per_bundle):
        process_bundle(store, bundle, base_url, "return=minimal", operator)
        for entry in bundle["entry"]:
            report.resources[entry["resource"]["resourceType"]] += 1
        report.bundles += 1
        done += carried
        if progress:
            progress("personnes", done, len(population.people))
    store.analyze()
    report.seconds = time.perf_counter() - started
    return report


def _write_directory(
    write: Callable[..., Counter[tuple[str, str]]], store: FhirStore, batch: list[Any], report: SeedReport
) -> int:
    outcomes = write(store, batch)
    for (res_type, outcome), count in outcomes.items():
        if outcome == "created":
            report.resources[res_type] += count
    return len(batch)
