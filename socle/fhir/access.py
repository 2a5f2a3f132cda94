"""Every FHIR interaction runs through here: executed in a store session and traced.

`perform()` is the single entry for the REST adapter, bundle entries and the CLI: it opens the
session, runs `handle()`, and writes the AuditEvent of the interaction in the same transaction for
writes. A read runs in a read-only session (SQLite readers must not queue behind the writer) and its
trace is committed right after by the store's group-commit writer, before the response leaves: if
the trace cannot be written, the data is not returned (the async REST adapter awaits that commit
without holding a thread: `DeferredTrace`). A failure is traced the same way, after the failed
transaction rolled back.
The capability statement is not patient data and is not traced.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from socle.audit.trail import AccessTrace, patients_of, record
from socle.audit.writer import PendingTrace
from socle.auth.context import RequestContext
from socle.errors import SocleError
from socle.fhir.interactions import FhirRequest, FhirResponse, Interaction, classify, handle
from socle.store.repository import FhirStore, StoreSession

UNTRACED = frozenset({"capabilities"})


@dataclass(frozen=True, slots=True)
class DeferredTrace:
    """A read's trace still on its way to the audit trail: its response must wait for `settled`."""

    pending: PendingTrace
    store: FhirStore
    ctx: RequestContext
    interaction: Interaction
    query: str | None

    async def settled(self) -> None:
        """Returns once the trace is committed; if it cannot be, traces the failure and raises."""
        try:
            await self.pending.settled()
        except Exception:
            await asyncio.to_thread(
                trace_failure, self.store, self.ctx, self.interaction, 500, "internal error", self.query
            )
            raise


def perform(
    store: FhirStore,
    request: FhirRequest,
    ctx: RequestContext,
    *,
    deferred: list[DeferredTrace] | None = None,
) -> FhirResponse:
    """Run one interaction and trace it.

    With `deferred`, a read's trace is queued there instead of waited for: the caller (the async
    FHIR endpoint) must await `DeferredTrace.settled` before the response leaves.
    """
    interaction = classify(request.method, request.path)
    if interaction.code == "transaction":
        from socle.fhir.bundles import process_bundle

        try:
            posted = request.json()
        except SocleError as error:
            trace_failure(store, ctx, interaction, error.status, error.message, None)
            raise
        bundle = process_bundle(store, posted, request.base_url, request.header("prefer"), ctx)
        return FhirResponse.of_json(200, bundle)
    if interaction.code in UNTRACED:
        with store.session(readonly=True) as session:
            return handle(request, session, ctx)
    readonly = request.method.upper() == "GET"
    try:
        with store.session(readonly=readonly) as session:
            response = handle(request, session, ctx)
            trace = trace_of(session, interaction, response.status, query_of(request))
            if not readonly:
                record(session, ctx, trace)
        if readonly:
            pending = store.audit_writer.submit(ctx, trace)
            if deferred is None:
                pending.wait()
            else:
                deferred.append(DeferredTrace(pending, store, ctx, interaction, query_of(request)))
        return response
    except SocleError as error:
        trace_failure(store, ctx, interaction, error.status, error.message, query_of(request))
        raise
    except Exception:
        trace_failure(store, ctx, interaction, 500, "internal error", query_of(request))
        raise


def trace_of(
    session: StoreSession,
    interaction: Interaction,
    status: int,
    query: str | None,
    *,
    touched: set[int] | None = None,
) -> AccessTrace:
    """The trace of a successful interaction: the patients whose data the session touched."""
    patients = patients_of(session, session.touched if touched is None else touched)
    return AccessTrace(
        interaction=interaction.code,
        status=status,
        resource=interaction.reference,
        resource_type=interaction.res_type,
        patients=patients,
        query=query,
    )


def trace_failure(
    store: FhirStore,
    ctx: RequestContext,
    interaction: Interaction,
    status: int,
    description: str,
    query: str | None,
) -> None:
    patients = (interaction.res_id,) if interaction.res_type == "Patient" and interaction.res_id else ()
    trace = AccessTrace(
        interaction=interaction.code,
        status=status,
        resource=interaction.reference,
        resource_type=interaction.res_type,
        patients=patients,
        query=query,
        description=description[:500],
    )
    store.audit_writer.write(ctx, trace)


def query_of(request: FhirRequest) -> str | None:
    if not request.params:
        return None
    return "&".join(f"{k}={v}" for k, v in request.params)


def trace_bundle(
    session: StoreSession, ctx: RequestContext, kind: str, status: int, entries: list[Any]
) -> None:
    """One trace for a whole transaction: every entry's resource and patient, in its session."""
    record(
        session,
        ctx,
        AccessTrace(
            interaction=kind,
            status=status,
            patients=patients_of(session, session.touched),
            description=f"{len(entries)} entrées",
        ),
    )
