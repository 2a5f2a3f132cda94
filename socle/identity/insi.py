"""A simulated INSi teleservice: the national reference registry of INS identities, inside Socle.

In France the INS (matricule NIR or NIA + the five INS traits) comes from the INSi teleservice of the
Assurance Maladie, fed by the national identity bases (RNIPP/SNGI). Socle cannot call it, so it keeps
its own reference registry, seeded with synthetic people, and answers as the teleservice does. The
registry is not clinical data: it has its own tables (`insi_*`, migration 0005), not FHIR resources.

Operations (the teleservice's, with its return codes "00" one identity, "01" none, "02" several):
- `lookup_by_carte_vitale`: the recommended way; the card number stands in for the chip's data;
- `lookup_by_traits`: birth name, one first name (or the whole list), sex, birth date, and optionally
  the birthplace code. On "02" the caller retries with all the birth first names, then with the
  birthplace code: the answer's message says which to add;
- `verify`: is this INS matricule the one of a person with these traits?
- `register_person` / `load_registry`: write the registry (bulk load streams by batches, COPY on
  PostgreSQL, executemany on SQLite, in one transaction);
- `do_qualify_with_insi`: look a stored Patient up by its traits, following the INSi retry procedure,
  and apply a "00" answer with `actions.do_retrieve_from_insi`.

How traits match (strict, as the INS référentiel's traits are compared; nothing phonetic or fuzzy):
- names are compared in the RNIV spelling: capitals without diacritics ("Éloïse" = "ELOISE", "Œ" =
  "OE"), typographic apostrophes read as "'", runs of spaces as one, and no space around a hyphen or
  an apostrophe ("D' ARC" = "D'ARC", "JEAN - PIERRE" = "JEAN-PIERRE"). Hyphens, apostrophes and spaces
  themselves are significant: "D'ARC" is not "D ARC" nor "DARC", and "JEAN-PIERRE" (one compound
  first name) is not "JEAN PIERRE" (two first names, as the civil status writes them since 1999);
  a prefix never matches ("MART" is not "MARTIN");
- the first name queried must equal the first birth first name, or the queried list must equal the
  whole list of birth first names (in order); a second first name alone, or part of the list, does
  not match;
- sex and birth date are compared as given (a partial date "1970" or "1970-05" of an incomplete civil
  status only matches itself); the birthplace, when given, must be the same COG code, a former code
  counting as the commune it became (20004 = 2A004) but an arrondissement not as its city
  (75115 is not 75056).

    response = lookup_by_traits(engine, birth_name="Martin", given_names="Jeanne", sex="F",
                                birth_date="1985-01-15")
    if response.code == "00":
        with store.session() as session:
            do_retrieve_from_insi(session, patient_id, response.to_result())
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import psycopg
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError

from socle.auth.context import RequestContext
from socle.errors import Conflict
from socle.identity.actions import do_retrieve_from_insi
from socle.identity.communes import commune
from socle.identity.errors import InvalidTrait
from socle.identity.nir import nir_disagreements, with_key
from socle.identity.queries import load_identity
from socle.identity.record import (
    INSI_RETURN_CODES,
    IdentityRecord,
    InsiResult,
    InsKind,
    InsMatricule,
)
from socle.identity.traits import (
    UNKNOWN_BIRTHPLACE,
    Sex,
    StrictTraits,
    check_birth_date,
    check_birthplace_code,
    normalize_name,
)
from socle.store.engine import is_sqlite
from socle.store.repository import StoreSession

FOUND, NOT_FOUND, SEVERAL = "00", "01", "02"

# -- tables ---------------------------------------------------------------------------------------

# The registry's own schema (created by migration 0005): a national base, not part of the FHIR store.
registry_metadata = MetaData()

# One row per person, keyed by the INS matricule in use (NIR or NIA): the natural key lets the bulk
# load link cards and former matricules to a person without a round trip for generated keys.
insi_person = Table(
    "insi_person",
    registry_metadata,
    Column("ins_value", String(15), primary_key=True),
    Column("ins_kind", String(16), nullable=False),  # InsKind value: INS-NIR, INS-NIA...
    Column("birth_name", String(100), nullable=False),
    Column("given_names", String(255), nullable=False),  # the list, space-separated
    Column("first_given_name", String(100), nullable=False),
    Column("sex", String(8), nullable=False),  # male | female | unknown
    Column("birth_date", String(10), nullable=False),  # FHIR date, possibly partial
    Column("birthplace_code", String(5), nullable=False),
)
Index("ix_insi_person_traits", insi_person.c.birth_name, insi_person.c.birth_date, insi_person.c.sex)

# A Carte Vitale may carry several people (a parent's card with their children), and a person may
# have several cards (a renewed one): a link table.
insi_carte_vitale = Table(
    "insi_carte_vitale",
    registry_metadata,
    Column("number", String(32), primary_key=True),
    Column("ins_value", String(15), primary_key=True),
)

# Former matricules (a NIA replaced by the NIR, a NIR after a rectified civil status): each one
# belonged to one person only.
insi_previous_ins = Table(
    "insi_previous_ins",
    registry_metadata,
    Column("previous_value", String(15), primary_key=True),
    Column("previous_kind", String(16), nullable=False),
    Column("ins_value", String(15), nullable=False),
)
Index("ix_insi_previous_person", insi_previous_ins.c.ins_value)

REGISTRY_TABLES = (insi_person, insi_carte_vitale, insi_previous_ins)


# -- errors ---------------------------------------------------------------------------------------


class InvalidCarteVitale(InvalidTrait):
    """A Carte Vitale number that is not shaped like one (422; 400 through the HTTP API)."""


class RegistryConflict(Conflict):
    """A person already in the registry (same INS, same former matricule) (409)."""


# -- spelling -------------------------------------------------------------------------------------

_SPACED_PUNCTUATION = re.compile(r" ?([-']) ?")
_CARTE_VITALE = re.compile(r"[0-9]{8,20}")


def matching_name(raw: str, what: str = "nom de naissance") -> str:
    """A name as the registry compares it: the RNIV spelling, no space around "-" and "'".

    >>> matching_name("d' Arc")
    "D'ARC"
    """
    return _SPACED_PUNCTUATION.sub(r"\1", normalize_name(raw, what))


def matching_given_names(raw: str | Sequence[str]) -> tuple[str, ...]:
    """The birth first names as the registry compares them: one list, split on spaces."""
    joined = raw if isinstance(raw, str) else " ".join(raw)
    return tuple(matching_name(joined, "prénoms de naissance").split(" "))


def parse_sex(raw: str | Sex) -> Sex:
    """The sex trait from INSi's letters (M, F, I) or FHIR's words (male, female, unknown)."""
    if isinstance(raw, Sex):
        return raw
    letters = {"M": Sex.MALE, "F": Sex.FEMALE, "I": Sex.UNKNOWN}
    text = str(raw).strip()
    found = letters.get(text.upper()) or next((s for s in Sex if s.value == text.lower()), None)
    if found is None:
        raise InvalidTrait(f"sexe invalide : {raw!r} (M, F ou I attendu)")
    return found


def check_carte_vitale(number: str) -> str:
    # The real teleservice reads the card's chip; a typed number is Socle's stand-in for it.
    value = "".join(number.split())
    if not _CARTE_VITALE.fullmatch(value):
        raise InvalidCarteVitale(f"numéro de carte Vitale invalide : {number!r} (8 à 20 chiffres attendus)")
    return value


def same_birthplace(queried: str, registered: str) -> bool:
    """Same COG code, a former code counting as the commune it became (not as its city for an
    arrondissement: the teleservice returns the arrondissement code)."""

    def place(code: str) -> str:
        found = commune(code)
        return found.code if found is not None else code

    return queried == registered or place(queried) == place(registered)


# -- values ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraitsQuery:
    """What a search by traits sends; normalized and checked on construction (InvalidTrait)."""

    birth_name: str
    given_names: tuple[str, ...]
    sex: Sex
    birth_date: str
    birthplace_code: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "birth_name", matching_name(self.birth_name))
        object.__setattr__(self, "given_names", matching_given_names(self.given_names))
        object.__setattr__(self, "sex", parse_sex(self.sex))
        object.__setattr__(self, "birth_date", check_birth_date(self.birth_date))
        if self.birthplace_code is not None:
            object.__setattr__(self, "birthplace_code", check_birthplace_code(self.birthplace_code))


@dataclass(frozen=True, slots=True)
class RegistryPerson:
    """One person of the registry: the INS in use, the INS traits, cards and former matricules.

    The matricule must agree with the traits (sex, birth year and month), as a NIR does.
    """

    ins: InsMatricule
    traits: StrictTraits
    cartes_vitale: tuple[str, ...] = ()
    previous_ins: tuple[InsMatricule, ...] = ()

    def __post_init__(self) -> None:
        traits = replace(
            self.traits,
            birth_name=matching_name(self.traits.birth_name),
            birth_given_names=matching_given_names(self.traits.birth_given_names),
        )
        object.__setattr__(self, "traits", traits)
        object.__setattr__(self, "cartes_vitale", tuple(check_carte_vitale(c) for c in self.cartes_vitale))
        disagreements = nir_disagreements(self.ins.parsed(), sex=traits.sex, birth_date=traits.birth_date)
        if disagreements:
            raise InvalidTrait(
                f"matricule INS {self.ins.value} incohérent avec les traits : {' ; '.join(disagreements)}"
            )
        if self.ins in self.previous_ins:
            raise InvalidTrait(
                f"le matricule INS {self.ins.value} ne peut pas être son propre ancien matricule"
            )


@dataclass(frozen=True, slots=True)
class InsiResponse:
    """An answer of the teleservice: return code, a French message saying what to do next, and for
    "00" the identity as the registry holds it (INS in use, former matricules, INS traits)."""

    code: str
    message: str
    ins: InsMatricule | None = None
    traits: StrictTraits | None = None
    previous_ins: tuple[InsMatricule, ...] = ()

    @property
    def label(self) -> str:
        return INSI_RETURN_CODES[self.code]

    def to_result(self) -> InsiResult:
        """The landed `InsiResult`, as `actions.do_retrieve_from_insi` takes it."""
        return InsiResult(self.code, self.ins, self.traits)

    def to_json(self) -> dict[str, Any]:
        """The HTTP API's JSON form (French field names, after the teleservice's own)."""
        out: dict[str, Any] = {"code": self.code, "libelle": self.label, "message": self.message}
        if self.ins is not None and self.traits is not None:
            out["individu"] = {
                "ins": _ins_json(self.ins),
                "historique": [_ins_json(old) for old in self.previous_ins],
                "traits": {
                    "nom_naissance": self.traits.birth_name,
                    "prenoms": " ".join(self.traits.birth_given_names),
                    "premier_prenom": self.traits.first_given_name,
                    "sexe": _SEX_LETTERS[self.traits.sex],
                    "date_naissance": self.traits.birth_date,
                    "lieu_naissance": self.traits.birthplace_code,
                },
            }
        return out


_SEX_LETTERS = {Sex.MALE: "M", Sex.FEMALE: "F", Sex.UNKNOWN: "I"}


def _ins_json(ins: InsMatricule) -> dict[str, str]:
    return {"matricule": ins.value, "oid": ins.oid, "type": ins.kind.value}


# -- reads ----------------------------------------------------------------------------------------


@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    """A read transaction on the registry that never queues behind a writer.

    `do_qualify_with_insi` calls the registry while its store session holds SQLite's write lock;
    a read-only transaction (plain BEGIN, WAL) reads beside it instead of waiting for it.
    """
    with engine.connect() as connection:
        connection = connection.execution_options(socle_readonly=True)
        with connection.begin():
            yield connection


def _person(connection: Connection, row: Any) -> InsiResponse:
    kind = InsKind(row.ins_kind)
    previous = connection.execute(
        select(insi_previous_ins.c.previous_kind, insi_previous_ins.c.previous_value)
        .where(insi_previous_ins.c.ins_value == row.ins_value)
        .order_by(insi_previous_ins.c.previous_value)
    )
    traits = StrictTraits(
        row.birth_name, tuple(row.given_names.split(" ")), row.birth_date, Sex(row.sex), row.birthplace_code
    )
    return InsiResponse(
        FOUND,
        "une identité trouvée : INS et traits INS à enregistrer tels que renvoyés",
        InsMatricule(kind, row.ins_value),
        traits,
        tuple(InsMatricule(InsKind(p.previous_kind), p.previous_value) for p in previous),
    )


def lookup_by_traits(
    engine: Engine,
    *,
    birth_name: str,
    given_names: str | Sequence[str],
    sex: str | Sex,
    birth_date: str,
    birthplace_code: str | None = None,
) -> InsiResponse:
    """Search the registry by traits (InvalidTrait on a trait that cannot be one).

    `given_names`: the first birth first name, or the whole list ("JEAN PIERRE" or ["JEAN", "PIERRE"]).
    """
    query = TraitsQuery(birth_name, tuple(_as_list(given_names)), parse_sex(sex), birth_date, birthplace_code)
    return search_traits(engine, query)


def _as_list(names: str | Sequence[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def search_traits(engine: Engine, query: TraitsQuery) -> InsiResponse:
    """`lookup_by_traits` for a query already built."""
    p = insi_person
    queried = " ".join(query.given_names)
    statement = select(p).where(
        p.c.birth_name == query.birth_name,
        p.c.birth_date == query.birth_date,
        p.c.sex == query.sex.value,
        # The first birth first name, or the whole list: a name with a space can only be a list.
        or_(p.c.first_given_name == queried, p.c.given_names == queried),
    )
    if query.birthplace_code is None:
        statement = statement.limit(2)  # one or several is all the answer needs
    with _reading(engine) as connection:
        rows = list(connection.execute(statement))
        if query.birthplace_code is not None:
            rows = [r for r in rows if same_birthplace(query.birthplace_code, r.birthplace_code)]
        if len(rows) == 1:
            return _person(connection, rows[0])
    if not rows:
        return InsiResponse(
            NOT_FOUND,
            "aucune identité trouvée : vérifier sur la pièce d'identité le nom de naissance, le premier "
            "prénom de naissance, le sexe et la date de naissance",
        )
    return InsiResponse(SEVERAL, _several_message(query))


def _several_message(query: TraitsQuery) -> str:
    # The order the teleservice's guide gives: the other first names first, then the birthplace.
    if len(query.given_names) == 1:
        return (
            "plusieurs identités trouvées : relancer la recherche avec tous les prénoms de naissance, "
            "dans l'ordre de la pièce d'identité"
        )
    if query.birthplace_code is None:
        return (
            "plusieurs identités trouvées : relancer la recherche en ajoutant le code INSEE du lieu "
            "de naissance"
        )
    return (
        "plusieurs identités trouvées avec tous les traits : identité à signaler à la cellule "
        "d'identitovigilance"
    )


def lookup_by_carte_vitale(
    engine: Engine, carte_vitale_number: str, *, birth_date: str | None = None
) -> InsiResponse:
    """Search the registry by Carte Vitale; `birth_date` picks the person when the card carries several
    (a parent's card with their children)."""
    number = check_carte_vitale(carte_vitale_number)
    if birth_date is not None:
        birth_date = check_birth_date(birth_date)
    p, card = insi_person, insi_carte_vitale
    statement = select(p).join(card, card.c.ins_value == p.c.ins_value).where(card.c.number == number)
    if birth_date is not None:
        statement = statement.where(p.c.birth_date == birth_date)
    with _reading(engine) as connection:
        rows = list(connection.execute(statement.order_by(p.c.ins_value).limit(2)))
        if len(rows) == 1:
            return _person(connection, rows[0])
    if not rows:
        return InsiResponse(
            NOT_FOUND,
            "aucune identité trouvée pour cette carte Vitale"
            + (" et cette date de naissance" if birth_date is not None else "")
            + " : rechercher par les traits d'identité",
        )
    if birth_date is None:
        return InsiResponse(
            SEVERAL,
            "plusieurs bénéficiaires sur cette carte Vitale : préciser la date de naissance du bénéficiaire",
        )
    return InsiResponse(
        SEVERAL,
        "plusieurs bénéficiaires de cette carte Vitale sont nés ce jour-là : rechercher par les traits "
        "d'identité (prénoms de naissance)",
    )


def verify(engine: Engine, ins: InsMatricule, traits: StrictTraits) -> InsiResponse:
    """Is `ins` the matricule in use of a person with these traits? "00" with the registry's identity,
    "01" otherwise (the message names the traits that differ, never the registry's values)."""
    query = TraitsQuery(
        traits.birth_name,
        traits.birth_given_names,
        traits.sex,
        traits.birth_date,
        None if traits.birthplace_code == UNKNOWN_BIRTHPLACE else traits.birthplace_code,
    )
    p = insi_person
    with _reading(engine) as connection:
        row = connection.execute(
            select(p).where(p.c.ins_value == ins.value, p.c.ins_kind == ins.kind.value)
        ).first()
        if row is None:
            replaced = connection.execute(
                select(insi_previous_ins.c.ins_value).where(
                    insi_previous_ins.c.previous_value == ins.value,
                    insi_previous_ins.c.previous_kind == ins.kind.value,
                )
            ).first()
            if replaced is not None:
                return InsiResponse(
                    NOT_FOUND,
                    f"le matricule INS {ins.value} n'est plus en usage (remplacé) : relancer une recherche "
                    "par carte Vitale ou par traits pour obtenir l'INS en vigueur",
                )
            return InsiResponse(NOT_FOUND, f"matricule INS {ins.value} inconnu (OID {ins.oid})")
        differing = _differing_traits(query, row)
        if not differing:
            found = _person(connection, row)
            return replace(found, message="INS vérifié : le matricule et les traits correspondent")
    return InsiResponse(
        NOT_FOUND, f"traits incohérents avec le matricule INS {ins.value} : {', '.join(differing)}"
    )


def _differing_traits(query: TraitsQuery, row: Any) -> list[str]:
    queried = " ".join(query.given_names)
    checks = [
        ("nom de naissance", query.birth_name == row.birth_name),
        ("prénoms de naissance", queried in (row.first_given_name, row.given_names)),
        ("sexe", query.sex.value == row.sex),
        ("date de naissance", query.birth_date == row.birth_date),
        (
            "lieu de naissance",
            query.birthplace_code is None or same_birthplace(query.birthplace_code, row.birthplace_code),
        ),
    ]
    return [label for label, same in checks if not same]


def registry_size(engine: Engine) -> int:
    """How many people the registry holds (the seeding loads it once, when it is empty)."""
    with _reading(engine) as connection:
        return int(connection.execute(select(func.count()).select_from(insi_person)).scalar_one())


# -- writes ---------------------------------------------------------------------------------------


def _rows(person: RegistryPerson) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    traits = person.traits
    row = {
        "ins_value": person.ins.value,
        "ins_kind": person.ins.kind.value,
        "birth_name": traits.birth_name,
        "given_names": " ".join(traits.birth_given_names),
        "first_given_name": traits.first_given_name,
        "sex": traits.sex.value,
        "birth_date": traits.birth_date,
        "birthplace_code": traits.birthplace_code,
    }
    cards = [{"number": n, "ins_value": person.ins.value} for n in dict.fromkeys(person.cartes_vitale)]
    previous = [
        {"previous_value": old.value, "previous_kind": old.kind.value, "ins_value": person.ins.value}
        for old in dict.fromkeys(person.previous_ins)
    ]
    return row, cards, previous


def register_person(engine: Engine, person: RegistryPerson) -> None:
    """Add one person; RegistryConflict when their INS or a former matricule is already known."""
    load_registry(engine, [person])


def load_registry(engine: Engine, people: Iterable[RegistryPerson], *, batch_size: int = 5000) -> int:
    """Load people into the registry, all or nothing; returns how many were loaded.

    `people` is consumed as a stream: rows are written every `batch_size` people (COPY on PostgreSQL,
    executemany on SQLite), so memory stays flat whatever the count.
    """
    count = 0
    try:
        with engine.begin() as connection:
            batch: dict[Table, list[dict[str, Any]]] = {table: [] for table in REGISTRY_TABLES}
            for person in people:
                row, cards, previous = _rows(person)
                batch[insi_person].append(row)
                batch[insi_carte_vitale].extend(cards)
                batch[insi_previous_ins].extend(previous)
                count += 1
                if len(batch[insi_person]) >= batch_size:
                    _write_batch(engine, connection, batch)
            _write_batch(engine, connection, batch)
    except (IntegrityError, psycopg.errors.UniqueViolation) as error:
        raise RegistryConflict(
            "personne déjà présente dans le référentiel (même matricule INS, ancien matricule ou carte "
            f"Vitale) : chargement annulé ({_conflict_detail(error)})"
        ) from error
    return count


def _conflict_detail(error: Exception) -> str:
    # The driver's first line names the key ("Key (ins_value)=(...) already exists" or the column).
    text = str(getattr(error, "orig", error)).strip()
    return " ".join(text.splitlines()[:2])


def _write_batch(engine: Engine, connection: Connection, batch: dict[Table, list[dict[str, Any]]]) -> None:
    for table in REGISTRY_TABLES:  # persons first: the order a future foreign key would need
        rows = batch[table]
        if not rows:
            continue
        if is_sqlite(engine):
            connection.execute(insert(table), rows)
        else:
            _copy(connection, table, rows)
        rows.clear()


def _copy(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL COPY in the connection's transaction (several times faster than executemany)."""
    columns = list(rows[0])
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


# -- qualification of a stored identity -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InsiQualification:
    """What `do_qualify_with_insi` did: the last answer, the queries sent, the record after it."""

    response: InsiResponse
    queries: tuple[TraitsQuery, ...]
    record: IdentityRecord

    @property
    def applied(self) -> bool:
        return self.response.code == FOUND


def insi_queries(traits: StrictTraits) -> list[TraitsQuery]:
    """The searches the INSi procedure sends for these traits, in order: the first birth first name;
    on "02" all the first names; on "02" again the birthplace code too (when known)."""
    base = TraitsQuery(traits.birth_name, traits.birth_given_names[:1], traits.sex, traits.birth_date)
    queries = [base]
    if len(traits.birth_given_names) > 1:
        queries.append(replace(base, given_names=traits.birth_given_names))
    if traits.birthplace_code != UNKNOWN_BIRTHPLACE:
        queries.append(replace(queries[-1], birthplace_code=traits.birthplace_code))
    return queries


def do_qualify_with_insi(
    session: StoreSession, ctx: RequestContext, engine: Engine, patient_id: str, *, on: date | None = None
) -> InsiQualification:
    """Look Patient/`patient_id` up in the registry by its strict traits and, on "00", record the INS
    and INS traits (PROV -> RECUP, VALI -> QUAL) with `do_retrieve_from_insi`.

    `engine` is the registry's database (the store's own in Socle). "01" and "02" change nothing: the
    answer says what the admission desk should check or add.
    """
    record = load_identity(session, patient_id).record
    sent: list[TraitsQuery] = []
    response = InsiResponse(NOT_FOUND, "aucune recherche envoyée")
    for query in insi_queries(record.traits):
        sent.append(query)
        response = search_traits(engine, query)
        if response.code != SEVERAL:
            break
    if response.code == FOUND:
        record = do_retrieve_from_insi(session, ctx, patient_id, response.to_result(), on=on)
    return InsiQualification(response, tuple(sent), record)


# -- synthetic people, for the demo seeding and benchmarks ----------------------------------------

_FAMILY = ["MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "PETIT", "DURAND", "LEROY", "MOREAU"]
_FAMILY += ["LEFEVRE", "GARCIA", "FRANCOIS", "N'DIAYE", "D'ARC", "MARTIN-DURAND", "LE GALL"]
_GIVEN = {
    Sex.FEMALE: ["MARIE", "JEANNE", "CAMILLE", "LEA", "CHLOE", "INES", "ZOE", "ELODIE", "ANNE-SOPHIE"],
    Sex.MALE: ["JEAN", "PIERRE", "LOUIS", "LUCAS", "HUGO", "GABRIEL", "NOE", "JEROME", "JEAN-BAPTISTE"],
}
# Birthplaces the COG table knows, one abroad (Algeria) to exercise 99xxx.
_BIRTHPLACES = ["75115", "69381", "13201", "59350", "35238", "33063", "31555", "2A004", "97411", "99352"]


def synthetic_people(count: int, *, seed: int = 0) -> Iterator[RegistryPerson]:
    """`count` made-up people, the same for the same seed: demo NIRs (OID …4.11) built from the traits,
    one Carte Vitale each, a former NIA for one in fifty. Nobody real."""
    rng = random.Random(seed)
    # A NIR's order number counts births per sex, month and commune: one counter per such key keeps
    # every made-up NIR unique (999 births per key and month is far beyond what a demo draws).
    orders: dict[str, int] = {}
    for index in range(count):
        sex = Sex.FEMALE if rng.random() < 0.5 else Sex.MALE
        given = rng.sample(_GIVEN[sex], rng.choice((1, 1, 2, 3)))
        year, month, day = rng.randint(1930, 2023), rng.randint(1, 12), rng.randint(1, 28)
        place = rng.choice(_BIRTHPLACES)
        traits = StrictTraits(
            rng.choice(_FAMILY), tuple(given), f"{year:04d}-{month:02d}-{day:02d}", sex, place
        )
        digit = "1" if sex is Sex.MALE else "2"
        key = f"{digit}{year % 100:02d}{month:02d}{place}"
        orders[key] = orders.get(key, 0) + 1
        if orders[key] > 999:
            raise ValueError(f"more than 999 made-up births for {key}: use another seed or fewer people")
        body = f"{key[1:]}{orders[key]:03d}"
        ins = InsMatricule(InsKind.NIR_DEMO, with_key(digit + body))
        previous: tuple[InsMatricule, ...] = ()
        if index % 50 == 49:
            previous = (InsMatricule(InsKind.NIA, with_key(("7" if sex is Sex.MALE else "8") + body)),)
        card = f"{seed % 100:02d}{index:010d}"
        yield RegistryPerson(ins, traits, (card,), previous)
