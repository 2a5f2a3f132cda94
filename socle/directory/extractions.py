"""The two public extraction layouts, line by line: RPPS "PS_LibreAcces" and FINESS (pure parsing).

RPPS, `PS_LibreAcces_Personne_activite_<date>.txt` (Annuaire Santé open data): UTF-8, `|`-separated,
one header line, then one line per activity of a professional; every line ends with a `|`. The
columns are found by their header names, so both published layouts read the same way: the older
52 columns ending "Code section tableau pharmaciens|Libellé section tableau pharmaciens|" and the
current 56 columns that add "Code rôle|Libellé rôle|Code genre activité|Libellé genre activité|".
Header names as published (checked against several public parsers of the file and real lines):
`Type d'identifiant PP|Identifiant PP|Identification nationale PP|Code civilité d'exercice|Libellé
civilité d'exercice|Code civilité|Libellé civilité|Nom d'exercice|Prénom d'exercice|Code profession|
Libellé profession|Code catégorie professionnelle|Libellé catégorie professionnelle|Code type
savoir-faire|Libellé type savoir-faire|Code savoir-faire|Libellé savoir-faire|Code mode exercice|
Libellé mode exercice|Numéro SIRET site|Numéro SIREN site|Numéro FINESS site|Numéro FINESS
établissement juridique|Identifiant technique de la structure|Raison sociale site|Enseigne commerciale
site|Complément destinataire (coord. structure)|Complément point géographique (coord. structure)|
Numéro Voie (coord. structure)|Indice répétition voie (coord. structure)|Code type de voie (coord.
structure)|Libellé type de voie (coord. structure)|Libellé Voie (coord. structure)|Mention
distribution (coord. structure)|Bureau cedex (coord. structure)|Code postal (coord. structure)|Code
commune (coord. structure)|Libellé commune (coord. structure)|Code pays (coord. structure)|Libellé pays
(coord. structure)|Téléphone (coord. structure)|Téléphone 2 (coord. structure)|Télécopie (coord.
structure)|Adresse e-mail (coord. structure)|Code Département (structure)|Libellé Département
(structure)|Ancien identifiant de la structure|Autorité d'enregistrement|Code secteur d'activité|
Libellé secteur d'activité|Code section tableau pharmaciens|Libellé section tableau pharmaciens|Code
rôle|Libellé rôle|Code genre activité|Libellé genre activité|`.

FINESS, `etalab-cs1100507-stock-<date>.csv` ("FINESS Extraction du Fichier des établissements",
data.gouv.fr): `;`-separated with CSV quoting (the field `"A ""B"" C"` holds `A "B" C`), a first line
`finess;etalab;<n>;<date>`, then `structureet;...` lines (one per geographic establishment, 31
fields after the tag, the last one often empty) and `geolocalisation;<nofinesset>;<x>;<y>;<source>;
<date>` lines. The `structureet` fields: nofinesset, nofinessej, rs, rslongue, complrs,
compldistrib, numvoie, typvoie, voie, compvoie, lieuditbp, commune (3 digits), departement,
libdepartement, ligneacheminement ("01440 VIRIAT"), telephone, telecopie, categetab, libcategetab,
categagretab, libcategagretab, siret, codeape, codemft, libmft, codesph, libsph, dateouv, dateautor,
datemaj, numuai. The geolocation source names the projection: "1,ATLASANTE,96,BAN,EPSG:2154 RGF93 /
Lambert-93 (Métropole)" in current files, "...;LAMBERT_93;..." (spread over several fields) in
older ones; overseas lines use their UTM frame (EPSG:5490, 2972, 2975, 4471...).

A line that cannot be used raises `LineRejected` with the reason in French; the importer reports
it with its line number and goes on.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from socle.directory.errors import ExtractionFileError, InvalidIdentifier
from socle.directory.geodesy import LAMBERT_93_EPSG, LatLon, to_wgs84
from socle.directory.identifiers import check_finess, check_rpps
from socle.directory.nomenclatures import profession_table


class LineRejected(Exception):
    """A line the importer cannot use; `reason` is the French sentence put in the report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_line(raw: bytes, encoding: str = "utf-8") -> str:
    """One line of the file as text, without its end of line; LineRejected if it is not `encoding`."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise LineRejected(
            f"encodage invalide : {encoding.upper()} attendu (octet 0x{raw[exc.start]:02x} "
            f"en position {exc.start + 1})"
        ) from None
    return text.rstrip("\r\n").removeprefix("\ufeff")


# -- RPPS ------------------------------------------------------------------------------------------


def _header_key(name: str) -> str:
    """Header names compared without case, accents, spaces or punctuation: the published files
    differ in such details ("coord. Structure", "civilité d'exercice" / "civilité exercice")."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]", "", folded.lower())


# field -> accepted header names (the first one is the current name).
RPPS_COLUMNS: dict[str, tuple[str, ...]] = {
    "id_type": ("Type d'identifiant PP",),
    "pp_id": ("Identifiant PP",),
    "id_nat": ("Identification nationale PP",),
    "exercise_title_code": ("Code civilité d'exercice",),
    "exercise_title_label": ("Libellé civilité d'exercice", "Libellé civilité exercice"),
    "family": ("Nom d'exercice",),
    "given": ("Prénom d'exercice",),
    "profession_code": ("Code profession",),
    "profession_label": ("Libellé profession",),
    "category_code": ("Code catégorie professionnelle",),
    "skill_type_code": ("Code type savoir-faire",),
    "skill_code": ("Code savoir-faire",),
    "skill_label": ("Libellé savoir-faire",),
    "mode_code": ("Code mode exercice",),
    "mode_label": ("Libellé mode exercice",),
    "siret": ("Numéro SIRET site",),
    "finess_site": ("Numéro FINESS site",),
    "finess_legal": ("Numéro FINESS établissement juridique",),
    "structure_id": ("Identifiant technique de la structure",),
    "site_name": ("Raison sociale site",),
    "site_brand": ("Enseigne commerciale site",),
    "recipient": ("Complément destinataire (coord. structure)",),
    "geo_complement": ("Complément point géographique (coord. structure)",),
    "street_number": ("Numéro Voie (coord. structure)",),
    "street_repetition": ("Indice répétition voie (coord. structure)",),
    "street_type": ("Code type de voie (coord. structure)",),
    "street_type_label": ("Libellé type de voie (coord. structure)",),
    "street_name": ("Libellé Voie (coord. structure)",),
    "distribution": ("Mention distribution (coord. structure)",),
    "cedex": ("Bureau cedex (coord. structure)",),
    "postcode": ("Code postal (coord. structure)",),
    "commune_code": ("Code commune (coord. structure)",),
    "commune_label": ("Libellé commune (coord. structure)",),
    "country_code": ("Code pays (coord. structure)",),
    "phone": ("Téléphone (coord. structure)",),
    "phone2": ("Téléphone 2 (coord. structure)",),
    "fax": ("Télécopie (coord. structure)",),
    "email": ("Adresse e-mail (coord. structure)",),
    "sector_code": ("Code secteur d'activité",),
    "sector_label": ("Libellé secteur d'activité",),
    "role_code": ("Code rôle", "Code fonction"),
    "role_label": ("Libellé rôle", "Libellé fonction"),
    "activity_kind_code": ("Code genre activité", "Code genre d'activité"),
    "activity_kind_label": ("Libellé genre activité", "Libellé genre d'activité"),
}
RPPS_REQUIRED = ("id_type", "pp_id", "family", "given", "profession_code")

RPPS_ID_TYPE = "8"  # "Type d'identifiant PP": 8 = RPPS (0 = ADELI, out of this importer's scope)


@dataclass(frozen=True, slots=True)
class RppsLayout:
    """Where each field sits in this file, read from its header."""

    width: int
    positions: dict[str, int]

    @classmethod
    def from_header(cls, header: str) -> RppsLayout:
        names = _split_pipes(header)
        by_key = {_header_key(name): i for i, name in enumerate(names) if name}
        positions: dict[str, int] = {}
        for field_name, accepted in RPPS_COLUMNS.items():
            for name in accepted:
                if _header_key(name) in by_key:
                    positions[field_name] = by_key[_header_key(name)]
                    break
        missing = [RPPS_COLUMNS[f][0] for f in RPPS_REQUIRED if f not in positions]
        if missing:
            raise ExtractionFileError(
                "en-tête RPPS inattendu : colonne(s) absente(s) : " + ", ".join(missing)
            )
        return cls(len(names), positions)


def _split_pipes(line: str) -> list[str]:
    fields = line.split("|")
    if len(fields) > 1 and fields[-1] == "":
        fields.pop()  # every published line ends with a "|"
    return fields


@dataclass(frozen=True, slots=True)
class RppsSite:
    """The structure where an activity takes place, with its coordinates as the RPPS gives them."""

    structure_id: str
    siret: str
    finess_site: str | None
    finess_legal: str | None
    name: str
    brand: str
    recipient: str
    geo_complement: str
    street_number: str
    street_repetition: str
    street_type: str
    street_name: str
    distribution: str
    cedex: str
    postcode: str
    commune_code: str
    commune_label: str
    country_code: str
    phone: str
    phone2: str
    fax: str
    email: str
    sector_code: str
    sector_label: str


@dataclass(frozen=True, slots=True)
class RppsActivityLine:
    """One line of the personne-activité extraction: a professional and one of their activities."""

    line_number: int
    rpps: str
    exercise_title_code: str
    exercise_title_label: str
    family: str
    given: str
    profession_code: str
    profession_label: str
    category_code: str
    skill_type_code: str
    skill_code: str
    skill_label: str
    mode_code: str
    mode_label: str
    role_code: str
    role_label: str
    activity_kind_code: str
    activity_kind_label: str
    site: RppsSite | None
    warnings: tuple[str, ...] = field(default=())


def parse_rpps_line(layout: RppsLayout, text: str, line_number: int) -> RppsActivityLine:
    """The activity on one data line; LineRejected with the reason when the line is unusable."""
    fields = _split_pipes(text)
    if len(fields) != layout.width:
        raise LineRejected(f"nombre de colonnes incorrect : {len(fields)} au lieu de {layout.width}")

    def get(name: str) -> str:
        position = layout.positions.get(name)
        return fields[position].strip() if position is not None else ""

    id_type = get("id_type")
    if id_type != RPPS_ID_TYPE:
        raise LineRejected(
            f"type d'identifiant PP « {id_type} » non pris en charge : seul le RPPS (type 8) est importé"
        )
    try:
        rpps = check_rpps(get("pp_id"))
    except InvalidIdentifier as exc:
        raise LineRejected(exc.message) from None
    id_nat = get("id_nat")
    if id_nat and id_nat != "8" + rpps:
        raise LineRejected(f"identification nationale PP « {id_nat} » incohérente avec le RPPS {rpps}")
    profession = get("profession_code")
    if profession_table(profession) is None:
        raise LineRejected(f"code profession inconnu : « {profession} » (ni TRE_G15 ni TRE_R95)")
    family = get("family")
    if not family:
        raise LineRejected("nom d'exercice vide")
    warnings: list[str] = []
    return RppsActivityLine(
        line_number=line_number,
        rpps=rpps,
        exercise_title_code=get("exercise_title_code"),
        exercise_title_label=get("exercise_title_label"),
        family=family,
        given=get("given"),
        profession_code=profession,
        profession_label=get("profession_label"),
        category_code=get("category_code"),
        skill_type_code=get("skill_type_code"),
        skill_code=get("skill_code"),
        skill_label=get("skill_label"),
        mode_code=get("mode_code"),
        mode_label=get("mode_label"),
        role_code=get("role_code"),
        role_label=get("role_label"),
        activity_kind_code=get("activity_kind_code"),
        activity_kind_label=get("activity_kind_label"),
        site=_rpps_site(get, warnings),
        warnings=tuple(warnings),
    )


def _optional_finess(value: str, what: str, warnings: list[str]) -> str | None:
    if not value:
        return None
    try:
        return check_finess(value)
    except InvalidIdentifier as exc:
        warnings.append(f"{what} ignoré : {exc.message}")
        return None


def _rpps_site(get: Callable[[str], str], warnings: list[str]) -> RppsSite | None:
    structure_id = get("structure_id")
    finess_site = _optional_finess(get("finess_site"), "numéro FINESS site", warnings)
    if not structure_id and finess_site is None:
        return None  # an activity without a structure (a registered professional not practising)
    return RppsSite(
        structure_id=structure_id,
        siret=get("siret"),
        finess_site=finess_site,
        finess_legal=_optional_finess(get("finess_legal"), "numéro FINESS juridique", warnings),
        name=get("site_name"),
        brand=get("site_brand"),
        recipient=get("recipient"),
        geo_complement=get("geo_complement"),
        street_number=get("street_number"),
        street_repetition=get("street_repetition"),
        street_type=get("street_type"),
        street_name=get("street_name"),
        distribution=get("distribution"),
        cedex=get("cedex"),
        postcode=get("postcode"),
        commune_code=get("commune_code"),
        commune_label=get("commune_label"),
        country_code=get("country_code"),
        phone=get("phone").replace(" ", ""),
        phone2=get("phone2").replace(" ", ""),
        fax=get("fax").replace(" ", ""),
        email=get("email"),
        sector_code=get("sector_code"),
        sector_label=get("sector_label"),
    )


# -- FINESS ----------------------------------------------------------------------------------------

FINESS_HEADER_TAG = "finess"
FINESS_ESTABLISHMENT_TAG = "structureet"
FINESS_GEOLOCATION_TAG = "geolocalisation"
# Fields after the "structureet" tag: 30 named ones and the trailing numuai (often empty).
FINESS_ESTABLISHMENT_FIELDS = (31, 30)


@dataclass(frozen=True, slots=True)
class FinessEstablishment:
    """One `structureet` line: a geographic establishment (entité géographique) of FINESS."""

    line_number: int
    finess: str
    finess_legal: str | None
    short_name: str
    long_name: str
    name_complement: str
    distribution_complement: str
    street_number: str
    street_type: str
    street_name: str
    street_complement: str
    locality: str
    commune: str
    departement: str
    departement_label: str
    routing_line: str
    phone: str
    fax: str
    category_code: str
    category_label: str
    category_group_code: str
    category_group_label: str
    siret: str
    opening_date: str
    authorisation_date: str
    update_date: str
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class FinessGeolocation:
    """One `geolocalisation` line: where an establishment is, converted to WGS84."""

    line_number: int
    finess: str
    position: LatLon


def split_finess_line(text: str) -> list[str]:
    """The fields of one line (CSV quoting with doubled quotes, `;` separator)."""
    return next(csv.reader([text], delimiter=";", quotechar='"'))


def parse_finess_establishment(fields: list[str], line_number: int) -> FinessEstablishment:
    values = fields[1:]
    if len(values) not in FINESS_ESTABLISHMENT_FIELDS:
        raise LineRejected(
            f"nombre de colonnes incorrect : {len(values)} au lieu de {FINESS_ESTABLISHMENT_FIELDS[0]}"
        )
    v = [value.strip() for value in values]
    try:
        finess = check_finess(v[0])
    except InvalidIdentifier as exc:
        raise LineRejected(exc.message) from None
    warnings: list[str] = []
    finess_legal = _optional_finess(v[1], "numéro FINESS juridique", warnings)
    if not (v[3] or v[2]):
        raise LineRejected("raison sociale vide")
    return FinessEstablishment(
        line_number=line_number,
        finess=finess,
        finess_legal=finess_legal,
        short_name=v[2],
        long_name=v[3],
        name_complement=v[4],
        distribution_complement=v[5],
        street_number=v[6],
        street_type=v[7],
        street_name=v[8],
        street_complement=v[9],
        locality=v[10],
        commune=v[11],
        departement=v[12],
        departement_label=v[13],
        routing_line=v[14],
        phone=v[15].replace(" ", ""),
        fax=v[16].replace(" ", ""),
        category_code=v[17],
        category_label=v[18],
        category_group_code=v[19],
        category_group_label=v[20],
        siret=v[21],
        opening_date=v[27],
        authorisation_date=v[28],
        update_date=v[29],
        warnings=tuple(warnings),
    )


_EPSG = re.compile(r"EPSG\s*:\s*(\d+)", re.IGNORECASE)
_LEGACY_LAMBERT_93 = re.compile(r"LAMBERT[ _-]?93", re.IGNORECASE)
_LEGACY_UTM = re.compile(
    r"UTM[ _-]?(?:ZONE[ _-]?)?(?:([NS])[ _-]?(\d{1,2})|(\d{1,2})[ _-]?([NS]))", re.IGNORECASE
)


def projection_of(source: str) -> int | None:
    """The EPSG code named by a geolocation source ("...EPSG:2154 RGF93 / Lambert-93", "LAMBERT_93")."""
    match = _EPSG.search(source)
    if match:
        return int(match.group(1))
    if _LEGACY_LAMBERT_93.search(source):
        return LAMBERT_93_EPSG
    utm = _LEGACY_UTM.search(source)
    if utm:
        hemisphere = (utm.group(1) or utm.group(4)).upper()
        zone = int(utm.group(2) or utm.group(3))
        return (32700 if hemisphere == "S" else 32600) + zone
    return None


def parse_finess_geolocation(fields: list[str], line_number: int) -> FinessGeolocation:
    if len(fields) < 5:
        raise LineRejected(f"nombre de colonnes incorrect : {len(fields) - 1} au lieu de 5")
    try:
        finess = check_finess(fields[1])
    except InvalidIdentifier as exc:
        raise LineRejected(exc.message) from None
    try:
        x, y = float(fields[2].replace(",", ".")), float(fields[3].replace(",", "."))
    except ValueError:
        raise LineRejected(f"coordonnées illisibles : « {fields[2]} » / « {fields[3]} »") from None
    # The source is one field in current files, several in older ones; the date comes last.
    source = ";".join(fields[4:-1]) if len(fields) > 5 else fields[4]
    epsg = projection_of(source)
    position = to_wgs84(x, y, epsg) if epsg is not None else None
    if position is None:
        raise LineRejected(f"projection inconnue dans la source « {source} »")
    return FinessGeolocation(line_number, finess, position)
