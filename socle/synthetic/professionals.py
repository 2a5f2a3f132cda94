"""A synthetic health directory: professionals, the places they work at, spread over the territory.

Professions (TRE_G15) and specialties (TRE_R38) follow `data/directory.json`; professionals work in
cabinets (one to a few colleagues of the same profession, an RPPS structure), pharmacies and
hospitals (FINESS establishments, numbers with a valid key), placed in communes drawn by population.
Every place has an Organization and a Location with its position; every professional a Practitioner
(RPPS with a valid key) and a PractitionerRole with their availability flags and, for most of them, an
MSSanté mailbox. Resources are built with `socle.directory.fhir`, so they have the shapes an RPPS /
FINESS import gives (and the same ids: `rpps-<RPPS>`, `finess-<FINESS>`, `rpps-st-<structure>`).

`Directory.nearest` finds the professionals of a kind closest to a point (a grid of cells), so a
person's médecin traitant is one of the GPs near their home.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from socle.directory import fhir
from socle.directory.extractions import FinessEstablishment, RppsSite
from socle.directory.geodesy import LatLon
from socle.directory.identifiers import RPPS_RANG_SYSTEM, complete_finess, complete_rpps
from socle.directory.nomenclatures import title_prefix
from socle.directory.rules import activity_key, finess_resource_id, practitioner_role_id, rpps_structure_id
from socle.search.geo import haversine_km
from socle.synthetic.geography import Address, draw_address, draw_place
from socle.synthetic.names import display_case, draw_family_name, draw_first_name
from socle.synthetic.tables import ProfessionKind, directory_shape

Resource = dict[str, Any]

GRID_DEGREES = 0.25
MAX_RINGS = 12  # 3 degrees around the point: farther, measuring every candidate is as quick
BRUTE_FORCE_UP_TO = 60
PHARMACY_CATEGORY = ("620", "Pharmacie d'Officine")
HOSPITAL_CATEGORY = ("355", "Centre Hospitalier (C.H.)")
LIBERAL = ("L", "Libéral, indépendant, artisan, commerçant")
PHARMACY_NAMES = ("DU CENTRE", "DE LA GARE", "DES ÉCOLES", "DU MARCHÉ", "DE LA MAIRIE", "CENTRALE", "DU PARC")
CABINET_NAMES = {
    "gp": "CABINET MÉDICAL",
    "specialist": "CABINET MÉDICAL",
    "dentist": "CABINET DENTAIRE",
    "nurse": "CABINET INFIRMIER",
    "physio": "CABINET DE KINÉSITHÉRAPIE",
    "midwife": "CABINET DE SAGE-FEMME",
    "speech_therapist": "CABINET D'ORTHOPHONIE",
    "podiatrist": "CABINET DE PÉDICURIE-PODOLOGIE",
}
SALARIED = ("S", "Salarié")


@dataclass(frozen=True, slots=True)
class Site:
    """Where professionals work: one Organization and one Location (same id)."""

    id: str
    kind: str  # cabinet | pharmacy | hospital
    name: str
    address: Address
    phone: str
    finess: str | None = None
    structure: str | None = None  # RPPS structure id of a cabinet


@dataclass(frozen=True, slots=True)
class Professional:
    index: int
    rpps: str
    family: str  # as the RPPS writes it: capitals with accents
    given: str  # display case
    female: bool
    profession: ProfessionKind
    specialty: str | None  # TRE_R38 code
    site: Site
    mssante: str | None
    accepting_new_patients: bool | None
    teleconsultation: bool

    @property
    def practitioner_id(self) -> str:
        return f"rpps-{self.rpps}"

    @property
    def role_id(self) -> str:
        mode = SALARIED[0] if self.site.kind == "hospital" else LIBERAL[0]
        return practitioner_role_id(self.rpps, activity_key(self.site.id, mode, self.profession.code, "", ""))

    @property
    def kind(self) -> str:
        """gp, a TRE_R38 specialty code, or the profession key (nurse, pharmacist...)."""
        if self.profession.key == "gp":
            return "gp"
        return self.specialty or self.profession.key


@dataclass
class Directory:
    professionals: list[Professional]
    sites: list[Site]
    _grid: dict[str, dict[tuple[int, int], list[int]]] = field(default_factory=dict)
    _sizes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for professional in self.professionals:
            cell = _cell(professional.site.address.latitude, professional.site.address.longitude)
            self._grid.setdefault(professional.kind, {}).setdefault(cell, []).append(professional.index)

    def kinds(self) -> set[str]:
        return set(self._grid)

    def nearest(self, kind: str, latitude: float, longitude: float, count: int = 3) -> list[Professional]:
        """Up to `count` professionals of `kind` nearest to the point (all of them if fewer)."""
        grid = self._grid.get(kind)
        if not grid:
            return []
        members = self._sizes.get(kind)
        if members is None:
            members = self._sizes[kind] = sum(len(cell) for cell in grid.values())
        found = None
        if members > BRUTE_FORCE_UP_TO:
            found = self._ring_search(grid, latitude, longitude, count)
        if found is None:  # few of them, or far away from all: measure them all
            found = [i for cell in grid.values() for i in cell]

        def distance(i: int) -> float:
            address = self.professionals[i].site.address
            return haversine_km(latitude, longitude, address.latitude, address.longitude)

        return [self.professionals[i] for i in sorted(found, key=distance)[:count]]

    def _ring_search(
        self, grid: dict[tuple[int, int], list[int]], latitude: float, longitude: float, count: int
    ) -> list[int] | None:
        """Candidates from the cells around the point, ring after ring, until `count` are found, plus
        two rings more (a closer one may sit in the corner of the next ring); None past `MAX_RINGS`."""
        row, column = _cell(latitude, longitude)
        found: list[int] = list(grid.get((row, column), ()))
        radius = 0
        extra = 0
        while extra < 2:
            radius += 1
            if radius > MAX_RINGS:
                return None
            for c in range(column - radius, column + radius + 1):
                found.extend(grid.get((row - radius, c), ()))
                found.extend(grid.get((row + radius, c), ()))
            for r in range(row - radius + 1, row + radius):
                found.extend(grid.get((r, column - radius), ()))
                found.extend(grid.get((r, column + radius), ()))
            if len(found) >= count:
                extra += 1
        return found

    def resources(self) -> Iterator[Resource]:
        """Organizations and Locations of the sites, then each professional's Practitioner and role."""
        for site in self.sites:
            yield from site_resources(site)
        for professional in self.professionals:
            yield practitioner_resource(professional)
            yield role_resource(professional)


def _cell(latitude: float, longitude: float) -> tuple[int, int]:
    return math.floor(latitude / GRID_DEGREES), math.floor(longitude / GRID_DEGREES)


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c if c.isalnum() else "-" for c in decomposed if c.isascii()).strip("-")


class DirectoryBuilder:
    def __init__(self, count: int, *, seed: int, as_of: date) -> None:
        self.count = count
        self.rng = random.Random(f"socle-directory:{seed}")
        self.as_of = as_of
        self.shape = directory_shape()
        self.professionals: list[Professional] = []
        self.sites: list[Site] = []
        self._mailboxes: set[str] = set()
        self._hospitals: dict[str, Site] = {}
        self._finess_serial = 0

    def build(self) -> Directory:
        shares = [p.share for p in self.shape.professions]
        total = sum(shares)
        for profession, share in zip(self.shape.professions, shares, strict=True):
            wanted = round(self.count * share / total)
            made = 0
            while made < wanted:
                size = min(self.rng.randint(*profession.per_site), wanted - made)
                hospital = profession.key == "specialist" and self.rng.random() < self.shape.hospital_share
                site = self._hospital() if hospital else self._site(profession)
                for _ in range(size):
                    self._professional(profession, site)
                made += size
        return Directory(self.professionals, self.sites)

    # -- places --------------------------------------------------------------------------------

    def _phone(self, department: str) -> str:
        prefix = {"971": "0590", "972": "0596", "973": "0594", "974": "0262", "976": "0269"}.get(department)
        if prefix is None:
            region = "1" if department in ("75", "77", "78", "91", "92", "93", "94", "95") else "2345"
            prefix = "0" + self.rng.choice(region)
        digits = f"{self.rng.randrange(10 ** (10 - len(prefix))):0{10 - len(prefix)}d}"
        return " ".join((prefix + digits)[i : i + 2] for i in range(0, 10, 2))

    def _finess(self, department: str) -> str:
        self._finess_serial += 1
        head = department[:2]
        return complete_finess(f"{head}{9:1d}{self._finess_serial:05d}")

    def _site(self, profession: ProfessionKind) -> Site:
        where = draw_place(self.rng)
        address = draw_address(self.rng, where)
        if profession.site == "pharmacy":
            finess = self._finess(where.department)
            name = f"PHARMACIE {self.rng.choice(PHARMACY_NAMES)}"
            site = Site(
                finess_resource_id(finess),
                "pharmacy",
                f"{name} {where.name.upper()}",
                address,
                self._phone(where.department),
                finess=finess,
            )
        else:
            structure = f"S{len(self.sites) + 1:08d}"
            label = CABINET_NAMES[profession.key]
            site = Site(
                rpps_structure_id(structure),
                "cabinet",
                f"{label} {address.street_name.upper()}",
                address,
                self._phone(where.department),
                structure=structure,
            )
        self.sites.append(site)
        return site

    def _hospital(self) -> Site:
        department = draw_place(self.rng).department
        found = self._hospitals.get(department)
        if found is not None:
            return found
        where = draw_place(self.rng, department)
        finess = self._finess(department)
        site = Site(
            finess_resource_id(finess),
            "hospital",
            f"CENTRE HOSPITALIER DE {where.name.upper()}",
            draw_address(self.rng, where),
            self._phone(department),
            finess=finess,
        )
        self._hospitals[department] = site
        self.sites.append(site)
        return site

    # -- people --------------------------------------------------------------------------------

    def _professional(self, profession: ProfessionKind, site: Site) -> None:
        index = len(self.professionals)
        female = self.rng.random() < (0.55 if profession.key in ("gp", "specialist", "dentist") else 0.8)
        birth_year = self.as_of.year - self.rng.randint(28, 67)
        family = draw_family_name(self.rng)
        given = display_case(draw_first_name(self.rng, birth_year, female))
        specialty = None
        if profession.specialties:
            codes = [c for c, _ in profession.specialties]
            weights = [w for _, w in profession.specialties]
            if profession.key == "dentist":  # most dentists have no specialty
                if self.rng.random() < sum(weights):
                    specialty = self.rng.choices(codes, weights)[0]
            else:
                specialty = self.rng.choices(codes, weights)[0]
        mailbox = None
        if self.rng.random() < profession.mssante_share:
            base = f"{_ascii(given)}.{_ascii(family)}"
            mailbox = f"{base}@{profession.mssante_domain}"
            serial = 1
            while mailbox in self._mailboxes:
                serial += 1
                mailbox = f"{base}{serial}@{profession.mssante_domain}"
            self._mailboxes.add(mailbox)
        accepting = None if profession.accepting is None else self.rng.random() < profession.accepting
        self.professionals.append(
            Professional(
                index=index,
                rpps=complete_rpps(f"19{index + 1:08d}"),
                family=family,
                given=given,
                female=female,
                profession=profession,
                specialty=specialty,
                site=site,
                mssante=mailbox,
                accepting_new_patients=accepting,
                teleconsultation=self.rng.random() < profession.teleconsultation,
            )
        )


def generate_directory(count: int, *, seed: int, as_of: date) -> Directory:
    """About `count` professionals (rounded per profession), the same for the same seed."""
    return DirectoryBuilder(count, seed=seed, as_of=as_of).build()


# -- FHIR -----------------------------------------------------------------------------------------


def _street_parts(address: Address) -> dict[str, str]:
    return {
        "street_number": str(address.number),
        "street_type": address.street_type,
        "street_name": address.street_name,
        "postcode": address.postcode,
    }


def site_resources(site: Site) -> list[Resource]:
    """The Organization and Location of a site, as the directory imports write them."""
    address = site.address
    position = LatLon(address.latitude, address.longitude)
    if site.finess is not None:
        category = PHARMACY_CATEGORY if site.kind == "pharmacy" else HOSPITAL_CATEGORY
        department = site.finess[:2]
        establishment = FinessEstablishment(
            line_number=0,
            finess=site.finess,
            finess_legal=None,
            short_name=site.name[:38],
            long_name=site.name,
            name_complement="",
            distribution_complement="",
            street_number=str(address.number),
            street_type=address.street_type,
            street_name=address.street_name,
            street_complement="",
            locality="",
            commune=address.commune_code[-3:],
            departement=department if department.isdigit() or department in ("2A", "2B") else "",
            departement_label="",
            routing_line=f"{address.postcode} {address.city.upper()}",
            phone=site.phone.replace(" ", ""),
            fax="",
            category_code=category[0],
            category_label=category[1],
            category_group_code="",
            category_group_label="",
            siret="",
            opening_date="",
            authorisation_date="",
            update_date="",
        )
        organization = fhir.organization_from_finess(establishment)
        finess_location = fhir.location_from_finess(establishment, position)
        # The FINESS import derives the INSEE code from the department and commune columns; overseas
        # departments are written with letters there: set the address from the synthetic place.
        finess_location["address"] = _address(address)
        organization["address"] = [_address(address)]
        return [organization, finess_location]
    rpps_site = RppsSite(
        structure_id=site.structure or "",
        siret="",
        finess_site=None,
        finess_legal=None,
        name=site.name,
        brand="",
        recipient="",
        geo_complement="",
        street_repetition="",
        distribution="",
        cedex="",
        commune_code=address.commune_code,
        commune_label=address.city,
        country_code="",
        phone=site.phone.replace(" ", ""),
        phone2="",
        fax="",
        email="",
        sector_code="SA07",
        sector_label="Cabinet individuel",
        **_street_parts(address),
    )
    organization = fhir.organization_from_rpps_site(site.id, rpps_site)
    location: Resource = {
        "resourceType": "Location",
        "id": site.id,
        "meta": {"source": fhir.RPPS_SOURCE},
        "identifier": [
            {
                "use": "official",
                "type": {"coding": [{"system": fhir.IDENTIFIER_TYPE_SYSTEM, "code": "RPPSRG"}]},
                "system": RPPS_RANG_SYSTEM,
                "value": site.structure or "",
            }
        ],
        "status": "active",
        "name": site.name,
        "mode": "instance",
        "telecom": [{"system": "phone", "value": site.phone}],
        "address": _address(address),
        "position": {"longitude": address.longitude, "latitude": address.latitude},
        "managingOrganization": {"reference": f"Organization/{site.id}"},
    }
    return [organization, location]


def _address(address: Address) -> dict[str, Any]:
    built = fhir.address(
        fhir.AddressParts(
            house_number=str(address.number),
            street_type=address.street_type,
            street_name=address.street_name,
            postal_code=address.postcode,
            city=address.city,
            insee_code=address.commune_code,
        )
    )
    assert built is not None
    return built


def practitioner_resource(professional: Professional) -> Resource:
    title = title_prefix(professional.profession.title) if professional.profession.title else None
    resource = fhir.practitioner(
        professional.rpps,
        family=professional.family,
        given=professional.given,
        title=title,
        professions=[fhir.Profession(professional.profession.code, "C")],
        specialties=[fhir.Specialty(professional.specialty)] if professional.specialty else [],
    )
    resource["gender"] = "female" if professional.female else "male"
    if professional.mssante:
        resource["telecom"] = [fhir.mssante_telecom(professional.mssante, "PER")]
    return resource


def role_resource(professional: Professional) -> Resource:
    mode = SALARIED if professional.site.kind == "hospital" else LIBERAL
    activity = fhir.Activity(
        role_id=professional.role_id,
        rpps=professional.rpps,
        profession_code=professional.profession.code,
        organization_id=professional.site.id,
        location_id=professional.site.id,
        mode_code=mode[0],
        mode_label=mode[1],
        specialties=(fhir.Specialty(professional.specialty),) if professional.specialty else (),
    )
    availability = fhir.availability_extensions(
        accepting_new_patients=professional.accepting_new_patients,
        teleconsultation=professional.teleconsultation,
    )
    role = fhir.practitioner_role(activity, availability=availability)
    telecom: list[dict[str, Any]] = [{"system": "phone", "value": professional.site.phone, "use": "work"}]
    if professional.mssante:
        telecom.append(fhir.mssante_telecom(professional.mssante, "PER"))
    role["telecom"] = telecom
    return role
