"""Transaction and batch Bundles posted to the FHIR base.

A transaction is one store session: entries run in the spec's order (DELETE, POST, PUT/PATCH, GET),
`urn:uuid:` and conditional references are rewritten to the ids they resolve to, and the first
failure rolls everything back (the store is left exactly as it was). A batch runs each entry in its
own session and reports each outcome separately. Entries run through the same `handle()` as single
requests, so they behave identically.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import urlsplit

import orjson

from socle.auth import policy
from socle.auth.context import RequestContext
from socle.errors import InvalidRequest, InvalidResource, Issue, PreconditionFailed, SocleError
from socle.fhir.access import trace_bundle, trace_failure
from socle.fhir.definitions import resource_types
from socle.fhir.interactions import FhirRequest, FhirResponse, Interaction, handle
from socle.fhir.write_rules import admit
from socle.search.engine import match_conditional
from socle.store.repository import FhirStore, StoreSession

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


class EntryFailed(SocleError):
    """A transaction entry failed: the whole transaction is rolled back with the entry's status."""

    def __init__(self, index: int, error: SocleError) -> None:
        issues = [
            Issue(i.severity, i.code, f"Bundle.entry[{index}]: {i.diagnostics}", i.expression)
            for i in error.issues
        ]
        super().__init__(issues)
        self.status = error.status


def _check_entries(bundle: Any, expected: str) -> list[dict[str, Any]]:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidResource("Bundle.entry must be an array", expression="Bundle.entry")
    for i, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        if (
            not isinstance(request, dict)
            or not isinstance(request.get("method"), str)
            or not request.get("url")
        ):
            raise InvalidResource(
                f"Every entry of a {expected} needs request.method and request.url",
                expression=f"Bundle.entry[{i}].request",
            )
        if request["method"] not in ORDER:
            raise InvalidResource(
                f"Unsupported method '{request['method']}' in a {expected}",
                expression=f"Bundle.entry[{i}].request",
            )
    return entries


def process_bundle(
    store: FhirStore, bundle: Any, base_url: str, prefer: str | None, ctx: RequestContext
) -> dict[str, Any]:
    kind = bundle.get("type") if isinstance(bundle, dict) else None
    try:
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise InvalidResource("POST to the FHIR base expects a Bundle of type transaction or batch")
        if kind not in ("transaction", "batch"):
            raise InvalidResource(
                f"Bundle type '{kind}' cannot be processed here: expected transaction or batch"
            )
        entries = _check_entries(bundle, str(kind))
    except SocleError as error:  # a refused bundle is a refused interaction: traced like any other
        interaction = Interaction("batch" if kind == "batch" else "transaction")
        trace_failure(store, ctx, interaction, error.status, error.message, None)
        raise
    if kind == "transaction":
        try:
            with store.session() as session:
                responses = _transaction(session, entries, base_url, prefer, ctx)
                trace_bundle(session, ctx, "transaction", 200, entries)
        except SocleError as error:
            trace_failure(store, ctx, Interaction("transaction"), error.status, error.message, None)
            raise
        except Exception:
            trace_failure(store, ctx, Interaction("transaction"), 500, "internal error", None)
            raise
        return _response_bundle("transaction-response", responses, base_url)
    responses = [_batch_entry(store, e, base_url, prefer, ctx) for e in entries]
    return _response_bundle("batch-response", responses, base_url)


def _request_of(entry: dict[str, Any], base_url: str, prefer: str | None) -> FhirRequest:
    req = entry["request"]
    url = req["url"]
    if url.startswith(base_url + "/"):
        url = url[len(base_url) + 1 :]
    request = FhirRequest.from_url(req["method"], url, base_url=base_url)
    headers = {"if-match": req.get("ifMatch"), "if-none-exist": req.get("ifNoneExist"), "prefer": prefer}
    if req.get("ifNoneMatch"):
        headers["if-none-match"] = req["ifNoneMatch"]
    request.headers = {k: v for k, v in headers.items() if v}
    if "resource" in entry:
        resource = entry["resource"]
        if (
            req["method"] == "PATCH"
            and isinstance(resource, dict)
            and resource.get("resourceType") == "Binary"
        ):
            # A JSON Patch travels in a bundle as a Binary with base64 content.
            request.parsed = orjson.loads(base64.b64decode(resource.get("data", "")))
            request.headers["content-type"] = "application/json-patch+json"
        else:
            request.parsed = resource
    return request


def _transaction(
    session: StoreSession,
    entries: list[dict[str, Any]],
    base_url: str,
    prefer: str | None,
    ctx: RequestContext,
) -> list[FhirResponse]:
    order = sorted(range(len(entries)), key=lambda i: ORDER[entries[i]["request"]["method"]])
    mapping: dict[str, str] = {}
    assigned: dict[int, str | None] = {}  # POST entry -> new id, or None when ifNoneExist matched
    created_types: dict[int, str] = {}  # POST entry -> the resource type of its url
    done: dict[int, FhirResponse] = {}  # entries already answered (deletes, matched conditional creates)
    full_urls: set[str] = set()
    for i in order:
        entry = entries[i]
        full_url = entry.get("fullUrl")
        if full_url:
            if full_url in full_urls:
                raise EntryFailed(i, InvalidRequest(f"Duplicate fullUrl '{full_url}' in the transaction"))
            full_urls.add(full_url)
        method, url = entry["request"]["method"], entry["request"]["url"]
        try:
            if method == "DELETE":
                # Deletes come first, before conditional creates are resolved against the store.
                done[i] = handle(_request_of(entry, base_url, prefer), session, ctx)
            elif method == "POST":
                res_type = url.split("?")[0].strip("/")
                if res_type not in resource_types():
                    raise InvalidRequest(f"POST to unknown resource type '{res_type}'")
                created_types[i] = res_type
                policy.check_interaction(ctx, "create", res_type)
                if_none_exist = entry["request"].get("ifNoneExist")
                restriction = policy.search_restriction(ctx, res_type)
                matches = (
                    match_conditional(session, res_type, if_none_exist, restriction) if if_none_exist else []
                )
                if len(matches) > 1:
                    raise PreconditionFailed(
                        f"ifNoneExist '{if_none_exist}' matches {len(matches)} resources"
                    )
                if matches:
                    assigned[i] = None
                    done[i] = FhirResponse.of_resource(200, matches[0], base_url, prefer)
                    target = f"{res_type}/{matches[0].res_id}"
                else:
                    assigned[i] = str(uuid.uuid4())
                    target = f"{res_type}/{assigned[i]}"
                if full_url:
                    mapping[full_url] = target
            elif method == "PUT" and full_url:
                path = urlsplit(url).path.strip("/")
                if "?" not in url and path.count("/") == 1:
                    mapping[full_url] = path
                elif "?" in url:
                    res_type = path
                    restriction = policy.search_restriction(ctx, res_type)
                    found = match_conditional(session, res_type, url.split("?", 1)[1], restriction)
                    if len(found) > 1:
                        raise PreconditionFailed(f"Conditional update '{url}' matches {len(found)} resources")
                    resource = entry.get("resource") or {}
                    target_id = found[0].res_id if found else resource.get("id") or str(uuid.uuid4())
                    mapping[full_url] = f"{res_type}/{target_id}"
        except SocleError as error:
            raise EntryFailed(i, error) from error
    responses: dict[int, FhirResponse] = dict(done)
    for i in order:
        if i in done:
            continue
        entry = entries[i]
        try:
            if "resource" in entry:
                entry = {**entry, "resource": _rewrite(session, ctx, entry["resource"], mapping)}
            if i in assigned:
                # A create needs only its resource and its url's type (checked above): no request
                # with headers and parsed query is built (the body check is the request's own).
                res_type = created_types[i]
                resource = FhirRequest("POST", res_type, parsed=entry.get("resource")).json()
                actual = resource.get("resourceType") if isinstance(resource, dict) else None
                if actual != res_type:
                    raise InvalidResource(
                        f"The entry's resourceType '{actual}' does not match its request url '{res_type}'"
                    )
                resource = {k: v for k, v in resource.items() if k != "id"}
                # The id was drawn above (a UUID): no clash to guard with a savepoint at flush.
                stored = session.create(admit(session, ctx, resource), res_id=assigned[i], drawn=True)
                responses[i] = FhirResponse.of_resource(201, stored, base_url, prefer)
            else:
                request = _request_of(entry, base_url, prefer)
                method = entry["request"]["method"]
                if method == "PUT" and "?" in entry["request"]["url"] and entry.get("fullUrl") in mapping:
                    # Resolved above: update (or create) at the id the references were rewritten to.
                    target = mapping[entry["fullUrl"]]
                    resource = dict(request.json())
                    resource["id"] = target.split("/")[1]
                    request = FhirRequest("PUT", target, [], request.headers, b"", base_url, resource)
                responses[i] = handle(request, session, ctx)
        except SocleError as error:
            raise EntryFailed(i, error) from error
    return [responses[i] for i in range(len(entries))]


def _rewrite(session: StoreSession, ctx: RequestContext, node: Any, mapping: dict[str, str]) -> Any:
    """Replace `urn:uuid:` fullUrls and conditional references with the resolved `Type/id`."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                out[key] = _resolve_reference(session, ctx, value, mapping)
            else:
                out[key] = _rewrite(session, ctx, value, mapping)
        return out
    if isinstance(node, list):
        return [_rewrite(session, ctx, item, mapping) for item in node]
    return node


def _resolve_reference(
    session: StoreSession, ctx: RequestContext, value: str, mapping: dict[str, str]
) -> str:
    if value in mapping:
        return mapping[value]
    if "?" in value and not value.startswith(("http://", "https://", "urn:")):
        res_type, _, criteria = value.partition("?")
        if res_type not in resource_types():
            raise InvalidRequest(f"Conditional reference '{value}' names an unknown resource type")
        matches = match_conditional(session, res_type, criteria, policy.search_restriction(ctx, res_type))
        if len(matches) != 1:
            raise PreconditionFailed(
                f"Conditional reference '{value}' matches {len(matches)} resources; exactly one is required"
            )
        return f"{res_type}/{matches[0].res_id}"
    return value


def _batch_entry(
    store: FhirStore, entry: dict[str, Any], base_url: str, prefer: str | None, ctx: RequestContext
) -> FhirResponse:
    """A batch entry is an interaction of its own: performed (and traced) like a single request."""
    from socle.fhir.access import perform

    try:
        if "resource" in entry:
            with store.session(readonly=True) as session:
                entry = {**entry, "resource": _rewrite(session, ctx, entry["resource"], {})}
        return perform(store, _request_of(entry, base_url, prefer), ctx)
    except SocleError as error:
        return FhirResponse.of_error(error)


def _response_bundle(kind: str, responses: list[FhirResponse], base_url: str) -> dict[str, Any]:
    entries = []
    for response in responses:
        item: dict[str, Any] = {}
        if response.resource is not None:
            item["fullUrl"] = f"{base_url}/{response.resource.res_type}/{response.resource.res_id}"
        if response.body and response.status < 400:
            item["resource"] = orjson.Fragment(response.body)
        outcome: dict[str, Any] = {"status": str(response.status)}
        for header, field in (("Location", "location"), ("ETag", "etag"), ("Last-Modified", "lastModified")):
            if header in response.headers:
                outcome[field] = response.headers[header]
        if response.status >= 400 and response.body:
            outcome["outcome"] = orjson.Fragment(response.body)
        item["response"] = outcome
        entries.append(item)
    return {"resourceType": "Bundle", "type": kind, "entry": entries}
