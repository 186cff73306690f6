"""A plain-HTTP client of the console (no browser): it signs in through the sign-in form and
sends each form's CSRF token, as a browser would."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.authority_service.conftest import PASSWORD, LiveServer

HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_of(html: str) -> str:
    """The CSRF token a page carries (its meta tag, else its first form field)."""
    meta = _CSRF_META.search(html)
    if meta and meta.group(1):
        return meta.group(1)
    found = _CSRF_FIELD.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def main_text(html: str) -> str:
    """The text of a page's <main>, tags and extra spaces removed (for assertions)."""
    body = re.search(r"<main>(.*)</main>", html, re.S)
    text = re.sub(r"<[^>]+>", " ", body.group(1) if body else html)
    return re.sub(r"\s+", " ", text).replace("&#39;", "'").strip()


class ConsoleClient:
    """One browser's worth of cookies against a live server."""

    def __init__(self, live: LiveServer, **kwargs: Any) -> None:
        self.live = live
        self.http = httpx.Client(base_url=live.url, timeout=30, follow_redirects=False, **kwargs)
        self.csrf = ""

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", HTML)
        response = self.http.get(path, **kwargs)
        if "text/html" in response.headers.get("content-type", ""):
            meta = _CSRF_META.search(response.text)
            if meta and meta.group(1):
                self.csrf = meta.group(1)
        return response

    def sign_in(self, user: str, password: str = PASSWORD, **headers: str) -> httpx.Response:
        form = self.get("/console/login")
        nonce = _CSRF_FIELD.search(form.text)
        assert nonce, form.text
        response = self.http.post(
            "/console/login",
            data={"username": user, "password": password, "csrf": nonce.group(1)},
            headers={**HTML, **headers},
        )
        if response.status_code == 303:
            self.get("/console/")  # picks up the session's CSRF token
        return response

    def post_form(
        self, path: str, data: dict[str, str], *, csrf: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """POST a urlencoded form with the session's CSRF token (or ``csrf`` instead)."""
        kwargs.setdefault("headers", HTML)
        token = self.csrf if csrf is None else csrf
        return self.http.post(path, data={**data, "csrf": token}, **kwargs)

    def upload(
        self,
        path: str,
        files: dict[str, Any],
        data: dict[str, str] | None = None,
        *,
        csrf: str | None = None,
    ) -> httpx.Response:
        """POST multipart as the pages' scripts do: the CSRF token in ``X-CSRF-Token``."""
        token = self.csrf if csrf is None else csrf
        headers = {**JSON, **({"X-CSRF-Token": token} if token else {})}
        return self.http.post(path, files=files, data=data or {}, headers=headers)
