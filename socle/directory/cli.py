"""`socle directory ...`: import the RPPS and FINESS extractions, rebuild the search table.

A Typer sub-application, mounted on the main CLI with
`app.add_typer(directory_app, name="directory")`. It reads the same settings as the server
(`SOCLE_DATABASE_URL`...), shows a Rich progress bar over the bytes of the file, prints the
report in French, and exits 1 with one clear line when the file is missing or no line could be
imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from socle.config import get_settings
from socle.directory.imports import DEFAULT_BATCH_SIZE, ImportReport, import_finess, import_rpps
from socle.errors import SocleError
from socle.store.repository import FhirStore

directory_app = typer.Typer(
    help="Annuaire Santé : import des extractions publiques RPPS et FINESS, table de recherche.",
    no_args_is_help=True,
)
console = Console(stderr=True, soft_wrap=True, highlight=False)

# How many rejected lines the command lists (the report counts them all).
SHOWN_REJECTIONS = 20


def _store() -> FhirStore:
    from socle.store.engine import create_store_engine, migrate

    engine = create_store_engine(get_settings().database_url)
    migrate(engine)
    return FhirStore(engine)


@contextmanager
def _progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]Erreur :[/red] {message}")
    return typer.Exit(1)


def _run(
    description: str,
    path: Path,
    importer: Callable[[FhirStore, Path, Callable[[int, int], None]], ImportReport],
) -> None:
    if not path.is_file():
        raise _fail(f"{path} n'existe pas ou n'est pas un fichier")
    try:
        store = _store()
        with _progress_bar(description) as progress:
            report = importer(store, path, progress)
    except SocleError as error:
        raise _fail(error.message) from None
    for line in report.summary():
        console.print(line)
    for issue in report.rejected[:SHOWN_REJECTIONS]:
        console.print(f"  - ligne {issue.line_number} : {issue.reason}")
    if report.rejected_total > SHOWN_REJECTIONS:
        console.print(f"  ... et {report.rejected_total - SHOWN_REJECTIONS} autres lignes rejetées")
    if report.lines_accepted == 0:
        raise _fail(f"aucune ligne exploitable dans {path.name}")


@directory_app.command("import-rpps")
def import_rpps_command(
    file: Annotated[
        Path, typer.Argument(help="Extraction PS_LibreAcces_Personne_activite (.txt, séparateur |)")
    ],
    batch: Annotated[int, typer.Option(help="Ressources écrites par transaction")] = DEFAULT_BATCH_SIZE,
) -> None:
    """Importer les professionnels et leurs activités (Practitioner, PractitionerRole, Organization)."""
    _run("RPPS", file, lambda store, path, progress: import_rpps(store, path, progress, batch_size=batch))


@directory_app.command("import-finess")
def import_finess_command(
    file: Annotated[Path, typer.Argument(help="Extraction FINESS des établissements (.csv, séparateur ;)")],
    batch: Annotated[int, typer.Option(help="Ressources écrites par transaction")] = DEFAULT_BATCH_SIZE,
    encoding: Annotated[
        str, typer.Option(help="Encodage du fichier (latin-1 pour les anciennes extractions)")
    ] = "utf-8",
) -> None:
    """Importer les établissements FINESS (Organization, Location avec leur position)."""
    _run(
        "FINESS",
        file,
        lambda store, path, progress: import_finess(
            store, path, progress, batch_size=batch, encoding=encoding
        ),
    )


@directory_app.command("reindex")
def reindex_command() -> None:
    """Reconstruire la table de recherche de l'annuaire à partir des ressources FHIR stockées."""
    from socle.directory.projection import DirectoryProjection

    try:
        rows = _store().rebuild_projections(DirectoryProjection.name)[DirectoryProjection.name]
    except SocleError as error:
        raise _fail(error.message) from None
    console.print(f"Table de recherche de l'annuaire reconstruite : {rows} lignes (une par activité et lieu)")
