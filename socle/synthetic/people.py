"""A synthetic population of France: households, identities (strict traits + NIR), addresses.

Everything is drawn from one seeded generator, so the same seed gives the same people. Nobody is
real: names are drawn independently from frequency tables, NIRs are built from the drawn traits with
made-up order numbers and carry the INS *demo* OID (…4.11), as `socle.identity.insi` does.

What a NIR says agrees with the traits, as the INSEE numbers them:
- sex digit 1/2, two-digit birth year, birth month (a pseudo-month 20, 30–42 or 50–99 for a civil
  status whose month is unknown, with a birth date of the year only);
- birthplace: the commune code (the arrondissement for Paris, Lyon, Marseille; "20" + commune for
  Corsica before 1976; a 3-digit department + 2-digit commune overseas), 99 + the INSEE country code
  for a birth abroad, 91–94 / 95 / 96 for Algeria / Morocco / Tunisia before independence;
- a made-up order number unique per sex, year, month and place, and the key.

Households: people living alone, couples with or without children, single parents. Children take
their father's name, sometimes their mother's, or both (a double name, since 2005); a child under 18
always has a parent in the same household. Married people may use their spouse's name (nom
d'usage). A few identities are deliberately hard for identity vigilance (see `TRICKY_KINDS`).
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import cache

from socle.identity.communes import commune_table
from socle.identity.nir import with_key
from socle.identity.record import InsKind, InsMatricule, Status
from socle.identity.traits import Sex, StrictTraits
from socle.synthetic.geography import Address, draw_address, draw_place
from socle.synthetic.names import display_case, draw_family_name, draw_first_names
from socle.synthetic.tables import Country, countries

# France's age pyramid (share of people per 5-year band, 0-4 ... 95-99), INSEE order of magnitude.
AGE_BANDS = (
    5.2,
    5.8,
    6.2,
    6.2,
    5.7,
    5.6,
    6.0,
    6.3,
    6.3,
    6.2,
    6.6,
    6.5,
    6.3,
    5.8,
    5.5,
    4.3,
    2.9,
    2.0,
    0.9,
    0.3,
)
BORN_ABROAD_ADULTS = 0.12
BORN_ABROAD_CHILDREN = 0.03
BORN_IN_HOME_DEPARTMENT = 0.55
UNKNOWN_MONTH_ABROAD = 0.03  # born abroad with an incomplete civil status (pseudo-month)
FORMER_NIA_ABROAD = 0.1  # born abroad, first known under a NIA (numéro identifiant d'attente)
CORSICA_SPLIT = 1976
ILE_DE_FRANCE_SPLIT = 1968  # 91-95 numbered Algeria and Morocco before: births there kept 75 / 78
ILE_DE_FRANCE_1968 = ("91", "92", "93", "94", "95")
MAYOTTE_DEPARTMENT = 2011  # births in Mayotte were numbered 985 before it became a department
DOUBLE_NAME_SINCE = 2005
CARTE_VITALE_AGE = 16  # before, a child is on a parent's card

TRICKY_KINDS = {
    "homonyme": "même nom de naissance, premier prénom, sexe et date de naissance ; autre lieu de naissance",
    "jumeaux": "même nom, même date et lieu de naissance, prénoms différents",
    "doublon-potentiel": "un second dossier de la même personne, aux traits saisis autrement",
    "mois-inconnu": "état civil incomplet : mois de naissance inconnu (pseudo-mois du NIR)",
    "nia-remplace": "un NIA (numéro d'attente) remplacé par le NIR",
    "ne-avant-independance": "né en Algérie, au Maroc ou en Tunisie avant l'indépendance (NIR 91 à 96)",
    "corse-avant-1976": "né en Corse avant 1976 (département 20 dans le NIR)",
    "ile-de-france-avant-1968": "né avant 1968 dans l'actuelle petite ou grande couronne (NIR en 75 ou 78)",
    "nom-d-usage": "nom d'usage différent du nom de naissance",
}

_STATUSES = ((Status.QUAL, 0.55), (Status.RECUP, 0.15), (Status.VALI, 0.10), (Status.PROV, 0.20))
_MOBILE_PREFIX = {"971": "0690", "972": "0696", "973": "0694", "974": "0692", "976": "0639"}


@dataclass(frozen=True, slots=True)
class Person:
    """One synthetic person: identity, contact, household and how the store records them."""

    index: int
    household: int
    traits: StrictTraits  # normalized (RNIV spelling)
    birth: date  # the full birth date (the traits may hold the year only)
    birth_name: str  # as written, with accents: "LEFÈVRE"
    given_names: tuple[str, ...]  # as written: ("ANNE-SOPHIE", "MARIE")
    used_name: str | None  # nom d'usage, display case
    used_given_name: str | None  # prénom utilisé
    ins: InsMatricule
    previous_ins: tuple[InsMatricule, ...]
    cartes_vitale: tuple[str, ...]
    address: Address
    phone: str
    email: str | None
    parents: tuple[int, ...]  # indexes of the parents living with them
    status: Status  # the RNIV status of their record in the store
    validation_document: str | None
    tricky: tuple[str, ...] = ()

    @property
    def sex(self) -> Sex:
        return self.traits.sex

    @property
    def female(self) -> bool:
        return self.traits.sex is Sex.FEMALE

    def age(self, on: date) -> int:
        return age_on(self.birth, on)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A second record of `person` in the store, with traits entered differently (not in INSi)."""

    person: int
    traits: StrictTraits
    variant: str


@dataclass
class Population:
    people: list[Person]
    duplicates: list[Duplicate]
    households: list[tuple[int, ...]]
    tricky: dict[str, list[tuple[int, ...]]] = field(default_factory=dict)

    def household_of(self, index: int) -> tuple[int, ...]:
        return self.households[self.people[index].household]


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


@dataclass
class _Draft:
    """A person being drawn: traits are assembled once the household is complete."""

    female: bool
    birth: date
    birth_name: str
    given_names: tuple[str, ...] = ()
    used_name: str | None = None
    used_given_name: str | None = None
    parents: list[int] = field(default_factory=list)
    twin_of: int | None = None  # index within the household draft list
    birthplace: str = ""  # COG code or 99xxx
    nir_place: str = ""  # the 5 characters of the NIR's birthplace
    month_code: str = ""
    partial_date: bool = False
    tricky: list[str] = field(default_factory=list)


class PopulationBuilder:
    """Draws households until `count` people; `build()` returns the population."""

    def __init__(self, count: int, *, seed: int, as_of: date) -> None:
        self.count = count
        self.rng = random.Random(f"socle-population:{seed}")
        self.as_of = as_of
        self.people: list[Person] = []
        self.households: list[tuple[int, ...]] = []
        self.duplicates: list[Duplicate] = []
        self.tricky: dict[str, list[tuple[int, ...]]] = {kind: [] for kind in TRICKY_KINDS}
        self._orders: dict[str, set[int]] = {}
        self._cards: set[str] = set()
        self._countries = countries()
        self._country_weights = [c.weight for c in self._countries]

    # -- drawing ages and dates ----------------------------------------------------------------

    def _age(self, low: int, high: int) -> int:
        bands = [(b * 5, w) for b, w in enumerate(AGE_BANDS) if b * 5 + 4 >= low and b * 5 <= high]
        start = self.rng.choices([b for b, _ in bands], [w for _, w in bands])[0]
        return self.rng.randint(max(start, low), min(start + 4, high))

    def _birth(self, age: int) -> date:
        latest = (
            self.as_of.replace(year=self.as_of.year - age)
            if not _feb29(self.as_of)
            else date(self.as_of.year - age, 2, 28)
        )
        return latest - timedelta(days=self.rng.randrange(365))

    # -- households ----------------------------------------------------------------------------

    def build(self) -> Population:
        while len(self.people) < self.count:
            self._household()
        self._add_homonyms()
        self._add_duplicates()
        tricky = {kind: found for kind, found in self.tricky.items() if found}
        return Population(self.people, self.duplicates, self.households, tricky)

    def _household(self) -> None:
        roll = self.rng.random()
        drafts: list[_Draft] = []
        # Older people mostly live alone or as a couple: the age ranges per household type keep the
        # population's pyramid close to France's.
        if roll < 0.36:
            old = self.rng.random() < 0.55
            drafts.append(
                self._adult(self._age(60, 99) if old else self._age(18, 59), self.rng.random() < 0.54)
            )
        elif roll < 0.64:
            old = self.rng.random() < 0.7
            drafts.extend(self._couple(self._age(55, 95) if old else self._age(22, 54)))
        elif roll < 0.89:
            drafts.extend(self._couple(self._age(25, 58)))
            self._children(drafts, mother=0 if drafts[0].female else 1, others=[0, 1])
        else:
            parent = self._adult(self._age(22, 58), self.rng.random() < 0.85)
            drafts.append(parent)
            self._children(drafts, mother=0 if parent.female else None, others=[0])
        room = self.count - len(self.people)
        # Never cut a child off from their parents: adults come first, so truncating keeps them.
        self._commit(drafts[: max(room, 1)])

    def _adult(self, age: int, female: bool) -> _Draft:
        birth = self._birth(age)
        return _Draft(
            female, birth, draw_family_name(self.rng), draw_first_names(self.rng, birth.year, female)
        )

    def _couple(self, age: int) -> list[_Draft]:
        first = self._adult(age, self.rng.random() < 0.5)
        same_sex = self.rng.random() < 0.03
        partner_female = first.female if same_sex else not first.female
        # Men are on average two years older than their partner.
        gap = round(self.rng.gauss(0.0 if same_sex else 2.0, 3.5))
        partner_age = age - gap if partner_female and not first.female else age + gap
        partner = self._adult(min(max(partner_age, 18), 99), partner_female)
        couple = [first, partner]
        if not same_sex and self.rng.random() < 0.6:  # married: she may use his name
            wife, husband = (first, partner) if first.female else (partner, first)
            if self.rng.random() < (0.75 if age_on(wife.birth, self.as_of) >= 40 else 0.5):
                wife.used_name = _display(husband.birth_name)
        return couple

    def _children(self, drafts: list[_Draft], *, mother: int | None, others: list[int]) -> None:
        anchor = drafts[mother] if mother is not None else drafts[0]
        parent_age = age_on(anchor.birth, self.as_of)
        oldest = min(24, parent_age - 18)
        if oldest < 0:
            return
        wanted = self.rng.choices((1, 2, 3, 4), (0.33, 0.42, 0.18, 0.07))[0]
        father = next((i for i in others if not drafts[i].female), None)
        children: list[_Draft] = []
        for _ in range(wanted):
            # The mother's (or single parent's) age at birth is about 30: children older than 24
            # have left home, children not born yet are not drawn.
            age = parent_age - round(self.rng.gauss(30.0, 5.0))
            if not 0 <= age <= oldest:
                continue
            female = self.rng.random() < 0.49
            birth = self._birth(age)
            twin_of = None
            if children and self.rng.random() < 0.03:
                twin_of = len(drafts) + len(children) - 1
                birth = children[-1].birth
            child = _Draft(female, birth, "", draw_first_names(self.rng, birth.year, female))
            child.parents = list(others)
            child.twin_of = twin_of
            children.append(child)
        if not children:
            return
        # The name given to the first child of a couple is the name of all their children.
        name = self._child_name(drafts, mother, father, min(c.birth.year for c in children))
        for child in children:
            child.birth_name = name
        drafts.extend(children)

    def _child_name(self, drafts: list[_Draft], mother: int | None, father: int | None, year: int) -> str:
        mother_name = drafts[mother].birth_name if mother is not None else None
        if father is None:
            # A single mother: her name, or the name of a father who lives elsewhere.
            return mother_name if mother_name and self.rng.random() < 0.5 else draw_family_name(self.rng)
        father_name = drafts[father].birth_name
        roll = self.rng.random()
        if mother_name and year >= DOUBLE_NAME_SINCE and roll < 0.08:
            return f"{father_name} {mother_name}" if father_name != mother_name else father_name
        if mother_name and roll < 0.12:
            return mother_name
        return father_name

    # -- identities ----------------------------------------------------------------------------

    def _commit(self, drafts: list[_Draft]) -> None:
        household = len(self.households)
        base = len(self.people)
        home = draw_place(self.rng)
        address = draw_address(self.rng, home)
        for position, draft in enumerate(drafts):
            if draft.twin_of is not None:
                twin = drafts[draft.twin_of]
                draft.birthplace, draft.nir_place, draft.month_code = (
                    twin.birthplace,
                    twin.nir_place,
                    twin.month_code,
                )
            else:
                self._birthplace(draft, home.department)
            if self.rng.random() < 0.04 and len(draft.given_names) > 1:
                draft.used_given_name = _display(draft.given_names[1])
            parents = tuple(base + p for p in draft.parents if p < len(drafts))
            self.people.append(self._person(base + position, household, draft, address, parents))
        members = tuple(range(base, base + len(drafts)))
        self.households.append(members)
        for position, draft in enumerate(drafts):
            if draft.twin_of is not None and draft.twin_of < len(drafts):
                self.tricky["jumeaux"].append((base + draft.twin_of, base + position))

    def _birthplace(self, draft: _Draft, home_department: str) -> None:
        year = draft.birth.year
        age = age_on(draft.birth, self.as_of)
        abroad_share = BORN_ABROAD_ADULTS if age >= 18 else BORN_ABROAD_CHILDREN
        draft.month_code = f"{draft.birth.month:02d}"
        if self.rng.random() < abroad_share:
            country = self.rng.choices(self._countries, self._country_weights)[0]
            draft.birthplace = country.code
            draft.nir_place = _nir_country(country, year, self.rng)
            if draft.nir_place[:2] != "99":
                draft.tricky.append("ne-avant-independance")
            if self.rng.random() < UNKNOWN_MONTH_ABROAD:
                draft.partial_date = True
                draft.month_code = f"{self.rng.choice((20, *range(30, 43), *range(50, 100))):02d}"
                draft.tricky.append("mois-inconnu")
            return
        while True:
            department = home_department if self.rng.random() < BORN_IN_HOME_DEPARTMENT else None
            born = draw_place(self.rng, department)
            if born.department == "976" and year < MAYOTTE_DEPARTMENT:
                continue
            former = _before_1968(born.code) if born.department in ILE_DE_FRANCE_1968 else None
            if year < ILE_DE_FRANCE_SPLIT and born.department in ILE_DE_FRANCE_1968 and former is None:
                continue
            break
        draft.birthplace = born.code
        draft.nir_place = born.code
        if year < ILE_DE_FRANCE_SPLIT and former is not None:
            # Seine and Seine-et-Oise were split in 1968: an older NIR keeps the code of then.
            draft.nir_place = former
            draft.tricky.append("ile-de-france-avant-1968")
        if born.department in ("2A", "2B") and year < CORSICA_SPLIT:
            draft.nir_place = "20" + born.code[2:]
            draft.tricky.append("corse-avant-1976")

    def _order(self, key: str) -> int:
        taken = self._orders.setdefault(key, set())
        if len(taken) >= 999:
            raise ValueError(f"plus de 999 naissances synthétiques pour {key} : réduire la population")
        while True:
            order = self.rng.randint(1, 999)
            if order not in taken:
                taken.add(order)
                return order

    def _card(self) -> str:
        while True:
            number = str(self.rng.randrange(10**11, 10**12))
            if number not in self._cards:
                self._cards.add(number)
                return number

    def _person(
        self, index: int, household: int, draft: _Draft, address: Address, parents: tuple[int, ...]
    ) -> Person:
        sex_digit = "2" if draft.female else "1"
        body = f"{draft.birth.year % 100:02d}{draft.month_code}{draft.nir_place}"
        order = self._order(sex_digit + body)
        ins = InsMatricule(InsKind.NIR_DEMO, with_key(f"{sex_digit}{body}{order:03d}"))
        previous: tuple[InsMatricule, ...] = ()
        tricky = list(draft.tricky)
        if draft.birthplace.startswith("99") and self.rng.random() < FORMER_NIA_ABROAD:
            nia_digit = "8" if draft.female else "7"
            previous = (InsMatricule(InsKind.NIA, with_key(f"{nia_digit}{body}{order:03d}")),)
            tricky.append("nia-remplace")
        if draft.used_name:
            tricky.append("nom-d-usage")
        birth_date = str(draft.birth.year) if draft.partial_date else draft.birth.isoformat()
        traits = StrictTraits(
            draft.birth_name,
            draft.given_names,
            birth_date,
            Sex.FEMALE if draft.female else Sex.MALE,
            draft.birthplace,
        )
        age = age_on(draft.birth, self.as_of)
        cards: tuple[str, ...] = ()
        if age >= CARTE_VITALE_AGE:
            cards = (self._card(),)
        else:  # on the parents' cards
            cards = tuple(c for p in parents for c in self.people[p].cartes_vitale)
        status = self.rng.choices([s for s, _ in _STATUSES], [w for _, w in _STATUSES])[0]
        document = None
        if status in (Status.QUAL, Status.VALI):
            if age < 18:
                document = "LE"
            elif draft.birthplace.startswith("99"):
                document = self.rng.choice(("PA", "CS"))
            else:
                document = self.rng.choice(("CN", "CN", "PA"))
        mobile = _MOBILE_PREFIX.get(address.department, self.rng.choice(("06", "07")))
        digits = f"{self.rng.randrange(10 ** (10 - len(mobile))):0{10 - len(mobile)}d}"
        phone = " ".join((mobile + digits)[i : i + 2] for i in range(0, 10, 2))
        email = None
        if age >= 18 and self.rng.random() < 0.7:
            email = (
                f"{_ascii(draft.given_names[0])}.{_ascii(draft.used_name or draft.birth_name)}@example.org"
            )
        for kind in tricky:
            self.tricky[kind].append((index,))
        return Person(
            index=index,
            household=household,
            traits=traits,
            birth=draft.birth,
            birth_name=draft.birth_name,
            given_names=draft.given_names,
            used_name=draft.used_name,
            used_given_name=draft.used_given_name,
            ins=ins,
            previous_ins=previous,
            cartes_vitale=cards,
            address=address,
            phone=phone,
            email=email,
            parents=parents,
            status=status,
            validation_document=document,
            tricky=tuple(tricky),
        )

    # -- deliberately tricky identities --------------------------------------------------------

    def _add_homonyms(self) -> None:
        """Somebody else with the same birth name, first first name, sex and birth date."""
        adults = [p for p in self.people if p.age(self.as_of) >= 18 and len(p.traits.birth_date) == 10]
        for original in self.rng.sample(adults, min(len(adults), _share(self.count, 0.005))):
            index = len(self.people)
            home = draw_place(self.rng)
            draft = _Draft(original.female, original.birth, original.birth_name)
            others = draw_first_names(self.rng, original.birth.year, original.female)[1:]
            draft.given_names = (
                original.given_names[0],
                *[n for n in others if n != original.given_names[0]],
            )
            while True:
                self._birthplace(draft, home.department)
                if (
                    draft.birthplace != original.traits.birthplace_code
                    and draft.month_code == original.ins.value[3:5]
                ):
                    break
                draft.tricky, draft.partial_date = [], False
            person = self._person(index, len(self.households), draft, draw_address(self.rng, home), ())
            self.people.append(replace(person, tricky=(*person.tricky, "homonyme")))
            self.households.append((index,))
            self.tricky["homonyme"].append((original.index, index))

    def _add_duplicates(self) -> None:
        candidates = [p for p in self.people if len(p.traits.birth_date) == 10]
        for person in self.rng.sample(candidates, min(len(candidates), _share(self.count, 0.01))):
            variant, traits = _entered_differently(person, self.rng)
            self.duplicates.append(Duplicate(person.index, traits, variant))
            self.tricky["doublon-potentiel"].append((person.index,))


@cache
def _former_codes() -> dict[str, list[str]]:
    """Current commune of 91-95 -> its codes in Seine (75) or Seine-et-Oise (78) before 1968."""
    found: dict[str, list[str]] = {}
    for old, current in commune_table().former.items():
        if old[:2] in ("75", "78") and current[:2] in ILE_DE_FRANCE_1968:
            found.setdefault(current, []).append(old)
    return found


def _before_1968(code: str) -> str | None:
    """The commune's code before 1968, when the table knows it (same number first)."""
    olds = sorted(_former_codes().get(code, []), key=lambda old: (old[2:] != code[2:], old))
    return olds[0] if olds else None


def _share(count: int, rate: float) -> int:
    """How many tricky cases for `count` people: at least one once there are 50 people."""
    return max(1 if count >= 50 else 0, round(count * rate))


def _feb29(day: date) -> bool:
    return day.month == 2 and day.day == 29


def _display(name: str) -> str:
    return display_case(name)


def _ascii(name: str) -> str:
    text = unicodedata.normalize("NFKD", name.lower())
    return "".join(c for c in text if c.isascii() and (c.isalnum() or c == "-")).strip("-")


def _nir_country(country: Country, year: int, rng: random.Random) -> str:
    """The NIR's 5 birthplace characters for a birth in `country` in `year`."""
    if country.independence is not None and year < country.independence and country.former_departments:
        department = rng.choice(country.former_departments)
        return f"{department}{rng.randint(1, 999):03d}"
    return country.code


def _entered_differently(person: Person, rng: random.Random) -> tuple[str, StrictTraits]:
    """The person's traits as a hurried admission desk might have typed them."""
    traits = person.traits
    options: list[tuple[str, StrictTraits]] = []
    if person.used_name:
        options.append(
            ("nom d'usage saisi comme nom de naissance", replace(traits, birth_name=person.used_name))
        )
    day, month = traits.birth_date[8:10], traits.birth_date[5:7]
    if day != month and int(day) <= 12:
        swapped = f"{traits.birth_date[:4]}-{day}-{month}"
        options.append(("jour et mois de naissance inversés", replace(traits, birth_date=swapped)))
    if len(traits.birth_given_names) > 1:
        reordered = (traits.birth_given_names[1], traits.birth_given_names[0], *traits.birth_given_names[2:])
        options.append(("prénoms dans un autre ordre", replace(traits, birth_given_names=reordered)))
    compound = [n for n in traits.birth_given_names if "-" in n]
    if compound:
        split = tuple(part for n in traits.birth_given_names for part in n.split("-"))
        options.append(("prénom composé saisi sans trait d'union", replace(traits, birth_given_names=split)))
    if "'" in traits.birth_name or " " in traits.birth_name:
        squeezed = traits.birth_name.replace("'", "").replace(" ", "")
        options.append(("nom saisi sans apostrophe ni espace", replace(traits, birth_name=squeezed)))
    name = traits.birth_name
    if len(name) > 4:
        at = rng.randrange(1, len(name) - 2)
        if name[at].isalpha() and name[at + 1].isalpha() and name[at] != name[at + 1]:
            typo = name[:at] + name[at + 1] + name[at] + name[at + 2 :]
            options.append(("deux lettres inversées dans le nom", replace(traits, birth_name=typo)))
    if not options:
        options.append(("lieu de naissance inconnu", replace(traits, birthplace_code="99999")))
    return rng.choice(options)


def generate_population(count: int, *, seed: int, as_of: date) -> Population:
    """`count` people (and a few more: homonyms of some of them), the same for the same seed."""
    if count < 0:
        raise ValueError("count must be >= 0")
    return PopulationBuilder(count, seed=seed, as_of=as_of).build()
