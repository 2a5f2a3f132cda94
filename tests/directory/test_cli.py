"""`socle directory import-rpps / import-finess`: report, exit codes, one clear line on failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from socle.config import get_settings
from socle.directory.cli import directory_app

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture
def run(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("SOCLE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_import_rpps_prints_the_report_with_each_rejected_line(run: CliRunner) -> None:
    result = run.invoke(
        directory_app, ["import-rpps", str(SAMPLES / "PS_LibreAcces_Personne_activite_sample.txt")]
    )
    assert result.exit_code == 0, result.output
    assert "15 lignes lues, 10 importées, 5 rejetées" in result.output
    assert "Practitioner : 8 créées" in result.output
    assert "ligne 12 : clé RPPS invalide : attendue 2, trouvée 1 (10000999001)" in result.output


def test_import_finess_prints_the_report(run: CliRunner) -> None:
    result = run.invoke(directory_app, ["import-finess", str(SAMPLES / "etalab-cs1100507-stock-sample.csv")])
    assert result.exit_code == 0, result.output
    assert "Location : 5 créées" in result.output
    assert "ligne 16 : projection inconnue" in result.output


def test_a_missing_file_exits_1_with_one_clear_line(run: CliRunner, tmp_path: Path) -> None:
    result = run.invoke(directory_app, ["import-rpps", str(tmp_path / "absent.txt")])
    assert result.exit_code == 1
    assert "Erreur :" in result.output and "absent.txt n'existe pas" in result.output


def test_a_file_with_no_usable_line_exits_1(run: CliRunner, tmp_path: Path) -> None:
    bad_header = tmp_path / "bad.txt"
    bad_header.write_text("a|b|c|\n1|2|3|\n", encoding="utf-8")
    result = run.invoke(directory_app, ["import-rpps", str(bad_header)])
    assert result.exit_code == 1
    assert "en-tête RPPS inattendu" in result.output
    only_rejects = tmp_path / "rejects.csv"
    only_rejects.write_text("finess;etalab;1;2026-05-12\nstructureet;010000025;x\n", encoding="utf-8")
    result = run.invoke(directory_app, ["import-finess", str(only_rejects)])
    assert result.exit_code == 1
    assert "aucune ligne exploitable" in result.output
