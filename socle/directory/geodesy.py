"""Projected coordinates of the FINESS extraction to WGS84 latitude / longitude (pure functions).

The FINESS "geolocalisation" lines give metropolitan establishments in Lambert-93 (EPSG:2154,
RGF93) and overseas ones in the UTM zone of their territory (RGAF09, RGFG95, RGR92, RGM04,
RGSPM06). All these frames use the GRS80 ellipsoid and coincide with WGS84 to well under a metre,
so only the projection is undone. Formulas: IGN notes NTG_71 (ALG0002/ALG0004, inverse conic
conformal projection) and the USGS transverse Mercator series (Snyder, "Map Projections: A Working
Manual", p. 63); the tests compare with PROJ's results for known points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# GRS80
A = 6_378_137.0
F = 1 / 298.257222101
E2 = F * (2 - F)
E = math.sqrt(E2)

# Lambert-93 (secant conic conformal, standard parallels 44° and 49°, origin 46.5° N, 3° E).
L93_N = 0.7256077650532670
L93_C = 11_754_255.4261
L93_XS = 700_000.0
L93_YS = 12_655_612.0499
L93_LON0 = math.radians(3.0)


@dataclass(frozen=True, slots=True)
class LatLon:
    latitude: float
    longitude: float


def _latitude_from_isometric(isometric: float, tolerance: float = 1e-12) -> float:
    """IGN ALG0002: the geodetic latitude whose isometric latitude is `isometric` (fixed point)."""
    phi = 2 * math.atan(math.exp(isometric)) - math.pi / 2
    while True:
        sin_phi = E * math.sin(phi)
        following = (
            2 * math.atan(((1 + sin_phi) / (1 - sin_phi)) ** (E / 2) * math.exp(isometric)) - math.pi / 2
        )
        if abs(following - phi) < tolerance:
            return following
        phi = following


def lambert93_to_wgs84(x: float, y: float) -> LatLon:
    """Lambert-93 easting / northing (metres) to latitude / longitude in decimal degrees."""
    dx, dy = x - L93_XS, y - L93_YS
    radius = math.hypot(dx, dy)
    gamma = math.atan2(dx, -dy)
    longitude = L93_LON0 + gamma / L93_N
    isometric = -math.log(radius / L93_C) / L93_N
    return LatLon(math.degrees(_latitude_from_isometric(isometric)), math.degrees(longitude))


UTM_K0 = 0.9996
UTM_FALSE_EASTING = 500_000.0
UTM_FALSE_NORTHING_SOUTH = 10_000_000.0


def utm_to_wgs84(easting: float, northing: float, zone: int, *, south: bool) -> LatLon:
    """UTM easting / northing (metres) in `zone` to latitude / longitude in decimal degrees."""
    ep2 = E2 / (1 - E2)
    x = easting - UTM_FALSE_EASTING
    y = northing - (UTM_FALSE_NORTHING_SOUTH if south else 0.0)
    lon0 = math.radians(zone * 6 - 183)
    m = y / UTM_K0
    mu = m / (A * (1 - E2 / 4 - 3 * E2**2 / 64 - 5 * E2**3 / 256))
    e1 = (1 - math.sqrt(1 - E2)) / (1 + math.sqrt(1 - E2))
    phi1 = (
        mu
        + (3 * e1 / 2 - 27 * e1**3 / 32) * math.sin(2 * mu)
        + (21 * e1**2 / 16 - 55 * e1**4 / 32) * math.sin(4 * mu)
        + (151 * e1**3 / 96) * math.sin(6 * mu)
        + (1097 * e1**4 / 512) * math.sin(8 * mu)
    )
    sin1, cos1, tan1 = math.sin(phi1), math.cos(phi1), math.tan(phi1)
    c1 = ep2 * cos1**2
    t1 = tan1**2
    n1 = A / math.sqrt(1 - E2 * sin1**2)
    r1 = A * (1 - E2) / (1 - E2 * sin1**2) ** 1.5
    d = x / (n1 * UTM_K0)
    latitude = phi1 - (n1 * tan1 / r1) * (
        d**2 / 2
        - (5 + 3 * t1 + 10 * c1 - 4 * c1**2 - 9 * ep2) * d**4 / 24
        + (61 + 90 * t1 + 298 * c1 + 45 * t1**2 - 252 * ep2 - 3 * c1**2) * d**6 / 720
    )
    longitude = (
        lon0
        + (
            d
            - (1 + 2 * t1 + c1) * d**3 / 6
            + (5 - 2 * c1 + 28 * t1 - 3 * c1**2 + 8 * ep2 + 24 * t1**2) * d**5 / 120
        )
        / cos1
    )
    return LatLon(math.degrees(latitude), math.degrees(longitude))


# EPSG code -> (UTM zone, southern hemisphere) for the overseas frames FINESS uses; the WGS 84 UTM
# codes (326zz north, 327zz south) are read from the code itself.
UTM_ZONES: dict[int, tuple[int, bool]] = {
    5490: (20, False),  # RGAF09 / UTM 20N: Guadeloupe, Martinique, Saint-Martin, Saint-Barthélemy
    4559: (20, False),  # RRAF 1991 / UTM 20N (older Antilles frame)
    2972: (22, False),  # RGFG95 / UTM 22N: Guyane
    2975: (40, True),  # RGR92 / UTM 40S: La Réunion
    4471: (38, True),  # RGM04 / UTM 38S: Mayotte
    4467: (21, False),  # RGSPM06 / UTM 21N: Saint-Pierre-et-Miquelon
}
LAMBERT_93_EPSG = 2154


def to_wgs84(x: float, y: float, epsg: int) -> LatLon | None:
    """Coordinates in the projected frame `epsg` to WGS84; None for a frame this module does not know."""
    if epsg == LAMBERT_93_EPSG:
        return lambert93_to_wgs84(x, y)
    zone = UTM_ZONES.get(epsg)
    if zone is None and (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
        zone = (epsg % 100, epsg >= 32700)  # WGS 84 / UTM zone N or S
    if zone is None:
        return None
    return utm_to_wgs84(x, y, zone[0], south=zone[1])
