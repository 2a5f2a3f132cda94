"""The auth routes: OIDC discovery, SMART configuration, the OAuth endpoints and the login pages.

Thin adapters: they read the request, call the provider (Authlib's server, the login checks) and
render JSON or a French HTML page. Every response gets security headers; HTML pages get a strict
CSP (no script at all), `no-store`, and forms carrying the session's CSRF token.

Mount `router` BEFORE the FHIR router: it serves `/fhir/.well-known/smart-configuration`, which
the FHIR catch-all route would otherwise swallow. The provider lives on `app.state.auth`; if the
app did not set one, it is built on first use from `app.state.store` and `app.state.settings`.

Other domains take the caller's identity with `require_access_claims` / `require_request_context`:

    @router.get("/x")
    def x(context: Annotated[RequestContext, Depends(require_request_context)]) -> ...
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Coroutine, Iterable
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlsplit

import jinja2
from authlib.oauth2.rfc6749 import OAuth2Error  # type: ignore[import-untyped]
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from socle.audit.authentication import AttemptedIdentifier, AuthEventKind
from socle.auth.accounts import Account, AccountKind, get_account
from socle.auth.audit import Caller, keyed_identifier, trace_login, trace_oauth, typed_identifier
from socle.auth.claims import identity_claims
from socle.auth.context import AccessClaims, RequestContext
from socle.auth.errors import InvalidToken, LoginRefused, TooManyAttempts
from socle.auth.logins import FirstFactor
from socle.auth.provider import AuthorizedUser, AuthProvider
from socle.auth.scopes import needs_launch_patient, parse_scope, scopes_for_actor, split_scopes
from socle.auth.server import SocleOAuth2Request, oauth_error_message
from socle.auth.sessions import BrowserSession
from socle.auth.tokens import bearer_token
from socle.errors import Forbidden, InvalidRequest, SocleError
from socle.store.repository import check_resource_id

_provider_lock = threading.Lock()


def get_provider(request: Request) -> AuthProvider:
    """The app's provider (`app.state.auth`), built on first use if the app did not build it."""
    state = request.app.state
    provider: AuthProvider | None = getattr(state, "auth", None)
    if provider is None:
        with _provider_lock:
            provider = getattr(state, "auth", None)
            if provider is None:
                provider = AuthProvider.for_app(state.store, state.settings)
                state.auth = provider
    return provider


def require_access_claims(request: Request) -> AccessClaims:
    """FastAPI dependency: the verified bearer token's claims, or 401 (`InvalidToken`)."""
    token = bearer_token(request.headers.get("authorization"))
    return get_provider(request).verifier.verify(token)


def require_request_context(request: Request) -> RequestContext:
    claims = require_access_claims(request)
    return RequestContext.from_claims(
        claims,
        request_id=request.headers.get("x-request-id"),
        source_ip=request.client.host if request.client else None,
    )


# -- security headers and error rendering ----------------------------------------------------------

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # codes and `next` URLs must not leak to other sites
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"


class SecureRoute(APIRoute):
    """Adds the security headers to every auth response and renders `SocleError` as OAuth JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def secured(request: Request) -> Response:
            try:
                response = await handler(request)
            except SocleError as error:
                response = _json_error(error)
            for name, value in BASE_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Content-Security-Policy", API_CSP)
            response.headers.setdefault("Cache-Control", "no-store")
            if request.url.scheme == "https":
                response.headers.setdefault(
                    "Strict-Transport-Security", "max-age=63072000; includeSubDomains"
                )
            return response

        return secured


def _json_error(error: SocleError) -> JSONResponse:
    code = (
        "invalid_token"
        if isinstance(error, InvalidToken)
        else error.issues[0].code
        if error.issues
        else "error"
    )
    if isinstance(error, Forbidden) and "insufficient_scope" in error.headers.get("WWW-Authenticate", ""):
        code = "insufficient_scope"
    body: dict[str, Any] = {"error": code, "error_description": error.message}
    if isinstance(error, InvalidToken):
        body["reason"] = error.reason
    return JSONResponse(body, status_code=error.status, headers=error.headers)


router = APIRouter(route_class=SecureRoute)

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("socle.auth", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
_CSS = files("socle.auth").joinpath("templates/auth.css").read_text(encoding="utf-8")


def _page(
    template: str, *, title: str, status: int = 200, form_targets: Iterable[str] = (), **context: Any
) -> HTMLResponse:
    html = _templates.get_template(template).render(title=title, error=context.pop("error", None), **context)
    response = HTMLResponse(html, status_code=status)
    # No script anywhere; forms post to us, and the consent form's redirect goes to the client
    # (browsers apply form-action to the redirect too).
    targets = " ".join(["'self'", *form_targets])
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'self'; img-src 'self'; form-action {targets}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _message(title: str, message: str, *, status: int = 200, logout_csrf: str | None = None) -> HTMLResponse:
    return _page("message.html", title=title, status=status, message=message, logout_csrf=logout_csrf)


def _csrf_refused() -> HTMLResponse:
    return _message(
        "Formulaire refusé",
        "Ce formulaire a expiré ou ne provient pas de ce site (jeton CSRF absent ou invalide). "
        "Rechargez la page de connexion et recommencez.",
        status=403,
    )


# -- sessions and cookies ---------------------------------------------------------------------------


def _cookie_name(provider: AuthProvider) -> str:
    # The __Host- prefix pins the cookie to this host, https and path / (browsers enforce it).
    return "__Host-socle_auth" if provider.https else "socle_auth"


def _current_session(request: Request, provider: AuthProvider) -> BrowserSession | None:
    return provider.sessions.load(request.cookies.get(_cookie_name(provider)))


def _set_cookie(response: Response, provider: AuthProvider, session: BrowserSession) -> None:
    response.set_cookie(
        _cookie_name(provider),
        session.session_id,
        max_age=provider.settings.auth_session_hours * 3600,
        path="/",
        secure=provider.https,
        httponly=True,
        samesite="lax",
    )


def _session_for_form(request: Request, provider: AuthProvider) -> tuple[BrowserSession, bool]:
    session = _current_session(request, provider)
    if session is not None:
        return session, False
    return provider.sessions.create(), True


def _authenticated_account(provider: AuthProvider, session: BrowserSession | None) -> Account | None:
    if session is None or session.account_id is None:
        return None
    account = get_account(provider.engine, session.account_id)
    return account if account is not None and not account.disabled else None


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _caller(request: Request) -> Caller:
    """Who is calling, for the audit trail: the request id (given or made) and the address."""
    given = (request.headers.get("x-request-id") or "").strip()
    request_id = given if given.isprintable() and 0 < len(given) <= 100 else uuid.uuid4().hex
    return Caller(request_id, request.client.host if request.client else None)


def _safe_next(value: str) -> str:
    """Only our own authorization endpoint is a valid destination after login (no open redirect)."""
    if value.startswith("/auth/authorize?") and not any(c in value for c in "\\\r\n"):
        return value
    return ""


def _next_query(next_url: str) -> str:
    return f"?next={quote(next_url, safe='')}" if next_url else ""


# -- discovery, keys, static -------------------------------------------------------------------------


def _public_json(body: dict[str, Any], max_age: int) -> JSONResponse:
    return JSONResponse(
        body,
        headers={"Cache-Control": f"public, max-age={max_age}", "Access-Control-Allow-Origin": "*"},
    )


@router.get("/.well-known/openid-configuration", include_in_schema=False)
def openid_configuration(request: Request) -> JSONResponse:
    return _public_json(get_provider(request).openid_configuration(), 3600)


@router.get("/fhir/.well-known/smart-configuration", include_in_schema=False)
def smart_configuration(request: Request) -> JSONResponse:
    return _public_json(get_provider(request).smart_configuration(), 3600)


@router.get("/auth/jwks", include_in_schema=False)
def jwks(request: Request) -> JSONResponse:
    # Short cache: after a rotation, verifiers must see the new key within minutes.
    return _public_json(get_provider(request).keyring.jwks(), 300)


@router.get("/auth/static/auth.css", include_in_schema=False)
def stylesheet() -> Response:
    return Response(_CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=86400"})


# -- token, introspection, revocation, userinfo ----------------------------------------------------


async def _oauth_request(request: Request) -> SocleOAuth2Request:
    form = await request.form()
    pairs = [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
    return SocleOAuth2Request("POST", str(request.url), request.headers, query=[], form=pairs)


def _oauth_json(result: tuple[int, Any, list[tuple[str, str]]]) -> JSONResponse:
    status, body, headers = result
    kept = {name: value for name, value in headers if name.lower() != "content-type"}
    kept["Access-Control-Allow-Origin"] = "*"  # browser SMART apps call these cross-origin
    return JSONResponse(body, status_code=status, headers=kept)


def _traced_oauth_call(
    provider: AuthProvider, caller: Caller, kind: AuthEventKind, oauth_request: SocleOAuth2Request
) -> tuple[int, Any, list[tuple[str, str]]]:
    """Run one OAuth endpoint (in a worker thread: Authlib is synchronous) and trace its outcome."""
    if kind == "token":
        result = provider.server.create_token_response(oauth_request)
    else:
        result = provider.server.create_endpoint_response(kind, oauth_request)
    status, body, _headers = result
    trace_oauth(provider, caller, kind, oauth_request, status, body)
    return result  # type: ignore[no-any-return]


@router.post("/auth/token", include_in_schema=False)
async def token(request: Request) -> JSONResponse:
    provider = await run_in_threadpool(get_provider, request)
    oauth_request = await _oauth_request(request)
    caller = _caller(request)
    return _oauth_json(await run_in_threadpool(_traced_oauth_call, provider, caller, "token", oauth_request))


@router.post("/auth/introspect", include_in_schema=False)
async def introspect(request: Request) -> JSONResponse:
    provider = await run_in_threadpool(get_provider, request)
    oauth_request = await _oauth_request(request)
    caller = _caller(request)
    result = await run_in_threadpool(_traced_oauth_call, provider, caller, "introspection", oauth_request)
    return _oauth_json(result)


@router.post("/auth/revoke", include_in_schema=False)
async def revoke(request: Request) -> JSONResponse:
    provider = await run_in_threadpool(get_provider, request)
    oauth_request = await _oauth_request(request)
    caller = _caller(request)
    result = await run_in_threadpool(_traced_oauth_call, provider, caller, "revocation", oauth_request)
    return _oauth_json(result)


@router.api_route("/auth/userinfo", methods=["GET", "POST"], include_in_schema=False)
def userinfo(request: Request) -> JSONResponse:
    provider = get_provider(request)
    claims = provider.verifier.verify(bearer_token(request.headers.get("authorization")))
    if "openid" not in claims.scopes or claims.actor_type == "system":
        error = Forbidden("The token was not granted the openid scope")
        error.headers = {
            "WWW-Authenticate": 'Bearer realm="socle", error="insufficient_scope", scope="openid"'
        }
        raise error
    account = get_account(provider.engine, claims.subject)
    if account is None or account.disabled:
        raise InvalidToken("revoked", "The account behind this token is closed")
    body = {"sub": account.account_id, **identity_claims(account, provider.fhir_base)}
    body["preferred_username"] = account.login
    return JSONResponse(body, headers={"Access-Control-Allow-Origin": "*"})


@router.options("/auth/userinfo", include_in_schema=False)
def userinfo_preflight() -> Response:
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": "Authorization",
            "Access-Control-Max-Age": "600",
        },
    )


# -- authorization endpoint --------------------------------------------------------------------------

SCOPE_LABELS = {
    "openid": "vous identifier",
    "profile": "connaître vos nom et prénom",
    "fhirUser": "connaître votre identité dans le dossier (patient ou professionnel)",
    "launch": "recevoir le contexte de lancement",
    "launch/patient": "savoir quel dossier patient est ouvert",
    "offline_access": "garder l'accès sans nouvelle connexion (jeton de rafraîchissement)",
    "online_access": "garder l'accès tant que vous restez connecté(e)",
}
INTERACTION_LABELS = {"c": "créer", "r": "lire", "u": "modifier", "d": "supprimer", "s": "rechercher"}
CONTEXT_LABELS = {
    "patient": "du dossier choisi",
    "user": "auxquelles vous avez accès",
    "system": "du système",
}


def describe_scope(scope: str) -> str:
    if scope in SCOPE_LABELS:
        return SCOPE_LABELS[scope]
    parsed = parse_scope(scope)
    if parsed is None:
        return scope
    verbs = ", ".join(INTERACTION_LABELS[i] for i in "cruds" if i in parsed.interactions)
    what = "toutes les données" if parsed.resource_type == "*" else f"les ressources {parsed.resource_type}"
    restricted = " (en partie)" if parsed.restriction else ""
    return f"{verbs} {what} {CONTEXT_LABELS[parsed.context]}{restricted}"


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def _authorization_failure(error: Any) -> Response:
    status, _body, headers = error()
    location = dict(headers).get("Location")
    if status == 302 and location:  # the client and its redirect URI are valid: tell the client
        return RedirectResponse(location, status_code=303)
    # Unknown client or bad redirect URI: never redirect anywhere (RFC 6749 §4.1.2.1).
    return _message("Demande d'autorisation invalide", oauth_error_message(error), status=400)


def _patient_choices(provider: AuthProvider, account: Account) -> list[dict[str, str]]:
    ids = [account.fhir_id, *account.represented_patients]
    choices = []
    with provider.store.session(readonly=True) as session:
        for patient_id in ids:
            stored = session.current("Patient", patient_id)
            label = patient_id
            if stored is not None and not stored.deleted:
                names = stored.json().get("name") or [{}]
                given = " ".join(names[0].get("given") or [])
                label = f"{given} {names[0].get('family', '')}".strip() or patient_id
            if patient_id == account.fhir_id:
                label = f"{label} (moi)"
            choices.append({"id": patient_id, "label": label})
    return choices


def _consent_page(
    provider: AuthProvider,
    session: BrowserSession,
    account: Account,
    grant: Any,
    request_query: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    scopes = scopes_for_actor(split_scopes(grant.request.scope or ""), account.actor_type)
    launch = needs_launch_patient(scopes)
    return _page(
        "consent.html",
        title="Autoriser l'accès",
        status=status,
        error=error,
        form_targets=[_origin(grant.redirect_uri)],
        account_display=account.display,
        client_name=grant.request.client.name,
        scope_labels=[describe_scope(s) for s in scopes],
        csrf_token=session.csrf_token,
        request_query=request_query,
        patient_choices=_patient_choices(provider, account) if launch and account.kind == "citizen" else [],
        patient_input=launch and account.kind == "professional",
    )


@router.get("/auth/authorize", include_in_schema=False)
def authorize(request: Request) -> Response:
    provider = get_provider(request)
    session = _current_session(request, provider)
    account = _authenticated_account(provider, session)
    query = list(request.query_params.multi_items())
    oauth_request = SocleOAuth2Request("GET", str(request.url), request.headers, query=query, form=[])
    try:
        grant = provider.server.get_consent_grant(oauth_request, end_user=account)
    except OAuth2Error as error:
        return _authorization_failure(error)
    prompts = (request.query_params.get("prompt") or "").split()
    stale = session is not None and (session.auth_time or 0) < provider.clock() - 60
    if account is None or session is None or ("login" in prompts and stale):
        login_url = "/auth/login" + _next_query(f"/auth/authorize?{request.url.query}")
        return RedirectResponse(login_url, status_code=303)
    return _consent_page(provider, session, account, grant, request.url.query)


@router.post("/auth/authorize", include_in_schema=False)
def authorize_decision(
    request: Request,
    csrf_token: Annotated[str, Form()] = "",
    request_query: Annotated[str, Form(alias="request")] = "",
    decision: Annotated[str, Form()] = "",
    patient: Annotated[str, Form()] = "",
) -> Response:
    provider = get_provider(request)
    session = _current_session(request, provider)
    if session is None or not session.csrf_matches(csrf_token):
        return _csrf_refused()
    account = _authenticated_account(provider, session)
    if account is None:
        login_url = "/auth/login" + _next_query(_safe_next(f"/auth/authorize?{request_query}"))
        return RedirectResponse(login_url, status_code=303)
    pairs = parse_qsl(request_query, keep_blank_values=True)
    oauth_request = SocleOAuth2Request("GET", str(request.url), request.headers, query=pairs, form=[])
    try:
        grant = provider.server.get_consent_grant(oauth_request, end_user=account)
    except OAuth2Error as error:
        return _authorization_failure(error)
    if decision != "autoriser":
        result = provider.server.create_authorization_response(oauth_request, grant_user=None, grant=grant)
        return RedirectResponse(dict(result[2])["Location"], status_code=303)
    launch_patient = None
    scopes = scopes_for_actor(split_scopes(oauth_request.scope or ""), account.actor_type)
    if needs_launch_patient(scopes):
        launch_patient = _chosen_patient(provider, account, patient)
        if launch_patient is None:
            return _consent_page(
                provider,
                session,
                account,
                grant,
                request_query,
                error="Choisissez un dossier patient valide.",
                status=400,
            )
    user = AuthorizedUser(
        account=account, launch_patient=launch_patient, auth_time=session.auth_time or 0, amr=session.amr
    )
    status, _body, headers = provider.server.create_authorization_response(
        oauth_request, grant_user=user, grant=grant
    )
    location = dict(headers).get("Location")
    if location is None:
        return _message("Autorisation impossible", "La demande n'a pas pu aboutir.", status=status)
    return RedirectResponse(location, status_code=303)


def _chosen_patient(provider: AuthProvider, account: Account, submitted: str) -> str | None:
    """The launch patient: for a citizen, themselves or a minor they represent; for a professional,
    an existing Patient (whether they may open it is the policy layer's decision, per request)."""
    patient_id = submitted.strip().removeprefix("Patient/")
    if not patient_id:
        return None
    if account.kind == "citizen":
        return patient_id if patient_id in {account.fhir_id, *account.represented_patients} else None
    try:
        check_resource_id(patient_id)
    except SocleError:
        return None
    with provider.store.session(readonly=True) as session:
        return patient_id if session.exists("Patient", patient_id) else None


# -- login pages -------------------------------------------------------------------------------------


def _with_cookie(
    response: Response, provider: AuthProvider, session: BrowserSession, created: bool
) -> Response:
    if created:
        _set_cookie(response, provider, session)
    return response


@router.get("/auth/login", include_in_schema=False)
def login_choice(request: Request, next: str = "") -> HTMLResponse:
    return _page("choose.html", title="Connexion", next_query=_next_query(_safe_next(next)))


# The two first-factor forms: (template, page title).
PRO_LOGIN = ("login_pro.html", "Connexion professionnel de santé")
CITIZEN_LOGIN = ("login_citizen.html", "Connexion à mon espace santé")


def _login_page(
    form: tuple[str, str],
    session: BrowserSession,
    next_url: str,
    *,
    status: int = 200,
    error: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A first-factor form; the submitted login is never echoed back (the page is the same whoever
    was tried)."""
    template, title = form
    page = _page(
        template, title=title, status=status, error=error, csrf_token=session.csrf_token, next=next_url
    )
    page.headers.update(headers or {})
    return page


def _login_form(request: Request, form: tuple[str, str], next: str) -> Response:
    provider = get_provider(request)
    session, created = _session_for_form(request, provider)
    return _with_cookie(_login_page(form, session, _safe_next(next)), provider, session, created)


@router.get("/auth/login/pro", include_in_schema=False)
def login_professional_form(request: Request, next: str = "") -> Response:
    return _login_form(request, PRO_LOGIN, next)


@router.post("/auth/login/pro", include_in_schema=False)
def login_professional(
    request: Request,
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
    id_nat_ps: Annotated[str, Form()] = "",
) -> Response:
    provider = get_provider(request)
    attempted = typed_identifier("professional", id_nat_ps)

    def verify() -> FirstFactor:
        return provider.logins.professional_first_factor(id_nat_ps)

    def traced(caller: Caller, first: FirstFactor) -> None:
        # The idNatPs alone proves nothing (the code decides): the trace names no account either way.
        trace_login(
            provider,
            caller,
            "login-first-factor",
            "0",
            attempted=attempted,
            description="idNatPs présenté ; le code de vérification décide",
        )

    return _first_factor(
        request,
        PRO_LOGIN,
        csrf_token,
        next,
        attempted,
        verify,
        traced,
        refused=(InvalidRequest, 400),
    )


def _first_factor(
    request: Request,
    form: tuple[str, str],
    csrf_token: str,
    next: str,
    attempted: AttemptedIdentifier,
    verify: Callable[[], FirstFactor],
    traced: Callable[[Caller, FirstFactor], None],
    *,
    refused: tuple[type[SocleError], int],
) -> Response:
    """The first step of both logins: CSRF, the per-address limit, the check, its trace, then TOTP.

    `verify` runs the account-kind's check (lock-outs included), `traced` writes its success
    trace; a refusal (`refused`: the error type and the page's status) shows the form again.
    """
    provider = get_provider(request)
    session = _current_session(request, provider)
    if session is None or not session.csrf_matches(csrf_token):
        return _csrf_refused()
    next_url = _safe_next(next)

    def again(error: str, status: int, headers: dict[str, str] | None = None) -> Response:
        return _login_page(form, session, next_url, status=status, error=error, headers=headers)

    if not provider.attempts.allow(_client_address(request)):
        return again(TOO_MANY_FROM_ADDRESS, 429, {"Retry-After": "60"})
    caller = _caller(request)
    refused_type, refused_status = refused
    try:
        first = verify()
    except TooManyAttempts as error:
        _trace_locked(provider, caller, "login-first-factor", error, attempted)
        return again(error.message, 429, error.headers)
    except refused_type as error:
        trace_login(
            provider, caller, "login-first-factor", "4", attempted=attempted, description=error.message
        )
        return again(error.message, refused_status)
    traced(caller, first)
    provider.sessions.begin_second_factor(
        session, kind=first.kind, login_key=first.login_key, account_id=first.account_id
    )
    return RedirectResponse("/auth/login/totp" + _next_query(next_url), status_code=303)


TOO_MANY_FROM_ADDRESS = "Trop de tentatives depuis votre adresse : réessayez dans une minute."


def _trace_locked(
    provider: AuthProvider,
    caller: Caller,
    step: AuthEventKind,
    error: TooManyAttempts,
    attempted: AttemptedIdentifier,
) -> None:
    """The failure that sets a lock is a lock-out (serious); an attempt during one is a refusal."""
    if error.locks_now:
        trace_login(provider, caller, "lockout", "8", attempted=attempted, description=error.message)
    else:
        trace_login(provider, caller, step, "4", attempted=attempted, description=error.message)


@router.get("/auth/login/citoyen", include_in_schema=False)
def login_citizen_form(request: Request, next: str = "") -> Response:
    return _login_form(request, CITIZEN_LOGIN, next)


@router.post("/auth/login/citoyen", include_in_schema=False)
def login_citizen(
    request: Request,
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
    login: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    provider = get_provider(request)

    def verify() -> FirstFactor:
        return provider.logins.citizen_first_factor(login, password)

    def traced(caller: Caller, first: FirstFactor) -> None:
        account = get_account(provider.engine, first.account_id) if first.account_id else None
        trace_login(
            provider, caller, "login-first-factor", "0", account=account, description="mot de passe vérifié"
        )

    return _first_factor(
        request,
        CITIZEN_LOGIN,
        csrf_token,
        next,
        typed_identifier("citizen", login),
        verify,
        traced,
        refused=(LoginRefused, 401),
    )


TOTP_HINTS = {
    "professional": "Saisissez le code affiché par votre application e-CPS.",
    "citizen": "Saisissez le code affiché par votre application d'authentification.",
}


@router.get("/auth/login/totp", include_in_schema=False)
def second_factor_form(request: Request, next: str = "") -> Response:
    provider = get_provider(request)
    session = _current_session(request, provider)
    if session is None or not provider.sessions.pending_step_valid(session):
        return RedirectResponse("/auth/login" + _next_query(_safe_next(next)), status_code=303)
    return _page(
        "totp.html",
        title="Code de vérification",
        csrf_token=session.csrf_token,
        next=_safe_next(next),
        hint=TOTP_HINTS.get(session.pending_kind or "", ""),
    )


@router.post("/auth/login/totp", include_in_schema=False)
def second_factor(
    request: Request,
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
) -> Response:
    provider = get_provider(request)
    session = _current_session(request, provider)
    if session is None or not session.csrf_matches(csrf_token):
        return _csrf_refused()
    next_url = _safe_next(next)
    if not provider.sessions.pending_step_valid(session) or session.pending_login_key is None:
        return RedirectResponse("/auth/login" + _next_query(next_url), status_code=303)
    kind: AccountKind = "professional" if session.pending_kind == "professional" else "citizen"

    def again(error: str, status: int, headers: dict[str, str] | None = None) -> Response:
        page = _page(
            "totp.html",
            title="Code de vérification",
            status=status,
            error=error,
            csrf_token=session.csrf_token,
            next=next_url,
            hint=TOTP_HINTS[kind],
        )
        page.headers.update(headers or {})
        return page

    if not provider.attempts.allow(_client_address(request)):
        return again(TOO_MANY_FROM_ADDRESS, 429, {"Retry-After": "60"})
    first = FirstFactor(kind, session.pending_login_key, session.pending_account_id)
    caller, attempted = _caller(request), keyed_identifier(session.pending_login_key)
    try:
        account = provider.logins.second_factor(first, code)
    except LoginRefused as error:
        trace_login(
            provider, caller, "login-second-factor", "4", attempted=attempted, description=error.message
        )
        return again(error.message, 401)
    except TooManyAttempts as error:
        _trace_locked(provider, caller, "login-second-factor", error, attempted)
        return again(error.message, 429, error.headers)
    amr = ("otp",) if kind == "professional" else ("pwd", "otp", "mfa")
    trace_login(
        provider,
        caller,
        "login-second-factor",
        "0",
        account=account,
        description=f"connecté ({'+'.join(amr)})",
    )
    fresh = provider.sessions.authenticate(session, account_id=account.account_id, amr=amr)
    if next_url:
        response: Response = RedirectResponse(next_url, status_code=303)
    else:
        response = _message(
            "Connexion réussie", f"Vous êtes connecté(e) : {account.display}.", logout_csrf=fresh.csrf_token
        )
    _set_cookie(response, provider, fresh)
    return response


@router.post("/auth/logout", include_in_schema=False)
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    provider = get_provider(request)
    session = _current_session(request, provider)
    if session is None or not session.csrf_matches(csrf_token):
        return _csrf_refused()
    account = _authenticated_account(provider, session)
    provider.sessions.end(session)
    trace_login(provider, _caller(request), "logout", "0", account=account, description="session terminée")
    response = _message("Déconnexion", "Vous êtes déconnecté(e).")
    response.delete_cookie(
        _cookie_name(provider), path="/", secure=provider.https, httponly=True, samesite="lax"
    )
    return response


@router.get("/auth/demo/callback", include_in_schema=False)
def demo_callback(
    code: str = "", state: str = "", error: str = "", error_description: str = ""
) -> HTMLResponse:
    """Where the demo SMART app (`demo-app`) lands: shows what came back, to exchange by hand."""
    if error:
        return _message("Application de démonstration", f"Autorisation refusée : {error} {error_description}")
    return _message(
        "Application de démonstration",
        f"Code d'autorisation reçu : {code} (state : {state}). Échangez-le sur /auth/token "
        "avec le code_verifier PKCE de la demande.",
    )
