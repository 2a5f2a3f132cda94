"""The directory's search table follows every write of the directory's resources (both backends).

Whatever the path (FHIR API, transaction bundle, RPPS / FINESS import, `do_write_batch`), the public
search answers from the projection as if it read the resources themselves; `socle directory reindex`
rebuilds the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from socle.config import get_settings
from socle.directory import fhir
from socle.directory.actions import Write, do_set_role_availability, do_write_batch
from socle.directory.cli import directory_app
from socle.directory.identifiers import complete_rpps
from socle.directory.imports import import_finess, import_rpps
from socle.directory.projection import directory_entry, directory_name, name_tokens, town_name
from socle.directory.search import search_directory
from socle.store.projections import Projections
from socle.store.repository import FhirStore

SAMPLES = Path(__file__).parent / "samples"
LYON = (45.7578, 4.8320)
PARIS = (48.8530, 2.3499)


def place(
    place_id: str, city: str, postcode: str, position: tuple[float, float] | None
) -> list[dict[str, Any]]:
    address = {"use": "work", "line": [f"1 rue de {place_id}"], "city": city, "postalCode": postcode}
    organization = {
        "resourceType": "Organization",
        "id": place_id,
        "name": place_id.upper(),
        "address": [address],
    }
    location: dict[str, Any] = {
        "resourceType": "Location",
        "id": place_id,
        "address": address,
        "managingOrganization": {"reference": f"Organization/{place_id}"},
    }
    if position is not None:
        location["position"] = {"latitude": position[0], "longitude": position[1]}
    return [organization, location]


def professional(
    number: int,
    family: str,
    given: str,
    *,
    place_id: str | None = "bellecour",
    profession: str = "10",
    accepting: bool | None = None,
    with_location: bool = True,
) -> list[dict[str, Any]]:
    rpps = complete_rpps(f"1800000{number:03d}")
    practitioner = fhir.practitioner(
        rpps,
        family=family,
        given=given,
        title=None,
        professions=[fhir.Profession(profession)],
        specialties=[],
    )
    activity = fhir.Activity(
        role_id=f"role-{number}",
        rpps=rpps,
        profession_code=profession,
        organization_id=place_id,
        location_id=place_id if with_location else None,
    )
    flags = fhir.availability_extensions(accepting_new_patients=accepting, teleconsultation=None)
    return [practitioner, fhir.practitioner_role(activity, availability=flags)]


def write(store: FhirStore, *resources: dict[str, Any]) -> None:
    do_write_batch(store, [Write(resource) for resource in resources])


def found(store: FhirStore, **criteria: Any) -> list[str]:
    with store.session(readonly=True) as session:
        return [hit.role_id for hit in search_directory(session, **criteria)]


def projected(store: FhirStore) -> list[tuple[Any, ...]]:
    """Every row of the search table, in a comparable form."""
    with store.engine.connect() as connection:
        entries = connection.execute(
            select(directory_entry).order_by(directory_entry.c.role_pk, directory_entry.c.seq)
        )
        names = connection.execute(select(directory_name).order_by(*directory_name.c))
        return [tuple(row) for row in entries] + [tuple(row) for row in names]


@pytest.fixture
def lyon(store: FhirStore) -> FhirStore:
    write(
        store,
        *place("bellecour", "Lyon", "69002", LYON),
        *place("cite", "Paris", "75004", PARIS),
        *professional(1, "LEFÈVRE", "Élise", accepting=True),
        *professional(2, "MARTIN", "Paul", profession="60", accepting=False),
    )
    return store


# -- every write path -------------------------------------------------------------------------------


def test_a_role_whose_practitioner_is_renamed_through_the_fhir_api_is_found_by_its_new_name(
    lyon: FhirStore, client: TestClient
) -> None:
    practitioner = client.get(f"/fhir/Practitioner/rpps-{complete_rpps('1800000001')}").json()
    practitioner["name"][0]["family"] = "DUPRÉ-LEFÈVRE"
    assert client.put(f"/fhir/Practitioner/{practitioner['id']}", json=practitioner).status_code == 200
    assert found(lyon, text="dupre") == ["role-1"]
    assert found(lyon, text="Élise Lefèvre") == ["role-1"]  # each word of a compound name
    assert found(lyon, text="lefevre-dupre") == []  # the old name is gone


def test_a_deleted_role_disappears_from_the_public_search(lyon: FhirStore, client: TestClient) -> None:
    assert found(lyon, commune="Lyon") == ["role-1", "role-2"]
    assert client.delete("/fhir/PractitionerRole/role-1").status_code in (200, 204)
    assert found(lyon, commune="Lyon") == ["role-2"]
    assert found(lyon, near=(*LYON, 5)) == ["role-2"]
    assert found(lyon, text="lefevre") == []


def test_a_role_made_inactive_disappears_and_comes_back_when_reactivated(
    lyon: FhirStore, client: TestClient
) -> None:
    role = client.get("/fhir/PractitionerRole/role-2").json()
    role["active"] = False
    assert client.put("/fhir/PractitionerRole/role-2", json=role).status_code == 200
    assert found(lyon, profession="60") == []
    role["active"] = True
    assert client.put("/fhir/PractitionerRole/role-2", json=role).status_code == 200
    assert found(lyon, profession="60") == ["role-2"]


def test_a_location_moved_by_a_transaction_bundle_takes_its_roles_along(
    lyon: FhirStore, client: TestClient
) -> None:
    organization, location = place("bellecour", "Paris", "75004", PARIS)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource['resourceType']}/bellecour"},
            }
            for resource in (organization, location)
        ],
    }
    assert client.post("/fhir", json=bundle).status_code == 200
    assert found(lyon, commune="Lyon") == []
    assert found(lyon, commune="75056") == ["role-1", "role-2"]
    assert found(lyon, near=(*PARIS, 1)) == ["role-1", "role-2"]
    assert found(lyon, near=(*LYON, 50)) == []


def test_a_role_written_before_its_place_is_placed_when_the_place_arrives(store: FhirStore) -> None:
    write(store, *professional(3, "ROUX", "Claire", place_id="later"))
    assert found(store, text="roux") == ["role-3"]
    assert found(store, commune="Lyon") == []
    write(store, *place("later", "Lyon", "69003", (45.7600, 4.8500)))
    assert found(store, commune="Lyon") == ["role-3"]
    assert found(store, near=(*LYON, 5)) == ["role-3"]


def test_without_a_location_the_organization_address_places_the_role(store: FhirStore) -> None:
    organization, _ = place("cabinet", "LYON CEDEX 03", "69003", None)
    write(store, organization, *professional(4, "PETIT", "Zoé", place_id="cabinet", with_location=False))
    assert found(store, commune="69123") == ["role-4"]  # Lyon, "CEDEX 03" or not
    assert found(store, postcode="69003") == ["role-4"]
    organization["address"][0]["city"] = "Villeurbanne"
    organization["address"][0]["postalCode"] = "69100"
    write(store, organization)
    assert found(store, commune="Lyon") == []
    assert found(store, commune="Villeurbanne") == ["role-4"]


def test_the_rpps_and_finess_imports_fill_the_search(store: FhirStore, tmp_path: Path) -> None:
    import_rpps(store, SAMPLES / "PS_LibreAcces_Personne_activite_sample.txt")
    lefevre = found(store, text="lefevre dupre")
    assert len(lefevre) == 2  # her cabinet and the hospital
    assert set(found(store, text="elise", commune="Lyon")) == set(lefevre)  # by the Organizations' towns
    assert found(store, near=(*LYON, 20), text="lefevre") == []  # no position before FINESS
    import_finess(store, SAMPLES / "etalab-cs1100507-stock-sample.csv")
    assert len(found(store, near=(*LYON, 20), text="lefevre")) == 1  # the hospital's Location
    # A re-import where her hospital activity vanished deactivates that role: it leaves the search.
    lines = (SAMPLES / "PS_LibreAcces_Personne_activite_sample.txt").read_bytes().split(b"\n")
    del lines[2]
    changed = tmp_path / "PS_LibreAcces_Personne_activite_changed.txt"
    changed.write_bytes(b"\n".join(lines))
    import_rpps(store, changed)
    assert len(found(store, text="lefevre dupre")) == 1


def test_a_role_with_two_specialties_is_found_by_each_and_listed_once(store: FhirStore) -> None:
    import_rpps(store, SAMPLES / "PS_LibreAcces_Personne_activite_sample.txt")
    (role,) = found(store, text="d'almeida")
    assert found(store, text="almeida") == [role]  # each word of "D'ALMEIDA" too
    assert role in found(store, specialty="SM04") and role in found(store, specialty="SM61")
    everyone = found(store, limit=100)
    assert everyone.count(role) == 1 and len(everyone) == len(set(everyone))
    (hit,) = search_directory_hits(store, text="d'almeida")
    assert [code for code, _ in hit.specialties] == ["SM04", "SM61"]


def search_directory_hits(store: FhirStore, **criteria: Any) -> list[Any]:
    with store.session(readonly=True) as session:
        return search_directory(session, **criteria)


def test_a_search_inside_a_writing_session_sees_its_own_writes(store: FhirStore) -> None:
    with store.session() as session:
        for resource in professional(5, "GARÇON", "Noël", place_id=None):
            session.create(resource, res_id=resource["id"])
        assert [hit.role_id for hit in search_directory(session, text="garcon")] == ["role-5"]


def test_a_rolled_back_write_leaves_no_row(store: FhirStore) -> None:
    with pytest.raises(RuntimeError), store.session() as session:
        for resource in professional(6, "LEROY", "Léa", place_id=None):
            session.create(resource, res_id=resource["id"])
        session.flush()
        raise RuntimeError("rolled back")
    assert projected(store) == []


# -- the availability flags -------------------------------------------------------------------------


def test_the_availability_flags_filter_the_page(store: FhirStore) -> None:
    people = [
        resource
        for number in range(30)
        for resource in professional(100 + number, "DURAND", "Léa", accepting=number % 3 == 0)
    ]
    write(store, *place("bellecour", "Lyon", "69002", LYON), *people)
    accepting = [f"role-{100 + number}" for number in range(0, 30, 3)]
    assert found(store, text="durand", accepting_new_patients=True, limit=5) == accepting[:5]
    assert found(store, text="durand", accepting_new_patients=True, limit=5, offset=5) == accepting[5:]
    assert len(found(store, near=(*LYON, 5), accepting_new_patients=False, limit=100)) == 20
    do_set_role_availability(store, "role-101", accepting_new_patients=True, teleconsultation=True)
    assert found(store, teleconsultation=True) == ["role-101"]
    assert "role-101" in found(store, text="durand", accepting_new_patients=True, limit=20)


# -- rebuilding -------------------------------------------------------------------------------------


def test_reindex_rebuilds_the_same_rows(
    lyon: FhirStore, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(lyon, *professional(7, "LE BIHAN", "Maïwenn", place_id="cite"))
    before = projected(lyon)
    with lyon.engine.begin() as connection:
        connection.execute(directory_entry.delete())
    assert found(lyon, commune="Paris") == []
    monkeypatch.setenv("SOCLE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(directory_app, ["reindex"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "reconstruite : 3 lignes" in result.output
    assert projected(lyon) == before
    assert found(lyon, text="bihan") == ["role-7"]


# -- the rules ----------------------------------------------------------------------------------------


def test_name_tokens_are_each_part_and_each_word_normalized() -> None:
    practitioner = {"name": [{"family": "LE BIHAN-ROUX", "given": ["Maïwenn"], "prefix": ["Dr"]}]}
    assert name_tokens(practitioner) == {"le bihan-roux", "le", "bihan", "roux", "maiwenn", "dr"}
    assert name_tokens({"name": [{"family": "D'ALMEIDA"}]}) == {"d'almeida", "d", "almeida"}
    assert name_tokens({"name": "not a list of names"}) == set()


def test_town_names_drop_their_cedex_routing() -> None:
    assert town_name("LYON CEDEX 03") == "lyon"
    assert town_name("Marseille Cedex") == "marseille"
    assert town_name("Saint-Étienne") == "saint-etienne"


def test_a_type_without_projection_costs_one_lookup() -> None:
    projections = Projections([])
    assert projections.watching("Patient") == ()
