"""Socle's own extension and identifier URLs move from placeholders to the canonical base

Revision ID: 0009
Revises: 0006

`socle.canonical` gives one base to what Socle defines itself. Stored demo and imported data written
with the former placeholders (the directory's availability extensions on PractitionerRole, the
prescription id system on MedicationRequest) is rewritten to the new URLs, every version, so that
what the code reads and what the store holds agree. AuditEvents are left as written: they are
links of the hash chain, and rewriting one would break it (their purpose-of-use system keeps the
old URL in events recorded before this revision). No search index holds these URLs. It runs before
0007 (numbered earlier on another branch), whose search table reads the availability extensions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None

BASE = "https://socle.sante.fr/fhir"
RENAMED = {
    "PractitionerRole": [
        (
            b"https://socle.example/fhir/StructureDefinition/practitionerrole-accepting-new-patients",
            f"{BASE}/StructureDefinition/practitionerrole-accepting-new-patients".encode(),
        ),
        (
            b"https://socle.example/fhir/StructureDefinition/practitionerrole-teleconsultation",
            f"{BASE}/StructureDefinition/practitionerrole-teleconsultation".encode(),
        ),
    ],
    "MedicationRequest": [
        (b"https://socle.example/fhir/sid/prescription", f"{BASE}/sid/prescription".encode()),
    ],
}

version = sa.table(
    "resource_version",
    sa.column("seq", sa.BigInteger),
    sa.column("res_type", sa.String),
    sa.column("data", sa.LargeBinary),
)


def _rewrite(renames: dict[str, list[tuple[bytes, bytes]]]) -> None:
    connection = op.get_bind()
    for res_type, pairs in renames.items():
        last = 0
        while True:  # by batches of keys: memory stays flat on a large directory
            rows = connection.execute(
                sa.select(version.c.seq, version.c.data)
                .where(version.c.res_type == res_type, version.c.seq > last)
                .order_by(version.c.seq)
                .limit(2000)
            ).all()
            if not rows:
                break
            last = rows[-1].seq
            for row in rows:
                if row.data is None:
                    continue
                data = bytes(row.data)
                for old, new in pairs:
                    data = data.replace(old, new)
                if data != bytes(row.data):
                    connection.execute(sa.update(version).where(version.c.seq == row.seq).values(data=data))


def upgrade() -> None:
    _rewrite(RENAMED)


def downgrade() -> None:
    _rewrite({t: [(new, old) for old, new in pairs] for t, pairs in RENAMED.items()})
