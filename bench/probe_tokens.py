"""The security probe, part 1: every route with every kind of bad credential."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import jwt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.probe_harness import (  # noqa: E402
    EXTRA_PUBLIC_PATHS,
    ISSUER,
    PUBLIC_PATHS,
    REASON,
    ROLE_BY_PREFIX,
    ROLES,
    SETUP_ADDRESS,
    Authority,
)

log = logging.getLogger("security_probe")


# -- tokens -----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(sub: str, role: str, gen: int = 0, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": ISSUER,
        "sub": sub,
        "role": role,
        "gen": gen,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": secrets.token_hex(8),
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _alg_none(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def bad_credentials(key: bytes, real: dict[str, str]) -> dict[str, dict[str, str]]:
    """Headers of every kind of bad credential; ``real``: tokens of the disabled, re-enabled
    and re-passworded users (obtained before the change)."""
    now = int(time.time())
    other_key = secrets.token_urlsafe(48).encode()

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def signed(
        claims: dict[str, Any], alg: str = "HS256", signing_key: bytes = key
    ) -> dict[str, str]:
        return bearer(jwt.encode(claims, signing_key, algorithm=alg))

    return {
        "none": {},
        "basic_scheme": {"Authorization": "Basic " + _b64(b"adam:password")},
        "empty_bearer": {"Authorization": "Bearer"},
        "garbage": bearer("not-a-token"),
        "garbage_jwt_shape": bearer("aaaa.bbbb.cccc"),
        "other_key": signed(_claims("adam", "admin"), signing_key=other_key),
        "alg_none": bearer(_alg_none(_claims("adam", "admin"))),
        "hs512_real_key": signed(_claims("adam", "admin"), alg="HS512"),
        "expired": signed(_claims("adam", "admin", iat=now - 1200, nbf=now - 1200, exp=now - 600)),
        "not_yet_valid": signed(_claims("adam", "admin", nbf=now + 600)),
        "wrong_audience": signed(_claims("adam", "admin", aud="someone-else")),
        "wrong_issuer": signed(_claims("adam", "admin", iss="someone-else")),
        "missing_exp": signed(_claims("adam", "admin", exp=None)),
        "missing_jti": signed(_claims("adam", "admin", jti=None)),
        "unknown_user": signed(_claims("ghost", "admin")),
        "stale_generation": signed(_claims("adam", "admin", gen=99)),
        "disabled_user": bearer(real["disabled"]),
        "reenabled_user_old_token": bearer(real["reenabled"]),
        "password_changed_old_token": bearer(real["repassworded"]),
    }


# -- 1. bad tokens ----------------------------------------------------------------------------


def _required_role(path: str) -> tuple[bool, str | None]:
    for prefix, role in ROLE_BY_PREFIX:
        if path.startswith(prefix):
            return True, role
    return False, None


def _fill(path: str, parameters: list[dict[str, Any]]) -> str:
    for param in parameters:
        if param.get("in") != "path":
            continue
        name = param["name"]
        value = {"name": "ivy", "job_id": "0" * 24}.get(name, "dummy")
        path = path.replace("{" + name + "}", value)
    return path


def _body(operation: dict[str, Any]) -> dict[str, Any]:
    content = operation.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content:
        props = content["multipart/form-data"].get("schema", {}).get("properties", {})
        files = {
            n: ("probe.bin", b"\x00" * 64, "application/octet-stream")
            for n, p in props.items()
            if p.get("format") == "binary"
        }
        data = {n: REASON.get(n, "probe value") for n, p in props.items() if n not in files}
        return {"files": files, "data": data}
    if "application/json" in content:
        return {"json": {}}
    if "application/x-www-form-urlencoded" in content:
        return {"data": {}}
    return {}


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error"))
    except (ValueError, AttributeError):
        return "(not a JSON error)"


def probe_bad_tokens(auth: Authority, admin: str) -> dict[str, Any]:
    """Every route x every bad credential; wrong roles on role-gated routes."""
    with auth.client(SETUP_ADDRESS, headers={"Authorization": f"Bearer {admin}"}) as client:
        for name, role in (("dora", "admin"), ("erin", "auditor"), ("rex", "investigator")):
            body = {"name": name, "role": role, "password": auth.keys.password(name)}
            client.post("/v1/users", json=body).raise_for_status()
        real = {
            "disabled": auth.login("dora"),
            "reenabled": auth.login("erin"),
            "repassworded": auth.login("rex"),
        }
        for patch in (
            ("dora", {"disabled": True}),
            ("erin", {"disabled": True}),
            ("erin", {"disabled": False}),
            ("rex", {"password": secrets.token_urlsafe(18)}),
        ):
            client.patch(f"/v1/users/{patch[0]}", json=patch[1]).raise_for_status()
    tokens = {
        role: auth.login(user)
        for user, role in (
            ("adam", "admin"),
            ("audrey", "auditor"),
            ("ivy", "investigator"),
            ("april", "approver"),
        )
    }
    users = {"admin": "adam", "auditor": "audrey", "investigator": "ivy", "approver": "april"}
    gens = {
        role: jwt.decode(t, options={"verify_signature": False})["gen"]
        for role, t in tokens.items()
    }
    kinds = bad_credentials(auth.keys.jwt_key, real)

    with auth.client("127.0.0.1") as client:
        spec = client.get("/openapi.json").json()
        routes = []
        for path, item in sorted(spec["paths"].items()):
            for method, operation in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    params = operation.get("parameters", []) + item.get("parameters", [])
                    routes.append((method.upper(), path, _fill(path, params), operation))
        per_kind: dict[str, Counter[int]] = {k: Counter() for k in kinds}
        per_kind.update({"wrong_role": Counter(), "forged_role_claim": Counter()})
        codes: dict[str, Counter[str]] = {k: Counter() for k in per_kind}
        unexpected, public, cases, refused = [], [], 0, 0

        def send(
            method: str, url: str, operation: dict[str, Any], headers: dict[str, str]
        ) -> httpx.Response:
            return client.request(method, url, headers=headers, **_body(operation))

        for method, path, url, operation in routes:
            protected, role = _required_role(path)
            if path in PUBLIC_PATHS or not protected:
                for kind in ("none", "garbage"):
                    response = send(method, url, operation, kinds[kind])
                    public.append(
                        {
                            "route": f"{method} {path}",
                            "credential": kind,
                            "status": response.status_code,
                        }
                    )
                continue
            trials = [(kind, headers, 401) for kind, headers in kinds.items()]
            if role is not None:
                for other in ROLES:
                    if other == role:
                        continue
                    trials.append(("wrong_role", {"Authorization": f"Bearer {tokens[other]}"}, 403))
                    forged = jwt.encode(
                        _claims(users[other], role, gens[other]),
                        auth.keys.jwt_key,
                        algorithm="HS256",
                    )
                    trials.append(("forged_role_claim", {"Authorization": f"Bearer {forged}"}, 403))
            for kind, headers, expected in trials:
                response = send(method, url, operation, headers)
                cases += 1
                per_kind[kind][response.status_code] += 1
                codes[kind][_error_code(response)] += 1
                if response.status_code in (401, 403):
                    refused += 1
                if response.status_code != expected:
                    unexpected.append(
                        {
                            "route": f"{method} {path}",
                            "url": url,
                            "credential": kind,
                            "expected": expected,
                            "status": response.status_code,
                            "body": response.text[:400],
                        }
                    )
        for path in EXTRA_PUBLIC_PATHS:
            public.append(
                {
                    "route": f"GET {path}",
                    "credential": "none",
                    "status": client.get(path).status_code,
                }
            )
    return {
        "routes": [f"{m} {p}" for m, p, _, _ in routes],
        "protected_routes": sum(1 for _, p, _, _ in routes if p not in PUBLIC_PATHS),
        "credential_kinds": [*kinds, "wrong_role", "forged_role_claim"],
        "cases": cases,
        "refused_401_or_403": refused,
        "status_counts_by_kind": {k: dict(sorted(v.items())) for k, v in per_kind.items()},
        "error_codes_by_kind": {k: dict(sorted(v.items())) for k, v in codes.items()},
        "not_as_expected": unexpected,
        "public_routes": public,
    }
