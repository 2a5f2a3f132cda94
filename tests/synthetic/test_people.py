"""The synthetic population: identities a NIR can vouch for, families, addresses, tricky cases."""

from __future__ import annotations

from collections import Counter
from datetime import date
from functools import cache

import pytest

from socle.identity.communes import is_known_commune
from socle.identity.nir import OVERSEAS_DEPARTMENTS, nir_disagreements, parse_nia, parse_nir
from socle.identity.record import InsKind
from socle.identity.traits import UNKNOWN_BIRTHPLACE
from socle.search.geo import haversine_km
from socle.synthetic.geography import commune_anchor
from socle.synthetic.names import display_case
from socle.synthetic.people import TRICKY_KINDS, Population, generate_population
from socle.synthetic.tables import countries, geography

AS_OF = date(2026, 1, 1)


@cache
def population(count: int = 3000, seed: int = 11) -> Population:
    return generate_population(count, seed=seed, as_of=AS_OF)


def test_every_nir_is_valid_and_agrees_with_sex_birth_date_and_birthplace() -> None:
    people = population().people
    assert len(people) >= 3000
    for person in people:
        assert person.ins.kind is InsKind.NIR_DEMO  # synthetic people carry the demo OID
        parsed = parse_nir(person.ins.value)
        traits = person.traits
        assert (
            nir_disagreements(
                parsed, sex=traits.sex, birth_date=traits.birth_date, birthplace_code=traits.birthplace_code
            )
            == []
        ), person
        for previous in person.previous_ins:
            assert previous.kind is InsKind.NIA
            assert parse_nia(previous.value).value[1:13] == person.ins.value[1:13]
    assert len({p.ins.value for p in people}) == len(people)


def test_births_overseas_abroad_before_independence_and_with_an_unknown_month() -> None:
    people = population().people
    parsed = [parse_nir(p.ins.value) for p in people]
    overseas = [n for n in parsed if n.department in OVERSEAS_DEPARTMENTS]
    assert overseas and all(len(n.department) == 3 and len(n.commune) == 2 for n in overseas)
    known_countries = {c.code for c in countries()}
    abroad = [p for p in people if p.traits.birthplace_code.startswith("99")]
    assert 0.05 < len(abroad) / len(people) < 0.2
    assert {p.traits.birthplace_code for p in abroad} <= known_countries
    # 91-95 named Algeria and Morocco before 1968, 96 Tunisia: the birthplace trait is the country.
    former = [
        (p, n)
        for p, n in zip(people, parsed, strict=True)
        if n.department == "96" or (n.department in ("91", "92", "93", "94", "95") and p.birth.year < 1968)
    ]
    assert former and all(p.traits.birthplace_code in ("99352", "99350", "99351") for p, _ in former)
    # Born in today's Île-de-France departments before 1968: the NIR keeps Seine (75) or Seine-et-Oise (78).
    before_1968 = [
        (p, n) for p, n in zip(people, parsed, strict=True) if "ile-de-france-avant-1968" in p.tricky
    ]
    assert before_1968
    assert all(
        n.department in ("75", "78") and p.traits.birthplace_code[:2] in ("91", "92", "93", "94", "95")
        for p, n in before_1968
    )
    unknown_month = [(p, n) for p, n in zip(people, parsed, strict=True) if n.birth_month is None]
    assert unknown_month
    for person, number in unknown_month:
        assert len(person.traits.birth_date) == 4  # the civil status only knows the year
        assert int(number.month_code) in (20, *range(30, 43), *range(50, 100))
    corsica = [n for n in parsed if n.department == "20"]
    assert all(p.birth.year < 1976 for p, n in zip(people, parsed, strict=True) if n.department == "20")
    assert corsica


def test_the_same_seed_gives_the_same_people_and_another_seed_other_people() -> None:
    first = generate_population(300, seed=5, as_of=AS_OF)
    again = generate_population(300, seed=5, as_of=AS_OF)
    other = generate_population(300, seed=6, as_of=AS_OF)
    assert first.people == again.people
    assert first.duplicates == again.duplicates
    assert [p.ins.value for p in first.people] != [p.ins.value for p in other.people]


def test_names_are_french_with_compound_first_names_accents_and_apostrophes() -> None:
    people = population().people
    first_names = Counter(n for p in people for n in p.given_names)
    assert any("-" in name for name in first_names)  # JEAN-PIERRE, ANNE-SOPHIE...
    assert any(any(c in name for c in "ÉÈÊËÏÎÔÇ") for name in first_names)
    assert Counter(len(p.given_names) for p in people).keys() == {1, 2, 3}
    birth_names = {p.birth_name for p in people}
    assert any("'" in name for name in birth_names) and any(" " in name for name in birth_names)
    assert display_case("ANNE-SOPHIE") == "Anne-Sophie" and display_case("N'DIAYE") == "N'Diaye"
    # Older generations carry the first names of their time.
    born_1950s = Counter(p.given_names[0] for p in people if 1950 <= p.birth.year < 1960 and not p.female)
    assert born_1950s.most_common(1)[0][0] in ("JEAN", "MICHEL", "ALAIN", "PATRICK", "BERNARD", "PHILIPPE")


def test_families_share_their_name_and_every_minor_lives_with_a_parent() -> None:
    pop = population()
    people = pop.people
    minors = [p for p in people if p.age(AS_OF) < 18]
    assert minors
    for child in minors:
        assert child.parents, child
        for parent in child.parents:
            assert people[parent].household == child.household
            assert people[parent].age(AS_OF) >= 18
    couples = 0
    for members in pop.households:
        children = [people[i] for i in members if people[i].parents]
        if not children:
            continue
        assert len({c.birth_name for c in children}) == 1  # siblings share their name
        parents = [people[i] for i in children[0].parents]
        if len(parents) == 2:
            couples += 1
            names = {p.birth_name for p in parents}
            double = {f"{a.birth_name} {b.birth_name}" for a in parents for b in parents if a is not b}
            assert children[0].birth_name in names | double
    assert couples


def test_carte_vitale_numbers_from_16_and_children_on_their_parents_cards() -> None:
    people = population().people
    cards = Counter(c for p in people if p.age(AS_OF) >= 16 for c in p.cartes_vitale)
    assert all(count == 1 for count in cards.values())
    for person in people:
        if person.age(AS_OF) >= 16:
            assert len(person.cartes_vitale) == 1
        else:
            parent_cards = {c for parent in person.parents for c in people[parent].cartes_vitale}
            assert set(person.cartes_vitale) == parent_cards and parent_cards


def test_addresses_are_in_real_communes_near_where_the_commune_is() -> None:
    geo = geography()
    for person in population().people[:800]:
        address = person.address
        assert is_known_commune(address.commune_code)
        place = geo.by_code[address.commune_code]
        assert address.postcode == place.postcode and address.city == place.name
        anchor = commune_anchor(address.commune_code)
        assert haversine_km(anchor.latitude, anchor.longitude, address.latitude, address.longitude) <= (
            anchor.spread_km + 0.01
        )
        department = geo.departments[place.department]
        assert (
            haversine_km(department.latitude, department.longitude, address.latitude, address.longitude) < 200
        )


def test_people_live_where_the_french_live() -> None:
    departments = Counter(p.address.department for p in population().people)
    # Paris + the petite couronne hold about 10 % of France's population; the Creuse 0.2 %.
    paris = sum(departments[d] for d in ("75", "92", "93", "94")) / sum(departments.values())
    assert 0.05 < paris < 0.16
    assert departments["59"] > departments["23"]


def test_deliberately_tricky_identities_are_there() -> None:
    pop = population()
    people = pop.people
    assert set(pop.tricky) >= {"homonyme", "jumeaux", "doublon-potentiel", "nom-d-usage", "nia-remplace"}
    assert set(pop.tricky) <= set(TRICKY_KINDS)
    for original, homonym in pop.tricky["homonyme"]:
        a, b = people[original].traits, people[homonym].traits
        assert (a.birth_name, a.first_given_name, a.birth_date, a.sex) == (
            b.birth_name,
            b.first_given_name,
            b.birth_date,
            b.sex,
        )
        assert a.birthplace_code != b.birthplace_code
        assert people[original].ins != people[homonym].ins
    for first, second in pop.tricky["jumeaux"]:
        a, b = people[first], people[second]
        assert (a.birth, a.birth_name, a.traits.birthplace_code) == (
            b.birth,
            b.birth_name,
            b.traits.birthplace_code,
        )
        assert a.ins.value[1:10] == b.ins.value[1:10]  # same year, month and place (sex aside)
    for duplicate in pop.duplicates:
        original = people[duplicate.person].traits
        assert duplicate.traits != original
        assert (
            duplicate.traits.differences(original) or duplicate.traits.birthplace_code == UNKNOWN_BIRTHPLACE
        )
    married = [p for p in people if p.used_name]
    assert married and all(p.used_name and p.used_name.upper() != p.birth_name for p in married[:50])


@pytest.mark.parametrize("count", [0, 1, 7])
def test_tiny_populations(count: int) -> None:
    pop = generate_population(count, seed=1, as_of=AS_OF)
    assert len(pop.people) >= count
    assert all(p.parents or p.age(AS_OF) >= 18 for p in pop.people)
