"""Socle's one error hierarchy.

Every failure a caller can cause is a `SocleError` carrying an HTTP status and one or more issues
(severity, FHIR issue-type code, element path, message). The FHIR API renders them as an
OperationOutcome, other APIs as JSON, the portal as a French page, the CLI as one line.

    raise InvalidResource([Issue("error", "structure", "Unknown element", expression="Patient.foo")])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue: what went wrong, where (FHIRPath-like element path), how badly."""

    severity: str  # fatal | error | warning | information
    code: str  # FHIR IssueType: invalid, structure, required, value, not-found, conflict, ...
    diagnostics: str
    expression: str | None = None

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            out["expression"] = [self.expression]
        return out


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


@dataclass
class SocleError(Exception):
    """Base of every error a caller can cause; `status` is the HTTP status it maps to."""

    issues: list[Issue] = field(default_factory=list)
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)

    def __init__(self, message_or_issues: str | list[Issue], *, expression: str | None = None) -> None:
        if isinstance(message_or_issues, str):
            issues = [Issue("error", self.default_code, message_or_issues, expression)]
        else:
            issues = message_or_issues
        self.issues = issues
        self.status = type(self).status
        self.headers = {}
        super().__init__("; ".join(i.diagnostics for i in issues))

    default_code = "processing"

    @property
    def message(self) -> str:
        return "; ".join(i.diagnostics for i in self.issues)


class InvalidRequest(SocleError):
    """Malformed request: bad JSON, bad parameter, unsupported format (400)."""

    status = 400
    default_code = "invalid"


class InvalidResource(SocleError):
    """A resource that breaks the FHIR structure rules (400; the issues name the element paths)."""

    status = 400
    default_code = "structure"


class Unauthorized(SocleError):
    status = 401
    default_code = "login"


class Forbidden(SocleError):
    status = 403
    default_code = "forbidden"


class NotFound(SocleError):
    status = 404
    default_code = "not-found"


class MethodNotAllowed(SocleError):
    status = 405
    default_code = "not-supported"


class NotAcceptable(SocleError):
    """The client asks for a format this server does not produce (406)."""

    status = 406
    default_code = "not-supported"


class UnsupportedMediaType(SocleError):
    """The request body is in a format this server does not read (415)."""

    status = 415
    default_code = "not-supported"


class Conflict(SocleError):
    """Version conflict or an identity clash (409)."""

    status = 409
    default_code = "conflict"


class Gone(SocleError):
    """The resource was deleted (410)."""

    status = 410
    default_code = "deleted"


class PreconditionFailed(SocleError):
    """If-Match mismatch or a conditional interaction matching several resources (412)."""

    status = 412
    default_code = "conflict"


class Unprocessable(SocleError):
    """Well-formed but breaks a business rule (422)."""

    status = 422
    default_code = "business-rule"
