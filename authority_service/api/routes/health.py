"""``/healthz`` and ``/metrics`` (no authentication: expose them on the internal network only)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from authority_service.api.deps import ServicesDep
from authority_service.api.schemas import HealthOut

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "A part is down."}},
    summary="Liveness and readiness: database reachable, workers running",
)
def healthz(services: ServicesDep) -> JSONResponse:
    database = services.db.ping()
    workers = services.jobs.alive
    body = HealthOut(
        status="ok" if database and workers else "degraded",
        database=database,
        workers=workers,
        models=services.decoders.model_ids,
        default_model=services.decoders.default_id,
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
    summary="Prometheus metrics",
)
def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
