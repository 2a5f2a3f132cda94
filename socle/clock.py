"""The one clock: timezone-aware UTC datetimes and the FHIR instant format used in `meta.lastUpdated`."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_micros(moment: datetime) -> int:
    """Epoch microseconds: how the store keeps instants (exact, sortable, backend-neutral)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    seconds, rest = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest)


def fhir_instant(micros: int) -> str:
    """`2024-05-17T10:00:00.123456Z`: a valid FHIR instant with the store's full precision."""
    seconds, rest = divmod(micros, 1_000_000)
    return f"{_second_prefix(seconds)}{rest:06d}Z"


@lru_cache(maxsize=256)
def _second_prefix(seconds: int) -> str:
    # Every write stamps two instants (meta.lastUpdated, Last-Modified), mostly within the same
    # second as the previous write: strftime ran twice per resource of a bulk load for the same text.
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
