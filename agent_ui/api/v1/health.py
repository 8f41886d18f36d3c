"""Liveness for load balancers and humans: 200 while the process and database are up."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from agent_ui.deps import ServicesDep, api_router
from services.health import HealthReport

router = api_router(prefix="/health", tags=["health"])


@router.get("", response_model=HealthReport, responses={503: {"model": HealthReport}})
async def health(services: ServicesDep) -> JSONResponse:
    report = await services.health.report()
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if report.status != "down" else 503)
