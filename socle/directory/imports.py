"""Streaming imports of the public extractions into the store: RPPS personne-activité and FINESS.

Both read the file line by line (bytes, decoded per line, so one badly encoded line is reported and
the others still import) and write batches of about `batch_size` resources per store session, so
memory stays flat whatever the file size: the RPPS import holds one batch of professionals; the
FINESS import also holds the positions of the `geolocalisation` lines (read in a first pass, as the
extraction lists them after all the establishments: ~100k pairs of floats for the whole of France).

Resources get client ids derived from the national identifiers (`rpps-<RPPS>`,
`rpps-<RPPS>-<activity key>`, `finess-<FINESS>`, `rpps-st-<structure>`), so importing again
updates what changed and leaves the rest alone. The lines of one professional follow each other in
the extraction (it is sorted by identifier): they make one Practitioner and one PractitionerRole per
distinct activity. Should a professional come back further down an unsorted file, the importer
notices and merges from then on instead of replacing.

Each import returns an `ImportReport`: lines read, resources created / updated / unchanged /
deactivated by type, rejected lines with their number and reason (in French).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from socle.directory.actions import Outcomes, PersonWrites, Write, do_import_people, do_write_batch
from socle.directory.errors import ExtractionFileError
from socle.directory.extractions import (
    FINESS_ESTABLISHMENT_TAG,
    FINESS_GEOLOCATION_TAG,
    FINESS_HEADER_TAG,
    LineRejected,
    RppsActivityLine,
    RppsLayout,
    decode_line,
    parse_finess_establishment,
    parse_finess_geolocation,
    parse_rpps_line,
    split_finess_line,
)
from socle.directory.fhir import (
    Activity,
    Profession,
    Specialty,
    location_from_finess,
    organization_from_finess,
    organization_from_rpps_site,
    practitioner,
    practitioner_role,
)
from socle.directory.geodesy import LatLon
from socle.directory.nomenclatures import SPECIALTY_SKILL_TYPE, title_prefix
from socle.directory.rules import (
    activity_key,
    finess_resource_id,
    practitioner_role_id,
    rpps_structure_id,
)
from socle.store.repository import FhirStore

# Called with (bytes read so far, bytes to read in all).
Progress = Callable[[int, int], None]

DEFAULT_BATCH_SIZE = 500
# How many rejected lines / warnings a report lists one by one (all are counted).
MAX_LISTED = 1000

OUTCOMES = ("created", "updated", "unchanged", "deactivated")


@dataclass(frozen=True, slots=True)
class LineIssue:
    line_number: int
    reason: str


@dataclass
class ImportReport:
    """What an import did: lines read, resources written by outcome, lines rejected and why."""

    source: str
    lines_read: int = 0
    outcomes: Outcomes = field(default_factory=Counter)
    rejected: list[LineIssue] = field(default_factory=list)
    rejected_total: int = 0
    warnings: list[LineIssue] = field(default_factory=list)
    warnings_total: int = 0
    unsorted: bool = False

    def reject(self, line_number: int, reason: str) -> None:
        self.rejected_total += 1
        if len(self.rejected) < MAX_LISTED:
            self.rejected.append(LineIssue(line_number, reason))

    def warn(self, line_number: int, reason: str) -> None:
        self.warnings_total += 1
        if len(self.warnings) < MAX_LISTED:
            self.warnings.append(LineIssue(line_number, reason))

    def count(self, outcome: str, res_type: str | None = None) -> int:
        return sum(n for (t, o), n in self.outcomes.items() if o == outcome and res_type in (None, t))

    @property
    def lines_accepted(self) -> int:
        return self.lines_read - self.rejected_total

    def summary(self) -> list[str]:
        """The report in French, one fact per line (the CLI prints it)."""
        lines = [
            f"{self.source} : {self.lines_read} lignes lues, {self.lines_accepted} importées, "
            f"{self.rejected_total} rejetées"
        ]
        for res_type in sorted({t for t, _ in self.outcomes}):
            counts = ", ".join(
                f"{self.count(o, res_type)} {LABELS[o]}" for o in OUTCOMES if self.count(o, res_type)
            )
            lines.append(f"  {res_type} : {counts}")
        if self.unsorted:
            lines.append("  fichier non trié par identifiant : les professionnels revus ont été fusionnés")
        if self.warnings_total:
            lines.append(f"  {self.warnings_total} avertissement(s)")
        return lines


LABELS = {
    "created": "créées",
    "updated": "mises à jour",
    "unchanged": "inchangées",
    "deactivated": "désactivées",
}


def _open(path: Path) -> BinaryIO:
    if not path.exists():
        raise ExtractionFileError(f"{path} n'existe pas")
    if not path.is_file():
        raise ExtractionFileError(f"{path} n'est pas un fichier")
    return path.open("rb")


def _lines(
    handle: BinaryIO, total: int, progress: Progress | None, start: int = 0
) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes) of each line, reporting progress every 1,000 lines."""
    done = start
    for number, raw in enumerate(handle, start=1):
        done += len(raw)
        if progress is not None and number % 1000 == 0:
            progress(done, total)
        yield number, raw
    if progress is not None:
        progress(done, total)


# -- RPPS ------------------------------------------------------------------------------------------


@dataclass
class _Person:
    rpps: str
    lines: list[RppsActivityLine] = field(default_factory=list)
    complete: bool = True
    merge: bool = False


def person_writes(person: _Person) -> PersonWrites:
    """The resources one professional's activity lines make (pure)."""
    first = person.lines[0]
    professions: dict[str, Profession] = {}
    specialties: dict[str, Specialty] = {}
    activities: dict[str, list[RppsActivityLine]] = {}
    organizations: list[Write] = []
    organization_of: dict[str, str | None] = {}
    for line in person.lines:
        professions.setdefault(line.profession_code, Profession(line.profession_code, line.category_code))
        if line.skill_type_code == SPECIALTY_SKILL_TYPE and line.skill_code:
            specialties.setdefault(line.skill_code, Specialty(line.skill_code, line.skill_label))
        site = line.site
        organization_id: str | None = None
        if site is not None and site.finess_site:
            # FINESS establishments belong to the FINESS import: only a placeholder if still missing.
            organization_id = finess_resource_id(site.finess_site)
            organizations.append(Write(organization_from_rpps_site(organization_id, site), create_only=True))
        elif site is not None:
            organization_id = rpps_structure_id(site.structure_id)
            organizations.append(Write(organization_from_rpps_site(organization_id, site)))
        key = activity_key(
            organization_id or "",
            line.mode_code,
            line.profession_code,
            line.role_code,
            line.activity_kind_code,
        )
        activities.setdefault(key, []).append(line)
        organization_of[key] = organization_id
    roles = []
    for key, lines in activities.items():
        line = lines[0]
        role_specialties = {
            sf.skill_code: Specialty(sf.skill_code, sf.skill_label)
            for sf in lines
            if sf.skill_type_code == SPECIALTY_SKILL_TYPE and sf.skill_code
        }
        site = line.site
        activity = Activity(
            role_id=practitioner_role_id(person.rpps, key),
            rpps=person.rpps,
            profession_code=line.profession_code,
            organization_id=organization_of[key],
            location_id=finess_resource_id(site.finess_site) if site and site.finess_site else None,
            mode_code=line.mode_code,
            mode_label=line.mode_label,
            role_code=line.role_code,
            role_label=line.role_label,
            kind_code=line.activity_kind_code,
            kind_label=line.activity_kind_label,
            specialties=tuple(role_specialties.values()),
        )
        roles.append(practitioner_role(activity))
    resource = practitioner(
        person.rpps,
        family=first.family,
        given=first.given,
        title=title_prefix(first.exercise_title_code, first.exercise_title_label)
        if first.exercise_title_code
        else None,
        professions=professions.values(),
        specialties=specialties.values(),
    )
    return PersonWrites(resource, roles, organizations, complete=person.complete, merge=person.merge)


class _RppsBatcher:
    """Groups consecutive lines by professional and writes them batch by batch."""

    def __init__(self, store: FhirStore, report: ImportReport, batch_size: int) -> None:
        self.store = store
        self.report = report
        self.batch_size = batch_size
        self.current: _Person | None = None
        self.batch: dict[str, _Person] = {}
        self.batch_weight = 0
        self.last_rpps = ""
        self.merge = False

    def add(self, line: RppsActivityLine) -> None:
        if self.current is not None and line.rpps == self.current.rpps:
            self.current.lines.append(line)
            return
        self._close_current()
        if line.rpps < self.last_rpps:
            # Out of order: this person may have been written already. From here on, add to what
            # is stored instead of replacing it.
            self.merge = True
            self.report.unsorted = True
        self.last_rpps = max(self.last_rpps, line.rpps)
        self.current = _Person(line.rpps, [line], merge=self.merge)

    def rejected(self, rpps: str | None) -> None:
        """A rejected line that (as far as one can tell) belonged to the current professional."""
        if self.current is not None and rpps == self.current.rpps:
            self.current.complete = False

    def _close_current(self) -> None:
        person, self.current = self.current, None
        if person is None:
            return
        same = self.batch.get(person.rpps)
        if same is not None:  # seen earlier in this very batch (unsorted file)
            same.lines.extend(person.lines)
            same.complete = same.complete and person.complete
            same.merge = same.merge or person.merge
        else:
            self.batch[person.rpps] = person
        self.batch_weight += 1 + len(person.lines)
        if self.batch_weight >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        people = [person_writes(p) for p in self.batch.values()]
        self.batch, self.batch_weight = {}, 0
        self.report.outcomes.update(do_import_people(self.store, people))

    def finish(self) -> None:
        self._close_current()
        self.flush()


def _rpps_of_rejected(layout: RppsLayout, raw: bytes) -> str | None:
    """Best effort: the "Identifiant PP" of a line that was rejected."""
    position = layout.positions.get("pp_id")
    fields = raw.decode("utf-8", "replace").split("|")
    return fields[position].strip() if position is not None and position < len(fields) else None


def import_rpps(
    store: FhirStore, path: Path, progress: Progress | None = None, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> ImportReport:
    """Import an RPPS "PS_LibreAcces_Personne_activite" extraction (see `extractions`)."""
    report = ImportReport(path.name)
    total = path.stat().st_size if path.exists() else 0
    with _open(path) as handle:
        lines = _lines(handle, total, progress)
        header = next((raw for _, raw in lines if raw.strip()), None)
        if header is None:
            raise ExtractionFileError(f"{path.name} est vide : en-tête RPPS attendu")
        try:
            layout = RppsLayout.from_header(decode_line(header))
        except LineRejected as exc:
            raise ExtractionFileError(f"en-tête RPPS illisible : {exc.reason}") from None
        batcher = _RppsBatcher(store, report, batch_size)
        for number, raw in lines:
            if not raw.strip():
                continue
            report.lines_read += 1
            try:
                line = parse_rpps_line(layout, decode_line(raw), number)
            except LineRejected as exc:
                report.reject(number, exc.reason)
                batcher.rejected(_rpps_of_rejected(layout, raw))
                continue
            for warning in line.warnings:
                report.warn(number, warning)
            batcher.add(line)
        batcher.finish()
    return report


# -- FINESS ----------------------------------------------------------------------------------------


def _finess_rows(
    handle: BinaryIO, total: int, progress: Progress | None, start: int, encoding: str
) -> Iterator[tuple[int, list[str] | LineRejected]]:
    """(line number, fields or the reason it is unreadable) for every non-blank line but the header."""
    for number, raw in _lines(handle, total, progress, start):
        if not raw.strip():
            continue
        try:
            fields = split_finess_line(decode_line(raw, encoding))
        except LineRejected as exc:
            yield number, exc
            continue
        if number == 1 and fields and fields[0] == FINESS_HEADER_TAG:
            continue
        yield number, fields


def _finess_positions(
    path: Path, report: ImportReport, progress: Progress | None, total: int, encoding: str
) -> dict[str, LatLon]:
    """First pass: the WGS84 position of each establishment, from the `geolocalisation` lines."""
    positions: dict[str, LatLon] = {}
    with _open(path) as handle:
        for number, row in _finess_rows(handle, total, progress, 0, encoding):
            if isinstance(row, LineRejected) or not row or row[0] != FINESS_GEOLOCATION_TAG:
                continue
            report.lines_read += 1
            try:
                geolocation = parse_finess_geolocation(row, number)
            except LineRejected as exc:
                report.reject(number, exc.reason)
                continue
            positions[geolocation.finess] = geolocation.position
    return positions


def import_finess(
    store: FhirStore,
    path: Path,
    progress: Progress | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    encoding: str = "utf-8",
) -> ImportReport:
    """Import a FINESS establishment extraction (`etalab-cs1100507-stock-*.csv`, see `extractions`).

    Each establishment becomes an Organization and a Location (with its position when the file
    gives one). Older extractions were Latin-1: pass `encoding="latin-1"` for those."""
    report = ImportReport(path.name)
    size = path.stat().st_size if path.exists() else 0
    if path.exists() and size == 0:
        raise ExtractionFileError(f"{path.name} est vide")
    total = 2 * size  # two passes over the file
    positions = _finess_positions(path, report, progress, total, encoding)
    batch: list[Write] = []
    with _open(path) as handle:
        for number, row in _finess_rows(handle, total, progress, size, encoding):
            if not isinstance(row, LineRejected) and row and row[0] == FINESS_GEOLOCATION_TAG:
                continue  # read in the first pass
            report.lines_read += 1
            if isinstance(row, LineRejected):
                report.reject(number, row.reason)
                continue
            if not row or row[0] != FINESS_ESTABLISHMENT_TAG:
                report.reject(number, f"type de ligne inconnu : « {row[0] if row else ''} »")
                continue
            try:
                establishment = parse_finess_establishment(row, number)
            except LineRejected as exc:
                report.reject(number, exc.reason)
                continue
            for warning in establishment.warnings:
                report.warn(number, warning)
            position = positions.get(establishment.finess)
            batch.append(Write(organization_from_finess(establishment)))
            batch.append(Write(location_from_finess(establishment, position)))
            if len(batch) >= batch_size:
                report.outcomes.update(do_write_batch(store, batch))
                batch = []
        report.outcomes.update(do_write_batch(store, batch))
    report.rejected.sort(key=lambda issue: issue.line_number)
    return report
