"""Schemathesis against the live server's OpenAPI schema (bounded): no server errors, and
responses as documented (status codes, content types, bodies), for valid and invalid inputs.

Each operation runs with a token of the role it needs, so generated inputs reach the handlers
instead of stopping at 401 (the 401/403 paths are covered by the route tests)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.authority_service.conftest import settings_for, start_server

OPERATIONS = [
    "POST /v1/token",
    "GET /v1/me",
    "GET /v1/users",
    "POST /v1/users",
    "PATCH /v1/users/{name}",
    "POST /v1/users/{name}/unlock",
    "POST /v1/reconstructions",
    "GET /v1/reconstructions/{job_id}",
    "GET /v1/reconstructions/{job_id}/result",
    "GET /v1/reconstructions/{job_id}/preview/{which}.mp4",
    "GET /v1/reconstructions/{job_id}/faces",
    "POST /v1/frames:reconstruct",
    "GET /v1/approvals",
    "POST /v1/approvals/{job_id}/approve",
    "POST /v1/approvals/{job_id}/refuse",
    "GET /v1/audit",
    "GET /v1/audit/verify",
    "GET /healthz",
    "GET /metrics",
]
USER_BY_PREFIX = (
    ("/v1/users", "adam"),
    ("/v1/audit", "audrey"),
    ("/v1/reconstructions", "ivy"),
    ("/v1/frames", "ivy"),
    ("/v1/approvals", "april"),
    ("/v1/me", "ivy"),
)
EXAMPLES = 10  # per operation and mode: bounded, the whole module runs in well under a minute
# Every response check but "schema-valid data must be accepted": schema-valid bytes are rarely a
# valid de-identified frame with a verifiable message, and must be refused.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory, models_dir):
    # A login limit the generated token requests cannot reach, so 429 stays out of the way.
    server = start_server(settings_for(tmp_path_factory.mktemp("schema"), models_dir))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(served):
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json")


def test_every_operation_is_exercised(api_schema):
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_the_schema(api_schema, served, label, mode):
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None
    takes_input = bool(list(operation.iter_parameters())) or bool(operation.body)
    if mode is GenerationMode.NEGATIVE and not takes_input:
        pytest.skip("nothing to make invalid: the operation takes no input")
    user = next((u for prefix, u in USER_BY_PREFIX if operation.path.startswith(prefix)), None)
    headers = served.auth(user) if user else None

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()
    assert served.thread.is_alive()
