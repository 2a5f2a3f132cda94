"""The ASGI application: settings, the store, and each domain's routes mounted under one app."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine

from socle import __version__
from socle.audit.writer_process import AuditWriterProcess
from socle.auth.api import require_request_context
from socle.auth.api import router as auth_router
from socle.auth.context import PurposeOfUse, RequestContext
from socle.config import Settings, get_settings
from socle.errors import Forbidden, InvalidRequest
from socle.fhir.api import router as fhir_router
from socle.identity.insi_api import insi_router
from socle.store.engine import create_store_engine, migrate
from socle.store.repository import FhirStore

PURPOSES: dict[str, PurposeOfUse] = {
    "normal": "normal",
    "bris-de-glace": "bris-de-glace",
    "regulation": "regulation",
}


def bearer_context(request: Request) -> RequestContext:
    """The context of a FHIR request: its verified bearer token, plus a declared purpose of use.

    A professional declares an emergency access with `X-Purpose-Of-Use: bris-de-glace` (or
    `regulation`) and the reason in `X-Purpose-Reason`; the policy requires the reason and the
    trail records both.
    """
    ctx = require_request_context(request)
    declared = request.headers.get("x-purpose-of-use", "normal")
    purpose = PURPOSES.get(declared)
    if purpose is None:
        raise InvalidRequest(f"X-Purpose-Of-Use inconnu : '{declared}' (attendu : {', '.join(PURPOSES)})")
    if purpose != "normal" and ctx.actor_type != "practitioner":
        raise Forbidden("Seul un professionnel de santé peut déclarer un accès en urgence")
    reason = request.headers.get("x-purpose-reason")
    return replace(ctx, purpose_of_use=purpose, purpose_reason=reason)


def configure_interpreter(settings: Settings) -> None:
    """Process-wide tuning a server needs, set once when its app is built.

    The switch interval: a thread coming back from a blocking call (a database round trip) waits
    for the GIL until the thread holding it lets go, at worst `sys.getswitchinterval()` later. The
    audit writer, the serial part every audited read waits for, pays that wait after each database
    call, so a shorter interval looked like a way to shorten its batches. Measured over HTTP
    (bench/RESULTS.md section 3), 1 ms instead of Python's 5 ms changed neither the audited
    throughput nor the writer's batch latency beyond the noise: the default stays Python's, and
    `SOCLE_SWITCH_INTERVAL` lets an operator try another value on other hardware.
    """
    sys.setswitchinterval(settings.switch_interval)


def open_store(settings: Settings, engine: Engine | None = None) -> FhirStore:
    """The server's store: its database migrated, its read traces written as `settings` says (the
    audit process started now rather than on the first read)."""
    if engine is None:
        engine = create_store_engine(settings.database_url, pool_size=settings.database_pool_size)
    migrate(engine)
    store = FhirStore(engine, audit_process=settings.audit_writer == "process")
    if isinstance(store.audit_writer, AuditWriterProcess):
        store.audit_writer.start()
    return store


def create_app(
    settings: Settings | None = None,
    store: FhirStore | None = None,
    authenticate: Callable[[Request], RequestContext] | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    configure_interpreter(settings)
    if store is None:
        store = open_store(settings)
    app = FastAPI(title="Socle", version=__version__, docs_url="/api/docs", redoc_url=None)
    app.state.settings = settings
    app.state.store = store
    app.state.authenticate = authenticate or bearer_context
    app.include_router(auth_router)  # first: the FHIR catch-all would swallow /fhir/.well-known/
    app.include_router(insi_router)
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
