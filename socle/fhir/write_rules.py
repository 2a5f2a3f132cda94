"""Domain rules on FHIR writes: the domain that owns a resource type decides what a write stores.

Every FHIR write passes through `admit()` right before the store: create (also conditional),
update (also create-on-update and conditional), JSON Patch, and the same inside transaction and
batch bundles. It checks the authorisation policy (the new content stays within the actor's
reach), then the owning domain's rule, which returns the resource to store (possibly changed: an
identity status lowered as the RNIV says) or raises a `SocleError` (422 for a business rule). A
refusal inside a transaction rolls the whole transaction back like any failed entry.

`DOMAIN_RULES` is the one place that says which domain checks which type; the FHIR layer knows
nothing of their rules.

    resource = admit(session, ctx, resource, res_id)   # then session.create / session.update
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from socle.auth import policy
from socle.auth.context import RequestContext
from socle.store.repository import StoreSession

# (session, the resource to write, the id it replaces or None for a new one) -> what to store
WriteRule = Callable[[StoreSession, dict[str, Any], str | None], dict[str, Any]]


@cache
def domain_rules() -> Mapping[str, WriteRule]:
    # Imported on first use: the domains build on the store and FHIR modules, not the reverse.
    from socle.identity.fhir_writes import review_patient_write

    return {"Patient": review_patient_write}


def admit(
    session: StoreSession, ctx: RequestContext, resource: dict[str, Any], res_id: str | None = None
) -> dict[str, Any]:
    """The resource to store for this write by `ctx`'s actor, once policy and domain agree."""
    policy.check_new_content(session, ctx, resource)
    rule = domain_rules().get(str(resource.get("resourceType")))
    return resource if rule is None else rule(session, resource, res_id)
