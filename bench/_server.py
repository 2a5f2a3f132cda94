"""The bench's HTTP server: socle's app plus bench-only routes, served by uvicorn on 127.0.0.1.

Run by `bench/read_by_id.py` in a subprocess (never by hand in production):

    .venv/bin/python -m bench._server --database-url URL --port PORT [--instrument]

The app is `socle.app.create_app(settings, store)` exactly as `socle serve` builds it (same settings
from the `SOCLE_` environment, `base_url` = this server's address, uvicorn with one worker and
`log_level="warning"`), plus an `APIRouter` defined here:

- `GET /bench-plain/{type}/{id}`: the unauthenticated path — one read-only store session and
  `session.read()`, no token, no policy, no audit; the body is the stored JSON.
- `GET /bench-noaudit/{type}/{id}`: the token check (the app's own authenticator, i.e. bearer
  verification) and `handle()` (scopes + policy + the read) in a read-only session, but no trace:
  what the FHIR read costs without its audit.
- `GET /bench-stats` (with `--instrument` only): timings collected in this process and reset on
  each call: the app's authenticator, `trace_of` (the patients of the trace), the request's wait
  in `AuditWriter.write` and the writer's batches (sizes, commit latency).

`--instrument` wraps those functions in this process only (socle's files are untouched); it adds a
few `perf_counter()` calls per request, so the throughput figures are taken without it. With the
audit process (`SOCLE_AUDIT_WRITER=process`, socle's default) the traces are prepared and committed
in the child, so only the request's wait for its confirmation is timed here.

What-ifs (bench-only, to size a suggested socle fix; never used for the main figures):
`--what-if-pool N` builds the PostgreSQL store engine as `create_store_engine` does but with
`pool_size=N, max_overflow=N`, and the token verifier's autocommit companion pool likewise (socle:
10 + 20 overflow and 4 + 16: more concurrent requests than pooled connections open and close a
PostgreSQL connection per checkout); `--switch-interval S` sets `sys.setswitchinterval(S)` after
the app is built (over socle's `SOCLE_SWITCH_INTERVAL`; 0.005 is Python's default);
`--what-if-batched-chain` (one chain lock, one `SELECT` of the head and one multi-row `INSERT` of
the links per batch) was measured here before socle adopted it; the flag is still accepted and
now changes nothing.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy import Engine

from socle.app import create_app, open_store
from socle.config import Settings
from socle.errors import SocleError
from socle.fhir.interactions import FhirRequest, handle
from socle.store.engine import create_store_engine, normalize_url
from socle.store.repository import FhirStore

FHIR_JSON = "application/fhir+json"


class Timings:
    """Thread-safe lists of durations (seconds) and batch sizes, by name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, list[float]] = {}

    def add(self, name: str, value: float) -> None:
        with self._lock:
            self.values.setdefault(name, []).append(value)

    def take(self) -> dict[str, list[float]]:
        with self._lock:
            values, self.values = self.values, {}
        return values


def timed(timings: Timings, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            timings.add(name, time.perf_counter() - started)

    return wrapper


def instrument(app: FastAPI, store: FhirStore, timings: Timings) -> None:
    """Time the authenticator, the trace's patient lookup and the audit writer, in this process."""
    import socle.audit.writer as audit_writer
    import socle.auth.revocations as revocations
    import socle.fhir.access as access

    app.state.authenticate = timed(timings, "authenticate", app.state.authenticate)
    lookup = revocations.RevocationLookup
    lookup.probe = timed(timings, "revocation_probe", lookup.probe)  # type: ignore[method-assign]
    access.handle = timed(timings, "handle", access.handle)  # type: ignore[assignment]
    access.trace_of = timed(timings, "trace_of", access.trace_of)  # type: ignore[assignment]
    audit_writer.prepare_event = timed(timings, "audit_prepare", audit_writer.prepare_event)  # type: ignore[assignment]
    audit_writer.commit_prepared = timed(timings, "audit_record_batch", audit_writer.commit_prepared)  # type: ignore[assignment]
    writer = store.audit_writer
    writer.write = timed(timings, "audit_write_wait", writer.write)
    if not hasattr(writer, "commit_batch"):
        return  # the audit process (socle's default) prepares and commits out of this process
    commit = writer.commit_batch

    def counted_commit(batch: list[Any]) -> None:
        timings.add("audit_batch_size", float(len(batch)))
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            commit(batch)
        finally:
            # Wall minus the writer thread's CPU: time spent off the CPU (I/O, locks, GIL waits).
            timings.add("audit_batch_commit", time.perf_counter() - started)
            timings.add("audit_batch_cpu", time.thread_time() - cpu)

    writer.commit_batch = counted_commit


def bench_router(store: FhirStore, settings: Settings, timings: Timings | None) -> APIRouter:
    router = APIRouter()

    @router.get("/bench-plain/{res_type}/{res_id}")
    def plain(res_type: str, res_id: str) -> Response:
        with store.session(readonly=True) as s:
            return Response(s.read(res_type, res_id).data, media_type=FHIR_JSON)

    @router.get("/bench-noaudit/{res_type}/{res_id}")
    def noaudit(request: Request, res_type: str, res_id: str) -> Response:
        try:
            ctx = request.app.state.authenticate(request)
            fhir_request = FhirRequest("GET", f"{res_type}/{res_id}", base_url=settings.fhir_base)
            with store.session(readonly=True) as s:
                response = handle(fhir_request, s, ctx)
        except SocleError as error:
            return Response(error.message, status_code=error.status)
        return Response(response.body, status_code=response.status, media_type=FHIR_JSON)

    if timings is not None:

        @router.get("/bench-stats")
        def stats() -> Response:
            return Response(orjson.dumps(timings.take()), media_type="application/json")

    return router


def what_if_engine(url: str, pool: int) -> Engine:
    """`create_store_engine` for PostgreSQL with a bigger pool, and a matching revocation pool."""
    from sqlalchemy import create_engine

    import socle.auth.revocations as revocations

    url = normalize_url(url)
    engine = create_engine(
        url,
        pool_size=pool,
        max_overflow=pool,
        pool_pre_ping=True,
        connect_args={"options": "-c plan_cache_mode=force_custom_plan"},
    )
    revocations._companions[engine] = create_engine(
        url, isolation_level="AUTOCOMMIT", pool_size=pool, max_overflow=pool
    )
    return engine


def build(
    database_url: str, port: int, instrumented: bool, pool: int = 0, batched_chain: bool = False
) -> FastAPI:
    # The same settings as `socle serve`: the SOCLE_ environment, base_url set to where we listen.
    settings = Settings(database_url=database_url, base_url=f"http://127.0.0.1:{port}")
    postgres = not normalize_url(database_url).startswith("sqlite")
    engine = what_if_engine(database_url, pool) if pool and postgres else create_store_engine(database_url)
    store = open_store(settings, engine)  # as `socle serve` opens it (audit process included)
    app = create_app(settings, store)
    # `batched_chain` (the old what-if) is what socle does now: accepted, nothing to patch.
    timings = Timings() if instrumented else None
    if timings is not None:
        instrument(app, store, timings)
    app.include_router(bench_router(store, settings, timings))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--instrument", action="store_true")
    parser.add_argument("--what-if-pool", type=int, default=0)
    parser.add_argument("--switch-interval", type=float, default=0.0)
    parser.add_argument("--what-if-batched-chain", action="store_true")
    args = parser.parse_args()
    app = build(args.database_url, args.port, args.instrument, args.what_if_pool, args.what_if_batched_chain)
    if args.switch_interval:  # after create_app, which sets socle's own (SOCLE_SWITCH_INTERVAL)
        sys.setswitchinterval(args.switch_interval)
    uvicorn.run(app, host="127.0.0.1", port=args.port, workers=1, log_level="warning")


if __name__ == "__main__":
    main()
