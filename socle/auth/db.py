"""Short transactions on the auth tables, and the one clock the auth package reads.

Every auth operation is its own short transaction: a code is consumed, a refresh token rotated or
a login failure counted atomically, and committed even when the surrounding request then fails
(a replayed code stays burnt). Readers say so, so that on SQLite they run beside the writer (WAL)
instead of queueing for the write lock that `BEGIN IMMEDIATE` takes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from socle.clock import utc_now


def epoch_now() -> int:
    """Now, in whole epoch seconds (UTC): the unit of every auth timestamp and JWT time claim."""
    return int(utc_now().timestamp())


def digest(value: str) -> str:
    """SHA-256 hex of a random credential (code, refresh token, session id): what the tables keep.

    These values carry 256 bits of randomness, so a plain hash is enough to make a stolen table
    useless; passwords, which do not, go through Argon2id instead.
    """
    return hashlib.sha256(value.encode()).hexdigest()


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        connection = connection.execution_options(socle_readonly=True)
        with connection.begin():
            yield connection


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as connection:
        yield connection
