"""The nomenclature tables themselves: codes, labels, systems, origin and licence recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from socle.directory.nomenclatures import (
    DATA,
    profession_codings,
    profession_table,
    specialty_coding,
    title_prefix,
    tre_g15,
    tre_r11,
    tre_r38,
    tre_r95,
)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.json")), ids=lambda p: p.name)
def test_every_table_names_its_system_origin_and_licence_and_has_unique_codes(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["system"].startswith("https://mos.esante.gouv.fr/NOS/")
    assert raw["source"] and raw["licence"]
    codes = [c["code"] for c in raw["concepts"]]
    assert len(codes) == len(set(codes)) and codes
    assert all(c["display"].strip() == c["display"] and c["display"] for c in raw["concepts"])


def test_tre_g15_holds_the_health_professions_of_the_design() -> None:
    expected = {
        "10": "Médecin",
        "21": "Pharmacien",
        "40": "Chirurgien-Dentiste",
        "50": "Sage-Femme",
        "60": "Infirmier",
        "70": "Masseur-Kinésithérapeute",
        "80": "Pédicure-Podologue",
        "91": "Orthophoniste",
        "92": "Orthoptiste",
    }
    table = tre_g15()
    assert {code: table.concepts[code].display for code in expected} == expected
    assert table.oid == "urn:oid:1.2.250.1.71.1.2.7"
    assert len(table.concepts) == 24
    assert all(re.fullmatch(r"\d{2}", code) for code in table.concepts)


def test_tre_r38_has_the_107_specialties_of_fr_core_including_general_practice() -> None:
    table = tre_r38()
    assert len(table.concepts) == 107
    assert table.concepts["SM54"].display == "Médecine générale"
    assert table.system.endswith("/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale")
    assert all(re.fullmatch(r"(SM|SCD|SI|SP)\d{2}", code) for code in table.concepts)


def test_professions_outside_tre_g15_come_from_tre_r95_and_never_overlap() -> None:
    assert not set(tre_g15().concepts) & set(tre_r95().concepts)
    assert profession_table("93") is tre_r95()
    assert profession_table("99") is None


def test_a_profession_is_coded_with_the_mos_url_then_the_tre_g15_oid() -> None:
    systems = [c["system"] for c in profession_codings("10")]
    assert systems == [tre_g15().system, "urn:oid:1.2.250.1.71.1.2.7"]
    assert [c["system"] for c in profession_codings("93")] == [tre_r95().system]
    assert profession_codings("99") == []


def test_an_unknown_specialty_keeps_the_label_the_extraction_gives() -> None:
    assert specialty_coding("SM54")["display"] == "Médecine générale"
    assert specialty_coding("SM99", "Nouvelle spécialité")["display"] == "Nouvelle spécialité"


def test_the_title_written_before_the_name_is_dr_or_pr() -> None:
    assert set(tre_r11().concepts) == {"DR", "PR"}
    assert title_prefix("DR") == "Dr"
    assert title_prefix("PR") == "Pr"
    assert title_prefix("MC", "Médecin en chef") == "Médecin en chef"
