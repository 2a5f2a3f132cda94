"""The authorisation policy: may this actor do this interaction on this resource, for this purpose?

One gatekeeper for every FHIR interaction (REST, bundle entries) and every domain action:

- scopes first (SMART v1/v2): the actor's context (patient / user / system) must hold a scope that
  grants the interaction on the resource type, or the request is refused (403: the type is public
  knowledge, nothing is revealed);
- then the data: patient data (resources in a patient compartment) is reachable only
    * by a citizen for their own record and those they represent (their minor children),
    * by a professional for the patients they have a care relationship with (médecin traitant,
      member of an active care team, participant in an encounter), or any patient under
      "bris de glace" (a stated reason required; it is traced as such; the DMP issue adds the
      patient's oppositions) or SAMU regulation,
    * by a system client within its scopes;
  a resource outside that reach is reported as not found (404), exactly like a missing one.
Searches are restricted in SQL to what the actor may see, so counts and pages never leak.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, false, select, true

from socle.auth.context import RequestContext
from socle.auth.scopes import scope_allows
from socle.errors import Forbidden, NotFound, Unauthorized
from socle.fhir.definitions import compartment_parameters
from socle.search.rows import ReferenceRow
from socle.store import schema
from socle.store.repository import StoreSession

r, ref = schema.resource, schema.idx_reference

# restful-interaction code -> SMART interaction letter (v2: c r u d s)
LETTER = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "operation": "r",
    "search-type": "s",
    "history-type": "s",
    "history-system": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}
SCOPE_CONTEXT = {"patient": "patient", "practitioner": "user", "system": "system"}
# How a professional comes into a care relationship with a patient: (resource type, parameter
# naming the professional, parameter naming the patient). Data, so the DMP issue can extend it.
CARE_RELATIONSHIPS: tuple[tuple[str, str, str], ...] = (
    ("Patient", "general-practitioner", "_self"),
    ("CareTeam", "participant", "patient"),
    ("Encounter", "participant", "patient"),
    ("EpisodeOfCare", "care-manager", "patient"),
)
EMERGENCY_PURPOSES = frozenset({"bris-de-glace", "regulation"})


def is_patient_data(res_type: str) -> bool:
    return res_type == "Patient" or res_type in compartment_parameters("Patient")


def check_interaction(ctx: RequestContext, interaction: str, res_type: str | None) -> None:
    """Type-level check: refuse (401/403) what the actor's scopes never allow."""
    if ctx.actor_type == "anonymous":
        raise Unauthorized("Authentification requise : présentez un jeton d'accès (Bearer)")
    letter = LETTER.get(interaction)
    if letter is None:
        return
    if interaction == "history-system" or res_type is None:
        if ctx.actor_type != "system" or not scope_allows(ctx.scopes, "system", "*", letter):
            raise Forbidden("L'historique de tout le serveur est réservé aux clients système habilités")
        return
    if not scope_allows(ctx.scopes, SCOPE_CONTEXT[ctx.actor_type], res_type, letter):
        raise Forbidden(
            f"Les autorisations (scopes) du jeton ne permettent pas '{interaction}' sur {res_type}"
        )
    if interaction in ("history-type",) and ctx.actor_type != "system" and is_patient_data(res_type):
        raise Forbidden(f"L'historique de tous les {res_type} est réservé aux clients système habilités")
    if ctx.purpose_of_use == "bris-de-glace" and not ctx.purpose_reason:
        raise Forbidden("Un accès en bris de glace exige un motif")


def reachable_patients(ctx: RequestContext) -> Select[Any] | frozenset[str] | None:
    """The patients whose data the actor may reach: None = no restriction (system, emergency)."""
    if ctx.actor_type == "system":
        return None
    if ctx.actor_type == "patient":
        ids = set(ctx.patient_ids)
        if ctx.launch_patient and ctx.launch_patient in ids:
            ids = {ctx.launch_patient}
        return frozenset(ids)
    if ctx.purpose_of_use in EMERGENCY_PURPOSES and ctx.purpose_reason:
        return None
    cared = cared_patients(ctx.actor_id)
    if ctx.launch_patient:
        # An app launched on one patient sees that patient only, and still needs the care relationship.
        column = cared.selected_columns[0]
        return cared.where(column == ctx.launch_patient)
    return cared


def cared_patients(practitioner: str) -> Select[Any]:
    """Patient ids with a care relationship to `practitioner` ("Practitioner/<id>"), as SQL."""
    target_type, _, target_id = practitioner.partition("/")
    branches: list[Select[Any]] = []
    for res_type, professional_param, patient_param in CARE_RELATIONSHIPS:
        holders = select(ref.c.resource_pk).where(
            ref.c.res_type == res_type,
            ref.c.param == professional_param,
            ref.c.target_type == target_type,
            ref.c.target_id == target_id,
        )
        live = select(r.c.pk).where(r.c.res_type == res_type, r.c.deleted == false(), r.c.pk.in_(holders))
        if patient_param == "_self":
            patients = select(r.c.res_id).where(
                r.c.res_type == "Patient", r.c.deleted == false(), r.c.pk.in_(holders)
            )
            branches.append(patients)
        else:
            patient_ref = ref.alias()
            branches.append(
                select(patient_ref.c.target_id).where(
                    patient_ref.c.res_type == res_type,
                    patient_ref.c.param == patient_param,
                    patient_ref.c.target_type == "Patient",
                    patient_ref.c.resource_pk.in_(live),
                )
            )
    return branches[0].union(*branches[1:]).subquery().select()


def compartment_condition(res_type: str, patients: Select[Any] | frozenset[str]) -> ColumnElement[bool]:
    """SQL: the resource (a row of `resource`) lies in the compartment of one of `patients`."""
    if isinstance(patients, frozenset) and not patients:
        return false()
    ids: Any = sorted(patients) if isinstance(patients, frozenset) else patients
    if res_type == "Patient":
        return r.c.res_id.in_(ids)
    params = compartment_parameters("Patient").get(res_type)
    if not params:
        return true()
    linked = select(ref.c.resource_pk).where(
        ref.c.res_type == res_type,
        ref.c.param.in_(params),
        ref.c.target_type == "Patient",
        ref.c.target_id.in_(ids),
    )
    return r.c.pk.in_(linked)


def search_restriction(ctx: RequestContext, res_type: str) -> ColumnElement[bool] | None:
    """The condition every search on `res_type` by this actor must add (None: no restriction)."""
    if not is_patient_data(res_type):
        return None
    patients = reachable_patients(ctx)
    if patients is None:
        return None
    return compartment_condition(res_type, patients)


def check_resource(session: StoreSession, ctx: RequestContext, res_type: str, pk: int) -> None:
    """Refuse, as not found, a stored resource that lies outside the actor's reach."""
    condition = search_restriction(ctx, res_type)
    if condition is None:
        return
    allowed = session.connection.execute(select(r.c.pk).where(r.c.pk == pk, condition)).first()
    if allowed is None:
        raise NotFound(f"{res_type} introuvable")


def check_new_content(session: StoreSession, ctx: RequestContext, resource: dict[str, Any]) -> None:
    """A write must keep the resource inside the actor's reach (no creating data for others)."""
    res_type = str(resource.get("resourceType"))
    if not is_patient_data(res_type):
        return
    patients = reachable_patients(ctx)
    if patients is None:
        return
    linked = patients_named(res_type, resource, session)
    if not linked:
        raise Forbidden(f"Ce {res_type} ne désigne aucun patient dont vous avez la charge")
    if isinstance(patients, frozenset):
        outside = linked - patients
    else:
        found = {row[0] for row in session.connection.execute(patients)}
        outside = linked - found
    if outside:
        raise Forbidden(f"Ce {res_type} concerne un patient dont vous n'avez pas la charge")


def patients_named(res_type: str, resource: dict[str, Any], session: StoreSession) -> set[str]:
    """Patient ids a resource's compartment references point at (its own id for a Patient)."""
    if res_type == "Patient":
        return {str(resource["id"])} if resource.get("id") else set()
    params = set(compartment_parameters("Patient").get(res_type, ()))
    rows: Iterable[Any] = session.store.index_rows(resource)
    return {
        row.target_id
        for row in rows
        if isinstance(row, ReferenceRow)
        and row.param in params
        and row.target_type == "Patient"
        and row.target_id
    }


def restrict_pks(session: StoreSession, ctx: RequestContext, pks: list[int]) -> list[int]:
    """Keep only the resources (included ones, say) the actor may see."""
    if not pks or reachable_patients(ctx) is None:
        return pks
    rows = session.connection.execute(select(r.c.pk, r.c.res_type).where(r.c.pk.in_(pks))).all()
    allowed: set[int] = set()
    for res_type in {row.res_type for row in rows}:
        condition = search_restriction(ctx, res_type)
        same_type = [row.pk for row in rows if row.res_type == res_type]
        if condition is None:
            allowed.update(same_type)
        else:
            query = select(r.c.pk).where(r.c.pk.in_(same_type), condition)
            allowed.update(row[0] for row in session.connection.execute(query))
    return [pk for pk in pks if pk in allowed]
