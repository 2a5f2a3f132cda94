"""AuditEvents of authentication: logins, logouts, and the token, introspection and revocation endpoints.

They are links of the same hash chain as the traces of data access (`trail.append`), shaped after
DICOM as IHE ATNA and the ANS traceability guide use it: type DCM 110114 "User Authentication",
subtype DCM 110122 "Login" or 110123 "Logout", the IHE IUA transaction where one applies (ITI-71
Get Access Token, ITI-102 Introspect Token), and Socle's own code for the precise step, so that an
operator asks for exactly one kind with the ordinary AuditEvent search:

    GET /fhir/AuditEvent?type=110114&outcome=4                 # refused authentications
    GET /fhir/AuditEvent?subtype=lockout&altid=jeanne@example.fr

Outcomes: 0 success, 4 refused (wrong credential, invalid grant: the caller's failure), 8 serious
(a lock-out, a server error).

What never goes in: a password, a TOTP code, a token, a client assertion. A refused attempt names
the identifier that was typed and never the account behind it, so the trace of a failure reads the
same whether that account exists or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from socle.audit.trail import CLIENT_SYSTEM, append, request_policy
from socle.canonical import code_system
from socle.clock import fhir_instant, to_micros, utc_now
from socle.store.repository import FhirStore, StoreSession

AuthEventKind = Literal[
    "login-first-factor",  # password (citizen) or idNatPs (professional) submitted
    "login-second-factor",  # TOTP code submitted: the login itself
    "lockout",  # the failure that locked the identifier
    "logout",
    "token",  # the token endpoint, whatever the grant
    "introspection",
    "revocation",
]
Outcome = Literal["0", "4", "8"]

DCM = "http://dicom.nema.org/resources/ontology/DCM"
IHE_TRANSACTION = "urn:ihe:event-type-code"
AUTHENTICATION_EVENT_SYSTEM = code_system("authentication-event")
USER_AUTHENTICATION = {"system": DCM, "code": "110114", "display": "User Authentication"}
LOGIN = {"system": DCM, "code": "110122", "display": "Login"}
LOGOUT = {"system": DCM, "code": "110123", "display": "Logout"}
GET_ACCESS_TOKEN = {"system": IHE_TRANSACTION, "code": "ITI-71", "display": "Get Access Token"}
INTROSPECT_TOKEN = {"system": IHE_TRANSACTION, "code": "ITI-102", "display": "Introspect Token"}
STANDARD_SUBTYPES: dict[str, tuple[dict[str, str], ...]] = {
    "login-first-factor": (LOGIN,),
    "login-second-factor": (LOGIN,),
    "lockout": (LOGIN,),
    "logout": (LOGOUT,),
    "token": (LOGIN, GET_ACCESS_TOKEN),
    "introspection": (INTROSPECT_TOKEN,),
    "revocation": (LOGOUT,),
}
LABELS = {
    "login-first-factor": "Connexion : premier facteur",
    "login-second-factor": "Connexion : second facteur",
    "lockout": "Verrouillage de l'identifiant",
    "logout": "Déconnexion",
    "token": "Délivrance de jeton",
    "introspection": "Introspection de jeton",
    "revocation": "Révocation de jeton",
}
GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})
HUMAN_USER = {
    "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
    "code": "humanuser",
    "display": "human user",
}
APPLICATION = {"system": DCM, "code": "110150", "display": "Application"}
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"


@dataclass(frozen=True, slots=True)
class AuthenticatedAccount:
    """The account an authentication succeeded for (never set on a refused attempt)."""

    account_id: str
    reference: str | None  # "Practitioner/<id>" | "Patient/<id>" when the account has a FHIR record
    display: str


@dataclass(frozen=True, slots=True)
class AttemptedIdentifier:
    """What was typed as an identifier, for a refused attempt (whoever it may belong to)."""

    system: str | None
    value: str


@dataclass(frozen=True, slots=True)
class AuthenticationTrace:
    """One authentication step as the trail records it; see the module docstring for the fields' use."""

    kind: AuthEventKind
    outcome: Outcome
    request_id: str
    source_ip: str | None = None
    account: AuthenticatedAccount | None = None
    attempted: AttemptedIdentifier | None = None
    client_id: str | None = None
    grant_type: str | None = None
    scope: str | None = None
    description: str | None = None


def outcome_of_status(status: int) -> Outcome:
    """An HTTP status as an AuditEvent outcome: 4xx the caller's failure, 5xx a serious one."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def build_authentication_event(trace: AuthenticationTrace, recorded: str) -> dict[str, Any]:
    socle_code: str = trace.kind
    if trace.kind == "token" and trace.grant_type in GRANT_TYPES:
        socle_code = f"token-{trace.grant_type}"  # a finer code for each grant
    subtype = [
        *STANDARD_SUBTYPES[trace.kind],
        {"system": AUTHENTICATION_EVENT_SYSTEM, "code": socle_code, "display": LABELS[trace.kind]},
    ]
    agents = _agents(trace)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": USER_AUTHENTICATION,
        "subtype": subtype,
        "action": "E",
        "recorded": recorded,
        "outcome": trace.outcome,
        "agent": agents,
        "source": {"site": "Socle", "observer": {"display": "Socle"}},
    }
    if trace.description:
        event["outcomeDesc"] = trace.description[:1000]
    if trace.grant_type or trace.scope:
        entity: dict[str, Any] = {"type": {"system": ENTITY_TYPE, "code": "2"}}
        if trace.grant_type:
            entity["name"] = _printable(trace.grant_type, 60)
        if trace.scope:
            entity["description"] = f"scope : {_printable(trace.scope, 900)}"
        event["entity"] = [entity]
    return event


def _agents(trace: AuthenticationTrace) -> list[dict[str, Any]]:
    """The person (or the identifier tried) and the OAuth client; the first one made the request."""
    agents: list[dict[str, Any]] = []
    if trace.account is not None:
        who: dict[str, Any] = {"display": trace.account.display}
        if trace.account.reference:
            who["reference"] = trace.account.reference
        agents.append(
            {
                "type": {"coding": [HUMAN_USER]},
                "who": who,
                "altId": trace.account.account_id,
                "name": trace.account.display,
            }
        )
    elif trace.attempted is not None:
        identifier = {"value": _printable(trace.attempted.value, 200)}
        if trace.attempted.system:
            identifier["system"] = trace.attempted.system
        agents.append(
            {
                "type": {"coding": [HUMAN_USER]},
                "who": {"identifier": identifier},
                "altId": identifier["value"],
                "name": "identifiant saisi",
            }
        )
    if trace.client_id:
        value = _printable(trace.client_id, 100)
        agents.append(
            {
                "type": {"coding": [APPLICATION]},
                "who": {"identifier": {"system": CLIENT_SYSTEM, "value": value}},
                "name": value,
            }
        )
    if not agents:
        agents.append({"who": {"display": "inconnu"}, "name": "inconnu"})
    # The OAuth client calls the token endpoints; a person fills in the login pages.
    requestor = len(agents) - 1 if trace.client_id else 0
    for index, agent in enumerate(agents):
        agent["requestor"] = index == requestor
    agents[requestor]["policy"] = [request_policy(trace.request_id)]
    if trace.source_ip:
        agents[requestor]["network"] = {"address": trace.source_ip[:100], "type": "2"}
    return agents


def _printable(text: str, limit: int) -> str:
    # Whatever a caller typed lands in a FHIR string: no control characters, bounded length.
    kept = "".join(c for c in text if c.isprintable()).strip()
    return kept[:limit] or "?"


def record_authentication(session: StoreSession, trace: AuthenticationTrace) -> str:
    """Write the event as the chain's next link in `session`'s transaction; returns its id."""
    now = to_micros(utc_now())
    return append(session, build_authentication_event(trace, fhir_instant(now)), now)


def write_authentication(store: FhirStore, trace: AuthenticationTrace) -> str:
    """Write the event in a transaction of its own (the login tables are not in the store's)."""
    with store.session() as session:
        return record_authentication(session, trace)
