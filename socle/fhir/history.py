"""The `_history` interactions (instance, type, system) as history Bundles, newest first.

Pages follow the store-wide version sequence (`_page_before`), so a page never shifts when new
versions are written while a client walks the history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import orjson

from socle.errors import InvalidRequest
from socle.fhir.exchange import for_exchange
from socle.search.normalize import date_range
from socle.store.repository import StoreSession

if TYPE_CHECKING:
    from socle.fhir.interactions import FhirRequest


def history_bundle(
    session: StoreSession, request: FhirRequest, res_type: str | None, res_id: str | None
) -> dict[str, Any]:
    params = dict(request.params)
    count = _int(params, "_count", 20, maximum=1000)
    before = _int(params, "_page_before", None)
    since = None
    if "_since" in params:
        try:
            since = date_range(params["_since"])[0]
        except ValueError as exc:
            raise InvalidRequest(f"Invalid _since '{params['_since']}': {exc}") from exc
    rows = session.history(res_type, res_id, since=since, at_or_before_seq=before, limit=count + 1)
    more = len(rows) > count
    rows = rows[:count]
    base = request.base_url
    path = "/".join(p for p in (res_type, res_id) if p)
    self_url = f"{base}/{path + '/' if path else ''}_history"
    echo = {k: v for k, v in params.items() if k in ("_since", "_count")}
    links = [
        {
            "relation": "self",
            "url": _url(self_url, {**echo, **({"_page_before": str(before)} if before else {})}),
        }
    ]
    if more and rows:
        links.append(
            {"relation": "next", "url": _url(self_url, {**echo, "_page_before": str(rows[-1][0] - 1)})}
        )
    entries = []
    for _seq, version in rows:
        url = f"{version.res_type}/{version.res_id}"
        entry: dict[str, Any] = {"fullUrl": f"{base}/{url}"}
        if version.data is not None:
            entry["resource"] = orjson.Fragment(for_exchange(version.res_type, version.data))
        status = {"POST": "201 Created", "DELETE": "204 No Content"}.get(version.method, "200 OK")
        entry["request"] = {"method": version.method, "url": url}
        entry["response"] = {"status": status, "etag": version.etag, "lastModified": version.last_modified}
        entries.append(entry)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history", "link": links}
    if entries:
        bundle["entry"] = entries
    return bundle


def _url(base: str, params: dict[str, str]) -> str:
    return f"{base}?{urlencode(params, quote_via=quote, safe=':')}" if params else base


def _int(params: dict[str, str], name: str, default: int | None, maximum: int | None = None) -> Any:
    if name not in params:
        return default
    raw = params[name]
    if not raw.isdigit():
        raise InvalidRequest(f"'{name}' expects a non-negative integer, not '{raw}'")
    value = int(raw)
    return min(value, maximum) if maximum is not None else value
