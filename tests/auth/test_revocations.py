"""The revocation lookup: trust a token's "not revoked" for a bounded time, re-probed by one request."""

from __future__ import annotations

from sqlalchemy import Engine

from socle.auth.revocations import RevocationLookup
from tests.auth.conftest import FakeClock

BOUND = 2.0


class CountingLookup(RevocationLookup):
    def __init__(self, engine: Engine, clock: FakeClock) -> None:
        super().__init__(engine, fresh_for=BOUND, clock=clock)
        self.probes = 0
        self.seen_during_probe: list[bool] = []

    def probe(self, first: str, second: str) -> bool:
        self.probes += 1
        if self.probes == 2:  # another request of the same token arrives while this one re-probes
            self.seen_during_probe.append(self.any_revoked(first, second))
        return super().probe(first, second)


def test_a_trusted_token_is_not_probed_before_half_the_bound(engine: Engine) -> None:
    clock = FakeClock()
    lookup = CountingLookup(engine, clock)
    assert not lookup.any_revoked("jti", "grant")
    clock.advance(BOUND / 2 - 0.01)
    assert not lookup.any_revoked("jti", "grant")
    assert lookup.probes == 1


def test_after_half_the_bound_one_request_re_probes_while_the_others_keep_trusting(engine: Engine) -> None:
    clock = FakeClock()
    lookup = CountingLookup(engine, clock)
    assert not lookup.any_revoked("jti", "grant")
    clock.advance(BOUND * 0.6)
    assert not lookup.any_revoked("jti", "grant")  # re-probes, and meanwhile:
    assert lookup.seen_during_probe == [False]  # the other request trusted without a probe
    assert lookup.probes == 2
    clock.advance(BOUND * 0.6)  # 1.2 × bound after the first probe, 0.6 × after the renewal
    assert not lookup.any_revoked("jti", "grant")
    assert lookup.probes == 3  # renewed early once more, never trusted past the bound
