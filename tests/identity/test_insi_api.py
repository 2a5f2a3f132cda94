"""The INSi HTTP API: searches and verification as JSON, and every bad input a 400 in French."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from socle.identity.insi_api import insi_router
from socle.store.repository import FhirStore
from tests.identity.factories import JEANNE_NIR
from tests.identity.test_insi import JEAN_PIERRE, registry  # noqa: F401  (the registry fixture)

JEANNE_TRAITS = {"nom_naissance": "Martin", "prenoms": "Jeanne", "sexe": "F", "date_naissance": "1985-01-15"}
TRAIT_FIELDS = "nom_naissance, prenoms, sexe, date_naissance, lieu_naissance"


@pytest.fixture
def insi(registry: Engine) -> Iterator[TestClient]:  # noqa: F811
    # The router alone, as app.py will mount it: the registry is the store's database.
    app = FastAPI()
    app.state.store = FhirStore(registry)
    app.include_router(insi_router)
    with TestClient(app) as client:
        yield client


def post(client: TestClient, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    response = client.post(path, json=body)
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()


def test_search_by_traits(insi: TestClient) -> None:
    status, several = post(insi, "/insi/recherche", JEANNE_TRAITS)
    assert (status, several["code"], several["libelle"]) == (
        200,
        "02",
        "plusieurs identités trouvées (ajouter les autres prénoms, puis le lieu de naissance)",
    )
    assert "individu" not in several
    status, found = post(insi, "/insi/recherche", {**JEANNE_TRAITS, "prenoms": ["Jeanne", "Louise"]})
    assert (status, found["code"]) == (200, "00")
    assert found["individu"]["ins"] == {
        "matricule": JEANNE_NIR,
        "oid": "1.2.250.1.213.1.4.8",
        "type": "INS-NIR",
    }
    assert found["individu"]["traits"]["prenoms"] == "JEANNE LOUISE"


def test_search_by_carte_vitale(insi: TestClient) -> None:
    status, found = post(insi, "/insi/recherche", {"carte_vitale": "0100000000001"})
    assert (status, found["code"], found["individu"]["ins"]["matricule"]) == (200, "00", JEANNE_NIR)
    status, child = post(
        insi, "/insi/recherche", {"carte_vitale": "0100000000002", "date_naissance": "2015-06-02"}
    )
    assert (status, child["code"], child["individu"]["traits"]["premier_prenom"]) == (200, "00", "LEO")


def test_verification(insi: TestClient) -> None:
    body = {
        "ins": {"matricule": JEAN_PIERRE.ins.value, "oid": "1.2.250.1.213.1.4.8"},
        "nom_naissance": "Dupont",
        "prenoms": "Jean-Pierre Marc",
        "sexe": "M",
        "date_naissance": "1970-03-04",
    }
    status, ok = post(insi, "/insi/verification", body)
    assert (status, ok["code"], ok["message"]) == (
        200,
        "00",
        "INS vérifié : le matricule et les traits correspondent",
    )
    status, wrong = post(insi, "/insi/verification", {**body, "sexe": "F"})
    assert (status, wrong["code"]) == (200, "01")
    assert wrong["message"] == f"traits incohérents avec le matricule INS {JEAN_PIERRE.ins.value} : sexe"


@pytest.mark.parametrize(
    ("path", "body", "code", "message"),
    [
        ("/insi/recherche", [], "invalid", "corps de requête invalide : un objet JSON est attendu"),
        (
            "/insi/recherche",
            {k: v for k, v in JEANNE_TRAITS.items() if k != "date_naissance"},
            "invalid",
            "champ obligatoire manquant : date_naissance",
        ),
        (
            "/insi/recherche",
            {**JEANNE_TRAITS, "sexe": "X"},
            "value",
            "sexe invalide : 'X' (M, F ou I attendu)",
        ),
        (
            "/insi/recherche",
            {**JEANNE_TRAITS, "date_naissance": "1985-13-01"},
            "value",
            "date de naissance invalide : mois 13 (1985-13-01)",
        ),
        (
            "/insi/recherche",
            {**JEANNE_TRAITS, "nom_naissance": "Martin2"},
            "value",
            "nom de naissance invalide : caractère « 2 » non autorisé ('Martin2')",
        ),
        (
            "/insi/recherche",
            {**JEANNE_TRAITS, "prenoms": 3},
            "invalid",
            "champ prenoms invalide : texte attendu",
        ),
        (
            "/insi/recherche",
            {**JEANNE_TRAITS, "age": 39},
            "invalid",
            f"champ(s) inconnu(s) : age (attendus : carte_vitale, {TRAIT_FIELDS})",
        ),
        (
            "/insi/recherche",
            {"carte_vitale": "0100000000001", "nom_naissance": "Martin"},
            "invalid",
            "rechercher soit par carte Vitale, soit par traits, pas les deux (retirer : nom_naissance)",
        ),
        (
            "/insi/recherche",
            {"carte_vitale": "12AB"},
            "value",
            "numéro de carte Vitale invalide : '12AB' (8 à 20 chiffres attendus)",
        ),
        (
            "/insi/verification",
            JEANNE_TRAITS,
            "invalid",
            'champ obligatoire manquant : ins ({"matricule": ..., "oid": ...})',
        ),
        (
            "/insi/verification",
            {**JEANNE_TRAITS, "ins": {"matricule": JEANNE_NIR, "oid": "1.2.3"}},
            "value",
            "OID d'autorité d'affectation inconnu : 1.2.3 (attendus : 1.2.250.1.213.1.4.8, "
            "1.2.250.1.213.1.4.9, 1.2.250.1.213.1.4.10, 1.2.250.1.213.1.4.11)",
        ),
        (
            "/insi/verification",
            {**JEANNE_TRAITS, "ins": {"matricule": JEANNE_NIR[:13] + "00", "oid": "1.2.250.1.213.1.4.8"}},
            "value",
            f"clé de contrôle invalide : attendue {JEANNE_NIR[13:]}",
        ),
    ],
)
def test_bad_inputs_are_400_with_a_french_message(
    insi: TestClient, path: str, body: Any, code: str, message: str
) -> None:
    assert post(insi, path, body) == (400, {"code": code, "message": message})


def test_a_body_that_is_not_json_is_400(insi: TestClient) -> None:
    response = insi.post(
        "/insi/recherche", content=b"{nom_naissance: Martin", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["message"].startswith("corps de requête JSON invalide (")
    empty = insi.post("/insi/recherche", content=b"")
    assert (empty.status_code, empty.json()["message"]) == (
        400,
        "corps de requête vide : un objet JSON est attendu",
    )


def test_an_unexpected_failure_is_a_500_without_a_stack_trace(
    insi: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("socle.identity.insi_api.search_traits", broken)
    status, body = post(insi, "/insi/recherche", JEANNE_TRAITS)
    assert (status, body) == (
        500,
        {"code": "exception", "message": "erreur interne du téléservice INSi simulé"},
    )
