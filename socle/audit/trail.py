"""The audit trail: one FHIR AuditEvent per access to data, in an append-only hash chain.

Each event is stored as an AuditEvent resource (so patients and operators search it like any
resource) and gets a link in `audit_chain` carrying sha256(previous link's hash + the event's stored
bytes). `verify_chain` recomputes the chain and names the first broken link: a modified event, a
deleted event or link, or links put in another order all break it.

Events are written in the session of the action they trace (no action without its trace); a failed
action is traced in a session of its own after the action's rollback; reads hand theirs to the
group-commit writer (`socle.audit.writer`). An event is prepared (`prepare_event`: built, stamped,
serialised, indexed) before any lock is taken, so the serial part of writing is only storing rows
and linking: appending takes a transaction-scoped lock (PostgreSQL advisory lock; SQLite's write
lock), reads the chain's head once, and links any number of events in one multi-row INSERT, so
links never fork.

An event `build_event` made from values the R4 validator accepts as they are (`plainly_valid`) is
neither re-validated nor run through the generic indexing pipeline: its rows come from
`socle.audit.event_rows` (the tests hold both shortcuts to the generic answers). Any other event
takes the generic path, validation included.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, func, select

from socle.audit.event_rows import event_index_rows
from socle.auth.context import RequestContext
from socle.canonical import code_system
from socle.clock import fhir_instant, to_micros, utc_now
from socle.errors import InvalidResource
from socle.fhir.definitions import compartment_parameters, resource_types
from socle.search.rows import IndexRow
from socle.store import schema
from socle.store.engine import is_sqlite
from socle.store.repository import FhirStore, StoreSession

GENESIS = "0" * 64
CHAIN_LOCK = 0x50C1E  # PostgreSQL advisory lock key serialising chain appends
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
CLIENT_SYSTEM = "urn:socle:client"  # OAuth client ids, as agents name them
# Socle's purposes (normal, bris de glace, SAMU regulation); each also carries its HL7 v3 reason.
PURPOSE_SYSTEM = code_system("purpose-of-use")
# The HL7 v3 reason closest to each purpose, for systems that only know the standard codes.
PURPOSE_V3 = {"normal": "TREAT", "bris-de-glace": "ETREAT", "regulation": "ETREAT"}
ACTION_OF = {
    "create": "C",
    "read": "R",
    "vread": "R",
    "search-type": "E",
    "search-system": "E",
    "history-instance": "R",
    "history-type": "R",
    "history-system": "R",
    "update": "U",
    "patch": "U",
    "delete": "D",
    "transaction": "E",
    "batch": "E",
    "operation": "E",
    "capabilities": "R",
}
OUTCOME_OF_STATUS = {4: "4", 5: "8"}  # 4xx: minor failure (client), 5xx: serious failure (server)


@dataclass(frozen=True, slots=True)
class AccessTrace:
    """What one interaction did, as the audit trail records it."""

    interaction: str  # restful-interaction code: read, search-type, create, ...
    status: int  # HTTP status of the outcome
    resource: str | None = None  # "Type/id" acted on
    resource_type: str | None = None
    patients: tuple[str, ...] = ()  # Patient ids whose data was touched
    query: str | None = None
    description: str | None = None


def build_event(ctx: RequestContext, trace: AccessTrace, recorded: str) -> dict[str, Any]:
    """An R4 AuditEvent shaped like the ANS "traçabilité des événements" profile."""
    agent: dict[str, Any] = {"requestor": True, "name": ctx.display}
    if ctx.actor_type in ("practitioner", "patient") and "/" in ctx.actor_id:
        agent["who"] = {"reference": ctx.actor_id, "display": ctx.display}
    else:
        agent["who"] = {"identifier": {"system": CLIENT_SYSTEM, "value": ctx.client_id or ctx.actor_id}}
    if ctx.profession:
        agent["type"] = {"coding": [{"system": "urn:oid:1.2.250.1.71.1.2.7", "code": ctx.profession}]}
    if ctx.specialty:
        agent["role"] = [{"coding": [{"system": "urn:oid:1.2.250.1.71.1.2.8", "code": ctx.specialty}]}]
    if ctx.source_ip:
        agent["network"] = {"address": ctx.source_ip, "type": "2"}
    agent["policy"] = [request_policy(ctx.request_id)]
    if ctx.structure:
        agent["location"] = {"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.2", "value": ctx.structure}}
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [{"system": RESTFUL_INTERACTION, "code": trace.interaction}],
        "action": ACTION_OF.get(trace.interaction, "E"),
        "recorded": recorded,
        "outcome": "0" if trace.status < 400 else OUTCOME_OF_STATUS.get(trace.status // 100, "8"),
        "purposeOfEvent": [
            {
                "coding": [
                    {"system": PURPOSE_SYSTEM, "code": ctx.purpose_of_use},
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                        "code": PURPOSE_V3[ctx.purpose_of_use],
                    },
                ],
                **({"text": ctx.purpose_reason} if ctx.purpose_reason else {}),
            }
        ],
        "agent": [agent],
        "source": {"site": "Socle", "observer": {"display": "Socle"}},
    }
    if trace.status >= 400 or trace.description:
        event["outcomeDesc"] = (trace.description or f"HTTP {trace.status}")[:1000]
        if trace.resource and not _valid_reference(trace.resource):
            event["outcomeDesc"] += f" (cible : {trace.resource[:200]})"
    entities: list[dict[str, Any]] = []
    for patient in trace.patients:
        if not _VALID_ID.fullmatch(patient):
            continue  # a refused request may name an impossible id: it stays in outcomeDesc
        entities.append(
            {
                "what": {"reference": f"Patient/{patient}"},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"},
            }
        )
    if trace.resource and not trace.resource.startswith("Patient/") and _valid_reference(trace.resource):
        entities.append(
            {
                "what": {"reference": trace.resource},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
            }
        )
    if trace.query:
        entities.append(
            {
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24"},
                "description": trace.query[:1000],
                **({"name": trace.resource_type} if trace.resource_type else {}),
            }
        )
    if entities:
        event["entity"] = entities
    return event


def request_policy(request_id: str) -> str:
    """How an agent names the request it acted in (the `X-Request-Id` an operator searches for)."""
    return f"urn:socle:request:{request_id}"


_VALID_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _valid_reference(reference: str) -> bool:
    res_type, _, res_id = reference.partition("/")
    return res_type.isalpha() and bool(_VALID_ID.fullmatch(res_id))


_ACTOR_REFERENCE = re.compile(r"(?:Practitioner|Patient)/[A-Za-z0-9\-.]{1,64}")


def _plain_text(value: str | None) -> bool:
    """A FHIR string as is: not blank, no control or separator character but the ASCII space."""
    return value is None or (value.isprintable() and bool(value.strip()) and len(value) <= 10_000)


def _plain_code(value: str | None) -> bool:
    """A FHIR code or uri as is: printable, no space at all."""
    return value is None or (value.isprintable() and bool(value) and " " not in value and len(value) <= 1_000)


def plainly_valid(ctx: RequestContext, trace: AccessTrace) -> bool:
    """True when every value `build_event` takes from outside is one R4 accepts where it goes.

    The rest of the event is constant or built from checked values (`_VALID_ID`), so such an event
    is valid without running the validator (tests/audit/test_event_rows.py runs it on every shape).
    """
    actor_reference = ctx.actor_type in ("practitioner", "patient") and "/" in ctx.actor_id
    entity_reference = trace.resource is not None and _valid_reference(trace.resource)
    return (
        (not actor_reference or _ACTOR_REFERENCE.fullmatch(ctx.actor_id) is not None)
        and (not entity_reference or str(trace.resource).partition("/")[0] in resource_types())
        and _plain_text(ctx.display)
        and _plain_text(ctx.client_id or ctx.actor_id)
        and _plain_text(ctx.source_ip)
        and _plain_text(ctx.structure)
        and _plain_text(ctx.purpose_reason)
        and _plain_code(ctx.profession)
        and _plain_code(ctx.specialty)
        and _plain_code(ctx.request_id)
        and _plain_code(trace.interaction)
        and _plain_text(trace.query[:1000] if trace.query else None)
        and _plain_text(trace.description[:1000] if trace.description else None)
        and _plain_text(trace.resource[:200] if trace.resource else None)
        and _plain_text(trace.resource_type)
    )


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """An AuditEvent ready to store: id, time, canonical bytes and search-index rows."""

    res_id: str
    recorded: int  # epoch microseconds: `recorded` and `meta.lastUpdated`
    data: bytes
    rows: list[IndexRow]


def prepare_event(store: FhirStore, ctx: RequestContext, trace: AccessTrace) -> PreparedEvent:
    """Build, stamp, check and index the AuditEvent of `trace` (no database work, no lock)."""
    now = to_micros(utc_now())
    event = build_event(ctx, trace, fhir_instant(now))
    return _stamped(store, event, now, plain=plainly_valid(ctx, trace))


def _stamped(store: FhirStore, event: dict[str, Any], now: int, *, plain: bool) -> PreparedEvent:
    """`event` with its id and meta, checked (unless `plain`: see plainly_valid) and indexed."""
    instant = fhir_instant(now)
    res_id = str(uuid.uuid4())
    stamped = {"resourceType": "AuditEvent", "id": res_id, "meta": {"versionId": "1", "lastUpdated": instant}}
    stamped.update((k, v) for k, v in event.items() if k not in ("resourceType", "id", "meta"))
    if plain:
        rows = event_index_rows(stamped)
    else:
        issues = [i for i in store.validate(stamped) if i.severity in ("error", "fatal")]
        if issues:
            raise InvalidResource(issues)
        rows = store.index_rows(stamped)
    return PreparedEvent(res_id, now, orjson.dumps(stamped), rows)


def record(session: StoreSession, ctx: RequestContext, trace: AccessTrace) -> str:
    """Write the event and its chain link in `session`'s transaction; returns the AuditEvent id."""
    prepared = prepare_event(session.store, ctx, trace)
    record_prepared(session, [prepared])
    return prepared.res_id


def append(session: StoreSession, event: dict[str, Any], now: int) -> str:
    """Store any AuditEvent (recorded at `now`, epoch microseconds) as the chain's next link.

    For events not built by `build_event` (authentication events): validated and indexed by the
    generic pipeline.
    """
    prepared = _stamped(session.store, event, now, plain=False)
    record_prepared(session, [prepared])
    return prepared.res_id


def record_prepared(session: StoreSession, events: list[PreparedEvent]) -> None:
    """Store prepared events and link them, in this order, at the end of the chain (one INSERT)."""
    if not events:
        return
    keys = [
        session.create_built("AuditEvent", event.res_id, event.recorded, event.data, event.rows)
        for event in events
    ]
    prev_hash = session.audit_head
    if prev_hash is None and not is_sqlite(session.store.engine):
        # First links of this transaction on PostgreSQL: linked by the session's next flush, after
        # its rows are written (`ChainLinks`); the lock is then held until commit.
        if not isinstance(session.unlinked, ChainLinks):
            session.unlinked = ChainLinks()
        session.unlinked.add(keys, events)
        return
    if prev_hash is None:
        # SQLite: the transaction already holds the database's write lock; read the head once,
        # later links of the session follow in memory.
        prev_hash = _locked_head(session.connection)
    links = _links(prev_hash, keys, events)
    # Written by the session's next flush, with the events' rows (under the lock taken above).
    session.insert_later(schema.audit_chain, links)
    session.audit_head = links[-1]["entry_hash"]


class ChainLinks:
    """Events stored in a session but not linked yet (PostgreSQL): what its flush appends."""

    def __init__(self) -> None:
        self.table = schema.audit_chain
        self.lock_sql = f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})"
        self.head_sql = _HEAD_SQL
        self.keys: list[int] = []
        self.events: list[PreparedEvent] = []

    def add(self, keys: list[int], events: list[PreparedEvent]) -> None:
        self.keys += keys
        self.events += events

    def links(self, prev_hash: str | None) -> list[dict[str, Any]]:
        return _links(prev_hash or GENESIS, self.keys, self.events)

    def lock_and_read_head(self, connection: Connection) -> str | None:
        return _locked_head(connection)


def _locked_head(connection: Connection) -> str:
    """Take the chain lock for this transaction and read the chain's head (one round trip)."""
    if connection.dialect.name == "sqlite":
        return str(connection.exec_driver_sql(_HEAD_SQL).scalar() or GENESIS)
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.pipeline(), raw.cursor() as lock, raw.cursor() as head:
        lock.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
        head.execute(_HEAD_SQL)  # its own statement: a snapshot taken once the lock is granted
        found = head.fetchone()
    return str(found[0]) if found else GENESIS


def _links(prev_hash: str, keys: list[int], events: list[PreparedEvent]) -> list[dict[str, Any]]:
    links = []
    for pk, event in zip(keys, events, strict=True):
        entry_hash = link_hash(prev_hash, event.data)
        links.append(
            {"resource_pk": pk, "recorded": event.recorded, "prev_hash": prev_hash, "entry_hash": entry_hash}
        )
        prev_hash = entry_hash
    return links


# The chain's head, read once the chain lock is held (READ COMMITTED: this statement's snapshot is
# taken after the lock is granted, so it sees the previous holder's committed link).
_HEAD_SQL = "SELECT entry_hash FROM audit_chain ORDER BY seq DESC LIMIT 1"


def commit_prepared(store: FhirStore, connection: Connection, events: list[PreparedEvent]) -> None:
    """Store and link `events` in a transaction of their own on `connection`, and commit it.

    The group-commit writer's path: the trace is durable when this returns. It is a session's own
    path (`record_prepared`, then the flush that carries the COMMIT): on PostgreSQL two round trips,
    (BEGIN, one statement storing every row of the events and taking the chain lock, the head) then
    (the links, COMMIT). Sent one statement at a time it took seven, and under load each one cost
    the writer thread a wait for the GIL on its way back (up to the interpreter's switch interval,
    5 ms): bench/RESULTS.md section 3.
    """
    if not events:
        return
    with connection.begin():
        session = StoreSession(store, connection)
        record_prepared(session, events)
        session.flush(then_commit=True)  # on PostgreSQL the transaction ends here


def link_hash(prev_hash: str, data: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + data).hexdigest()


def patients_of(session: StoreSession, pks: Iterable[int]) -> tuple[str, ...]:
    """The Patient ids whose compartment holds the resources with these keys (for the trace)."""
    found: set[str] = set()
    keys = []
    for pk in sorted(set(pks)):
        known = session.known_patients.get(pk)
        if known is None:
            keys.append(pk)
        else:
            found.update(known)
    if not keys:
        return tuple(sorted(found))
    session.flush()
    r, ref = schema.resource, schema.idx_reference
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = session.connection.execute(
            select(r.c.res_type, r.c.res_id).where(r.c.pk.in_(chunk), r.c.res_type == "Patient")
        )
        found.update(row.res_id for row in rows)
        links = session.connection.execute(
            select(ref.c.res_type, ref.c.param, ref.c.target_id).where(
                ref.c.resource_pk.in_(chunk), ref.c.target_type == "Patient"
            )
        )
        compartments = compartment_parameters("Patient")
        found.update(
            row.target_id
            for row in links
            if row.target_id and row.param in compartments.get(row.res_type, ())
        )
    return tuple(sorted(found))


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    broken_at: int | None  # seq of the first broken link, None when the chain holds
    reason: str | None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify_chain(engine: Engine, *, batch: int = 2000) -> ChainReport:
    """Recompute every link in order; stop at the first one that does not hold."""
    chain, r, v = schema.audit_chain, schema.resource, schema.resource_version
    expected_prev = GENESIS
    count = 0
    last_seq = 0
    with engine.connect() as connection:
        while True:
            rows = connection.execute(
                select(
                    chain.c.seq,
                    chain.c.prev_hash,
                    chain.c.entry_hash,
                    chain.c.resource_pk,
                    r.c.res_id,
                    r.c.version,
                    r.c.deleted,
                    v.c.data,
                )
                .select_from(chain)
                .outerjoin(r, r.c.pk == chain.c.resource_pk)
                .outerjoin(v, and_(v.c.resource_pk == r.c.pk, v.c.version == r.c.version))
                .where(chain.c.seq > last_seq)
                .order_by(chain.c.seq)
                .limit(batch)
            ).all()
            if not rows:
                return ChainReport(count, None, None)
            for row in rows:
                where = f"maillon {row.seq}"
                if row.prev_hash != expected_prev:
                    return ChainReport(
                        count, row.seq, f"{where} : le maillon précédent a été supprimé ou déplacé"
                    )
                if row.res_id is None or row.data is None or row.deleted:
                    return ChainReport(count, row.seq, f"{where} : l'événement d'audit a été supprimé")
                if row.version != 1:
                    return ChainReport(
                        count, row.seq, f"{where} : l'événement AuditEvent/{row.res_id} a été modifié"
                    )
                if link_hash(row.prev_hash, row.data) != row.entry_hash:
                    return ChainReport(
                        count, row.seq, f"{where} : le contenu de AuditEvent/{row.res_id} a été altéré"
                    )
                expected_prev = row.entry_hash
                count += 1
                last_seq = row.seq


def chain_length(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(schema.audit_chain)).scalar_one())
