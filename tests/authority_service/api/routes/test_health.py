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


def test_made_up_methods_and_paths_do_not_grow_the_metric_labels(live):
    with live.client() as client:
        for i in range(20):
            client.request(f"BREW{i}", "/healthz")
            client.request(f"X-{i}", f"/made/up/{i}")
        text = client.get("/metrics").text
    lines = [line for line in text.splitlines() if line.startswith("uunet_authority_http_")]
    methods = {
        part.split('"')[1] for line in lines for part in line.split(",") if "method=" in part
    }
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert (
        'uunet_authority_http_requests_total{method="other",route="/healthz",status="405"} 20.0'
        in text
    )
    assert 'method="other",route="unmatched",status="404"} 20.0' in text
    assert "BREW" not in text and "made/up" not in text
