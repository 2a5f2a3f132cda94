"""Projections: derived tables a domain keeps in step with the FHIR resources, in the writer's transaction.

The store stays the only store of FHIR resources. A projection is an index shaped for one domain's
reads (the public directory search: one row per activity with what it filters and sorts on), which
like the search index is derived from the resources, written in the same transaction as them and can
be rebuilt from them at any time.

Every write goes through `StoreSession.create/update/delete` (the FHIR API, transaction bundles, the
directory importers, `socle seed`, `socle load` alike), so that is where projections are fed: the
session collects one `Change` per resource of a projected type it writes, and hands them to the
projection when it flushes, after the buffered resource, version and index rows are in the database.
A type no projection watches costs one dictionary lookup per write.

    class Counts:
        name = "counts"
        resource_types = frozenset({"Patient"})

        def apply(self, connection: Connection, changes: Sequence[Change]) -> None:
            ...  # delete then insert the derived rows of `changes`

        def rebuild(self, connection: Connection) -> int:
            ...  # derive every row again from the current resources; returns the rows written

The projections a store runs are named in `socle.projections` (the application's list), so a store
built anywhere keeps them all in sync: no caller can forget one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection


@dataclass(frozen=True, slots=True)
class Change:
    """One resource written in a session, as it now stands; `body` is None once deleted.

    `created` is True when the resource did not exist before this write (its derived rows cannot
    exist yet either: a projection may skip deleting them)."""

    pk: int
    res_type: str
    res_id: str
    body: Mapping[str, Any] | None
    created: bool = False


class Projection(Protocol):
    """A derived table fed by the writes of `resource_types` (see the module docstring)."""

    @property
    def name(self) -> str: ...

    @property
    def resource_types(self) -> frozenset[str]: ...

    def apply(self, connection: Connection, changes: Sequence[Change]) -> None:
        """Bring the derived rows in line with `changes` (the last change of each resource, in
        write order). Runs in the writer's transaction, after the session's buffered rows are
        written, so SQL on the store's tables sees them."""
        ...

    def rebuild(self, connection: Connection) -> int:
        """Derive every row again from the current resources; the number of rows written."""
        ...


class Projections:
    """The projections of a store, looked up by resource type (an empty tuple for most types)."""

    def __init__(self, projections: Sequence[Projection] = ()) -> None:
        self.all: tuple[Projection, ...] = tuple(projections)
        by_type: dict[str, list[Projection]] = {}
        for projection in self.all:
            for res_type in projection.resource_types:
                by_type.setdefault(res_type, []).append(projection)
        self._by_type = {res_type: tuple(found) for res_type, found in by_type.items()}

    def watching(self, res_type: str) -> tuple[Projection, ...]:
        return self._by_type.get(res_type, ())

    def apply(self, connection: Connection, changes: Mapping[tuple[str, str], Change]) -> None:
        """Hand each projection the changes of its types (one per resource, the last)."""
        for projection in self.all:
            mine = [c for c in changes.values() if c.res_type in projection.resource_types]
            if mine:
                projection.apply(connection, mine)

    def rebuild(self, connection: Connection, name: str | None = None) -> dict[str, int]:
        """Rebuild every projection (or the one called `name`): rows written, by projection."""
        chosen = [p for p in self.all if name is None or p.name == name]
        if not chosen:
            raise KeyError(f"no projection named {name!r}")
        return {projection.name: projection.rebuild(connection) for projection in chosen}
