"""Public directory search (santé.fr-like) and the FHIR `near` search on Location (both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from socle.directory import fhir
from socle.directory.actions import Write, do_write_batch
from socle.directory.identifiers import complete_rpps
from socle.directory.search import DirectoryHit, search_directory
from socle.errors import InvalidRequest
from socle.search import geo
from socle.store.repository import FhirStore, StoreSession

NOTRE_DAME = (48.8530, 2.3499)


def _place(
    place_id: str, name: str, line: str, postcode: str, city: str, insee: str, position: tuple[float, float]
) -> list[dict[str, Any]]:
    address = {
        "extension": [
            {"url": fhir.INSEE_CODE_EXTENSION, "valueCoding": {"system": fhir.TRE_R13_COMMUNE, "code": insee}}
        ],
        "use": "work",
        "line": [line],
        "city": city,
        "postalCode": postcode,
    }
    organization = {
        "resourceType": "Organization",
        "id": place_id,
        "active": True,
        "name": name,
        "address": [address],
    }
    location = {
        "resourceType": "Location",
        "id": place_id,
        "status": "active",
        "name": name,
        "address": address,
        "position": {"latitude": position[0], "longitude": position[1]},
        "managingOrganization": {"reference": f"Organization/{place_id}"},
    }
    return [organization, location]


PLACES = {
    "notre-dame": ("CABINET DE LA CITÉ", "2 rue d'Arcole", "75004", "Paris", "75104", NOTRE_DAME),
    "vaugirard": ("CABINET VAUGIRARD", "200 rue de Vaugirard", "75015", "Paris", "75115", (48.8422, 2.3050)),
    "boulogne": (
        "CABINET DE BOULOGNE",
        "10 route de la Reine",
        "92100",
        "Boulogne-Billancourt",
        "92012",
        (48.8397, 2.2399),
    ),
    "bellecour": ("CABINET BELLECOUR", "1 place Bellecour", "69002", "Lyon", "69382", (45.7578, 4.8320)),
    "vieux-port": (
        "CABINET DU VIEUX-PORT",
        "5 quai du Port",
        "13002",
        "MARSEILLE CEDEX 02",
        "13202",
        (43.2961, 5.3700),
    ),
    "reunion": (
        "CABINET DU BARACHOIS",
        "3 rue de Paris",
        "97400",
        "Saint-Denis",
        "97411",
        (-20.8790, 55.4480),
    ),
    "saint-denis-93": (
        "CABINET DE LA BASILIQUE",
        "1 rue de la République",
        "93200",
        "Saint-Denis",
        "93066",
        (48.9356, 2.3539),
    ),
}

# (key, family, given, profession, specialty, place, accepting, teleconsultation, mailbox, active)
PEOPLE = [
    (
        "lefevre",
        "LEFÈVRE",
        "Élise",
        "10",
        "SM54",
        "notre-dame",
        True,
        True,
        "elise.lefevre@medecin.mssante.fr",
        True,
    ),
    ("ndiaye", "N'DIAYE", "Jean-Pierre", "10", "SM54", "vaugirard", False, True, None, True),
    (
        "martin-cardio",
        "MARTIN",
        "Sophie",
        "10",
        "SM04",
        "boulogne",
        True,
        False,
        "sophie.martin@medecin.mssante.fr",
        True,
    ),
    ("dubois", "DUBOIS", "Marc", "60", None, "notre-dame", True, False, None, True),
    ("martin-dentist", "MARTIN", "Paul", "40", None, "bellecour", None, False, None, True),
    ("roux", "ROUX", "Claire", "50", None, "vieux-port", True, True, "claire.roux@pro.mssante.fr", True),
    ("hoarau", "HOARAU", "Lucie", "10", "SM54", "reunion", True, False, None, True),
    ("basilique", "BENALI", "Karim", "10", "SM54", "saint-denis-93", False, False, None, True),
    ("retired", "ANCIEN", "Henri", "10", "SM54", "notre-dame", True, True, None, False),
]


def _people() -> Iterator[dict[str, Any]]:
    for place_id, (name, line, postcode, city, insee, position) in PLACES.items():
        yield from _place(place_id, name, line, postcode, city, insee, position)
    for number, (
        key,
        family,
        given,
        profession,
        specialty,
        place,
        accepting,
        tele,
        mailbox,
        active,
    ) in enumerate(PEOPLE):
        rpps = complete_rpps(f"1900000{number:03d}")
        title = "Dr" if profession in ("10", "40") else None
        practitioner = fhir.practitioner(
            rpps,
            family=family,
            given=given,
            title=title,
            professions=[fhir.Profession(profession, "C")],
            specialties=[fhir.Specialty(specialty)] if specialty else [],
        )
        yield practitioner
        activity = fhir.Activity(
            role_id=key,
            rpps=rpps,
            profession_code=profession,
            organization_id=place,
            location_id=place,
            specialties=(fhir.Specialty(specialty),) if specialty else (),
        )
        flags = fhir.availability_extensions(accepting_new_patients=accepting, teleconsultation=tele)
        role = fhir.practitioner_role(activity, availability=flags)
        role["active"] = active
        if mailbox:
            role["telecom"] = [fhir.mssante_telecom(mailbox)]
        yield role


@pytest.fixture
def directory(store: FhirStore) -> Iterator[StoreSession]:
    do_write_batch(store, [Write(resource) for resource in _people()])
    with store.session(readonly=True) as session:
        yield session


def keys(hits: list[DirectoryHit]) -> list[str]:
    return [hit.role_id for hit in hits]


def test_by_name_ignoring_case_and_accents(directory: StoreSession) -> None:
    assert keys(search_directory(directory, text="lefevre")) == ["lefevre"]
    assert keys(search_directory(directory, text="Élise Lef")) == ["lefevre"]
    assert keys(search_directory(directory, text="n'diaye")) == ["ndiaye"]
    assert sorted(keys(search_directory(directory, text="martin"))) == ["martin-cardio", "martin-dentist"]
    assert search_directory(directory, text="zzz") == []
    hit = search_directory(directory, text="lefevre")[0]
    assert hit.name == "Dr Élise LEFÈVRE" and hit.title == "Dr"
    assert (hit.profession_code, hit.profession) == ("10", "Médecin")
    assert hit.specialties == (("SM54", "Médecine générale"),)
    assert hit.address == "2 rue d'Arcole, 75004 Paris" and hit.place == "CABINET DE LA CITÉ"
    assert hit.mssante == ("elise.lefevre@medecin.mssante.fr",)
    assert (hit.accepting_new_patients, hit.teleconsultation, hit.distance_km) == (True, True, None)


def test_by_profession_and_specialty_code_or_label(directory: StoreSession) -> None:
    doctors = {"lefevre", "ndiaye", "martin-cardio", "hoarau", "basilique"}  # not the inactive one
    assert set(keys(search_directory(directory, profession="10"))) == doctors
    assert set(keys(search_directory(directory, profession="médecin"))) == doctors
    assert keys(search_directory(directory, profession="Sage-Femme")) == ["roux"]
    assert keys(search_directory(directory, specialty="SM04")) == ["martin-cardio"]
    assert set(
        keys(search_directory(directory, profession="10", specialty="médecine générale"))
    ) == doctors - {"martin-cardio"}


def test_by_town_code_or_name_and_by_postcode(directory: StoreSession) -> None:
    assert set(keys(search_directory(directory, commune="75056"))) == {"lefevre", "ndiaye", "dubois"}
    assert set(keys(search_directory(directory, commune="Paris"))) == {"lefevre", "ndiaye", "dubois"}
    assert set(keys(search_directory(directory, commune="75104"))) == {"lefevre", "dubois"}  # Paris 4e
    assert keys(search_directory(directory, commune="13055")) == ["roux"]  # "MARSEILLE CEDEX 02"
    # Two towns are called Saint-Denis: the INSEE code tells them apart, the name does not.
    assert keys(search_directory(directory, commune="97411")) == ["hoarau"]
    assert keys(search_directory(directory, commune="93066")) == ["basilique"]
    assert set(keys(search_directory(directory, commune="saint-denis"))) == {"hoarau", "basilique"}
    assert keys(search_directory(directory, postcode="92100")) == ["martin-cardio"]
    assert set(keys(search_directory(directory, postcode="75"))) == {"lefevre", "ndiaye", "dubois"}
    assert keys(search_directory(directory, commune="Lyon", profession="40")) == ["martin-dentist"]


def test_near_a_point_sorted_by_distance_with_kilometres(directory: StoreSession) -> None:
    hits = search_directory(directory, near=(*NOTRE_DAME, 15))
    assert keys(hits) == ["lefevre", "dubois", "ndiaye", "martin-cardio", "basilique"]
    distances = [hit.distance_km for hit in hits]
    assert distances == sorted(distances)  # type: ignore[type-var]
    assert distances[0] == 0.0
    assert 3.4 < distances[2] < 3.6  # rue de Vaugirard
    assert 8.0 < distances[3] < 8.6  # Boulogne
    assert 9.0 < distances[4] < 9.4  # Saint-Denis
    assert keys(search_directory(directory, near=(*NOTRE_DAME, 5))) == ["lefevre", "dubois", "ndiaye"]
    assert keys(search_directory(directory, near=(*NOTRE_DAME, 15), profession="10", specialty="SM54")) == [
        "lefevre",
        "ndiaye",
        "basilique",
    ]
    # From Lyon, 500 km reach Marseille but not Paris.
    assert keys(search_directory(directory, near=(45.76, 4.84, 300))) == ["martin-dentist", "roux"]
    far = search_directory(directory, near=(*NOTRE_DAME, 20000), limit=100)
    assert keys(far)[-1] == "hoarau" and far[-1].distance_km is not None and far[-1].distance_km > 9000


def test_by_availability_flags(directory: StoreSession) -> None:
    near_paris = (*NOTRE_DAME, 15)
    assert keys(search_directory(directory, near=near_paris, accepting_new_patients=True)) == [
        "lefevre",
        "dubois",
        "martin-cardio",
    ]
    assert keys(search_directory(directory, near=near_paris, accepting_new_patients=False)) == [
        "ndiaye",
        "basilique",
    ]
    assert keys(search_directory(directory, near=near_paris, teleconsultation=True)) == ["lefevre", "ndiaye"]
    assert set(keys(search_directory(directory, teleconsultation=True))) == {"lefevre", "ndiaye", "roux"}


def test_pages_follow_each_other(directory: StoreSession) -> None:
    everyone = keys(search_directory(directory, near=(*NOTRE_DAME, 20000), limit=100))
    assert len(everyone) == len(PEOPLE) - 1  # the inactive role is never shown
    pages = [
        keys(search_directory(directory, near=(*NOTRE_DAME, 20000), limit=3, offset=o)) for o in (0, 3, 6)
    ]
    assert [k for page in pages for k in page] == everyone
    assert search_directory(directory, profession="10", limit=2, offset=10) == []


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ({"profession": "99"}, "profession inconnue : « 99 »"),
        ({"profession": "plombier"}, "profession inconnue"),
        ({"specialty": "SM999"}, "spécialité inconnue"),
        ({"commune": "99999"}, "commune inconnue : code INSEE « 99999 »"),
        ({"postcode": "7500A"}, "code postal invalide"),
        ({"near": (48.85, 2.35, -1)}, "distance négative"),
        ({"near": (91.0, 2.35, 5)}, "latitude hors limites"),
        ({"near": (48.85, 181.0, 5)}, "longitude hors limites"),
        ({"limit": 0}, "nombre de résultats invalide"),
        ({"limit": 500}, "nombre de résultats invalide"),
        ({"offset": -1}, "décalage invalide"),
    ],
)
def test_bad_criteria_are_refused_with_a_french_message(
    directory: StoreSession, criteria: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        search_directory(directory, **criteria)
    assert message in refused.value.message


# -- the FHIR `near` parameter ----------------------------------------------------------------------


@pytest.fixture
def places(store: FhirStore, client: TestClient) -> TestClient:
    do_write_batch(store, [Write(resource) for resource in _people()])
    return client


def ids(client: TestClient, query: str) -> list[str]:
    response = client.get(f"/fhir/{query}")
    assert response.status_code == 200, response.text
    return sorted(
        e["resource"]["id"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"
    )


def test_fhir_near_on_location_filters_by_distance(places: TestClient) -> None:
    paris = f"{NOTRE_DAME[0]}|{NOTRE_DAME[1]}"
    assert ids(places, f"Location?near={paris}|5|km") == ["notre-dame", "vaugirard"]
    assert ids(places, f"Location?near={paris}|5000|m") == ["notre-dame", "vaugirard"]
    assert ids(places, f"Location?near={paris}|3|km") == ["notre-dame"]
    assert ids(places, f"Location?near={paris}|9|[mi_i]") == [
        "boulogne",
        "notre-dame",
        "saint-denis-93",
        "vaugirard",
    ]
    # No distance: the server's own idea of "near" (20 km); no unit: kilometres.
    assert ids(places, f"Location?near={paris}") == ["boulogne", "notre-dame", "saint-denis-93", "vaugirard"]
    assert ids(places, f"Location?near={paris}|5") == ["notre-dame", "vaugirard"]
    # Several points are ORed; other criteria ANDed.
    assert ids(places, "Location?near=45.7578|4.8320|1,-20.88|55.45|2") == ["bellecour", "reunion"]
    assert ids(places, f"Location?near={paris}|10&address-city=Paris") == ["notre-dame", "vaugirard"]
    assert ids(places, "Location?near:missing=false&address-postalcode=69") == ["bellecour"]


def test_fhir_near_through_a_chain_from_practitioner_role(places: TestClient) -> None:
    assert ids(places, f"PractitionerRole?location.near={NOTRE_DAME[0]}|{NOTRE_DAME[1]}|1") == [
        "dubois",
        "lefevre",
        "retired",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("48.85", "paramètre near invalide"),
        ("abc|2.35|5|km", "latitude « abc » n'est pas un nombre"),
        ("48.85|2.35|-5|km", "distance négative"),
        ("48.85|2.35|5|parsecs", "unité de distance inconnue « parsecs »"),
        ("95|2.35|5|km", "latitude hors limites"),
    ],
)
def test_a_malformed_near_is_a_400_with_a_french_message(
    places: TestClient, value: str, message: str
) -> None:
    response = places.get(f"/fhir/Location?near={value}")
    assert response.status_code == 400
    assert message in response.json()["issue"][0]["diagnostics"]


def test_positions_are_indexed_and_geometry_is_right() -> None:
    rows = geo.position_rows("near", {"latitude": 48.8530, "longitude": 2.3499})
    assert [(r.param, r.value) for r in rows] == [("near:lat", 48.853), ("near:long", 2.3499)]
    assert geo.position_rows("near", {"latitude": "48", "longitude": 2}) == []
    assert geo.position_rows("near", {"latitude": 120.0, "longitude": 2.0}) == []
    # Paris - Lyon is 392 km along a great circle.
    assert 390 < geo.haversine_km(48.8566, 2.3522, 45.764, 4.8357) < 394
    box = geo.bounding_box(geo.NearPoint(0.0, 179.9, 50))
    assert box is not None and box.west > box.east  # across the antimeridian
    assert geo.bounding_box(geo.NearPoint(89.9, 0.0, 50)) == geo.Box(
        89.9 - 50 / geo.EARTH_RADIUS_KM * 57.29577951308232, 90.0, -180.0, 180.0
    )
    assert geo.parse_near("48.85|2.35|1500|m") == geo.NearPoint(48.85, 2.35, 1.5)
