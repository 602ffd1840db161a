"""``/healthz`` and ``/metrics``: open to probes and scrapers, no token."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.api.deps import ServicesDep
from monitor.api.schemas import Health
from monitor.db import ping

router = APIRouter(tags=["system"])


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database is unreachable"}},
)
def healthz(services: ServicesDep) -> JSONResponse:
    """200 when the database answers a trivial query, 503 otherwise."""
    if ping(services.engine):
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "database unreachable"}, status_code=503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
def metrics(services: ServicesDep) -> Response:
    """Prometheus exposition of the archive, feed, alert and request figures."""
    return Response(generate_latest(services.registry), media_type=CONTENT_TYPE_LATEST)
