"""The ASGI application: settings, the store, and each domain's routes mounted under one app."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from socle import __version__
from socle.auth.context import RequestContext
from socle.config import Settings, get_settings
from socle.fhir.api import router as fhir_router
from socle.store.engine import create_store_engine, migrate
from socle.store.repository import FhirStore


def anonymous_context(request: Request) -> RequestContext:
    """Until bearer tokens are required: an anonymous actor, still traced with its address."""
    return RequestContext(
        actor_type="anonymous",
        actor_id="anonymous",
        display="anonyme",
        source_ip=request.client.host if request.client else None,
    )


def create_app(
    settings: Settings | None = None,
    store: FhirStore | None = None,
    authenticate: Callable[[Request], RequestContext] | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    if store is None:
        engine = create_store_engine(settings.database_url)
        migrate(engine)
        store = FhirStore(engine)
    app = FastAPI(title="Socle", version=__version__, docs_url="/api/docs", redoc_url=None)
    app.state.settings = settings
    app.state.store = store
    app.state.authenticate = authenticate or anonymous_context
    app.include_router(fhir_router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        base = settings.fhir_base
        return (
            "<!doctype html><html lang='fr'><head><meta charset='utf-8'><title>Socle</title></head><body>"
            "<h1>Socle — plateforme de santé numérique</h1>"
            f"<p>Serveur FHIR R4 : <a href='{base}/metadata'>{base}</a></p>"
            f"<p>Exemple : <a href='{base}/Patient?_count=10'>les dix premiers patients</a></p>"
            "</body></html>"
        )

    return app
