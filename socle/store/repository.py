"""Versioned FHIR resources: create, read, vread, update, delete and history, with their search index.

A `StoreSession` is one database transaction: everything done through it commits together or not at
all (a transaction bundle is one session). Writes validate the resource, stamp `id`/`meta`, store the
canonical JSON bytes as a new version and replace the resource's index rows. Version rows and index
rows are buffered and written in bulk (executemany / COPY) when the session flushes, which happens
before any query in the session and at commit. The flush then feeds the store's projections
(`socle.store.projections`: derived tables such as the directory's search table) with the resources
of their types written since the last flush.

    with store.session() as s:
        stored = s.create({"resourceType": "Patient", "name": [{"family": "Martin"}]})
"""

from __future__ import annotations

import functools
import math
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Protocol

import orjson
import psycopg
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Float,
    LargeBinary,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    false,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from socle.clock import fhir_instant, to_micros, utc_now
from socle.errors import Conflict, Gone, InvalidResource, Issue, NotFound, PreconditionFailed
from socle.fhir.definitions import compartment_parameters, resource_types
from socle.search.rows import (
    CompositeRow,
    DateRow,
    IndexRow,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)
from socle.store import schema
from socle.store.engine import is_sqlite
from socle.store.projections import Change, Projection, Projections

Validator = Callable[[Any], list[Issue]]
Indexer = Callable[[dict[str, Any]], list[IndexRow]]

ID_PATTERN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.")


@dataclass(frozen=True, slots=True)
class StoredResource:
    """One version of a resource as the store holds it; `data` is None for a deletion."""

    res_type: str
    res_id: str
    version: int
    last_updated: int
    deleted: bool
    data: bytes | None
    method: str = "GET"
    pk: int = 0

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def last_modified(self) -> str:
        return fhir_instant(self.last_updated)

    def json(self) -> dict[str, Any]:
        if self.data is None:
            raise Gone(f"{self.res_type}/{self.res_id} was deleted")
        loaded: dict[str, Any] = orjson.loads(self.data)
        return loaded


def canonical_bytes(resource: dict[str, Any]) -> bytes:
    """The stored form: resourceType, id and meta first, then the client's elements in their order."""
    head = {k: resource[k] for k in ("resourceType", "id", "meta") if k in resource}
    rest = {k: v for k, v in resource.items() if k not in head}
    return orjson.dumps({**head, **rest})


def check_resource_id(res_id: str) -> None:
    if not (1 <= len(res_id) <= 64) or not set(res_id) <= ID_PATTERN_CHARS:
        raise InvalidResource(
            f"Invalid resource id '{res_id}': 1 to 64 characters among A-Z a-z 0-9 - .", expression="id"
        )


def check_resource_type(res_type: str) -> None:
    if res_type not in resource_types():
        raise NotFound(f"Unknown resource type '{res_type}'")


@dataclass
class _PendingWrites:
    resources: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    index: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)
    # Rows of tables outside the FHIR store's own (the audit chain's links): written with the rest.
    other: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)
    unindex: list[int] = field(default_factory=list)
    # False while every new resource has an id the server drew (a uuid): no clash to report.
    may_clash: bool = False
    # For the projections: the last change of each resource of a projected type, by (type, id).
    changes: dict[tuple[str, str], Change] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(
            self.resources or self.versions or self.index or self.other or self.unindex or self.changes
        )

    def row_count(self) -> int:
        tables = (*self.index.values(), *self.other.values())
        return len(self.resources) + len(self.versions) + sum(len(rows) for rows in tables)


# One writer per row class: the dict of a table row, keyed by its columns (`_index` runs this for
# every index row of every write, ≈ 13 per resource of a bulk load: a dict lookup on the exact
# class instead of a chain of isinstance tests, and the dict built in one go).
def _token_row(row: TokenRow, pk: int, res_type: str) -> dict[str, Any]:
    return {
        "resource_pk": pk,
        "res_type": res_type,
        "param": row.param,
        "system": row.system,
        "code": row.code,
        "text": row.text,
        "value": row.value,
    }


def _string_row(row: StringRow, pk: int, res_type: str) -> dict[str, Any]:
    return {
        "resource_pk": pk,
        "res_type": res_type,
        "param": row.param,
        "normalized": row.normalized,
        "exact": row.exact,
    }


def _reference_row(row: ReferenceRow, pk: int, res_type: str) -> dict[str, Any]:
    return {
        "resource_pk": pk,
        "res_type": res_type,
        "param": row.param,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "url": row.url,
        "version": row.version,
    }


def _date_row(row: DateRow, pk: int, res_type: str) -> dict[str, Any]:
    return {"resource_pk": pk, "res_type": res_type, "param": row.param, "low": row.low, "high": row.high}


def _quantity_row(row: QuantityRow, pk: int, res_type: str) -> dict[str, Any]:
    return {
        "resource_pk": pk,
        "res_type": res_type,
        "param": row.param,
        "value": row.value,
        "low": row.low,
        "high": row.high,
        "system": row.system,
        "code": row.code,
        "unit": row.unit,
    }


def _number_row(row: NumberRow, pk: int, res_type: str) -> dict[str, Any]:
    return {
        "resource_pk": pk,
        "res_type": res_type,
        "param": row.param,
        "value": row.value,
        "low": row.low,
        "high": row.high,
    }


def _uri_row(row: UriRow, pk: int, res_type: str) -> dict[str, Any]:
    return {"resource_pk": pk, "res_type": res_type, "param": row.param, "uri": row.uri}


def _composite_row(row: CompositeRow, pk: int, res_type: str) -> dict[str, Any]:
    return {"resource_pk": pk, "res_type": res_type, "param": row.param, **composite_values(row)}


_ROW_WRITERS: dict[type, tuple[Table, Callable[[Any, int, str], dict[str, Any]]]] = {
    TokenRow: (schema.idx_token, _token_row),
    StringRow: (schema.idx_string, _string_row),
    ReferenceRow: (schema.idx_reference, _reference_row),
    DateRow: (schema.idx_date, _date_row),
    QuantityRow: (schema.idx_quantity, _quantity_row),
    NumberRow: (schema.idx_number, _number_row),
    UriRow: (schema.idx_uri, _uri_row),
    CompositeRow: (schema.idx_composite, _composite_row),
}


def component_key(part: Any) -> tuple[str | None, str | None, float | None, float | None]:
    """How one composite component is stored: a (system, code) key and/or a numeric range."""
    if isinstance(part, TokenRow):
        return part.system, part.code, None, None
    if isinstance(part, QuantityRow):
        return part.system, part.code, part.low, part.high
    if isinstance(part, DateRow | NumberRow):
        return None, None, float(part.low), float(part.high)
    if isinstance(part, StringRow):
        return None, part.normalized, None, None
    if isinstance(part, ReferenceRow):
        key = f"{part.target_type}/{part.target_id}" if part.target_id else part.url
        return None, key, None, None
    if isinstance(part, UriRow):
        return None, part.uri, None, None
    raise TypeError(f"unexpected composite component {part!r}")


def composite_values(row: CompositeRow) -> dict[str, Any]:
    """The c1_*/c2_* columns of a composite row: its first two components (None when only one)."""
    components = row.components
    s1, c1, l1, h1 = component_key(components[0])
    s2, c2, l2, h2 = component_key(components[1]) if len(components) > 1 else (None, None, None, None)
    return {
        "c1_system": s1,
        "c1_code": c1,
        "c1_low": l1,
        "c1_high": h1,
        "c2_system": s2,
        "c2_code": c2,
        "c2_low": l2,
        "c2_high": h2,
    }


def compartment_patients(
    res_type: str, res_id: str, patient_links: Iterable[tuple[str, str | None]]
) -> frozenset[str]:
    """The Patients whose compartment a resource lies in, from its (parameter, Patient id) references."""
    links = compartment_parameters("Patient").get(res_type, ())
    patients = {res_id} if res_type == "Patient" else set()
    patients.update(target for param, target in patient_links if target and param in links)
    return frozenset(patients)


class StoreSession:
    """One transaction on the store. Obtain it from `FhirStore.session()`."""

    def __init__(self, store: FhirStore, connection: Connection) -> None:
        self.store = store
        self.connection = connection
        self._pending = _PendingWrites()
        self._next_pk: int | None = None
        # Every resource this session read or wrote: the audit trail derives the patients touched.
        self.touched: set[int] = set()
        # The patients whose compartment each resource written or read by id here lies in, known
        # from its index rows: tracing a large transaction, or a read, needs no query for them.
        self.known_patients: dict[int, frozenset[str]] = {}
        # The audit chain's head once this transaction holds the chain lock (see socle.audit.trail).
        self.audit_head: str | None = None
        # PostgreSQL: events recorded but not linked yet. The next flush writes the rows first,
        # then takes the chain lock and links them, so the lock does not cover the rows' insert.
        self.unlinked: ChainAppend | None = None

    # -- reads -------------------------------------------------------------------------------

    def read(self, res_type: str, res_id: str) -> StoredResource:
        """The current version; NotFound if it never existed, Gone if deleted."""
        current = self.current(res_type, res_id)
        if current is None:
            raise NotFound(f"{res_type}/{res_id} is not known")
        self.touched.add(current.pk)
        if current.deleted:
            raise Gone(f"{res_type}/{res_id} was deleted")
        return current

    def read_any(self, res_type: str, res_id: str) -> StoredResource:
        """The current version even if deleted (its key, for access checks); NotFound if never existed.

        The same query brings the resource's index references to patients, so the patients whose
        compartment it lies in are known (`known_patients`) and its trace needs no query of its own.
        """
        self.flush()
        rows = self.connection.execute(_READ_ANY, {"res_type": res_type, "res_id": res_id}).all()
        if not rows:
            raise NotFound(f"{res_type}/{res_id} is not known")
        row = rows[0]
        self.known_patients[row.pk] = compartment_patients(
            res_type, res_id, ((link.param, link.target_id) for link in rows)
        )
        return StoredResource(
            res_type, res_id, row.version, row.last_updated, row.deleted, row.data, row.method, row.pk
        )

    def _remember_indexed_patients(self, pk: int, res_type: str, res_id: str) -> None:
        """The patients whose compartment the stored version lies in, before an update re-indexes it."""
        links: list[tuple[str, str | None]] = []
        if compartment_parameters("Patient").get(res_type):
            ref = schema.idx_reference
            rows = self.connection.execute(
                select(ref.c.param, ref.c.target_id).where(
                    ref.c.resource_pk == pk, ref.c.target_type == "Patient"
                )
            )
            links = [(row.param, row.target_id) for row in rows]
        self.known_patients[pk] = compartment_patients(res_type, res_id, links)

    def current(self, res_type: str, res_id: str, *, for_update: bool = False) -> StoredResource | None:
        self.flush()
        r = schema.resource
        if for_update and not is_sqlite(self.store.engine):
            # Lock the resource row on its own: after waiting for a concurrent writer, PostgreSQL
            # re-checks a locked row against the statement's join, which would still pair it with
            # the old version row and drop it. The read below then sees the committed version.
            self.connection.execute(
                select(r.c.pk).where(r.c.res_type == res_type, r.c.res_id == res_id).with_for_update()
            )
        row = self.connection.execute(_CURRENT, {"res_type": res_type, "res_id": res_id}).first()
        if row is None:
            return None
        return StoredResource(
            res_type, res_id, row.version, row.last_updated, row.deleted, row.data, row.method, row.pk
        )

    def vread(self, res_type: str, res_id: str, version: int) -> StoredResource:
        self.flush()
        v = schema.resource_version
        row = self.connection.execute(
            select(v).where(v.c.res_type == res_type, v.c.res_id == res_id, v.c.version == version)
        ).first()
        if row is None:
            if self.current(res_type, res_id) is None:
                raise NotFound(f"{res_type}/{res_id} is not known")
            raise NotFound(f"{res_type}/{res_id} has no version {version}")
        stored = StoredResource(
            res_type,
            res_id,
            row.version,
            row.last_updated,
            row.deleted,
            row.data,
            row.method,
            row.resource_pk,
        )
        self.touched.add(stored.pk)
        if stored.deleted:
            raise Gone(f"{res_type}/{res_id} version {version} is a deletion")
        return stored

    def fetch_current(self, pks: list[int]) -> dict[int, StoredResource]:
        """Current versions of resources by internal key (search results, includes)."""
        if not pks:
            return {}
        self.flush()
        r, v = schema.resource, schema.resource_version
        found: dict[int, StoredResource] = {}
        for start in range(0, len(pks), 500):
            chunk = pks[start : start + 500]
            rows = self.connection.execute(
                select(r.c.pk, r.c.res_type, r.c.res_id, r.c.version, r.c.last_updated, r.c.deleted, v.c.data)
                .join(v, and_(v.c.resource_pk == r.c.pk, v.c.version == r.c.version))
                .where(r.c.pk.in_(chunk))
            )
            for row in rows:
                found[row.pk] = StoredResource(
                    row.res_type,
                    row.res_id,
                    row.version,
                    row.last_updated,
                    row.deleted,
                    row.data,
                    "GET",
                    row.pk,
                )
        self.touched.update(found)
        return found

    def fetch_current_with(self, pks: list[int], ids: Mapping[str, Iterable[str]]) -> list[StoredResource]:
        """The current, not deleted, versions of the resources with these keys and of those with
        these ids (type -> ids), in one query: a page of results and the resources it shows."""
        self.flush()
        r, v = schema.resource, schema.resource_version
        wanted: list[ColumnElement[bool]] = [r.c.pk.in_(pks)] if pks else []
        wanted += [and_(r.c.res_type == t, r.c.res_id.in_(sorted(set(i)))) for t, i in ids.items() if i]
        if not wanted:
            return []
        rows = self.connection.execute(
            select(r.c.pk, r.c.res_type, r.c.res_id, r.c.version, r.c.last_updated, v.c.data)
            .join(v, and_(v.c.resource_pk == r.c.pk, v.c.version == r.c.version))
            .where(or_(*wanted), r.c.deleted == false())
        )
        found = [
            StoredResource(
                row.res_type, row.res_id, row.version, row.last_updated, False, row.data, "GET", row.pk
            )
            for row in rows
        ]
        self.touched.update(stored.pk for stored in found)
        return found

    # -- writes ------------------------------------------------------------------------------

    def create(
        self, resource: dict[str, Any], *, res_id: str | None = None, drawn: bool = False
    ) -> StoredResource:
        """Store a new resource under a server-assigned id (or `res_id` for create-on-update).

        `drawn` says that `res_id` is a UUID the server drew itself (a transaction's POST entries,
        whose ids must be known before the entries run): like an id drawn here, it cannot clash.
        """
        res_type = self._check(resource)
        new_id = res_id or str(uuid.uuid4())
        now = to_micros(utc_now())
        body = self._stamp(resource, new_id, 1, now)
        row = {"res_type": res_type, "res_id": new_id, "version": 1, "last_updated": now, "deleted": False}
        # The row is written with the session's other buffered rows; a clash on (type, id) is then
        # reported by flush() as a Conflict. Only a client's id can clash (create-on-update racing
        # another): a drawn UUID cannot, and a bundle of those goes in one pipelined round trip.
        pk = self._allocate_pk()
        self._pending.resources.append({"pk": pk, **row})
        self._pending.may_clash = self._pending.may_clash or (res_id is not None and not drawn)
        data = self._canonical(body)
        self._add_version(pk, res_type, new_id, 1, now, "POST", data)
        self._index(pk, res_type, new_id, self.store.index_rows(body))
        self._project(Change(pk, res_type, new_id, body, created=True))
        self.touched.add(pk)
        return StoredResource(res_type, new_id, 1, now, False, data, "POST", pk)

    def create_built(self, res_type: str, res_id: str, now: int, data: bytes, rows: list[IndexRow]) -> int:
        """Store a resource the server built, checked and indexed itself (the audit trail's events).

        `data` must already be the canonical bytes of the stamped version 1 (id, meta.versionId "1",
        meta.lastUpdated = `now`), and `rows` its index rows: nothing is validated or indexed here.
        Returns the new resource's key.
        """
        pk = self._allocate_pk()
        row = {"res_type": res_type, "res_id": res_id, "version": 1, "last_updated": now, "deleted": False}
        self._pending.resources.append({"pk": pk, **row})
        self._add_version(pk, res_type, res_id, 1, now, "POST", data)
        self._index(pk, res_type, res_id, rows)
        self.touched.add(pk)
        return pk

    def insert_later(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Rows of a table outside the store's own (the audit chain's links), written by the next
        flush with the resources' rows: on PostgreSQL in the same statement, no round trip of their own."""
        self._pending.other.setdefault(table, []).extend(rows)

    def _allocate_pk(self) -> int:
        if not is_sqlite(self.store.engine):
            return self.store.allocate_pk(self.connection)
        # A SQLite write transaction (BEGIN IMMEDIATE) holds the database's only write lock, so
        # keys above the current maximum are ours until commit.
        if self._next_pk is None:
            current_max = self.connection.exec_driver_sql("SELECT max(pk) FROM resource").scalar()
            self._next_pk = int(current_max or 0) + 1
        pk, self._next_pk = self._next_pk, self._next_pk + 1
        return pk

    def update(
        self, resource: dict[str, Any], res_id: str, *, if_match: int | None = None
    ) -> tuple[StoredResource, bool]:
        """Store a new version; creates the resource under `res_id` if unknown. Returns (stored, created)."""
        res_type = self._check(resource)
        check_resource_id(res_id)
        if resource.get("id") != res_id:
            raise InvalidResource(
                f"The resource id '{resource.get('id')}' does not match the URL id '{res_id}'",
                expression=f"{res_type}.id",
            )
        current = self.current(res_type, res_id, for_update=True)
        if current is None:
            if if_match is not None:
                raise PreconditionFailed(f"{res_type}/{res_id} does not exist (If-Match given)")
            return self.create(resource, res_id=res_id), True
        if if_match is not None and if_match != current.version:
            raise PreconditionFailed(
                f"Version conflict on {res_type}/{res_id}: If-Match asks for version {if_match}, "
                f"current is {current.version}"
            )
        if not current.deleted and current.data is not None and _same_content(current.data, resource):
            return current, False
        now = max(to_micros(utc_now()), current.last_updated + 1)
        version = current.version + 1
        body = self._stamp(resource, res_id, version, now)
        if current.pk not in self.known_patients:
            self._remember_indexed_patients(current.pk, res_type, res_id)
        self._bump(current.pk, version, now, deleted=False)
        data = self._canonical(body)
        self._add_version(current.pk, res_type, res_id, version, now, "PUT", data)
        self._pending.unindex.append(current.pk)
        self._index(current.pk, res_type, res_id, self.store.index_rows(body))
        self._project(Change(current.pk, res_type, res_id, body))
        self.touched.add(current.pk)
        return StoredResource(res_type, res_id, version, now, False, data, "PUT", current.pk), False

    def delete(self, res_type: str, res_id: str, *, if_match: int | None = None) -> StoredResource | None:
        """Soft delete: a new version marked deleted; history keeps everything. None if already deleted."""
        check_resource_type(res_type)
        current = self.current(res_type, res_id, for_update=True)
        if current is None:
            raise NotFound(f"{res_type}/{res_id} is not known")
        if if_match is not None and if_match != current.version:
            raise PreconditionFailed(
                f"Version conflict on {res_type}/{res_id}: If-Match asks for version {if_match}, "
                f"current is {current.version}"
            )
        if current.deleted:
            return None
        now = max(to_micros(utc_now()), current.last_updated + 1)
        version = current.version + 1
        self._bump(current.pk, version, now, deleted=True)
        self._pending.versions.append(
            {
                "resource_pk": current.pk,
                "res_type": res_type,
                "res_id": res_id,
                "version": version,
                "last_updated": now,
                "method": "DELETE",
                "deleted": True,
                "data": None,
            }
        )
        # The index rows stay (every query filters deleted resources out): the audit trail still
        # finds whose compartment the deleted resource was in. A later update re-indexes.
        self._project(Change(current.pk, res_type, res_id, None))
        self.touched.add(current.pk)
        return StoredResource(res_type, res_id, version, now, True, None, "DELETE", current.pk)

    # -- history -----------------------------------------------------------------------------

    def history(
        self,
        res_type: str | None = None,
        res_id: str | None = None,
        *,
        since: int | None = None,
        at_or_before_seq: int | None = None,
        limit: int = 20,
    ) -> list[tuple[int, StoredResource]]:
        """Versions newest first, as (seq, version); `at_or_before_seq` pages without drifting."""
        self.flush()
        v = schema.resource_version
        query = select(v).order_by(v.c.seq.desc()).limit(limit)
        if res_type is not None:
            query = query.where(v.c.res_type == res_type)
        if res_id is not None:
            query = query.where(v.c.res_id == res_id)
        if since is not None:
            query = query.where(v.c.last_updated >= since)
        if at_or_before_seq is not None:
            query = query.where(v.c.seq <= at_or_before_seq)
        versions = [
            (
                row.seq,
                StoredResource(
                    row.res_type,
                    row.res_id,
                    row.version,
                    row.last_updated,
                    row.deleted,
                    row.data,
                    row.method,
                    row.resource_pk,
                ),
            )
            for row in self.connection.execute(query)
        ]
        self.touched.update(stored.pk for _, stored in versions)
        return versions

    def exists(self, res_type: str, res_id: str) -> bool:
        current = self.current(res_type, res_id)
        return current is not None and not current.deleted

    # -- internals ---------------------------------------------------------------------------

    def _check(self, resource: Any) -> str:
        if not isinstance(resource, dict):
            raise InvalidResource("A resource must be a JSON object")
        res_type = resource.get("resourceType")
        if not isinstance(res_type, str) or res_type not in resource_types():
            raise InvalidResource(f"Unknown or missing resourceType '{res_type}'", expression="resourceType")
        issues = [i for i in self.store.validate(resource) if i.severity in ("error", "fatal")]
        if issues:
            raise InvalidResource(issues)
        return res_type

    def _stamp(self, resource: dict[str, Any], res_id: str, version: int, now: int) -> dict[str, Any]:
        """The resource with its id and meta, in canonical order (see `_canonical`)."""
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = fhir_instant(now)
        stamped = {"resourceType": resource["resourceType"], "id": res_id, "meta": meta}
        for key, value in resource.items():
            if key not in stamped:
                stamped[key] = value
        return stamped

    @staticmethod
    def _canonical(stamped: dict[str, Any]) -> bytes:
        """`canonical_bytes` of a `_stamp` result: its keys already start with resourceType, id and
        meta, so its plain serialisation is the canonical one (no reordering copy per write)."""
        return orjson.dumps(stamped)

    def _bump(self, pk: int, version: int, now: int, *, deleted: bool) -> None:
        self.connection.execute(
            update(schema.resource)
            .where(schema.resource.c.pk == pk)
            .values(version=version, last_updated=now, deleted=deleted)
        )

    def _add_version(
        self, pk: int, res_type: str, res_id: str, version: int, now: int, method: str, data: bytes
    ) -> None:
        self._pending.versions.append(
            {
                "resource_pk": pk,
                "res_type": res_type,
                "res_id": res_id,
                "version": version,
                "last_updated": now,
                "method": method,
                "deleted": False,
                "data": data,
            }
        )

    def _index(self, pk: int, res_type: str, res_id: str, rows: list[IndexRow]) -> None:
        index = self._pending.index
        patient_links: list[tuple[str, str | None]] = []
        for row in rows:
            table, write = _ROW_WRITERS[type(row)]
            bucket = index.get(table)
            if bucket is None:
                bucket = index[table] = []
            bucket.append(write(row, pk, res_type))
            if type(row) is ReferenceRow and row.target_type == "Patient":
                patient_links.append((row.param, row.target_id))
        patients = compartment_patients(res_type, res_id, patient_links)
        # An update keeps the patients the read before it found: moving a resource from one
        # patient to another is in both patients' journals.
        self.known_patients[pk] = patients | self.known_patients.get(pk, frozenset())

    def _project(self, change: Change) -> None:
        if self.store.projections.watching(change.res_type):
            key = (change.res_type, change.res_id)
            earlier = self._pending.changes.pop(key, None)
            if earlier is not None and earlier.created:
                # Created in this same flush: its derived rows still do not exist.
                change = Change(change.pk, change.res_type, change.res_id, change.body, created=True)
            self._pending.changes[key] = change

    def flush(self, *, then_commit: bool = False) -> None:
        """Write buffered versions and index rows (before any read in this session, and at commit).

        `then_commit` (the session's end): when the rows go in one statement and no projection
        follows, the COMMIT rides in the same round trip (the SQLAlchemy transaction then finds
        nothing left to commit); otherwise the caller commits as usual.
        """
        if not self._pending and self.unlinked is None:
            return
        pending, self._pending = self._pending, _PendingWrites()
        chain, self.unlinked = self.unlinked, None
        if (
            not pending.may_clash
            and not pending.unindex
            and not is_sqlite(self.store.engine)
            and pending.row_count() <= _PIPELINED_ROWS
        ):
            # Only new resources with server-drawn ids (audit events, a bundle's creates): a clash
            # would be a bug, not a conflict to report, so no savepoint, and the rows of every table
            # go in one statement instead of a COPY per table (large bulk flushes keep COPY).
            tables = [(schema.resource, pending.resources), (schema.resource_version, pending.versions)]
            tables += [*pending.index.items(), *pending.other.items()]
            commit = then_commit and not pending.changes
            written = [(table, rows) for table, rows in tables if rows]
            if chain is None:
                _insert_pipelined(self.connection, written, commit=commit)
            else:
                self.audit_head = _insert_and_link(self.connection, written, chain, commit=commit)
            if pending.changes:
                self.store.projections.apply(self.connection, pending.changes)
            return
        # Rows that may clash with a concurrent writer's (client ids) wait for the chain lock first,
        # as before: a writer holding it must never wait on a row this transaction inserted.
        head = chain.lock_and_read_head(self.connection) if chain is not None and pending.may_clash else None
        if pending.resources and not pending.may_clash:
            # Only server-drawn ids: no clash to report, no savepoint (two statements).
            self.store.bulk_insert(self.connection, schema.resource, pending.resources)
        elif pending.resources:
            try:
                with self.connection.begin_nested():
                    self.store.bulk_insert(self.connection, schema.resource, pending.resources)
            except (IntegrityError, psycopg.errors.UniqueViolation) as exc:
                # COPY runs on the raw driver connection, so its errors are not wrapped by SQLAlchemy.
                raise Conflict("A resource with the same type and id was created concurrently") from exc
        if pending.unindex:
            for table in schema.INDEX_TABLES:
                self.connection.execute(delete(table).where(table.c.resource_pk.in_(pending.unindex)))
        if pending.versions:
            self.store.bulk_insert(self.connection, schema.resource_version, pending.versions)
        for table, rows in (*pending.index.items(), *pending.other.items()):
            self.store.bulk_insert(self.connection, table, rows)
        if chain is not None:
            links = chain.links(head if pending.may_clash else chain.lock_and_read_head(self.connection))
            self.store.bulk_insert(self.connection, chain.table, links)
            self.audit_head = links[-1]["entry_hash"]
        if pending.changes:
            self.store.projections.apply(self.connection, pending.changes)


def _read_any_statement() -> Select[Any]:
    r, v, ref = schema.resource, schema.resource_version, schema.idx_reference
    return (
        select(
            r.c.pk,
            r.c.version,
            r.c.last_updated,
            r.c.deleted,
            v.c.data,
            v.c.method,
            ref.c.param,
            ref.c.target_id,
        )
        .join(v, and_(v.c.resource_pk == r.c.pk, v.c.version == r.c.version))
        .outerjoin(ref, and_(ref.c.resource_pk == r.c.pk, ref.c.target_type == "Patient"))
        .where(r.c.res_type == bindparam("res_type"), r.c.res_id == bindparam("res_id"))
    )


# Built once: constructing them and computing their cache keys took a tenth of a read's CPU.
_READ_ANY = _read_any_statement()
_CURRENT = (
    select(
        schema.resource.c.pk,
        schema.resource.c.version,
        schema.resource.c.last_updated,
        schema.resource.c.deleted,
        schema.resource_version.c.data,
        schema.resource_version.c.method,
    )
    .join(
        schema.resource_version,
        and_(
            schema.resource_version.c.resource_pk == schema.resource.c.pk,
            schema.resource_version.c.version == schema.resource.c.version,
        ),
    )
    .where(
        schema.resource.c.res_type == bindparam("res_type"), schema.resource.c.res_id == bindparam("res_id")
    )
)


def _same_content(stored: bytes, resource: dict[str, Any]) -> bool:
    """An update that changes nothing but meta's server fields creates no new version."""
    old = orjson.loads(stored)
    old_meta = {
        k: v for k, v in (old.pop("meta", None) or {}).items() if k not in ("versionId", "lastUpdated")
    }
    new = dict(resource)
    new_meta = {
        k: v for k, v in (new.pop("meta", None) or {}).items() if k not in ("versionId", "lastUpdated")
    }
    return bool(old == new and old_meta == new_meta)


def _in_memory(engine: Engine) -> bool:
    database = engine.url.database or ""
    return is_sqlite(engine) and (not database or ":memory:" in database or "mode=memory" in str(engine.url))


class FhirStore:
    """The store: an engine, a validator and the indexing pipeline. Thread-safe; one per process."""

    def __init__(
        self,
        engine: Engine,
        *,
        validator: Validator | None = None,
        indexer: Indexer | None = None,
        projections: Sequence[Projection] | None = None,
        audit_process: bool = False,
    ):
        self.engine = engine
        # Read traces written by a child process (`socle.audit.writer_process`) instead of a thread
        # of this one. The child opens the same database with the default validator and indexer:
        # a store with its own, or a database in this process's memory, keeps the thread.
        self._audit_process = (
            audit_process and validator is None and indexer is None and not _in_memory(engine)
        )
        self._validator = validator
        self._indexer = indexer
        self._projections = Projections(projections) if projections is not None else None
        self._pk_lock = threading.Lock()
        self._pk_block: list[int] = []
        self._audit_writer: Any = None

    @property
    def audit_writer(self) -> Any:
        """The group-commit writer of read and failure traces: `socle.audit.writer.AuditWriter`, or
        `socle.audit.writer_process.AuditWriterProcess` when the store was opened with `audit_process`."""
        if self._audit_writer is None:
            from socle.audit.writer import AuditWriter
            from socle.audit.writer_process import AuditWriterProcess

            with self._pk_lock:
                if self._audit_writer is None:
                    writer = AuditWriterProcess if self._audit_process else AuditWriter
                    self._audit_writer = writer(self)
        return self._audit_writer

    PK_BLOCK = 256

    def analyze(self) -> None:
        """Refresh the planner's statistics after a bulk load (a never-analysed store gets scanned).

        SQLite gets a full `ANALYZE` bounded per index (`analysis_limit`): `PRAGMA optimize` alone
        analyses nothing on a fresh connection, and without statistics SQLite sorted `_sort=-date`
        by scanning every date row of the type for each match (minutes at 100k resources).
        """
        with self.engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            if is_sqlite(self.engine):
                connection.exec_driver_sql("PRAGMA analysis_limit = 2000")
                connection.exec_driver_sql("ANALYZE")
            else:
                connection.exec_driver_sql("ANALYZE")

    def allocate_pk(self, connection: Connection) -> int:
        """A fresh resource key from a block drawn from the PostgreSQL sequence.

        Drawing keys in blocks lets creates be buffered and written by COPY instead of one
        INSERT ... RETURNING round trip each. Unused keys of a block are simply skipped.
        """
        with self._pk_lock:
            if not self._pk_block:
                rows = connection.execute(
                    text("SELECT nextval('resource_pk_seq') FROM generate_series(1, :n)"),
                    {"n": self.PK_BLOCK},
                )
                self._pk_block = sorted((int(r[0]) for r in rows), reverse=True)
            return self._pk_block.pop()

    @property
    def projections(self) -> Projections:
        """The derived tables kept in step with the writes (default: the application's list)."""
        if self._projections is None:
            from socle.projections import installed_projections

            self._projections = Projections(installed_projections())
        return self._projections

    def rebuild_projections(self, name: str | None = None) -> dict[str, int]:
        """Derive every projection (or the one called `name`) again from the current resources, in
        one transaction; the rows written, by projection."""
        with self.engine.begin() as connection:
            return self.projections.rebuild(connection, name)

    def validate(self, resource: Any) -> list[Issue]:
        if self._validator is None:
            from socle.fhir.validation import default_validator

            self._validator = default_validator().validate
        return self._validator(resource)

    def index_rows(self, resource: dict[str, Any]) -> list[IndexRow]:
        if self._indexer is None:
            from socle.search.extract import extract_index_rows

            self._indexer = extract_index_rows
        return self._indexer(resource)

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[StoreSession]:
        """One transaction: commits when the block ends normally, rolls back on any exception.

        `readonly` lets SQLite readers run beside the writer (WAL) instead of queueing for the lock.
        """
        with self.engine.connect() as connection:
            if readonly:
                connection = connection.execution_options(socle_readonly=True)
            with connection.begin():
                session = StoreSession(self, connection)
                yield session
                session.flush(then_commit=True)

    def bulk_insert(self, connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        insert_rows(connection, table, rows)


def insert_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows at once: COPY on PostgreSQL, multi-row VALUES on SQLite (nothing when empty)."""
    if not rows:
        return
    if connection.dialect.name != "sqlite":
        _copy_rows(connection, table, rows)
    else:
        _insert_values(connection, table, rows)


class ChainAppend(Protocol):
    """Rows to append to a hash chain once its lock is held (`socle.audit.trail` makes them)."""

    table: Table
    lock_sql: str
    head_sql: str

    def links(self, prev_hash: str | None) -> list[dict[str, Any]]: ...

    def lock_and_read_head(self, connection: Connection) -> str | None: ...


def _insert_and_link(
    connection: Connection,
    tables: list[tuple[Table, list[dict[str, Any]]]],
    chain: ChainAppend,
    *,
    commit: bool,
) -> str:
    """PostgreSQL: the rows, then the chain lock and its head, in one round trip; the links (and the
    COMMIT) in a second. Returns the new head. The lock is taken after the rows are inserted, so a
    concurrent transaction waits for it only while this one links and commits."""
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.pipeline(), raw.cursor() as cursor, raw.cursor() as head:
        queue_inserts(cursor, tables, then=(chain.lock_sql, ()))  # the lock after the rows
        head.execute(chain.head_sql)
        found = head.fetchone()
        links = chain.links(found[0] if found else None)
        queue_inserts(cursor, [(chain.table, links)])
        if commit:
            raw.commit()
    return str(links[-1]["entry_hash"])


def _insert_pipelined(
    connection: Connection, tables: list[tuple[Table, list[dict[str, Any]]]], *, commit: bool = False
) -> None:
    """PostgreSQL: the rows of several tables in one statement (`queue_inserts`), one round trip,
    with the COMMIT in it when `commit`.

    Up to a few thousand rows (an audit batch, a transaction bundle) this beats a COPY per table,
    which costs two round trips each; larger bulk flushes keep COPY (`_copy_rows`).
    """
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.pipeline(), raw.cursor() as cursor:
        queue_inserts(cursor, tables)
        if commit:
            raw.commit()


def queue_inserts(
    cursor: Any,
    tables: list[tuple[Table, list[dict[str, Any]]]],
    *,
    then: tuple[str, Sequence[Any]] | None = None,
) -> None:
    """PostgreSQL: insert the rows of every table in ONE statement on a psycopg cursor.

    Each table is an `INSERT ... SELECT FROM json_to_recordset(%s)` in a data-modifying CTE, its
    rows sent as one JSON text made by orjson, and `then` (a `SELECT` and its parameters) is the
    statement's own query. The text depends only on the tables and columns, never on the row
    count, so psycopg reuses its parsed form and the server its prepared plan; the values cost one
    C call per table. Before, a multi-row `VALUES (%s, ...), (...)` per table was new text for
    every row count: psycopg re-parsed each one for its placeholders (70 % of the audit writer's
    CPU for a batch of 20 traces), the server planned each again, and each statement paid
    psycopg's and the server's per-statement costs; one array parameter per column still cost
    psycopg's Python list dumper per column. `ORDER BY` the ordinality keeps the rows' order,
    which serial keys (the chain's) follow.

    In a pipeline (`raw.pipeline()`) it is only queued: the caller decides when the round trip
    happens, so it can send other statements in the same one (the audit writer's batch).
    """
    shape = []
    params: list[Any] = []
    for table, rows in tables:
        if not rows:
            continue
        columns = tuple(c.name for c in table.columns if c.name in rows[0])
        shape.append((table, columns))
        params.append(_json_rows(table, columns, rows))
    if not shape:
        if then is not None:
            cursor.execute(then[0], then[1])
        return
    if then is not None:
        params += then[1]
    cursor.execute(_insert_statement(tuple(shape), then[0] if then else None), params)


def _json_rows(table: Table, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    binary, floats = _json_unsafe_columns(table, columns)
    if binary or floats:
        rows = [_json_safe(row, binary, floats) for row in rows]
    return orjson.dumps(rows).decode()


@functools.lru_cache(maxsize=256)
def _json_unsafe_columns(table: Table, columns: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The columns whose values JSON cannot carry as they are: bytes, and floats (infinities)."""
    binary = tuple(c for c in columns if isinstance(table.c[c].type, LargeBinary))
    floats = tuple(c for c in columns if isinstance(table.c[c].type, Float))
    return binary, floats


def _json_safe(row: dict[str, Any], binary: tuple[str, ...], floats: tuple[str, ...]) -> dict[str, Any]:
    row = dict(row)
    for name in binary:
        if row[name] is not None:
            row[name] = row[name].hex()  # decoded by the statement
    for name in floats:
        value = row[name]
        if value is not None and not math.isfinite(value):
            row[name] = str(value).replace("inf", "Infinity")  # JSON has no infinity; float8in reads this
    return row


@functools.lru_cache(maxsize=256)
def _insert_statement(shape: tuple[tuple[Table, tuple[str, ...]], ...], then: str | None) -> str:
    inserts = []
    for table, columns in shape:
        record = ", ".join(f"{name} {_json_type(table.c[name])}" for name in columns)
        values = ", ".join(
            f"decode({name}, 'hex')" if isinstance(table.c[name].type, LargeBinary) else name
            for name in columns
        )
        inserts.append(
            f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {values} "
            f"FROM ROWS FROM (json_to_recordset(%s::json) AS ({record})) WITH ORDINALITY "
            f"AS u({', '.join(columns)}, row_order) ORDER BY row_order"
        )
    main = then if then is not None else inserts.pop()
    if not inserts:
        return main
    return "WITH " + ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(inserts)) + " " + main


def _json_type(column: Column[Any]) -> str:
    if isinstance(column.type, LargeBinary):
        return "text"
    compiled: str = column.type.compile(dialect=_POSTGRESQL)
    return compiled


_POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]


# Up to this many rows, one flush is one statement (JSON rows, `queue_inserts`) instead of a COPY
# per table, each two round trips. With multi-row VALUES that was no faster for a transaction
# bundle (≈ 21 resources, ≈ 450 rows: 1,813 against 1,956 res/s by COPY, 2026-11-23); with JSON rows
# the loader spends 18 % less CPU per resource and loads 15 % more per second (bench/RESULTS.md
# section 1, 2026-12-04). Above it a bulk flush streams by COPY rather than building one big text.
_PIPELINED_ROWS = 5_000

# SQLite's default limit on the parameters of one statement is 32,766 (PostgreSQL's 65,535).
_STATEMENT_PARAMETERS = 30_000


def _insert_values(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """SQLite: multi-row `INSERT ... VALUES (...), (...)`, one statement per 30,000 parameters.

    `executemany` steps the statement once per row, and the sqlite3 module releases and retakes the
    GIL around each step: under load, the audit writer queued for the GIL once per index row.
    The values are plain Python (str, int, float, bool, bytes, None): no SQLAlchemy type converts them.
    """
    columns = [c.name for c in table.columns if c.name in rows[0]]
    one = "(" + ", ".join("?" * len(columns)) + ")"
    per_statement = max(1, _STATEMENT_PARAMETERS // len(columns))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {', '.join([one] * len(chunk))}"
        connection.exec_driver_sql(sql, tuple(row[c] for row in chunk for c in columns))


def _copy_rows(connection: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """PostgreSQL COPY: several times faster than executemany for the index rows of a bundle."""
    rows = list(rows)
    columns = [c.name for c in table.columns if c.name in rows[0]]
    raw = connection.connection.driver_connection
    assert raw is not None
    # A row's values in one C call (itemgetter) rather than a list built in Python: a bundle
    # writes ≈ 14 rows per resource.
    values = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(values(row))
