"""The `socle` command: serve the platform, seed demo data, load FHIR files.

Every command reads the same settings as the server (`SOCLE_DATABASE_URL`...) and goes through the
same services (the store, the bundle processor), never around them. Failures print one clear line
and exit non-zero.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from socle.config import Settings, get_settings
from socle.errors import SocleError

app = typer.Typer(help="Socle : plateforme de santé numérique (FHIR R4).", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True, highlight=False)


def _store(settings: Settings) -> Any:
    from socle.store.engine import create_store_engine, migrate
    from socle.store.repository import FhirStore

    engine = create_store_engine(settings.database_url, pool_size=settings.database_pool_size)
    migrate(engine)
    return FhirStore(engine)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Serve the platform (the database is created and migrated on first start)."""
    import uvicorn

    from socle.app import create_app

    settings = get_settings().model_copy(update={"base_url": f"http://{host}:{port}"})
    application = create_app(settings)
    console.print(f"Socle : FHIR R4 sur {settings.fhir_base}  (métadonnées : {settings.fhir_base}/metadata)")
    uvicorn.run(application, host=host, port=port, workers=workers, log_level="warning")


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    people: Annotated[int, typer.Option(help="Synthetic people to create when the store is empty")] = 200,
) -> None:
    """Seed synthetic demo data (first start only), then serve."""
    from socle.synthetic import seed_store

    settings = get_settings()
    store = _store(settings)
    created = seed_store(store, people=people, base_url=settings.fhir_base)
    if created:
        console.print(f"Données de démonstration : {created} ressources créées.")
    else:
        console.print("Données de démonstration déjà présentes.")
    from socle.auth.demo import demo_summary, seed_demo_accounts

    accounts = seed_demo_accounts(store, store.engine, f"http://{host}:{port}")
    console.print(demo_summary(accounts))
    serve(host=host, port=port)


@app.command()
def seed(
    people: Annotated[int, typer.Option(help="Personnes synthétiques à créer")] = 1000,
    graine: Annotated[int, typer.Option("--seed", help="Graine : mêmes personnes pour la même graine")] = 1,
    professionals: Annotated[
        int | None, typer.Option(help="Professionnels de l'annuaire (défaut : people/5, au moins 200)")
    ] = None,
) -> None:
    """Fill an empty platform with a synthetic France: directory, people, histories, INSi registry."""
    from socle.synthetic import seed_france

    settings = get_settings()
    store = _store(settings)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks: dict[str, Any] = {}

        def step(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase.capitalize(), total=total)
            progress.update(tasks[phase], completed=done, total=total)

        report = seed_france(
            store,
            store.engine,
            people=people,
            seed=graine,
            base_url=settings.fhir_base,
            professionals=professionals,
            progress=step,
        )
    console.print(report.summary())


def _documents(path: Path) -> Iterator[tuple[str, Any]]:
    """Every JSON document in a file or directory: (where, parsed); NDJSON yields one per line."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if file.suffix == ".ndjson":
            with file.open("rb") as handle:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        yield f"{file}:{number}", _parse(line)
        elif file.suffix == ".json":
            yield str(file), _parse(file.read_bytes())


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return SocleError(f"invalid JSON: {exc}")


@app.command()
def load(
    path: Annotated[Path, typer.Argument(help="A FHIR JSON/NDJSON file or a directory of them")],
) -> None:
    """Load FHIR resources and transaction/batch bundles; print loaded / rejected counts with reasons."""
    if not path.exists():
        console.print(f"[red]Erreur :[/red] {path} n'existe pas")
        raise typer.Exit(2)
    from socle.auth.context import RequestContext
    from socle.fhir.loading import load_document

    operator = RequestContext.operator("socle-load")
    settings = get_settings()
    store = _store(settings)
    loaded, rejected = 0, 0
    reasons: Counter[str] = Counter()
    documents = list(_documents(path)) if path.is_dir() else None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("Chargement", total=len(documents) if documents is not None else None)
        for where, document in documents if documents is not None else _documents(path):
            if isinstance(document, SocleError):
                rejected += 1
                reasons[f"{where}: {document.message}"] += 1
            else:
                ok, failures = load_document(store, document, settings.fhir_base, operator)
                loaded += ok
                rejected += len(failures)
                for failure in failures:
                    reasons[f"{where}: {failure}"] += 1
            progress.advance(task)
    if loaded:
        store.analyze()
    console.print(f"{loaded} ressources chargées, {rejected} rejetées")
    for reason, count in reasons.most_common(20):
        console.print(f"  - {reason}" + (f" (x{count})" if count > 1 else ""))
    if rejected and not loaded:
        raise typer.Exit(1)


from socle.auth.cli import rotate_keys, token  # noqa: E402  (commands mounted after the root app)
from socle.directory.cli import directory_app  # noqa: E402

app.command()(token)
app.command("rotate-keys")(rotate_keys)
app.add_typer(directory_app, name="directory")

audit_app = typer.Typer(help="Journal d'audit : vérification de la chaîne.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit chain; name the first broken link (exit 1) or confirm it holds."""
    from socle.audit.trail import verify_chain

    store = _store(get_settings())
    report = verify_chain(store.engine)
    if report.intact:
        console.print(f"Chaîne d'audit intègre : {report.entries} événements vérifiés.")
        return
    console.print(
        f"[red]Chaîne d'audit rompue[/red] au {report.reason} ({report.entries} événements intègres avant)."
    )
    raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except SocleError as error:
        console.print(f"[red]Erreur :[/red] {error.message}")
        sys.exit(1)
