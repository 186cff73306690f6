"""/healthz and /metrics over real HTTP."""

from __future__ import annotations

from tests.toy_models import TOY_MODEL_ID


def test_healthz_reports_database_workers_and_models(live):
    with live.client() as client:
        body = client.get("/healthz").json()
    assert body == {
        "status": "ok",
        "database": True,
        "workers": True,
        "models": [TOY_MODEL_ID],
        "default_model": None,
    }


def test_metrics_count_requests_by_route_template(live):
    with live.client() as client:
        client.get("/v1/reconstructions/" + "ab" * 12, headers=live.auth("ivy"))
        client.get("/no/such/path")
        text = client.get("/metrics").text
    assert (
        'uunet_authority_http_requests_total{method="GET",route="/v1/reconstructions/{job_id}",'
        'status="404"} 1.0' in text
    )
    assert 'route="unmatched",status="404"' in text and "/no/such/path" not in text
    assert "uunet_authority_audit_records_total" in text
