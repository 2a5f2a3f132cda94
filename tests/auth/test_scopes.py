"""`scope_allows` on tables: v1 and v2 permissions, wildcards, contexts, malformed scopes."""

from __future__ import annotations

import pytest

from socle.auth.scopes import (
    needs_launch_patient,
    parse_scope,
    restricted_grants,
    scope_allows,
    scope_covered,
    scopes_for_actor,
)

ALL = "cruds"

# (granted scopes, context, resource type, the interactions allowed — all others refused)
TABLE = [
    # v1: read = r + s; write = c + u + d; * = everything
    ("patient/*.read", "patient", "Observation", "rs"),
    ("patient/Observation.read", "patient", "Observation", "rs"),
    ("patient/Observation.read", "patient", "Condition", ""),
    ("user/Observation.write", "user", "Observation", "cud"),
    ("user/Observation.write", "user", "Patient", ""),
    ("user/Observation.*", "user", "Observation", ALL),
    ("system/*.*", "system", "Patient", ALL),
    ("system/*.*", "system", "AuditEvent", ALL),
    ("patient/*.read patient/*.write", "patient", "Encounter", ALL),
    ("user/*.read user/Observation.write", "user", "Observation", ALL),
    ("user/*.read user/Observation.write", "user", "Condition", "rs"),
    # v2: the letters say it
    ("patient/*.rs", "patient", "Observation", "rs"),
    ("patient/*.r", "patient", "Observation", "r"),
    ("patient/*.s", "patient", "Observation", "s"),
    ("user/Observation.rs", "user", "Observation", "rs"),
    ("user/Observation.rs", "user", "Patient", ""),
    ("user/Observation.cu", "user", "Observation", "cu"),
    ("user/Observation.cud", "user", "Observation", "cud"),
    ("system/*.cruds", "system", "Patient", ALL),
    ("system/Patient.crud", "system", "Patient", "crud"),
    ("system/*.d", "system", "Binary", "d"),
    # context mismatches grant nothing
    ("patient/*.read", "user", "Observation", ""),
    ("patient/*.cruds", "system", "Observation", ""),
    ("user/*.cruds", "patient", "Observation", ""),
    ("user/*.*", "system", "Observation", ""),
    ("system/*.*", "user", "Observation", ""),
    ("system/*.cruds", "patient", "Observation", ""),
    # malformed or out-of-order v2 letters grant nothing
    ("patient/*.sr", "patient", "Observation", ""),
    ("patient/*.rr", "patient", "Observation", ""),
    ("patient/*.x", "patient", "Observation", ""),
    ("patient/*.", "patient", "Observation", ""),
    ("patient/observation.rs", "patient", "Observation", ""),
    ("patient/*.readwrite", "patient", "Observation", ""),
    ("patients/*.read", "patient", "Observation", ""),
    ("patient/*.read?category=x", "patient", "Observation", ""),  # v1 takes no query
    # query-restricted v2 scopes never grant blindly
    ("patient/Observation.rs?category=laboratory", "patient", "Observation", ""),
    # non-resource scopes grant nothing
    ("openid fhirUser launch/patient offline_access", "patient", "Observation", ""),
    ("", "user", "Observation", ""),
]


@pytest.mark.parametrize(("scopes", "context", "resource_type", "allowed"), TABLE)
def test_scope_allows_table(scopes: str, context: str, resource_type: str, allowed: str) -> None:
    for interaction in ALL:
        expected = interaction in allowed
        assert scope_allows(scopes, context, resource_type, interaction) is expected, (scopes, interaction)


def test_scopes_may_come_as_a_list() -> None:
    assert scope_allows(["openid", "user/Observation.rs"], "user", "Observation", "s")
    assert scope_allows(("user/Observation.rs launch",), "user", "Observation", "r")


@pytest.mark.parametrize(
    ("context", "interaction"), [("practitioner", "r"), ("user", "x"), ("user", "rs"), ("user", "")]
)
def test_bad_arguments_are_programming_errors(context: str, interaction: str) -> None:
    with pytest.raises(ValueError):
        scope_allows("user/*.*", context, "Observation", interaction)


def test_parse_scope() -> None:
    parsed = parse_scope("patient/Observation.rs?category=laboratory")
    assert parsed is not None
    assert (parsed.context, parsed.resource_type, parsed.version) == ("patient", "Observation", 2)
    assert parsed.interactions == frozenset("rs") and parsed.restriction == "category=laboratory"
    v1 = parse_scope("user/*.write")
    assert v1 is not None and v1.version == 1 and v1.interactions == frozenset("cud")
    assert parse_scope("openid") is None


def test_restricted_grants_are_reported_for_the_policy() -> None:
    scopes = "patient/Observation.rs?category=laboratory patient/Observation.rs?category=vital-signs"
    assert restricted_grants(scopes, "patient", "Observation", "s") == [
        "category=laboratory",
        "category=vital-signs",
    ]
    assert restricted_grants(scopes, "patient", "Observation", "c") == []
    assert restricted_grants(scopes, "user", "Observation", "r") == []


@pytest.mark.parametrize(
    ("allowed", "requested", "covered"),
    [
        (["patient/*.read"], "patient/Observation.rs", True),
        (["patient/*.read"], "patient/*.rs", True),
        (["patient/*.read"], "patient/*.r", True),
        (["patient/*.read"], "patient/*.cruds", False),
        (["patient/Observation.rs"], "patient/*.rs", False),
        (["patient/Observation.rs"], "patient/Observation.rs?category=laboratory", True),
        (["user/*.cruds"], "user/*.write", True),
        (["user/*.rs"], "patient/*.rs", False),
        (["openid"], "openid", True),
        (["openid"], "offline_access", False),
        (["system/*.*"], "system/*.cruds", True),
    ],
)
def test_scope_covered(allowed: list[str], requested: str, covered: bool) -> None:
    assert scope_covered(allowed, requested) is covered


def test_scopes_for_actor_drop_what_the_actor_may_not_hold() -> None:
    scopes = ["openid", "patient/*.rs", "user/*.rs", "system/*.rs"]
    assert scopes_for_actor(scopes, "patient") == ["openid", "patient/*.rs"]
    assert scopes_for_actor(scopes, "practitioner") == ["openid", "patient/*.rs", "user/*.rs"]
    assert scopes_for_actor(scopes, "system") == ["openid", "system/*.rs"]


def test_needs_launch_patient() -> None:
    assert needs_launch_patient(["patient/*.rs"])
    assert needs_launch_patient(["launch/patient", "user/*.rs"])
    assert not needs_launch_patient(["openid", "user/*.rs"])
