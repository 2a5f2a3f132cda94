"""The FHIR REST adapter: HTTP requests under `/fhir` become `FhirRequest`s for `handle()`.

Thin on purpose: it opens the store session (read-only for GET), renders `FhirResponse`s and turns
every `SocleError` into an OperationOutcome with its status. POST on the base runs a transaction or
batch Bundle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from socle.auth.context import RequestContext
from socle.errors import Issue, NotAcceptable, SocleError, UnsupportedMediaType, operation_outcome
from socle.fhir.access import DeferredTrace, perform, query_of, trace_failure
from socle.fhir.interactions import FHIR_JSON, FhirRequest, FhirResponse, classify
from socle.store.repository import FhirStore

log = logging.getLogger(__name__)
router = APIRouter()
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


def _render(response: FhirResponse, pretty: bool) -> Response:
    body = response.body
    if body is not None and pretty:
        body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
    headers = dict(response.headers)
    if body is None:
        return Response(status_code=response.status, headers=headers)
    return Response(
        body, status_code=response.status, headers=headers, media_type=f"{FHIR_JSON}; charset=utf-8"
    )


def _error(error: SocleError) -> Response:
    return _render(FhirResponse.of_error(error), False)


def _check_format(request: Request) -> None:
    fmt = request.query_params.get("_format")
    if fmt and fmt not in ("json", "application/json", "application/fhir+json"):
        raise NotAcceptable(f"Unsupported _format '{fmt}': this server speaks FHIR JSON only")
    accept = request.headers.get("accept", "")
    if accept and "xml" in accept and "json" not in accept and "*/*" not in accept:
        raise NotAcceptable("This server produces FHIR JSON only (application/fhir+json)")
    if request.method in ("POST", "PUT"):
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type and "xml" in content_type:
            raise UnsupportedMediaType("This server accepts FHIR JSON only (application/fhir+json)")


@router.api_route("/fhir", methods=METHODS)
@router.api_route("/fhir/", methods=METHODS)
@router.api_route("/fhir/{path:path}", methods=METHODS)
async def fhir_endpoint(request: Request, path: str = "") -> Response:
    store: FhirStore = request.app.state.store
    base_url: str = request.app.state.settings.fhir_base
    pretty = request.query_params.get("_pretty") == "true"
    # A GET's body, if a client sends one, means nothing in FHIR: not read (an await per read).
    body = b"" if request.method in ("GET", "HEAD") else await request.body()
    try:
        fhir_request = FhirRequest(
            method="GET" if request.method == "HEAD" else request.method,
            path=path,
            params=[(k, v) for k, v in request.query_params.multi_items() if k not in ("_pretty",)],
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            base_url=base_url,
        )
        # One trip to the threadpool for the whole request: each hop costs a thread hand-off. A
        # read's trace is committed by the audit writer while no thread waits for it; the
        # response leaves only once it is.
        deferred: list[DeferredTrace] = []
        response = await run_in_threadpool(_serve, request, store, fhir_request, deferred)
        for trace in deferred:
            await trace.settled()
    except SocleError as error:
        return _error(error)
    except Exception:  # the client gets an OperationOutcome, never a stack trace
        log.exception("FHIR request failed: %s %s", request.method, path)
        outcome = operation_outcome(
            [Issue("fatal", "exception", "Internal server error; nothing was written")]
        )
        return Response(orjson.dumps(outcome), status_code=500, media_type=FHIR_JSON)
    rendered = _render(response, pretty)
    if request.method == "HEAD":
        return Response(status_code=rendered.status_code, headers=dict(rendered.headers))
    return rendered


def _serve(
    request: Request, store: FhirStore, fhir_request: FhirRequest, deferred: list[DeferredTrace]
) -> FhirResponse:
    """Authenticate, check the format, perform: every outcome, refusals included, is traced."""
    ctx = _authenticated(request, store, fhir_request)
    try:
        _check_format(request)
    except SocleError as error:
        interaction = classify(fhir_request.method, fhir_request.path)
        trace_failure(store, ctx, interaction, error.status, error.message, query_of(fhir_request))
        raise
    return perform(store, fhir_request, ctx, deferred=deferred)


def _authenticated(request: Request, store: FhirStore, fhir_request: FhirRequest) -> RequestContext:
    """Who is asking, from the app's authenticator; a refused authentication is itself traced."""
    anonymous = RequestContext.anonymous(request.client.host if request.client else None)
    if fhir_request.path.strip("/") == "metadata":
        return anonymous
    authenticate: Callable[[Request], RequestContext] = request.app.state.authenticate
    try:
        return authenticate(request)
    except SocleError as error:
        interaction = classify(fhir_request.method, fhir_request.path)
        trace_failure(store, anonymous, interaction, error.status, error.message, query_of(fhir_request))
        raise
