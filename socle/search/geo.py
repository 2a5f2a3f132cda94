"""Distances on the Earth for search: the R4 `near` parameter and nearest-first queries.

`Location.position` is what the R4 special parameter `near` reads. FHIR gives special parameters no
indexing rule, so Socle defines one here and plans the parameter itself:

- indexing (`position_rows`, called by `socle.search.extract`): a position becomes two number rows,
  `near:lat` and `near:long`, holding the exact WGS84 latitude and longitude in decimal degrees;
- planning (`near_condition`, called by the search planner for `near`): `near=lat|long|distance|unit`
  keeps the resources whose position lies within `distance` of the point along a great circle. The
  SQL first narrows the latitude and longitude to the bounding box of that circle (range scans of the
  `(res_type, param, value)` index of `idx_number`), then tests the exact distance with the
  haversine formula (trigonometric functions: PostgreSQL, SQLite ≥ 3.35 built with its math
  functions, as Python 3.11's is on Debian). `near` filters; it does not sort (R4 defines no order).
- nearest first (`within`): the same filter with the haversine term as a column, for a caller that
  orders by distance; `in_circle` gives the same conditions on any table with latitude and longitude
  columns (the directory's search table); `distance_km` turns that term into kilometres.

Units follow R4: kilometres when omitted, else a UCUM code (`km`, `m`, `[mi_i]`, `[nmi_i]`); without
a distance the server chooses (`DEFAULT_DISTANCE_KM`). Positions on a sphere of the IUGG mean radius:
the error against the WGS84 ellipsoid is below 0.5 %, far within what "near" means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, not_, or_, select

from socle.errors import InvalidRequest
from socle.search.rows import NumberRow
from socle.store import schema

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius
DEFAULT_DISTANCE_KM = 20.0
UNITS_KM = {"km": 1.0, "m": 0.001, "[mi_i]": 1.609344, "mi": 1.609344, "[nmi_i]": 1.852}
LATITUDE_SUFFIX = ":lat"
LONGITUDE_SUFFIX = ":long"
NEAR_EXAMPLE = "near=48.8566|2.3522|10|km"

_RADIANS = math.pi / 180.0


@dataclass(frozen=True, slots=True)
class NearPoint:
    """A point and a distance: what one value of `near` asks for."""

    latitude: float
    longitude: float
    distance_km: float


@dataclass(frozen=True, slots=True)
class Box:
    """Bounding box of a circle; `west > east` when it crosses the antimeridian."""

    south: float
    north: float
    west: float
    east: float


# -- parsing --------------------------------------------------------------------------------------


def _number(text: str, what: str, raw: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidRequest(
            f"paramètre near invalide : {what} « {text} » n'est pas un nombre ({raw!r} ; attendu "
            f"latitude|longitude|distance|unité, par exemple {NEAR_EXAMPLE})"
        ) from None
    if not math.isfinite(value):
        raise InvalidRequest(f"paramètre near invalide : {what} « {text} » n'est pas un nombre fini")
    return value


def check_point(latitude: float, longitude: float, distance_km: float) -> NearPoint:
    """A point and distance, or InvalidRequest with a French message."""
    if not -90.0 <= latitude <= 90.0:
        raise InvalidRequest(f"latitude hors limites : {latitude} (entre -90 et 90 degrés)")
    if not -180.0 <= longitude <= 180.0:
        raise InvalidRequest(f"longitude hors limites : {longitude} (entre -180 et 180 degrés)")
    if distance_km < 0:
        raise InvalidRequest(
            f"distance négative : {distance_km:g} km (une distance positive ou nulle est attendue)"
        )
    return NearPoint(latitude, longitude, distance_km)


def parse_near(raw: str) -> NearPoint:
    """One value of `near`: `latitude|longitude[|distance[|unit]]` (R4), e.g. 48.8566|2.3522|10|km."""
    parts = raw.split("|")
    if len(parts) < 2 or len(parts) > 4 or not parts[0].strip() or not parts[1].strip():
        raise InvalidRequest(
            f"paramètre near invalide : {raw!r} (attendu latitude|longitude|distance|unité, "
            f"par exemple {NEAR_EXAMPLE})"
        )
    latitude = _number(parts[0].strip(), "latitude", raw)
    longitude = _number(parts[1].strip(), "longitude", raw)
    distance = DEFAULT_DISTANCE_KM
    if len(parts) >= 3 and parts[2].strip():
        unit = parts[3].strip() if len(parts) == 4 and parts[3].strip() else "km"
        factor = UNITS_KM.get(unit)
        if factor is None:
            known = ", ".join(UNITS_KM)
            raise InvalidRequest(
                f"paramètre near invalide : unité de distance inconnue « {unit} » (connues : {known})"
            )
        distance = _number(parts[2].strip(), "distance", raw) * factor
    return check_point(latitude, longitude, distance)


# -- pure geometry --------------------------------------------------------------------------------


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points, in km."""
    return distance_km(_haversine(lat1 * _RADIANS, lon1 * _RADIANS, lat2, lon2))


def _haversine(phi1: float, lambda1: float, lat2: float, lon2: float) -> float:
    phi2 = lat2 * _RADIANS
    return (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin((lon2 * _RADIANS - lambda1) / 2) ** 2
    )


def distance_km(term: float) -> float:
    """The distance a haversine term (as `within` returns it) stands for."""
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(max(term, 0.0), 1.0)))


def term_for(distance: float) -> float:
    """The haversine term of a distance in km (the largest term within that distance)."""
    angle = min(distance / EARTH_RADIUS_KM, math.pi)
    return math.sin(angle / 2) ** 2


def bounding_box(point: NearPoint) -> Box | None:
    """The latitude/longitude box around the circle; None when the circle covers every longitude."""
    angle = point.distance_km / EARTH_RADIUS_KM
    if angle >= math.pi:
        return None
    dlat = math.degrees(angle)
    south, north = point.latitude - dlat, point.latitude + dlat
    if south <= -90.0 or north >= 90.0:
        return Box(max(south, -90.0), min(north, 90.0), -180.0, 180.0)  # a pole is inside
    # The circle's widest longitude span (tangent meridians), exact on the sphere.
    dlon = math.degrees(math.asin(min(1.0, math.sin(angle) / math.cos(point.latitude * _RADIANS))))
    west, east = point.longitude - dlon, point.longitude + dlon
    if west < -180.0:
        west += 360.0
    if east > 180.0:
        east -= 360.0
    return Box(south, north, west, east)


def position_rows(code: str, position: Any) -> list[NumberRow]:
    """The index rows of one `Location.position`: exact latitude and longitude (none when invalid)."""
    if type(position) is not dict:
        return []
    latitude: Any = position.get("latitude")
    longitude: Any = position.get("longitude")
    if type(latitude) not in (int, float) or type(longitude) not in (int, float):
        return []  # absent, a string, a boolean: not a position
    lat, lon = float(latitude), float(longitude)
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return []
    return [
        NumberRow(code + LATITUDE_SUFFIX, lat, lat, lat),
        NumberRow(code + LONGITUDE_SUFFIX, lon, lon, lon),
    ]


# -- SQL ------------------------------------------------------------------------------------------


def haversine_term(latitude: Any, longitude: Any, point: NearPoint) -> ColumnElement[float]:
    """SQL: the haversine term between the point and the columns (degrees); orders nearest first."""
    phi0 = point.latitude * _RADIANS
    half_dlat = (latitude * _RADIANS - phi0) / 2
    half_dlon = (longitude * _RADIANS - point.longitude * _RADIANS) / 2
    sin_dlat, sin_dlon = func.sin(half_dlat), func.sin(half_dlon)
    return sin_dlat * sin_dlat + literal(math.cos(phi0)) * func.cos(latitude * _RADIANS) * sin_dlon * sin_dlon


def within(
    point: NearPoint, res_type: str = "Location", code: str = "near", *, beyond_km: float | None = None
) -> Select[Any]:
    """(resource_pk, term) of the resources of `res_type` whose position lies within the point's
    distance (and farther than `beyond_km`, for rings); `term` orders them nearest first and
    `distance_km(term)` is the distance."""
    return _within(point, res_type, code, beyond_km=beyond_km, with_term=True)


def _within(
    point: NearPoint, res_type: str, code: str, *, beyond_km: float | None, with_term: bool
) -> Select[Any]:
    lat, lon = schema.idx_number.alias("near_lat"), schema.idx_number.alias("near_long")
    term = haversine_term(lat.c.value, lon.c.value, point).label("term")
    columns: list[Any] = [lat.c.resource_pk.label("resource_pk")]
    if with_term:
        columns.append(term)
    query = (
        select(*columns)
        .join(
            lon,
            and_(
                lon.c.resource_pk == lat.c.resource_pk,
                lon.c.res_type == res_type,
                lon.c.param == code + LONGITUDE_SUFFIX,
            ),
        )
        .where(lat.c.res_type == res_type, lat.c.param == code + LATITUDE_SUFFIX)
    )
    box = bounding_box(point)
    if box is not None:
        query = query.where(lat.c.value >= box.south, lat.c.value <= box.north)
        # The latitude range drives (an index range scan); each row then finds its longitude by
        # resource key. "+ 0" keeps SQLite from also range-scanning the longitudes for every
        # latitude row (it would, given an index usable for both).
        longitude = lon.c.value + 0.0
        if box.west <= box.east:
            query = query.where(longitude >= box.west, longitude <= box.east)
        else:  # across the antimeridian
            query = query.where(or_(longitude >= box.west, longitude <= box.east))
    if point.distance_km < math.pi * EARTH_RADIUS_KM:
        query = query.where(term <= term_for(point.distance_km))
    if beyond_km is not None and beyond_km > 0:
        query = query.where(term > term_for(beyond_km))
    return query


def in_circle(
    latitude: Any, longitude: Any, point: NearPoint, *, beyond_km: float | None = None
) -> tuple[list[ColumnElement[bool]], ColumnElement[float]]:
    """SQL conditions keeping the rows whose (latitude, longitude) columns lie within the point's
    distance (and farther than `beyond_km`), and the haversine term that orders them nearest first.

    The bounding box comes first, for an index on latitude (then longitude) to narrow the rows; the
    exact great-circle test then keeps those within the circle, not its corners."""
    term = haversine_term(latitude, longitude, point)
    conditions: list[ColumnElement[bool]] = []
    box = bounding_box(point)
    if box is not None:
        conditions += [latitude >= box.south, latitude <= box.north]
        if box.west <= box.east:
            conditions += [longitude >= box.west, longitude <= box.east]
        else:  # across the antimeridian
            conditions.append(or_(longitude >= box.west, longitude <= box.east))
    else:
        conditions.append(latitude.is_not(None))
    if point.distance_km < math.pi * EARTH_RADIUS_KM:
        conditions.append(term <= term_for(point.distance_km))
    if beyond_km is not None and beyond_km > 0:
        conditions.append(term > term_for(beyond_km))
    return conditions, term


def near_condition(res_type: str, code: str, modifier: str, raw: str) -> ColumnElement[bool]:
    """The planner's condition on `resource.pk` for `near` (comma-separated points are ORed)."""
    pk = schema.resource.c.pk
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise InvalidRequest(f"':missing' attend true ou false, pas {raw!r}")
        number = schema.idx_number
        rows = select(number.c.resource_pk).where(
            number.c.res_type == res_type, number.c.param == code + LATITUDE_SUFFIX
        )
        return not_(pk.in_(rows)) if raw == "true" else pk.in_(rows)
    if modifier:
        raise InvalidRequest(f"modificateur ':{modifier}' non pris en charge sur le paramètre {code}")
    values = [v for v in raw.split(",") if v.strip()]
    if not values:
        raise InvalidRequest(
            f"paramètre {code} vide (attendu latitude|longitude|distance|unité, par exemple {NEAR_EXAMPLE})"
        )
    queries = [_within(parse_near(v), res_type, code, beyond_km=None, with_term=False) for v in values]
    if len(queries) == 1:
        return pk.in_(queries[0])
    return pk.in_(queries[0].union(*queries[1:]).subquery().select())
