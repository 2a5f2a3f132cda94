"""The login pages: two factors, lock-out, no user enumeration, CSRF, session hygiene, headers."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from socle.auth.accounts import totp_now
from socle.auth.provider import AuthProvider
from tests.auth.conftest import FakeClock
from tests.auth.helpers import PASSWORD, citizen, csrf_of, login_citizen, login_professional, professional


def post_citizen(web: TestClient, login: str, password: str, csrf: str | None = None) -> tuple[int, str]:
    csrf = csrf if csrf is not None else csrf_of(web.get("/auth/login/citoyen"))
    response = web.post(
        "/auth/login/citoyen", data={"csrf_token": csrf, "login": login, "password": password}
    )
    return response.status_code, response.text


def test_citizen_logs_in_with_password_then_totp(web: TestClient, provider: AuthProvider) -> None:
    enrolled = citizen(provider)
    before = web.cookies.get("socle_auth")
    response = login_citizen(web, provider, enrolled)
    assert response.status_code == 200 and "Vous êtes connecté(e) : Jeanne Martin" in response.text
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # http in tests
    assert web.cookies.get("socle_auth") != before  # a new session id after login (no fixation)


def test_professional_needs_the_totp_code(web: TestClient, provider: AuthProvider, clock: FakeClock) -> None:
    enrolled = professional(provider)
    form = web.get("/auth/login/pro")
    web.post("/auth/login/pro", data={"csrf_token": csrf_of(form), "id_nat_ps": enrolled.account.login})
    page = web.get("/auth/login/totp")
    wrong = web.post("/auth/login/totp", data={"csrf_token": csrf_of(page), "code": "000000"})
    assert wrong.status_code == 401 and "Identifiant ou code de vérification incorrect." in wrong.text
    assert login_professional(web, provider, enrolled).status_code == 200


def test_a_totp_code_works_once(web: TestClient, provider: AuthProvider, clock: FakeClock) -> None:
    enrolled = professional(provider)
    assert login_professional(web, provider, enrolled).status_code == 200
    web.cookies.clear()
    replay = login_professional(web, provider, enrolled)  # same 30 s step, same code
    assert replay.status_code == 401
    clock.advance(30)
    web.cookies.clear()
    assert login_professional(web, provider, enrolled).status_code == 200


def test_unknown_idnatps_gets_the_totp_page_like_a_known_one(web: TestClient, provider: AuthProvider) -> None:
    professional(provider)
    pages = []
    for id_nat_ps in ("810001234565", "899999999999"):
        web.cookies.clear()
        form = web.get("/auth/login/pro")
        step = web.post("/auth/login/pro", data={"csrf_token": csrf_of(form), "id_nat_ps": id_nat_ps})
        assert step.status_code == 303 and step.headers["location"] == "/auth/login/totp"
        page = web.get("/auth/login/totp")
        answer = web.post("/auth/login/totp", data={"csrf_token": csrf_of(page), "code": "123456"})
        pages.append((answer.status_code, answer.text.replace(csrf_of(page), "CSRF")))
    assert pages[0] == pages[1]


def test_no_user_enumeration_on_the_password_step(web: TestClient, provider: AuthProvider) -> None:
    enrolled = citizen(provider)
    csrf = csrf_of(web.get("/auth/login/citoyen"))
    unknown_started = time.perf_counter()
    unknown = post_citizen(web, "nobody@example.fr", "whatever-password", csrf)
    unknown_took = time.perf_counter() - unknown_started
    wrong_started = time.perf_counter()
    wrong = post_citizen(web, enrolled.account.login, "wrong-password-123", csrf)
    wrong_took = time.perf_counter() - wrong_started
    assert unknown == wrong  # same status, byte-identical page
    assert unknown[0] == 401 and "Identifiant ou mot de passe incorrect." in unknown[1]
    assert "nobody@example.fr" not in unknown[1]
    # Both paths run one Argon2 verification; at test cost that is noise, so only a gross gap fails.
    assert abs(unknown_took - wrong_took) < 0.25


def test_lock_out_after_repeated_failures_whether_the_account_exists_or_not(
    web: TestClient, provider: AuthProvider, clock: FakeClock
) -> None:
    enrolled = citizen(provider)
    threshold = provider.settings.auth_lockout_threshold
    for login in (enrolled.account.login, "ghost@example.fr"):
        for _ in range(threshold - 1):
            assert post_citizen(web, login, "wrong-password-123")[0] == 401
        status, text = post_citizen(web, login, "wrong-password-123")
        assert status == 429
        assert "Compte temporairement verrouillé : réessayez dans 15 minutes" in text
    # While locked, even the right password is refused, with the same message.
    status, text = post_citizen(web, enrolled.account.login, PASSWORD)
    assert status == 429 and "Compte temporairement verrouillé" in text
    clock.advance(14 * 60)
    assert "réessayez dans 1 minute" in post_citizen(web, enrolled.account.login, PASSWORD)[1]
    clock.advance(61)
    assert login_citizen(web, provider, enrolled).status_code == 200


def test_totp_failures_count_toward_the_lock_out(web: TestClient, provider: AuthProvider) -> None:
    enrolled = professional(provider)
    form = web.get("/auth/login/pro")
    web.post("/auth/login/pro", data={"csrf_token": csrf_of(form), "id_nat_ps": enrolled.account.login})
    page = web.get("/auth/login/totp")
    statuses = [
        web.post("/auth/login/totp", data={"csrf_token": csrf_of(page), "code": "000000"}).status_code
        for _ in range(provider.settings.auth_lockout_threshold)
    ]
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}
    right = totp_now(enrolled.totp_secret, provider.clock())
    locked = web.post("/auth/login/totp", data={"csrf_token": csrf_of(page), "code": right})
    assert locked.status_code == 429


def test_attempts_per_address_are_throttled(web: TestClient, provider: AuthProvider) -> None:
    csrf = csrf_of(web.get("/auth/login/citoyen"))
    limit = provider.settings.auth_login_attempts_per_minute
    statuses = [
        post_citizen(web, f"user{i}@example.fr", "wrong-password-123", csrf)[0] for i in range(limit + 1)
    ]
    assert statuses[-1] == 429 and 429 not in statuses[:-1]


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/auth/login/citoyen", {"login": "a@example.fr", "password": "x"}),
        ("/auth/login/pro", {"id_nat_ps": "810001234565"}),
        ("/auth/login/totp", {"code": "123456"}),
        ("/auth/authorize", {"request": "client_id=app", "decision": "autoriser"}),
        ("/auth/logout", {}),
    ],
)
def test_forms_without_a_valid_csrf_token_are_refused(
    web: TestClient, provider: AuthProvider, path: str, fields: dict[str, str]
) -> None:
    csrf = csrf_of(web.get("/auth/login/citoyen"))  # a session exists
    missing = web.post(path, data=fields)
    assert missing.status_code == 403 and "jeton CSRF" in missing.text
    wrong = web.post(path, data={**fields, "csrf_token": csrf[:-2] + "xx"})
    assert wrong.status_code == 403
    web.cookies.clear()  # a right token from another session is no good either
    assert web.post(path, data={**fields, "csrf_token": csrf}).status_code == 403


def test_pages_carry_security_headers(web: TestClient, provider: AuthProvider) -> None:
    page = web.get("/auth/login/citoyen")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert web.get("/auth/static/auth.css").headers["content-type"].startswith("text/css")


def test_next_only_leads_to_our_authorization_endpoint(web: TestClient, provider: AuthProvider) -> None:
    enrolled = citizen(provider)
    response = login_citizen(web, provider, enrolled, next_url="https://evil.example/")
    assert response.status_code == 200  # no redirect to the foreign site


def test_logout_ends_the_session(web: TestClient, provider: AuthProvider) -> None:
    enrolled = citizen(provider)
    logged_in = login_citizen(web, provider, enrolled)
    out = web.post("/auth/logout", data={"csrf_token": csrf_of(logged_in)})
    assert out.status_code == 200 and "déconnecté" in out.text
