"""Importing the RPPS and FINESS extractions into the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from socle.directory.actions import do_set_role_availability
from socle.directory.errors import ExtractionFileError
from socle.directory.imports import ImportReport, import_finess, import_rpps
from socle.directory.queries import find_resources, role_availability, roles_of_practitioners
from socle.fhir.validation import default_validator
from socle.store.repository import FhirStore
from tests.directory.synthetic import HEADER, rpps_line

SAMPLES = Path(__file__).parent / "samples"
RPPS_SAMPLE = SAMPLES / "PS_LibreAcces_Personne_activite_sample.txt"
FINESS_SAMPLE = SAMPLES / "etalab-cs1100507-stock-sample.csv"
LEFEVRE = "10000999002"  # two activity lines: her cabinet and the hospital
D_ALMEIDA = "10000999069"  # two lines, one activity, two specialties


def read(store: FhirStore, res_type: str, res_id: str) -> dict[str, Any]:
    with store.session(readonly=True) as session:
        return session.read(res_type, res_id).json()


def roles(store: FhirStore, rpps: str) -> dict[str, dict[str, Any]]:
    with store.session(readonly=True) as session:
        return roles_of_practitioners(session, [f"rpps-{rpps}"])


def search(store: FhirStore, res_type: str, **params: str) -> list[dict[str, Any]]:
    with store.session(readonly=True) as session:
        return list(find_resources(session, res_type, list(params.items())))


def test_an_rpps_extraction_imports_its_professionals_and_reports_every_malformed_line(
    store: FhirStore,
) -> None:
    report = import_rpps(store, RPPS_SAMPLE)
    assert report.lines_read == 15
    assert (report.count("created", "Practitioner"), report.count("created", "PractitionerRole")) == (8, 9)
    assert [(issue.line_number, issue.reason) for issue in report.rejected] == [
        (12, "clé RPPS invalide : attendue 2, trouvée 1 (10000999001)"),
        (13, "nombre de colonnes incorrect : 40 au lieu de 56"),
        (14, "code profession inconnu : « 99 » (ni TRE_G15 ni TRE_R95)"),
        (15, "encodage invalide : UTF-8 attendu (octet 0xc9 en position 42)"),
        (16, "type d'identifiant PP « 0 » non pris en charge : seul le RPPS (type 8) est importé"),
    ]
    doctor = read(store, "Practitioner", f"rpps-{LEFEVRE}")
    assert doctor["name"][0] == {
        "use": "usual",
        "family": "LEFÈVRE-DUPRÉ",
        "given": ["Élise"],
        "prefix": ["Dr"],
    }


def test_two_activity_lines_of_one_practitioner_give_one_practitioner_and_two_roles(store: FhirStore) -> None:
    import_rpps(store, RPPS_SAMPLE)
    found = roles(store, LEFEVRE)
    assert len(found) == 2
    organizations = sorted(role["organization"]["reference"] for role in found.values())
    assert organizations == ["Organization/finess-690799994", "Organization/rpps-st-C69000999001"]
    hospital = next(r for r in found.values() if r["organization"]["reference"].endswith("690799994"))
    assert hospital["location"] == [{"reference": "Location/finess-690799994"}]
    assert search(store, "Practitioner", identifier=f"https://rpps.esante.gouv.fr|{LEFEVRE}")[0]["id"] == (
        f"rpps-{LEFEVRE}"
    )


def test_two_specialties_at_the_same_place_make_one_role_with_both(store: FhirStore) -> None:
    import_rpps(store, RPPS_SAMPLE)
    (role,) = roles(store, D_ALMEIDA).values()
    assert [s["coding"][0]["code"] for s in role["specialty"]] == ["SM04", "SM61"]
    practitioner = read(store, "Practitioner", f"rpps-{D_ALMEIDA}")
    assert len(practitioner["qualification"]) == 3  # médecin, SM04, SM61


def test_every_imported_resource_passes_the_r4_validator(store: FhirStore) -> None:
    import_rpps(store, RPPS_SAMPLE)
    import_finess(store, FINESS_SAMPLE)
    validator = default_validator()
    for res_type in ("Practitioner", "PractitionerRole", "Organization", "Location"):
        for resource in search(store, res_type):
            assert [i for i in validator.validate(resource) if i.severity == "error"] == []


def test_re_importing_the_same_extraction_changes_nothing(store: FhirStore) -> None:
    import_rpps(store, RPPS_SAMPLE)
    import_finess(store, FINESS_SAMPLE)
    before = read(store, "Practitioner", f"rpps-{LEFEVRE}")["meta"]
    again = import_rpps(store, RPPS_SAMPLE)
    again_finess = import_finess(store, FINESS_SAMPLE)
    for report in (again, again_finess):
        assert report.count("created") == report.count("updated") == report.count("deactivated") == 0
    assert again.count("unchanged") == 8 + 9 + 9
    assert read(store, "Practitioner", f"rpps-{LEFEVRE}")["meta"] == before


def test_a_changed_line_updates_its_resource_and_a_vanished_activity_is_deactivated(
    store: FhirStore, tmp_path: Path
) -> None:
    import_rpps(store, RPPS_SAMPLE)
    lines = RPPS_SAMPLE.read_bytes().split(b"\n")
    # Line 3 (her hospital activity) disappears; her cabinet changes its phone number.
    lines[1] = lines[1].replace(b"0478000001", b"0478000099")
    del lines[2]
    changed = tmp_path / "PS_LibreAcces_Personne_activite_changed.txt"
    changed.write_bytes(b"\n".join(lines))
    report = import_rpps(store, changed)
    assert report.count("deactivated", "PractitionerRole") == 1
    assert report.count("updated", "Organization") == 1
    assert report.count("created") == 0
    states = sorted((r["organization"]["reference"], r["active"]) for r in roles(store, LEFEVRE).values())
    assert states == [("Organization/finess-690799994", False), ("Organization/rpps-st-C69000999001", True)]


def test_the_availability_a_professional_sets_survives_a_re_import(store: FhirStore) -> None:
    import_rpps(store, RPPS_SAMPLE)
    (role_id,) = roles(store, D_ALMEIDA)
    do_set_role_availability(store, role_id, accepting_new_patients=False, teleconsultation=True)
    report = import_rpps(store, RPPS_SAMPLE)
    assert report.count("updated") == 0
    with store.session(readonly=True) as session:
        assert role_availability(session, role_id) == {
            "accepting_new_patients": False,
            "teleconsultation": True,
        }


def test_a_finess_extraction_imports_organizations_and_located_places(store: FhirStore) -> None:
    report = import_finess(store, FINESS_SAMPLE)
    assert (report.count("created", "Organization"), report.count("created", "Location")) == (5, 5)
    expected = [
        (7, "clé FINESS invalide : attendue 6, trouvée 7"),
        (8, "nombre de colonnes incorrect : 6 au lieu de 31"),
        (9, "type de ligne inconnu"),
        (10, "encodage invalide"),
        (15, "coordonnées illisibles"),
        (16, "projection inconnue"),
    ]
    assert len(report.rejected) == len(expected)
    for issue, (number, reason) in zip(report.rejected, expected, strict=True):
        assert (issue.line_number, issue.reason[: len(reason)]) == (number, reason)
    corsica = read(store, "Location", "finess-2A0009999")
    assert corsica["position"]["latitude"] == pytest.approx(41.9270, abs=1e-5)
    assert corsica["position"]["longitude"] == pytest.approx(8.7369, abs=1e-5)
    assert corsica["address"]["extension"][0]["valueCoding"]["code"] == "2A004"
    guadeloupe = read(store, "Location", "finess-970999959")
    assert guadeloupe["position"]["latitude"] == pytest.approx(16.2411, abs=1e-5)
    assert "position" not in read(store, "Location", "finess-130999964")  # its coordinates were unreadable
    calanque = read(store, "Organization", "finess-130999964")
    assert calanque["name"] == 'LIEU DE VIE ET D\'ACCUEIL "LA CALANQUE"; MARSEILLE'


def test_the_finess_import_completes_the_placeholder_the_rpps_import_left(store: FhirStore) -> None:
    import_rpps(store, RPPS_SAMPLE)
    placeholder = read(store, "Organization", "finess-690799994")
    assert placeholder["meta"]["source"] == "https://annuaire.esante.gouv.fr"
    import_finess(store, FINESS_SAMPLE)
    assert (
        read(store, "Organization", "finess-690799994")["meta"]["source"] == "https://finess.esante.gouv.fr"
    )
    assert import_rpps(store, RPPS_SAMPLE).count("updated", "Organization") == 0  # FINESS stays the owner


def test_an_unsorted_file_merges_a_professional_met_again(store: FhirStore, tmp_path: Path) -> None:
    rng = __import__("random").Random(1)
    first, second = "10000999002", "10000999010"
    lines = [rpps_line(first, 0, rng), rpps_line(second, 0, rng), rpps_line(first, 1, rng)]
    path = tmp_path / "unsorted.txt"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    report = import_rpps(store, path, batch_size=1)
    assert report.unsorted
    assert len(roles(store, first)) == 2
    assert all(role["active"] for role in roles(store, first).values())


def test_a_missing_or_empty_file_is_an_extraction_error(store: FhirStore, tmp_path: Path) -> None:
    with pytest.raises(ExtractionFileError, match="n'existe pas"):
        import_rpps(store, tmp_path / "absent.txt")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ExtractionFileError, match="vide"):
        import_rpps(store, empty)
    with pytest.raises(ExtractionFileError, match="vide"):
        import_finess(store, empty)


def test_progress_is_reported_in_bytes_up_to_the_file_size(store: FhirStore, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    copy = tmp_path / RPPS_SAMPLE.name
    shutil.copy(RPPS_SAMPLE, copy)
    import_rpps(store, copy, lambda done, total: calls.append((done, total)))
    assert calls[-1] == (copy.stat().st_size, copy.stat().st_size)


def test_the_report_reads_in_french() -> None:
    report = ImportReport("f.txt", lines_read=3)
    report.outcomes["Practitioner", "created"] = 2
    report.reject(3, "clé RPPS invalide : attendue 2, trouvée 1 (10000999001)")
    assert report.summary() == ["f.txt : 3 lignes lues, 2 importées, 1 rejetées", "  Practitioner : 2 créées"]
