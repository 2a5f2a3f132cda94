"""The search-index rows of an AuditEvent built by `socle.audit.trail.build_event`, read off directly.

Every FHIR read writes one AuditEvent; running the generic indexing pipeline on it (17 FHIRPath
expressions, `socle.search.extract`) cost ~0.26 ms per event, as much as the read itself. The events
the server builds have one known shape, so their rows are taken straight from the elements that the
R4 AuditEvent search parameters point at:

    action, outcome            code with a required one-system binding → token (system, code)
    type, subtype              Coding → token (display normalised into `text`)
    date                       recorded (instant) → date range
    agent                      agent.who: reference → reference row; identifier → `agent:identifier`
    patient                    agent.who / entity.what when they point at a Patient
    agent-name, address        agent.name, agent.network.address → string
    agent-role                 agent.role (CodeableConcept) → token
    policy                     agent.policy → uri
    site                       source.site (string) → token without system
    entity                     entity.what → reference
    entity-type, entity-role   Coding → token
    entity-name                entity.name → string

Parameters whose elements `build_event` never fills (altid, source, _profile, _tag, _security,
_source) give no row. tests/audit/test_event_rows.py checks, over every shape `build_event`
produces, that these rows are exactly those of the generic pipeline; an event of any other shape
must go through the generic pipeline (`socle.audit.trail.prepare_event` decides).
"""

from __future__ import annotations

from typing import Any, Final

from socle.fhir.fhirpath import split_reference
from socle.search.normalize import date_range, normalize_text
from socle.search.rows import DateRow, IndexRow, ReferenceRow, StringRow, TokenRow, UriRow

ACTION_SYSTEM: Final = "http://hl7.org/fhir/audit-event-action"
OUTCOME_SYSTEM: Final = "http://hl7.org/fhir/audit-event-outcome"


def _coding(param: str, coding: dict[str, Any], out: list[IndexRow]) -> None:
    display = coding.get("display")
    out.append(
        TokenRow(
            param, coding.get("system"), coding.get("code"), normalize_text(display) if display else None
        )
    )


def _reference(param: str, reference: dict[str, Any], out: list[IndexRow]) -> str | None:
    """The reference's rows under `param`; returns the target type (None when not `Type/id`)."""
    literal = reference.get("reference")
    if literal is not None:
        target = split_reference(literal)
        if target is None:
            out.append(ReferenceRow(param, None, None, literal))
            return None
        out.append(ReferenceRow(param, target[0], target[1], literal if ":" in literal else None, target[2]))
        return target[0]
    identifier = reference.get("identifier")
    if identifier is not None:
        out.append(TokenRow(f"{param}:identifier", identifier.get("system"), identifier.get("value")))
    return None


def _patient(reference: dict[str, Any], out: list[IndexRow]) -> None:
    literal = reference["reference"]
    target = split_reference(literal)
    assert target is not None
    out.append(ReferenceRow("patient", target[0], target[1], literal if ":" in literal else None, target[2]))


def event_index_rows(event: dict[str, Any]) -> list[IndexRow]:
    """The rows of a `build_event` event (stamped or not: `id` and `meta` give no row here)."""
    out: list[IndexRow] = [
        TokenRow("action", ACTION_SYSTEM, event["action"]),
        TokenRow("outcome", OUTCOME_SYSTEM, event["outcome"]),
        DateRow("date", *date_range(event["recorded"])),
    ]
    _coding("type", event["type"], out)
    for coding in event["subtype"]:
        _coding("subtype", coding, out)
    for agent in event["agent"]:
        who = agent.get("who")
        if who is not None and _reference("agent", who, out) == "Patient":
            _patient(who, out)
        name = agent.get("name")
        if name:
            out.append(StringRow("agent-name", normalize_text(name), name))
        for role in agent.get("role", ()):
            for coding in role["coding"]:
                _coding("agent-role", coding, out)
        network = agent.get("network")
        if network is not None:
            address = network["address"]
            out.append(StringRow("address", normalize_text(address), address))
        for policy in agent.get("policy", ()):
            out.append(UriRow("policy", policy))
    out.append(TokenRow("site", None, event["source"]["site"]))
    for entity in event.get("entity", ()):
        what = entity.get("what")
        if what is not None and _reference("entity", what, out) == "Patient":
            _patient(what, out)
        if "type" in entity:
            _coding("entity-type", entity["type"], out)
        if "role" in entity:
            _coding("entity-role", entity["role"], out)
        name = entity.get("name")
        if name:
            out.append(StringRow("entity-name", normalize_text(name), name))
    # Like the generic pipeline, a parameter indexes each distinct value once (two patients'
    # entities share their entity-type and entity-role codes).
    return list(dict.fromkeys(out))
