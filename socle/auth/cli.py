"""Auth commands for the `socle` CLI: an operator token, signing-key rotation.

They use the same database (`SOCLE_DATABASE_URL`), keys and key-encryption key as the running
server, so a token printed here verifies there. Mounted by `socle/cli.py`:

    app.command()(token)
    app.command("rotate-keys")(rotate_keys)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from socle.auth.provider import AuthProvider
from socle.auth.settings import AuthSettings

console = Console(stderr=True, soft_wrap=True, highlight=False)


def _provider(base_url: str | None) -> AuthProvider:
    from socle.config import get_settings
    from socle.store.engine import create_store_engine, migrate

    settings = get_settings()
    engine = create_store_engine(settings.database_url)
    migrate(engine)
    auth_settings = AuthSettings(base_url=base_url or settings.base_url, environment=settings.environment)
    return AuthProvider(engine, auth_settings)


def token(
    scope: Annotated[str, typer.Option(help="SMART system scopes, space-separated")] = "system/*.*",
    base_url: Annotated[
        str | None, typer.Option(help="The server's public URL (default: SOCLE_BASE_URL): sets iss and aud")
    ] = None,
) -> None:
    """Print a short-lived bearer token of the operator system client (last line, bare)."""
    provider = _provider(base_url)
    minted = provider.mint_operator_token(scope)
    until = datetime.fromtimestamp(minted.expires_at, UTC).astimezone().strftime("%H:%M:%S")
    console.print(f"Jeton opérateur ({scope}) pour {provider.fhir_base}, valable jusqu'à {until} :")
    typer.echo(minted.token)


def rotate_keys(
    base_url: Annotated[
        str | None, typer.Option(help="The server's public URL (default: SOCLE_BASE_URL)")
    ] = None,
) -> None:
    """Make a new signing key current; previous keys keep verifying their tokens until they expire."""
    provider = _provider(base_url)
    kid = provider.keyring.rotate()
    console.print(f"Nouvelle clé de signature : {kid}")
