"""The `socle` command line: load files and bundles, report counts and reasons, exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from socle.cli import app
from socle.config import get_settings
from socle.store import schema
from tests.factories import observation, patient


@pytest.fixture
def run(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("SOCLE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def stored(engine: Engine, res_type: str) -> int:
    with engine.connect() as connection:
        query = (
            select(func.count()).select_from(schema.resource).where(schema.resource.c.res_type == res_type)
        )
        return int(connection.execute(query).scalar_one())


def test_load_a_directory_of_bundles_and_ndjson(run: CliRunner, engine: Engine, tmp_path: Path) -> None:
    urn = "urn:uuid:9a7b6c5d-4e3f-4a1b-8c2d-0e1f2a3b4c5d"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": urn, "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": observation(urn), "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    (tmp_path / "bundle.json").write_bytes(orjson.dumps(bundle))
    lines = [orjson.dumps({**patient(f"N{i}"), "id": f"nd{i}"}) for i in range(3)]
    lines.append(b'{"resourceType": "Patient", "birthDate": "1980-02-31"}')
    lines.append(b"{not json")
    (tmp_path / "people.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    result = run.invoke(app, ["load", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "5 ressources chargées, 2 rejetées" in result.output
    assert "people.ndjson:4" in result.output and "1980-02-31" in result.output
    assert "people.ndjson:5: invalid JSON" in result.output
    assert stored(engine, "Patient") == 4 and stored(engine, "Observation") == 1


def test_loading_twice_updates_instead_of_duplicating(run: CliRunner, engine: Engine, tmp_path: Path) -> None:
    file = tmp_path / "p.json"
    file.write_bytes(orjson.dumps({**patient(), "id": "same"}))
    assert run.invoke(app, ["load", str(file)]).exit_code == 0
    assert run.invoke(app, ["load", str(file)]).exit_code == 0
    assert stored(engine, "Patient") == 1


def test_load_of_a_failing_transaction_writes_nothing(run: CliRunner, engine: Engine, tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": {**patient(), "colour": "x"}, "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    file = tmp_path / "tx.json"
    file.write_bytes(orjson.dumps(bundle))
    result = run.invoke(app, ["load", str(file)])
    assert result.exit_code == 1
    assert "transaction rejected" in result.output and "colour" in result.output
    assert stored(engine, "Patient") == 0


def test_load_of_a_missing_path_fails_with_one_line(run: CliRunner, tmp_path: Path) -> None:
    result = run.invoke(app, ["load", str(tmp_path / "absent.json")])
    assert result.exit_code == 2
    assert "n'existe pas" in result.output
