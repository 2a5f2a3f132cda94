"""Migration 0009 moves stored placeholder URLs to Socle's canonical base, and leaves AuditEvents be."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import insert, select

from socle.directory.fhir import ACCEPTING_NEW_PATIENTS_EXTENSION
from socle.store import schema
from socle.store.engine import MIGRATIONS, create_store_engine

OLD = b"https://socle.example/fhir/StructureDefinition/practitionerrole-accepting-new-patients"


def test_stored_placeholders_are_rewritten_but_not_audit_events(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        for seq, res_type in ((1, "PractitionerRole"), (2, "AuditEvent")):
            connection.execute(
                insert(schema.resource_version).values(
                    seq=seq,
                    resource_pk=seq,
                    res_type=res_type,
                    res_id="x",
                    version=1,
                    last_updated=0,
                    method="PUT",
                    deleted=False,
                    data=b'{"url":"' + OLD + b'"}',
                )
            )
        command.upgrade(config, "head")
        rows = dict(
            connection.execute(
                select(schema.resource_version.c.res_type, schema.resource_version.c.data)
            ).all()
        )
    assert rows["PractitionerRole"] == b'{"url":"' + ACCEPTING_NEW_PATIENTS_EXTENSION.encode() + b'"}'
    assert rows["AuditEvent"] == b'{"url":"' + OLD + b'"}'
    engine.dispose()
