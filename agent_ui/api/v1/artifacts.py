"""Artifacts: download a file a job made (or an upload) with Content-Disposition and HTTP Range."""

from __future__ import annotations

from fastapi import Response
from fastapi.responses import FileResponse

from agent_ui.deps import CurrentPrincipal, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope
from services.artifacts import ArtifactRead

router = api_router(
    prefix="/artifacts",
    tags=["artifacts"],
    responses={401: {"model": ErrorEnvelope}, 403: {"model": ErrorEnvelope}, 404: {"model": ErrorEnvelope}},
)


@router.get(
    "/{artifact_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the file"},
               206: {"description": "the requested byte range"}, 416: {"description": "range not satisfiable"}},
)  # fmt: skip
async def download_artifact(artifact_id: str, principal: CurrentPrincipal, services: ServicesDep) -> Response:
    """The file's bytes, with `Range` support (audio players seek) and its name in `Content-Disposition`.
    Checked against the scope of the run that made it."""
    download = await services.artifacts.download(principal, artifact_id)
    return FileResponse(download.path, media_type=download.media_type, filename=download.filename,
                        headers={"ETag": f'"{download.sha256}"', "Cache-Control": "private, max-age=0"})  # fmt: skip


@router.get("/{artifact_id}/meta")
async def artifact_meta(artifact_id: str, principal: CurrentPrincipal, services: ServicesDep) -> ArtifactRead:
    """What the artifact is: kind, title, file name, media type, size, sha256, version."""
    return await services.artifacts.get(principal, artifact_id)
