"""FHIR interactions, independent of HTTP: a `FhirRequest` in, a `FhirResponse` out.

The web adapter (`socle.fhir.api`) and the bundle processor (`socle.fhir.bundles`) both call
`handle()`, so a transaction entry behaves exactly like the same request sent alone. Every write
goes through a `StoreSession`; the caller decides the transaction boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from socle.auth import policy
from socle.auth.context import RequestContext
from socle.errors import (
    Conflict,
    Gone,
    InvalidRequest,
    InvalidResource,
    Issue,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    SocleError,
    operation_outcome,
)
from socle.fhir import patch as json_patch
from socle.fhir.definitions import resource_types
from socle.fhir.exchange import for_exchange
from socle.fhir.write_rules import admit
from socle.search import engine as search
from socle.store.repository import StoredResource, StoreSession, check_resource_id

FHIR_JSON = "application/fhir+json"


@dataclass
class FhirRequest:
    method: str
    path: str  # relative to the FHIR base, without leading slash: "Patient/1/_history/2"
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    base_url: str = "http://127.0.0.1:8000/fhir"
    parsed: Any = None  # the body already parsed (bundle entries), to skip a JSON round trip

    @classmethod
    def from_url(cls, method: str, url: str, **kwargs: Any) -> FhirRequest:
        parts = urlsplit(url)
        return cls(method, parts.path.strip("/"), parse_qsl(parts.query, keep_blank_values=True), **kwargs)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        if self.parsed is not None:
            return self.parsed
        if not self.body:
            raise InvalidRequest("The request body is empty; a FHIR JSON resource is expected")
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"The request body is not valid JSON: {exc}") from exc


@dataclass
class FhirResponse:
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    resource: StoredResource | None = None  # what the body describes, for bundle responses

    @classmethod
    def of_resource(
        cls, status: int, stored: StoredResource, base_url: str, prefer: str | None
    ) -> FhirResponse:
        headers = {
            "ETag": stored.etag,
            "Last-Modified": stored.last_modified,
        }
        if status == 201 or stored.method in ("POST", "PUT"):
            headers["Location"] = f"{base_url}/{stored.res_type}/{stored.res_id}/_history/{stored.version}"
        return_pref = _prefer_return(prefer)
        if return_pref == "minimal" and status in (200, 201):
            return cls(status, None, headers, stored)
        if return_pref == "OperationOutcome" and status in (200, 201):
            outcome = operation_outcome(
                [Issue("information", "informational", f"{stored.res_type}/{stored.res_id} stored")]
            )
            return cls(status, orjson.dumps(outcome), headers, stored)
        body = for_exchange(stored.res_type, stored.data) if stored.data is not None else None
        return cls(status, body, headers, stored)

    @classmethod
    def of_json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> FhirResponse:
        return cls(status, orjson.dumps(payload), headers or {})

    @classmethod
    def of_error(cls, error: SocleError) -> FhirResponse:
        return cls(error.status, orjson.dumps(operation_outcome(error.issues)), dict(error.headers))


def _prefer_return(prefer: str | None) -> str:
    if prefer:
        for part in prefer.split(";"):
            name, _, value = part.strip().partition("=")
            if name.strip() == "return":
                return value.strip().strip('"')
    return "representation"


def _parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    match = re.fullmatch(r'\s*(?:W/)?"?(\d+)"?\s*', value)
    if not match:
        raise InvalidRequest(f"Invalid If-Match header '{value}': expected W/\"<versionId>\"")
    return int(match.group(1))


def _resource_type(name: str) -> str:
    if name not in resource_types():
        raise NotFound(f"Unknown resource type '{name}'")
    return name


def _body_resource(request: FhirRequest, expected_type: str) -> dict[str, Any]:
    resource = request.json()
    if not isinstance(resource, dict):
        raise InvalidResource("The request body must be a JSON object (a FHIR resource)")
    actual = resource.get("resourceType")
    if actual != expected_type:
        raise InvalidResource(
            f"The resourceType '{actual}' does not match the URL's resource type '{expected_type}'",
            expression="resourceType",
        )
    return resource


@dataclass(frozen=True, slots=True)
class Interaction:
    """What a request asks for, in the FHIR restful-interaction vocabulary (for policy and audit)."""

    code: str  # read, vread, update, patch, delete, create, search-type, history-*, operation, ...
    res_type: str | None = None
    res_id: str | None = None

    @property
    def reference(self) -> str | None:
        return f"{self.res_type}/{self.res_id}" if self.res_type and self.res_id else None


_BY_METHOD_ON_TYPE = {
    "GET": "search-type",
    "POST": "create",
    "PUT": "update",
    "DELETE": "delete",
    "PATCH": "patch",
}
_BY_METHOD_ON_INSTANCE = {"GET": "read", "PUT": "update", "DELETE": "delete", "PATCH": "patch"}


def classify(method: str, path: str) -> Interaction:
    """Name the interaction a request asks for, without touching the store (also for failed requests)."""
    segments = [s for s in path.split("/") if s]
    method = method.upper()
    if not segments:
        return Interaction("transaction" if method == "POST" else "unknown")
    head = segments[0]
    if head == "metadata":
        return Interaction("capabilities")
    if head == "_history":
        return Interaction("history-system")
    res_type = head if head in resource_types() else None
    if len(segments) == 1:
        return Interaction(_BY_METHOD_ON_TYPE.get(method, "unknown"), res_type)
    second = segments[1]
    if second == "_search":
        return Interaction("search-type", res_type)
    if second == "_history":
        return Interaction("history-type", res_type)
    if second.startswith("$"):
        return Interaction("operation", res_type)
    if len(segments) == 2:
        return Interaction(_BY_METHOD_ON_INSTANCE.get(method, "unknown"), res_type, second)
    if segments[2] == "_history":
        return Interaction("vread" if len(segments) == 4 else "history-instance", res_type, second)
    return Interaction("operation", res_type, second)


def handle(request: FhirRequest, session: StoreSession, ctx: RequestContext) -> FhirResponse:
    """Dispatch one interaction for `ctx`'s actor. Raises `SocleError` on failure (the caller renders it)."""
    segments = [s for s in request.path.split("/") if s]
    method = request.method.upper()
    interaction = classify(method, request.path)
    if interaction.code != "capabilities":
        policy.check_interaction(ctx, interaction.code, interaction.res_type)
    if not segments:
        raise MethodNotAllowed(
            f"{request.method} on the FHIR base is not supported: POST a batch or transaction Bundle, "
            "or GET /metadata"
        )
    if segments[0] == "_history" and len(segments) == 1 and method == "GET":
        return _history(request, session, ctx, None, None)
    if segments[0] == "metadata":
        from socle.fhir.capability import capability_statement

        return FhirResponse.of_json(200, capability_statement(request.base_url))
    res_type = _resource_type(segments[0])
    if res_type == "AuditEvent" and method != "GET" and not (len(segments) == 2 and segments[1] == "_search"):
        raise MethodNotAllowed("The audit trail is append-only: AuditEvents are written by the server alone")
    if len(segments) == 1:
        if method == "GET":
            return _search(request, session, ctx, res_type)
        if method == "POST":
            return _create(request, session, ctx, res_type)
        if method == "PUT":
            return _conditional_update(request, session, ctx, res_type)
        if method == "DELETE":
            return _conditional_delete(request, session, ctx, res_type)
        if method == "PATCH":
            return _conditional_patch(request, session, ctx, res_type)
        raise MethodNotAllowed(f"{method} is not supported on {res_type}")
    if segments[1] == "_search" and len(segments) == 2 and method == "POST":
        return _search(request, session, ctx, res_type)
    if segments[1] == "_history" and len(segments) == 2 and method == "GET":
        return _history(request, session, ctx, res_type, None)
    if segments[1].startswith("$"):
        return _operation(request, session, ctx, res_type, None, segments[1])
    res_id = segments[1]
    check_resource_id(res_id)
    if len(segments) == 2:
        if method == "GET":
            return _read(request, session, ctx, res_type, res_id)
        if method == "PUT":
            return _update(request, session, ctx, res_type, res_id)
        if method == "DELETE":
            return _delete(request, session, ctx, res_type, res_id)
        if method == "PATCH":
            return _patch(request, session, ctx, res_type, res_id)
        raise MethodNotAllowed(f"{method} is not supported on {res_type}/{res_id}")
    if segments[2] == "_history" and method == "GET":
        if len(segments) == 3:
            return _history(request, session, ctx, res_type, res_id)
        if len(segments) == 4:
            if not segments[3].isdigit():
                raise NotFound(f"Unknown version '{segments[3]}' of {res_type}/{res_id}")
            _check_reach(session, ctx, res_type, res_id)
            stored = session.vread(res_type, res_id, int(segments[3]))
            return FhirResponse.of_resource(200, stored, request.base_url, None)
    if segments[2].startswith("$") and len(segments) == 3:
        return _operation(request, session, ctx, res_type, res_id, segments[2])
    raise NotFound(f"Unknown FHIR path '{request.path}'")


def _read(
    request: FhirRequest, session: StoreSession, ctx: RequestContext, res_type: str, res_id: str
) -> FhirResponse:
    # One fetch serves both the access check (its key) and the answer (its bytes).
    stored = session.read_any(res_type, res_id)
    policy.check_resource(session, ctx, res_type, stored.pk)
    if stored.deleted:
        raise Gone(f"{res_type}/{res_id} was deleted")
    session.touched.add(stored.pk)
    if_none_match = request.header("if-none-match")
    if if_none_match and if_none_match.strip() == stored.etag:
        return FhirResponse(304, None, {"ETag": stored.etag})
    response = FhirResponse.of_resource(200, stored, request.base_url, None)
    return _apply_elements(request, response)


def _apply_elements(request: FhirRequest, response: FhirResponse) -> FhirResponse:
    params = dict(request.params)
    if response.body and ("_summary" in params or "_elements" in params):
        resource = orjson.loads(response.body)
        shaped = search.shape_resource(resource, params.get("_summary"), params.get("_elements"))
        response.body = orjson.dumps(shaped)
    return response


def _create(request: FhirRequest, session: StoreSession, ctx: RequestContext, res_type: str) -> FhirResponse:
    resource = _body_resource(request, res_type)
    if_none_exist = request.header("if-none-exist")
    if if_none_exist:
        restriction = policy.search_restriction(ctx, res_type)
        matches = search.match_conditional(session, res_type, if_none_exist, restriction)
        if len(matches) == 1:
            stored = matches[0]
            return FhirResponse.of_resource(200, stored, request.base_url, request.header("prefer"))
        if len(matches) > 1:
            raise PreconditionFailed(
                f"If-None-Exist '{if_none_exist}' matches {len(matches)} {res_type} resources"
            )
    resource.pop("id", None)  # the server assigns ids on create
    stored = session.create(admit(session, ctx, resource))
    return FhirResponse.of_resource(201, stored, request.base_url, request.header("prefer"))


def _update(
    request: FhirRequest, session: StoreSession, ctx: RequestContext, res_type: str, res_id: str
) -> FhirResponse:
    resource = _body_resource(request, res_type)
    if "id" not in resource:
        raise InvalidResource("An update must carry the resource id in its body", expression=f"{res_type}.id")
    _check_replaceable(session, ctx, res_type, res_id)
    resource = admit(session, ctx, resource, res_id)
    stored, created = session.update(resource, res_id, if_match=_parse_if_match(request.header("if-match")))
    return FhirResponse.of_resource(
        201 if created else 200, stored, request.base_url, request.header("prefer")
    )


def _delete(
    request: FhirRequest, session: StoreSession, ctx: RequestContext, res_type: str, res_id: str
) -> FhirResponse:
    _check_replaceable(session, ctx, res_type, res_id)
    session.delete(res_type, res_id, if_match=_parse_if_match(request.header("if-match")))
    return FhirResponse(204)


def _patch(
    request: FhirRequest, session: StoreSession, ctx: RequestContext, res_type: str, res_id: str
) -> FhirResponse:
    content_type = (request.header("content-type") or "").split(";")[0].strip()
    if content_type != "application/json-patch+json":
        raise InvalidRequest(
            f"Unsupported patch format '{content_type}': send a JSON Patch (application/json-patch+json)"
        )
    _check_reach(session, ctx, res_type, res_id)
    current = session.read(res_type, res_id)
    if_match = _parse_if_match(request.header("if-match"))
    if if_match is not None and if_match != current.version:
        raise PreconditionFailed(
            f"Version conflict on {res_type}/{res_id}: If-Match asks for version {if_match}, "
            f"current is {current.version}"
        )
    # The patch's paths point into what the client was served (socle.fhir.exchange).
    assert current.data is not None
    patched = json_patch.apply(orjson.loads(for_exchange(res_type, current.data)), request.json())
    if patched.get("resourceType") != res_type or patched.get("id") != res_id:
        raise InvalidResource("A patch may not change the resourceType or the id")
    stored, _ = session.update(admit(session, ctx, patched, res_id), res_id, if_match=current.version)
    return FhirResponse.of_resource(200, stored, request.base_url, request.header("prefer"))


def _check_reach(session: StoreSession, ctx: RequestContext, res_type: str, res_id: str) -> None:
    """404 for a resource that never existed or lies outside the actor's reach (the same answer)."""
    policy.check_resource(session, ctx, res_type, session.read_any(res_type, res_id).pk)


def _check_replaceable(session: StoreSession, ctx: RequestContext, res_type: str, res_id: str) -> None:
    """An existing resource may only be replaced or deleted by someone who may see it."""
    current = session.current(res_type, res_id)
    if current is not None:
        policy.check_resource(session, ctx, res_type, current.pk)


def _single_match(
    session: StoreSession, ctx: RequestContext, res_type: str, request: FhirRequest, what: str
) -> StoredResource | None:
    if not request.params:
        raise InvalidRequest(f"A conditional {what} needs search parameters")
    query = "&".join(f"{k}={v}" for k, v in request.params)
    matches = search.match_conditional(session, res_type, query, policy.search_restriction(ctx, res_type))
    if len(matches) > 1:
        raise PreconditionFailed(f"The conditional {what} criteria match {len(matches)} {res_type} resources")
    return matches[0] if matches else None


def _conditional_update(
    request: FhirRequest, session: StoreSession, ctx: RequestContext, res_type: str
) -> FhirResponse:
    resource = _body_resource(request, res_type)
    match = _single_match(session, ctx, res_type, request, "update")
    if match is None:
        res_id = resource.get("id")
        if res_id is not None:
            if not isinstance(res_id, str):
                raise InvalidResource("The resource id must be a string", expression=f"{res_type}.id")
            if session.current(res_type, res_id) is not None:
                raise Conflict(
                    f"{res_type}/{res_id} exists but does not match the conditional update criteria"
                )
            stored, _ = session.update(admit(session, ctx, resource, res_id), res_id)
        else:
            stored = session.create(admit(session, ctx, resource))
        return FhirResponse.of_resource(201, stored, request.base_url, request.header("prefer"))
    if "id" in resource and resource["id"] != match.res_id:
        raise InvalidResource(
            f"The resource id '{resource['id']}' does not match the resource found ('{match.res_id}')",
            expression=f"{res_type}.id",
        )
    resource["id"] = match.res_id
    resource = admit(session, ctx, resource, match.res_id)
    stored, _ = session.update(resource, match.res_id, if_match=_parse_if_match(request.header("if-match")))
    return FhirResponse.of_resource(200, stored, request.base_url, request.header("prefer"))


def _conditional_delete(
    request: FhirRequest, session: StoreSession, ctx: RequestContext, res_type: str
) -> FhirResponse:
    match = _single_match(session, ctx, res_type, request, "delete")
    if match is not None:
        session.delete(res_type, match.res_id)
    return FhirResponse(204)


def _conditional_patch(
    request: FhirRequest, session: StoreSession, ctx: RequestContext, res_type: str
) -> FhirResponse:
    match = _single_match(session, ctx, res_type, request, "patch")
    if match is None:
        raise NotFound(f"No {res_type} matches the conditional patch criteria")
    return _patch(request, session, ctx, res_type, match.res_id)


def _search(request: FhirRequest, session: StoreSession, ctx: RequestContext, res_type: str) -> FhirResponse:
    params = list(request.params)
    if request.method.upper() == "POST":
        content_type = (request.header("content-type") or "").split(";")[0].strip()
        if content_type != "application/x-www-form-urlencoded":
            raise InvalidRequest("POST _search expects an application/x-www-form-urlencoded body")
        params += parse_qsl(request.body.decode(), keep_blank_values=True)
    strict = "handling=strict" in (request.header("prefer") or "").replace(" ", "")
    bundle = search.search_bundle(
        session,
        res_type,
        params,
        request.base_url,
        strict=strict,
        restriction=policy.search_restriction(ctx, res_type),
        visible=lambda pks: policy.restrict_pks(session, ctx, pks),
    )
    return FhirResponse.of_json(200, bundle)


def _history(
    request: FhirRequest, session: StoreSession, ctx: RequestContext, res_type: str | None, res_id: str | None
) -> FhirResponse:
    from socle.fhir.history import history_bundle

    if res_type is not None and res_id is not None:
        _check_reach(session, ctx, res_type, res_id)
    return FhirResponse.of_json(200, history_bundle(session, request, res_type, res_id))


def _operation(
    request: FhirRequest,
    session: StoreSession,
    ctx: RequestContext,
    res_type: str,
    res_id: str | None,
    name: str,
) -> FhirResponse:
    if (
        name == "$everything"
        and res_type == "Patient"
        and res_id is not None
        and request.method in ("GET", "POST")
    ):
        from socle.fhir.everything import patient_everything

        _check_reach(session, ctx, res_type, res_id)
        return FhirResponse.of_json(200, patient_everything(session, request, res_id))
    raise NotFound(f"Unknown operation '{name}' on {res_type}" + (f"/{res_id}" if res_id else ""))
