"""HTTP JSON API of the simulated INSi teleservice: `POST /insi/recherche`, `POST /insi/verification`.

Thin on purpose: it parses the JSON body by hand (so that every bad input gets a French message and
a 400, never FastAPI's English 422 or a stack trace), calls `socle.identity.insi` in a worker thread
and renders `InsiResponse.to_json()`. The registry lives in the store's database
(`request.app.state.store.engine`).

    POST /insi/recherche     {"carte_vitale": "0100000000042"}
    POST /insi/recherche     {"nom_naissance": "Martin", "prenoms": "Jeanne", "sexe": "F",
                              "date_naissance": "1985-01-15", "lieu_naissance": "75115"}
    POST /insi/verification  {"ins": {"matricule": "285017511504281", "oid": "1.2.250.1.213.1.4.8"},
                              "nom_naissance": ..., "prenoms": ..., "sexe": ..., "date_naissance": ...}
    -> 200 {"code": "00" | "01" | "02", "libelle": ..., "message": ..., "individu": {...}}
    -> 400 {"code": "invalid" | "value", "message": "..."}
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from socle.errors import InvalidRequest, SocleError
from socle.identity.errors import InvalidTrait
from socle.identity.insi import (
    InsiResponse,
    TraitsQuery,
    lookup_by_carte_vitale,
    parse_sex,
    search_traits,
    verify,
)
from socle.identity.record import INS_KIND_BY_SYSTEM, InsMatricule
from socle.identity.traits import UNKNOWN_BIRTHPLACE, StrictTraits

log = logging.getLogger(__name__)


def insi_caller(request: Request) -> None:
    """Seam for authentication: who calls the teleservice.

    TODO(auth): the real INSi is called with the operator's CPx card or the structure's "personne
    morale" certificate. When `socle.auth` builds the request context (`socle.auth.context.
    RequestContext`, from a verified access token), require it here (a professional or a system
    client with an identity scope) and raise Unauthorized/Forbidden otherwise; the audit trail
    will record each call with it. Until then the API is open, like the rest of the demo.
    """


router = APIRouter(prefix="/insi", tags=["INSi (téléservice simulé)"], dependencies=[Depends(insi_caller)])
insi_router = router

TRAIT_FIELDS = ("nom_naissance", "prenoms", "sexe", "date_naissance", "lieu_naissance")
_TEXT = {"type": "string"}
_TRAITS_SCHEMA: dict[str, Any] = {
    "nom_naissance": _TEXT,
    "prenoms": {"description": "le premier prénom de naissance, ou la liste complète (espaces)", **_TEXT},
    "sexe": {"enum": ["M", "F", "I"]},
    "date_naissance": {"description": "AAAA-MM-JJ (AAAA ou AAAA-MM si incomplète)", **_TEXT},
    "lieu_naissance": {"description": "code INSEE (COG) de la commune, ou 99xxx à l'étranger", **_TEXT},
}


def _body_schema(properties: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _json(status: int, content: dict[str, Any]) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


async def _answer(request: Request, operation: Callable[[Engine, dict[str, Any]], InsiResponse]) -> Response:
    engine: Engine = request.app.state.store.engine
    try:
        body = _parse_body(await request.body())
        response = await run_in_threadpool(operation, engine, body)
    except SocleError as error:
        # Everything a caller can get wrong here is a bad input (400), including a trait the domain
        # calls unprocessable (422): for a teleservice query, a malformed trait is a malformed request.
        issue = error.issues[0] if error.issues else None
        return _json(400, {"code": issue.code if issue else "invalid", "message": error.message})
    except Exception:  # the client gets a JSON message, never a stack trace
        log.exception("INSi request failed: %s", request.url.path)
        return _json(500, {"code": "exception", "message": "erreur interne du téléservice INSi simulé"})
    return _json(200, response.to_json())


def _parse_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise InvalidRequest("corps de requête vide : un objet JSON est attendu")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"corps de requête JSON invalide ({error.msg})") from error
    if not isinstance(body, dict):
        raise InvalidRequest("corps de requête invalide : un objet JSON est attendu")
    return body


def _refuse_unknown(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidRequest(f"champ(s) inconnu(s) : {', '.join(unknown)} (attendus : {', '.join(allowed)})")


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidRequest(f"champ obligatoire manquant : {key}")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"champ {key} invalide : texte attendu")
    return value


def _given_names(body: dict[str, Any]) -> tuple[str, ...]:
    value = body.get("prenoms")
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return (str(_text(body, "prenoms")),)


def _traits_query(body: dict[str, Any]) -> TraitsQuery:
    return TraitsQuery(
        str(_text(body, "nom_naissance")),
        _given_names(body),
        parse_sex(str(_text(body, "sexe"))),
        str(_text(body, "date_naissance")),
        _text(body, "lieu_naissance", required=False),
    )


def search(engine: Engine, body: dict[str, Any]) -> InsiResponse:
    """By Carte Vitale (`carte_vitale`, optional `date_naissance` of the beneficiary) or by traits."""
    if "carte_vitale" in body:
        extra = set(body) & {"nom_naissance", "prenoms", "sexe", "lieu_naissance"}
        if extra:
            raise InvalidRequest(
                "rechercher soit par carte Vitale, soit par traits, pas les deux "
                f"(retirer : {', '.join(sorted(extra))})"
            )
        _refuse_unknown(body, ("carte_vitale", "date_naissance"))
        number = str(_text(body, "carte_vitale"))
        return lookup_by_carte_vitale(
            engine, number, birth_date=_text(body, "date_naissance", required=False)
        )
    _refuse_unknown(body, ("carte_vitale", *TRAIT_FIELDS))
    return search_traits(engine, _traits_query(body))


def verification(engine: Engine, body: dict[str, Any]) -> InsiResponse:
    """Check an INS matricule (`ins`: {matricule, oid}) against the traits."""
    _refuse_unknown(body, ("ins", *TRAIT_FIELDS))
    if "ins" not in body:
        raise InvalidRequest('champ obligatoire manquant : ins ({"matricule": ..., "oid": ...})')
    ins = ins_from_json(body["ins"])
    query = _traits_query(body)
    traits = StrictTraits(
        query.birth_name,
        query.given_names,
        query.birth_date,
        query.sex,
        query.birthplace_code or UNKNOWN_BIRTHPLACE,
    )
    return verify(engine, ins, traits)


def ins_from_json(value: Any) -> InsMatricule:
    """An INS matricule from `{"matricule": ..., "oid": ...}` (InvalidTrait otherwise)."""
    if not isinstance(value, dict):
        raise InvalidRequest('champ ins invalide : {"matricule": ..., "oid": ...} attendu')
    matricule, oid = value.get("matricule"), value.get("oid")
    if not isinstance(matricule, str) or not isinstance(oid, str):
        raise InvalidRequest("champ ins incomplet : « matricule » et « oid » (textes) sont obligatoires")
    system = oid if oid.startswith("urn:oid:") else f"urn:oid:{oid}"
    if system not in INS_KIND_BY_SYSTEM:
        known = ", ".join(s.removeprefix("urn:oid:") for s in INS_KIND_BY_SYSTEM)
        raise InvalidTrait(f"OID d'autorité d'affectation inconnu : {oid} (attendus : {known})")
    return InsMatricule.from_system(system, matricule)


@router.post(
    "/recherche",
    summary="Rechercher l'INS par carte Vitale ou par traits d'identité",
    openapi_extra=_body_schema(
        {
            "carte_vitale": {"description": "numéro de carte Vitale (8 à 20 chiffres)", **_TEXT},
            **_TRAITS_SCHEMA,
        }
    ),
)
async def post_recherche(request: Request) -> Response:
    return await _answer(request, search)


@router.post(
    "/verification",
    summary="Vérifier un matricule INS et ses traits",
    openapi_extra=_body_schema(
        {
            "ins": {"type": "object", "properties": {"matricule": _TEXT, "oid": _TEXT}},
            **_TRAITS_SCHEMA,
        }
    ),
)
async def post_verification(request: Request) -> Response:
    return await _answer(request, verification)
