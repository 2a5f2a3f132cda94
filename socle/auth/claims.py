"""The identity claims Socle puts in tokens and userinfo, and `AccessClaims` read back from a token.

Professionals get the claims Pro Santé Connect sends (its userinfo, as relying parties see it):
`SubjectNameID` (idNatPs), `given_name`, `family_name`, `SubjectRole` (TRE_G15 profession as
"code^OID"), `SubjectRefPro` (exercices: profession, savoir-faire = TRE_R38 specialty, activities
with the structure and its TRE_R02 sector), `SubjectOrganization` / `SubjectOrganizationID` (the
structure the professional acts for, here its idNatSt), `Secteur_Activite` ("code^OID") and
`otherIds`. Citizens get `given_name`, `family_name`, `ins` (INS matricule) and
`represented_patients`. Every user gets SMART's `fhirUser` (an absolute FHIR URL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from socle.auth.context import AccessClaims, ActorType
from socle.auth.errors import InvalidToken

if TYPE_CHECKING:
    from socle.auth.accounts import Account

# The OIDs Pro Santé Connect appends to coded values ("10^1.2.250.1.213.1.1.5.5").
PSC_PROFESSION_OID = "1.2.250.1.213.1.1.5.5"
TRE_R02_SECTOR_OID = "1.2.250.1.71.4.2.4"
SPECIALTY_KNOW_HOW_TYPE = "S"  # codeTypeSavoirFaire: "S" = spécialité ordinale (TRE_R38)
CIVIL_CATEGORY = "C"  # codeCategorieProfessionnelle: civil


def fhir_user_url(account: Account, fhir_base: str) -> str:
    return f"{fhir_base.rstrip('/')}/{account.fhir_reference}"


def identity_claims(account: Account, fhir_base: str) -> dict[str, Any]:
    """What the ID token, the userinfo and the access token say about the user."""
    claims: dict[str, Any] = {
        "given_name": account.given_name,
        "family_name": account.family_name,
        "fhirUser": fhir_user_url(account, fhir_base),
    }
    if account.kind == "professional":
        claims.update(_professional_claims(account))
    else:
        if account.national_id:
            claims["ins"] = account.national_id
        claims["represented_patients"] = list(account.represented_patients)
    return claims


def _professional_claims(account: Account) -> dict[str, Any]:
    activity: dict[str, str] = {
        "codeSecteurDactivite": account.structure_sector or "",
        "identifiantTechniqueDeLaStructure": account.structure_id or "",
        "raisonSocialeSite": account.structure_name or "",
    }
    exercise: dict[str, Any] = {
        "codeProfession": account.profession or "",
        "codeCategorieProfessionnelle": CIVIL_CATEGORY,
        "codeTypeSavoirFaire": SPECIALTY_KNOW_HOW_TYPE if account.specialty else "",
        "codeSavoirFaire": account.specialty or "",
        "nomDexercice": account.family_name,
        "prenomDexercice": account.given_name,
        "activities": [activity] if account.structure_id else [],
    }
    claims: dict[str, Any] = {
        "SubjectNameID": account.national_id or account.login,
        "SubjectRole": [f"{account.profession}^{PSC_PROFESSION_OID}"] if account.profession else [],
        "SubjectRefPro": {"exercices": [exercise]},
        "otherIds": [{"identifiant": account.national_id or account.login, "origine": "RPPS", "qualite": 1}],
    }
    if account.structure_id:
        claims["SubjectOrganizationID"] = account.structure_id
        claims["SubjectOrganization"] = account.structure_name or account.structure_id
    if account.structure_sector:
        claims["Secteur_Activite"] = f"{account.structure_sector}^{TRE_R02_SECTOR_OID}"
    return claims


# -- reading them back ------------------------------------------------------------------------------


def _relative_reference(url: str, fhir_base: str) -> str:
    """ "https://host/fhir/Practitioner/123" -> "Practitioner/123" (also accepts a relative one)."""
    base = fhir_base.rstrip("/") + "/"
    reference = url[len(base) :] if url.startswith(base) else url
    parts = reference.rstrip("/").split("/")
    if len(parts) < 2:
        raise InvalidToken("malformed", "The token claim fhirUser is not a FHIR reference")
    return f"{parts[-2]}/{parts[-1]}"


def _code(value: Any) -> str | None:
    """ "10^1.2.250..." -> "10"."""
    if not isinstance(value, str) or not value:
        return None
    return value.split("^", 1)[0] or None


def access_claims(claims: dict[str, Any], fhir_base: str) -> AccessClaims:
    """Turn verified JWT claims into the `AccessClaims` the policy layer and the audit read."""
    fhir_user_claim = claims.get("fhirUser")
    actor_type: ActorType
    fhir_user: str | None = None
    if fhir_user_claim is None:
        actor_type = "system"
    else:
        if not isinstance(fhir_user_claim, str):
            raise InvalidToken("malformed", "The token claim fhirUser is not a string")
        fhir_user = _relative_reference(fhir_user_claim, fhir_base)
        resource_type = fhir_user.split("/", 1)[0]
        if resource_type == "Practitioner":
            actor_type = "practitioner"
        elif resource_type == "Patient":
            actor_type = "patient"
        else:
            raise InvalidToken(
                "malformed", "The token claim fhirUser names neither a Practitioner nor a Patient"
            )
    roles = claims.get("SubjectRole") or []
    exercises = (claims.get("SubjectRefPro") or {}).get("exercices") or [{}]
    given, family = claims.get("given_name"), claims.get("family_name")
    display = " ".join(part for part in (given, family) if isinstance(part, str) and part) or None
    represented = claims.get("represented_patients") or []
    patient = claims.get("patient")
    return AccessClaims(
        subject=claims["sub"],
        actor_type=actor_type,
        client_id=claims["client_id"],
        scopes=tuple(claims["scope"].split()),
        token_id=claims["jti"],
        expires_at=claims["exp"],
        fhir_user=fhir_user,
        patient=patient if isinstance(patient, str) else None,
        national_id=claims.get("SubjectNameID") or claims.get("ins"),
        display=display,
        profession=_code(roles[0]) if isinstance(roles, list) and roles else None,
        specialty=(exercises[0] or {}).get("codeSavoirFaire") or None
        if isinstance(exercises, list)
        else None,
        structure=claims.get("SubjectOrganizationID"),
        structure_sector=_code(claims.get("Secteur_Activite")),
        represented_patients=tuple(p for p in represented if isinstance(p, str))
        if isinstance(represented, list)
        else (),
    )
