"""SMART on FHIR scopes (v1 and v2): parsing, `scope_allows`, and which scopes an actor may hold.

Pure functions, no I/O. A scope is `context/ResourceType.permissions`:

- context: `patient` (the launch patient's compartment), `user` (what the user may see),
  `system` (a backend service acting for itself);
- resource type: a FHIR type or `*`;
- permissions, v1: `read` (= r + s), `write` (= c + u + d), `*` (= all);
  v2: letters among `c r u d s`, in that order, each at most once (`rs`, `cruds`).

A v2 scope may narrow itself with a query (`patient/Observation.rs?category=laboratory`). Whether a
given resource matches the query is for the policy layer to decide, with the resource in hand, so
`scope_allows` never counts such a scope as a grant; `restricted_grants` lists them for the policy.

    scope_allows("patient/*.read launch/patient", "patient", "Observation", "s")  # True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

ScopeContext = Literal["patient", "user", "system"]
Interaction = Literal["c", "r", "u", "d", "s"]

CONTEXTS: frozenset[str] = frozenset({"patient", "user", "system"})
INTERACTIONS = "cruds"
V1_PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset("rs"),
    "write": frozenset("cud"),
    "*": frozenset(INTERACTIONS),
}
# Scopes that are not about resources: identity, launch context, refresh tokens.
NON_RESOURCE_SCOPES: frozenset[str] = frozenset(
    {"openid", "profile", "fhirUser", "launch", "launch/patient", "offline_access", "online_access"}
)

_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{0,63})"
    r"\.(?P<permissions>read|write|\*|c?r?u?d?s?)(?:\?(?P<query>.+))?$"
)


@dataclass(frozen=True, slots=True)
class SmartScope:
    context: str
    resource_type: str  # a FHIR type, or "*"
    interactions: frozenset[str]
    version: int  # 1 or 2
    restriction: str | None = None  # the v2 query narrowing the scope, if any

    def covers(self, resource_type: str, interaction: str) -> bool:
        return (self.resource_type in ("*", resource_type)) and interaction in self.interactions


def parse_scope(scope: str) -> SmartScope | None:
    """The SMART resource scope `scope` denotes, or None (not a resource scope, or malformed)."""
    match = _SCOPE.match(scope)
    if match is None:
        return None
    permissions = match["permissions"]
    query = match["query"]
    if permissions in V1_PERMISSIONS:
        if query is not None:  # queries are a v2 feature
            return None
        return SmartScope(match["context"], match["type"], V1_PERMISSIONS[permissions], 1)
    if not permissions:
        return None
    return SmartScope(match["context"], match["type"], frozenset(permissions), 2, query)


def split_scopes(scopes: str | Iterable[str]) -> list[str]:
    if isinstance(scopes, str):
        return scopes.split()
    return [s for scope in scopes for s in scope.split()]


def _check(actor_context: str, interaction: str) -> None:
    if actor_context not in CONTEXTS:
        raise ValueError(f"unknown actor context {actor_context!r}: patient, user or system")
    if len(interaction) != 1 or interaction not in INTERACTIONS:
        raise ValueError(f"unknown interaction {interaction!r}: one of c, r, u, d, s")


def scope_allows(
    scopes: str | Iterable[str], actor_context: str, resource_type: str, interaction: str
) -> bool:
    """Whether the granted `scopes` allow `interaction` on `resource_type` in `actor_context`.

    A scope only grants in its own context (a `patient/` scope never grants a `user` access);
    query-restricted v2 scopes do not count (see `restricted_grants`).
    """
    _check(actor_context, interaction)
    for scope in split_scopes(scopes):
        parsed = parse_scope(scope)
        if (
            parsed is not None
            and parsed.restriction is None
            and parsed.context == actor_context
            and parsed.covers(resource_type, interaction)
        ):
            return True
    return False


def restricted_grants(
    scopes: str | Iterable[str], actor_context: str, resource_type: str, interaction: str
) -> list[str]:
    """The query restrictions of the v2 scopes that would grant the access if the resource matched."""
    _check(actor_context, interaction)
    found = []
    for scope in split_scopes(scopes):
        parsed = parse_scope(scope)
        if (
            parsed is not None
            and parsed.restriction is not None
            and parsed.context == actor_context
            and parsed.covers(resource_type, interaction)
        ):
            found.append(parsed.restriction)
    return found


def is_known_scope(scope: str) -> bool:
    return scope in NON_RESOURCE_SCOPES or parse_scope(scope) is not None


def scope_covered(allowed: Iterable[str], requested: str) -> bool:
    """Whether a client registered for `allowed` may be granted `requested`.

    Resource scopes are compared by meaning: `patient/Observation.rs` is covered by `patient/*.read`.
    A restricted request is covered by what covers its unrestricted form.
    """
    allowed = list(allowed)
    if requested in allowed:
        return True
    parsed = parse_scope(requested)
    if parsed is None:
        return False
    return all(
        scope_allows(allowed, parsed.context, parsed.resource_type, interaction)
        if parsed.resource_type != "*"
        else _covers_wildcard(allowed, parsed.context, interaction)
        for interaction in parsed.interactions
    )


def _covers_wildcard(allowed: Iterable[str], context: str, interaction: str) -> bool:
    for scope in allowed:
        parsed = parse_scope(scope)
        if (
            parsed is not None
            and parsed.restriction is None
            and parsed.context == context
            and parsed.resource_type == "*"
            and interaction in parsed.interactions
        ):
            return True
    return False


ActorKind = Literal["practitioner", "patient", "system"]
# Which scope contexts each kind of actor may ever be granted, whatever the client asks for:
# a citizen never acts with `user/` or `system/` rights, a professional never with `system/` ones.
CONTEXTS_BY_ACTOR: dict[str, frozenset[str]] = {
    "patient": frozenset({"patient"}),
    "practitioner": frozenset({"patient", "user"}),
    "system": frozenset({"system"}),
}


def scopes_for_actor(scopes: Iterable[str], actor_type: str) -> list[str]:
    """Drop the resource scopes whose context the actor may not hold; keep the others in order."""
    permitted = CONTEXTS_BY_ACTOR[actor_type]
    kept = []
    for scope in scopes:
        parsed = parse_scope(scope)
        if parsed is None or parsed.context in permitted:
            kept.append(scope)
    return kept


def needs_launch_patient(scopes: Iterable[str]) -> bool:
    """A token with `patient/` scopes (or `launch/patient`) must name the patient it works on."""
    for scope in scopes:
        if scope == "launch/patient":
            return True
        parsed = parse_scope(scope)
        if parsed is not None and parsed.context == "patient":
            return True
    return False
