"""The console's headers, cookies and CSRF checks over plain HTTP against a real server."""

from __future__ import annotations

import re

import pytest

from authority_service.console.security import CONTENT_SECURITY_POLICY
from tests.authority_service.conftest import PASSWORD, reason
from tests.authority_service.console.client import HTML, JSON, ConsoleClient, main_text

CONSOLE_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _last_audit(live):
    return live.services.audit_log.records(limit=100_000)[-1]


def test_content_security_policy_is_the_strict_one():
    assert CONTENT_SECURITY_POLICY == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "media-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    )


def test_every_console_response_carries_the_security_headers(live):
    with ConsoleClient(live) as anonymous, ConsoleClient(live) as ivy, ConsoleClient(live) as au:
        responses = {
            "sign-in form": anonymous.get("/console/login"),
            "401 page": anonymous.get("/console/"),
            "static script": anonymous.get("/console/static/player.js"),
            "static style": anonymous.get("/console/static/console.css"),
            "404 page": anonymous.get("/console/no-such-page"),
            "sign-in redirect": ivy.sign_in("ivy"),
            "home": ivy.get("/console/"),
            "new request": ivy.get("/console/requests/new"),
            "single frame": ivy.get("/console/frames/new"),
            "403 page": ivy.get("/console/audit"),
            "json 404": ivy.get("/console/jobs/" + "0" * 24 + "/state", headers=JSON),
            "csrf refusal": ivy.post_form("/console/logout", {}, csrf="wrong"),
        }
        au.sign_in("audrey")
        responses["audit"] = au.get("/console/audit")
        responses["verify"] = au.get("/console/audit/verify")
    expected_status = {"401 page": 401, "404 page": 404, "403 page": 403, "json 404": 404}
    expected_status |= {"sign-in redirect": 303, "csrf refusal": 403}
    for name, response in responses.items():
        assert response.status_code == expected_status.get(name, 200), (name, response.text)
        for header, value in CONSOLE_HEADERS.items():
            assert response.headers.get(header) == value, (name, header, response.headers)
    assert responses["static script"].headers["content-type"].startswith("text/javascript")
    assert responses["json 404"].json()["error"] == "not_found"


def test_pages_hold_no_inline_script_or_style(live):
    with ConsoleClient(live) as ivy:
        ivy.sign_in("ivy")
        pages = [ivy.get(p).text for p in ("/console/", "/console/requests/new", "/console/login")]
    for html in pages:
        assert "<style" not in html and " style=" not in html
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", html)  # no onclick= and the like
        for script in html.split("<script")[1:]:
            assert script.startswith(' src="/console/static/') and "></script>" in script


def test_api_responses_are_not_cacheable(live):
    with live.client() as client:
        token = client.post("/v1/token", data={"username": "ivy", "password": PASSWORD})
        me = client.get("/v1/me", headers=live.auth("ivy"))
    for response in (token, me):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in response.headers  # the API serves no page


@pytest.mark.parametrize("https", [False, True])
def test_session_cookie_is_httponly_samesite_strict_and_secure_over_https(live, https):
    # The test server trusts forwarded headers from 127.0.0.1 (uvicorn's default; `serve`
    # trusts only server.forwarded_allow_ips), as a TLS-terminating proxy would send them.
    forwarded = {"X-Forwarded-Proto": "https"} if https else {}
    with live.client(headers=forwarded) as client:
        form = client.get("/console/login", headers=HTML)
        nonce = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        # httpx sends no Secure cookie over plain http; a browser behind the TLS proxy would.
        signed_in = client.post(
            "/console/login",
            data={"username": "ivy", "password": PASSWORD, "csrf": nonce},
            headers={**HTML, "Cookie": f"uunet_console_login={nonce}"},
        )
    assert signed_in.status_code == 303
    for response, name in ((form, "uunet_console_login="), (signed_in, "uunet_console=")):
        cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(name))
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "path", "max-age"} <= attributes
        assert "samesite=strict" in cookie.lower() and "path=/console" in cookie.lower()
        assert ("secure" in attributes) is https


def test_every_state_changing_request_without_the_csrf_token_is_refused_and_audited(live):
    with ConsoleClient(live) as ivy, ConsoleClient(live) as adam:
        ivy.sign_in("ivy")
        adam.sign_in("adam")
        attempts = [
            (ivy, "logout", lambda t: ivy.post_form("/console/logout", {}, csrf=t)),
            (
                ivy,
                "reconstruct_clip",
                lambda t: ivy.upload(
                    "/console/requests", {"clip": ("c.mkv", b"x" * 64)}, reason(), csrf=t
                ),
            ),
            (
                ivy,
                "extract_frame",
                lambda t: ivy.upload(
                    "/console/frames/extract", {"clip": ("c.mkv", b"x")}, {"frame": "0"}, csrf=t
                ),
            ),
            (
                adam,
                "add_user",
                lambda t: adam.post_form(
                    "/console/users",
                    {"name": "mallory", "role": "admin", "password": "p" * 20},
                    csrf=t,
                ),
            ),
            (
                adam,
                "update_user",
                lambda t: adam.post_form("/console/users/ivy", {"change": "disable"}, csrf=t),
            ),
        ]
        for client, action, send in attempts:
            for token in ("", "not-the-token"):
                response = send(token)
                assert response.status_code == 403, (action, response.text)
                if "json" in response.headers["content-type"]:
                    assert response.json()["error"] == "csrf_failed"
                else:
                    assert "csrf_failed" in main_text(response.text)
                record = _last_audit(live)
                assert (record.action, record.outcome) == (action, "refused")
                assert "csrf_failed" in record.detail
                assert record.actor == ("ivy" if client is ivy else "adam")
        # Nothing happened: ivy is still enabled and signed in, mallory does not exist.
        assert live.services.users.get("mallory") is None
        assert not live.services.users.get("ivy").disabled
        assert ivy.get("/console/").status_code == 200


def test_a_request_from_another_site_is_refused_even_with_the_token(live):
    with ConsoleClient(live) as ivy:
        ivy.sign_in("ivy")
        response = ivy.post_form(
            "/console/logout", {}, headers={**HTML, "Origin": "https://evil.example"}
        )
        assert response.status_code == 403 and "csrf_failed" in main_text(response.text)
        assert ivy.get("/console/").status_code == 200  # still signed in


def test_sec_fetch_site_cross_site_is_refused_and_origin_null_left_to_the_token(live):
    with ConsoleClient(live) as ivy:
        ivy.sign_in("ivy")
        cross = ivy.post_form(
            "/console/logout", {}, headers={**HTML, "Sec-Fetch-Site": "cross-site"}
        )
        assert cross.status_code == 403 and "csrf_failed" in main_text(cross.text)
        # Chromium sends Origin: null on form posts under Referrer-Policy: no-referrer.
        same_site = {**HTML, "Origin": "null", "Sec-Fetch-Site": "same-origin"}
        same = ivy.post_form("/console/logout", {}, headers=same_site)
        assert same.status_code == 303


def test_sign_in_without_its_form_nonce_is_refused_and_audited(live):
    with live.client() as client:
        response = client.post(
            "/console/login", data={"username": "ivy", "password": PASSWORD}, headers=HTML
        )
    assert response.status_code == 403
    assert "csrf_failed" in main_text(response.text)
    assert "set-cookie" not in response.headers or "uunet_console=" not in "".join(
        c for c in response.headers.get_list("set-cookie") if "Max-Age=0" not in c
    )
    record = _last_audit(live)
    assert (record.action, record.outcome, record.actor) == ("login", "refused", "ivy")
    assert "csrf_failed" in record.detail
