"""What other systems receive of a stored resource: the owning domain may hold part of it back.

Resources are served from their stored bytes, but a few domain rules say some stored content must
not leave Socle through the API: the INS matricule of an identity that is not qualified (RNIV,
EXI SI 08) is kept in the store and left out of every exchange. Every resource the FHIR layer
returns (read, vread, write responses, search matches and includes, history, `$everything`) goes
through `for_exchange`; `exchange_rules()` is the one place that says which domain filters which
type. Writes are the domains' business too: see `socle.fhir.write_rules` (a Patient written back
without the INS it was served without keeps its stored INS).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache

ExchangeRule = Callable[[bytes], bytes]
"""Stored bytes of a resource -> the bytes other systems may receive."""


@cache
def exchange_rules() -> Mapping[str, ExchangeRule]:
    # Imported on first use: the domains build on the FHIR modules, not the reverse.
    from socle.identity.fhir import stored_patient_for_exchange

    return {"Patient": stored_patient_for_exchange}


def for_exchange(res_type: str, data: bytes) -> bytes:
    """`data` (a stored `res_type`) as the API may return it."""
    rule = exchange_rules().get(res_type)
    return data if rule is None else rule(data)
