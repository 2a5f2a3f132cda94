"""Lambert-93 and overseas UTM coordinates to WGS84, against PROJ's results for known points."""

from __future__ import annotations

import pytest

from socle.directory.geodesy import lambert93_to_wgs84, to_wgs84, utm_to_wgs84

# (x, y) -> (latitude, longitude) as computed by PROJ 9 (pyproj, EPSG:2154 -> EPSG:4326).
LAMBERT_93 = [
    ((882408.3, 6543019.6), (45.962401654326186, 5.355651287573366)),  # Ain, a FINESS pharmacy
    ((880459.31, 6552608.95), (46.049236027871046, 5.334156061297988)),  # Pont-d'Ain (ANS sample)
    ((652469.02, 6862035.26), (48.8566000050153, 2.3521999630139847)),  # Paris, Hôtel de Ville
    ((1239050.0, 6120000.0), (41.98085490373555, 9.498028113729234)),  # Corsica, east coast
    ((160000.0, 6830000.0), (48.345547736182816, -4.298500955663208)),  # Finistère
]
# (epsg, x, y) -> (latitude, longitude), same tool.
UTM = [
    (5490, (657242.9, 1795384.4), (16.234004328312864, -61.528737060656645)),  # Guadeloupe
    (2972, (353000.0, 543000.0), (4.911253229978187, -52.32577010006948)),  # Guyane
    (2975, (338000.0, 7690000.0), (-20.883144690785514, 55.44259382705125)),  # La Réunion
    (4471, (515000.0, 8586000.0), (-12.790752322996656, 45.1382086100424)),  # Mayotte
    (4467, (561000.0, 5209000.0), (47.03170399010093, -56.19716158648414)),  # Saint-Pierre
]
# 1e-7 degree is about a centimetre.
TOLERANCE = 1e-7


@pytest.mark.parametrize(("xy", "expected"), LAMBERT_93)
def test_lambert_93_converts_to_the_wgs84_position_proj_gives(
    xy: tuple[float, float], expected: tuple[float, float]
) -> None:
    position = lambert93_to_wgs84(*xy)
    assert position.latitude == pytest.approx(expected[0], abs=TOLERANCE)
    assert position.longitude == pytest.approx(expected[1], abs=TOLERANCE)


@pytest.mark.parametrize(("epsg", "xy", "expected"), UTM)
def test_overseas_utm_coordinates_convert_to_the_wgs84_position_proj_gives(
    epsg: int, xy: tuple[float, float], expected: tuple[float, float]
) -> None:
    position = to_wgs84(*xy, epsg)
    assert position is not None
    assert position.latitude == pytest.approx(expected[0], abs=TOLERANCE)
    assert position.longitude == pytest.approx(expected[1], abs=TOLERANCE)


def test_wgs84_utm_codes_are_read_from_the_code_itself() -> None:
    assert to_wgs84(657242.9, 1795384.4, 32620) == utm_to_wgs84(657242.9, 1795384.4, 20, south=False)


def test_an_unknown_projection_gives_no_position() -> None:
    assert to_wgs84(1.0, 2.0, 9999) is None
