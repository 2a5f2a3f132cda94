"""The audit trail's shortcuts give the generic answers: an AuditEvent that `plainly_valid` lets skip
validation is valid, and its directly extracted index rows are exactly the generic pipeline's."""

from __future__ import annotations

import random
from collections import Counter
from itertools import product

import orjson
import pytest

from socle.audit.event_rows import event_index_rows
from socle.audit.trail import AccessTrace, build_event, plainly_valid, prepare_event
from socle.auth.context import RequestContext
from socle.clock import fhir_instant, to_micros, utc_now
from socle.errors import InvalidResource
from socle.fhir.validation import default_validator
from socle.search.extract import extract_index_rows
from socle.store.repository import FhirStore, canonical_bytes

CONTEXTS = [
    RequestContext.operator("socle-cli"),
    RequestContext(
        actor_type="system",
        actor_id="Client/hopital",
        display="Hôpital Saint-Éloi",
        client_id="hopital",
        scopes=frozenset({"system/*.rs"}),
        source_ip="10.0.0.7",
    ),
    RequestContext(
        actor_type="practitioner",
        actor_id="Practitioner/pr-1",
        display="Dr Jean DUPONT",
        client_id="app",
        profession="10",
        specialty="SM54",
        structure="1751234567",
        source_ip="127.0.0.1",
        request_id="req-42",
    ),
    RequestContext(
        actor_type="practitioner",
        actor_id="Practitioner/pr-2",
        display="Dr Anne Lefèvre",
        purpose_of_use="bris-de-glace",
        purpose_reason="Patient inconscient aux urgences",
    ),
    RequestContext(
        actor_type="practitioner",
        actor_id="Practitioner/pr-3",
        display="SAMU 75",
        purpose_of_use="regulation",
    ),
    RequestContext(
        actor_type="patient",
        actor_id="Patient/pat-1",
        display="Jeanne Martin",
        patient_ids=frozenset({"pat-1", "pat-2"}),
    ),
    RequestContext.anonymous("192.168.1.20"),
]
TRACES = [
    AccessTrace("read", 200, "Observation/obs-1", "Observation", ("pat-1",)),
    AccessTrace("read", 200, "Patient/pat-1", "Patient", ("pat-1",)),
    AccessTrace("vread", 200, "Condition/c-1", "Condition", ("pat-1", "pat-2")),
    AccessTrace("search-type", 200, None, "Observation", ("pat-1",), query="code=8480-6&_count=5"),
    AccessTrace("search-system", 200, query="_lastUpdated=gt2020"),
    AccessTrace("transaction", 200, patients=("a", "b", "c"), description="12 entrées"),
    AccessTrace("create", 201, "Encounter/e-1", "Encounter", ()),
    AccessTrace("delete", 404, "Patient/nope", "Patient", ("nope",), description="Patient/nope is not known"),
    AccessTrace("read", 401, "Observation/x", "Observation", description="Authentification requise"),
    AccessTrace("read", 404, "Patient/bad id!", "Patient", ("bad id!",), description="Invalid id"),
    AccessTrace("unknown", 405, None, None, description="TRACE is not supported"),
    AccessTrace(
        "operation", 500, "Patient/p", "Patient", ("p",), query="_since=x", description="internal error"
    ),
]
# Mostly plain characters (accents, punctuation), and now and then those at the edges of "plain":
# spaces, a no-break space, tabs and newlines, control characters.
PLAIN = "abcXYZ019-./:éÉçœ€'\"<>&%"
EDGES = PLAIN + " \u00a0\t\n\x0b\x00"


def stamped_event(ctx: RequestContext, trace: AccessTrace) -> dict[str, object]:
    instant = fhir_instant(to_micros(utc_now()))
    event = build_event(ctx, trace, instant)
    return {
        "resourceType": "AuditEvent",
        "id": "e-1",
        "meta": {"versionId": "1", "lastUpdated": instant},
        **event,
    }


def assert_shortcuts_hold(ctx: RequestContext, trace: AccessTrace) -> None:
    event = stamped_event(ctx, trace)
    errors = [i for i in default_validator().validate(event) if i.severity in ("error", "fatal")]
    assert errors == [], (ctx, trace)
    assert Counter(event_index_rows(event)) == Counter(extract_index_rows(event)), (ctx, trace)


@pytest.mark.parametrize(("ctx", "trace"), list(product(CONTEXTS, TRACES)))
def test_every_shape_of_server_event_is_valid_and_indexed_like_the_generic_pipeline(
    ctx: RequestContext, trace: AccessTrace
) -> None:
    assert plainly_valid(ctx, trace)
    assert_shortcuts_hold(ctx, trace)


def test_random_values_that_pass_as_plain_are_valid_and_indexed_alike() -> None:
    chance = random.Random(20261123)

    def text() -> str:
        alphabet = PLAIN if chance.random() < 0.95 else EDGES
        return "".join(chance.choice(alphabet) for _ in range(chance.randint(0, 12)))

    def maybe() -> str | None:
        return text() if chance.random() < 0.7 else None

    plain = 0
    for _ in range(400):
        ctx = RequestContext(
            actor_type=chance.choice(["practitioner", "patient", "system"]),
            actor_id=chance.choice(["Practitioner/", "Patient/", "Client/", ""]) + text(),
            display=text(),
            client_id=maybe(),
            profession=maybe(),
            specialty=maybe(),
            structure=maybe(),
            source_ip=maybe(),
            request_id=text(),
            purpose_reason=maybe(),
        )
        trace = AccessTrace(
            chance.choice(["read", "search-type", text()]),
            chance.choice([200, 404, 500]),
            chance.choice(["Observation/", "Patient/", "Nope/", ""]) + text(),
            maybe(),
            tuple(text() for _ in range(chance.randint(0, 2))),
            maybe(),
            maybe(),
        )
        if plainly_valid(ctx, trace):
            plain += 1
            assert_shortcuts_hold(ctx, trace)
    assert plain > 20  # the draw does reach the shortcut


@pytest.mark.parametrize(
    "ctx",
    [
        RequestContext(actor_type="system", actor_id="Client/x", display=" "),
        RequestContext(actor_type="system", actor_id="Client/x", display="x", profession="a  b"),
        RequestContext(actor_type="system", actor_id="Client/x", display="x", request_id="two words"),
        RequestContext(actor_type="practitioner", actor_id="Practitioner/a b", display="x"),
        RequestContext(actor_type="patient", actor_id="patient/sub-9", display="sub-9"),
        RequestContext(actor_type="system", actor_id="Client/x", display="x", structure="\x0b"),
    ],
)
def test_an_event_the_shortcut_cannot_vouch_for_is_validated_as_before(
    store: FhirStore, ctx: RequestContext
) -> None:
    trace = AccessTrace("read", 200, "Observation/o", "Observation", ("p",))
    assert not plainly_valid(ctx, trace)
    event = stamped_event(ctx, trace)
    if [i for i in default_validator().validate(event) if i.severity in ("error", "fatal")]:
        with pytest.raises(InvalidResource):
            prepare_event(store, ctx, trace)
    else:
        prepared = prepare_event(store, ctx, trace)
        assert Counter(prepared.rows) == Counter(extract_index_rows(orjson.loads(prepared.data)))


def test_a_prepared_event_is_stored_in_canonical_form(store: FhirStore) -> None:
    prepared = prepare_event(store, CONTEXTS[2], TRACES[0])
    event = orjson.loads(prepared.data)
    assert list(event)[:3] == ["resourceType", "id", "meta"]
    assert event["id"] == prepared.res_id
    assert event["meta"] == {"versionId": "1", "lastUpdated": fhir_instant(prepared.recorded)}
    assert event["recorded"] == event["meta"]["lastUpdated"]
    assert prepared.data == canonical_bytes(event)  # the bytes create() would have stored
