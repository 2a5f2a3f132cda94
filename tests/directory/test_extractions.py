"""The extraction layouts, line by line: headers, columns, encodings, projections."""

from __future__ import annotations

import pytest

from socle.directory.errors import ExtractionFileError
from socle.directory.extractions import (
    LineRejected,
    RppsLayout,
    decode_line,
    parse_finess_establishment,
    parse_finess_geolocation,
    parse_rpps_line,
    projection_of,
    split_finess_line,
)
from tests.directory.synthetic import COLUMNS, HEADER

# The older, 52-column header (no rôle / genre d'activité), as published before 2023.
OLD_HEADER = "|".join(COLUMNS[:52]).replace("Libellé civilité d'exercice", "Libellé civilité exercice") + "|"
# A real line of the older layout (a salaried GP at a hospital site), as published.
OLD_LINE = (
    "8|10100271385|810100271385|DR|Docteur|M|Monsieur|LEGER|ROMAIN|10|Médecin|C|Civil|S|Spécialité ordinale|"
    "SM53|Spécialiste en Médecine Générale|S|Salarié|26250462400012||250000700|250000452|F250000700|"
    "CHI HC SITE RIVES DU DOUBS PONTARLIER||||2||FG|Faubourg|SAINT ETIENNE|CS 10329|25304 PONTARLIER CEDEX|"
    "25304|25462|Pontarlier|||0381385454||0381385480|contact@chi-hautecomte.fr|||1250000700|CNOM/CNOM/ARS|"
    "SA01|Etablissement Public de santé|||"
)


def test_the_current_header_places_every_field() -> None:
    layout = RppsLayout.from_header(HEADER)
    assert layout.width == 56
    assert layout.positions["pp_id"] == 1
    assert layout.positions["profession_code"] == 9
    assert layout.positions["role_code"] == 52


def test_the_older_header_reads_the_same_fields_without_role_and_kind() -> None:
    layout = RppsLayout.from_header(OLD_HEADER)
    assert layout.width == 52
    assert "role_code" not in layout.positions
    line = parse_rpps_line(layout, OLD_LINE, 2)
    assert (line.rpps, line.family, line.profession_code, line.skill_code) == (
        "10100271385",
        "LEGER",
        "10",
        "SM53",
    )
    assert line.site is not None
    assert (line.site.finess_site, line.site.structure_id, line.site.cedex) == (
        "250000700",
        "F250000700",
        "25304 PONTARLIER CEDEX",
    )


def test_a_header_without_the_identifier_columns_is_refused_naming_them() -> None:
    with pytest.raises(ExtractionFileError, match="Identifiant PP"):
        RppsLayout.from_header("Nom d'exercice|Prénom d'exercice|Code profession|")


def test_a_line_with_the_wrong_number_of_columns_is_rejected_with_both_counts() -> None:
    layout = RppsLayout.from_header(OLD_HEADER)
    with pytest.raises(LineRejected, match="40 au lieu de 52"):
        parse_rpps_line(layout, "|".join(OLD_LINE.split("|")[:40]) + "|", 3)


def test_an_adeli_line_is_rejected_as_out_of_scope() -> None:
    layout = RppsLayout.from_header(OLD_HEADER)
    fields = OLD_LINE.split("|")
    fields[0], fields[1], fields[2] = "0", "012600631", "0012600631"
    with pytest.raises(LineRejected, match="seul le RPPS"):
        parse_rpps_line(layout, "|".join(fields), 4)


def test_an_id_nat_ps_that_contradicts_the_rpps_is_rejected() -> None:
    layout = RppsLayout.from_header(OLD_HEADER)
    with pytest.raises(LineRejected, match="incohérente"):
        parse_rpps_line(layout, OLD_LINE.replace("|810100271385|", "|810001045367|"), 5)


def test_a_site_finess_with_a_bad_key_is_dropped_with_a_warning() -> None:
    layout = RppsLayout.from_header(OLD_HEADER)
    line = parse_rpps_line(layout, OLD_LINE.replace("|250000700|", "|250000701|"), 6)
    assert line.site is not None and line.site.finess_site is None
    assert "numéro FINESS site ignoré" in line.warnings[0]


def test_a_line_that_is_not_utf8_is_rejected_naming_the_byte() -> None:
    with pytest.raises(LineRejected, match=r"UTF-8 attendu \(octet 0xe9 en position 2\)"):
        decode_line("Hélène".encode("cp1252"))
    assert decode_line("\ufeffHélène\r\n".encode()) == "Hélène"
    assert decode_line("Hélène".encode("cp1252"), "latin-1") == "Hélène"


def test_finess_fields_follow_csv_quoting() -> None:
    fields = split_finess_line('structureet;130999964;130999956;"LIEU DE VIE ""LA CALANQUE""";"A; B"')
    assert fields[3:] == ['LIEU DE VIE "LA CALANQUE"', "A; B"]


def test_a_finess_establishment_line_with_a_missing_column_is_rejected() -> None:
    with pytest.raises(LineRejected, match="nombre de colonnes incorrect"):
        parse_finess_establishment(split_finess_line("structureet;010000024;010780054;CH;;"), 7)


@pytest.mark.parametrize(
    ("source", "epsg"),
    [
        ("1,ATLASANTE,96,BAN,EPSG:2154 RGF93 / Lambert-93 (Métropole)", 2154),
        ("2,ATLASANTE,96,BAN,EPSG:5490 RGAF09/UTM Zone 20N (Antilles)", 5490),
        ("1;ATLASANTE;100;IGN;BD_ADRESSE;V2.1;LAMBERT_93", 2154),
        ("1;ATLASANTE;100;IGN;BD_ADRESSE;V2.1;UTM_N20", 32620),
        ("1;ATLASANTE;100;IGN;BD_ADRESSE;V2.1;UTM 40S", 32740),
        ("source inconnue", None),
    ],
)
def test_the_projection_is_read_from_current_and_older_geolocation_sources(
    source: str, epsg: int | None
) -> None:
    assert projection_of(source) == epsg


def test_a_geolocation_line_gives_a_wgs84_position() -> None:
    fields = split_finess_line(
        "geolocalisation;010000024;870215.7;6571590.5;"
        "1,ATLASANTE,96,BAN,EPSG:2154 RGF93 / Lambert-93;2026-05-04"
    )
    geolocation = parse_finess_geolocation(fields, 9)
    assert geolocation.finess == "010000024"
    assert geolocation.position.latitude == pytest.approx(46.22274479119419, abs=1e-7)
    assert geolocation.position.longitude == pytest.approx(5.20859613264196, abs=1e-7)
