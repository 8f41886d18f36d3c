"""RAG: upload or link resources, watch them ingest, search them, open the passage a citation points at."""

from __future__ import annotations

from fastapi import Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from agent_ui.deps import BODY_LIMIT_KEY, CurrentPrincipal, RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope, documented_error
from agent_ui.uploads import is_multipart, read_file_form
from services.auth import Scope
from services.container import Services
from services.errors import UnsupportedMediaTypeError, ValidationFailedError
from services.rag import RagService
from services.rag.schemas import Passage, ResourceCreate, ResourceRead, SearchRequest, SearchResults
from services.rag.service import Upload

router = api_router(
    prefix="/rag",
    tags=["rag"],
    guard=RequireScope(Scope.RAG),
    responses={
        401: {"model": ErrorEnvelope},
        403: {"model": ErrorEnvelope},
        503: documented_error("RAG is disabled on this instance (`rag_disabled`)"),
    },
)
NOT_FOUND = {404: documented_error("no such resource of yours")}
MAX_FILENAME = 255

_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary",
                             "description": "txt, md, html, pdf, docx or csv (the type is read from the content)"},
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                },
            }
        },
        "application/json": {"schema": ResourceCreate.model_json_schema()},
    },
}  # fmt: skip


def rag(services: Services) -> RagService:
    return services.get(RagService, "RAG is disabled on this instance", code="rag_disabled")


@router.post(
    "/resources",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={BODY_LIMIT_KEY: "rag.max_upload_bytes", "requestBody": _UPLOAD_BODY},
    responses={
        402: documented_error("`insufficient_credits`"),
        413: documented_error("`payload_too_large`: past the upload limit"),
        415: documented_error("`unsupported_media_type`: not a document we read (decided by its content)"),
        422: documented_error(
            "`validation_error`; `url_not_allowed`: a private or local address; `url_unreachable`: the URL's host "
            "name does not resolve"
        ),
        429: documented_error("`resource_quota` or `job_quota`"),
    },
)
async def create_resource(request: Request, principal: CurrentPrincipal, services: ServicesDep) -> ResourceRead:
    """Upload a file (multipart, field `file`, optional `title`) or give `{url}` or `{text}` with an optional
    `title` as JSON. The resource is `processing` while its ingestion job runs (`job_id`), then `ready` or
    `failed` with a `reason`."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    service = rag(services)
    if is_multipart(request):
        return await service.upload(principal, await _upload(request))
    if kind == "application/json":
        try:
            body = ResourceCreate.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None
        return await service.create(principal, body)
    raise UnsupportedMediaTypeError("send a file as multipart/form-data, or a url or text as application/json")


async def _upload(request: Request) -> Upload:
    form = await read_file_form(request, fields=("title",))
    title = form.fields.get("title")
    if title is not None and not 1 <= len(title.strip()) <= 200:
        raise ValidationFailedError("title must be 1 to 200 characters", code="validation_error")
    data = form.data
    filename = (form.filename or "upload")[:MAX_FILENAME]
    return Upload(filename=filename, data=data, declared_type=form.content_type,
                  title=title.strip() if isinstance(title, str) else None)  # fmt: skip


@router.get("/resources")
async def list_resources(principal: CurrentPrincipal, services: ServicesDep) -> list[ResourceRead]:
    """Your resources, newest first, with their status and chunk counts."""
    return await rag(services).list_resources(principal)


@router.get("/resources/{resource_id}", responses=NOT_FOUND)
async def get_resource(resource_id: str, principal: CurrentPrincipal, services: ServicesDep) -> ResourceRead:
    """Metadata, status (with the reason it failed), chunk count."""
    return await rag(services).get(principal, resource_id)


@router.delete("/resources/{resource_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_resource(resource_id: str, principal: CurrentPrincipal, services: ServicesDep) -> Response:
    """Delete a resource with its chunks (gone from search at once) and its original; a running ingestion stops."""
    await rag(services).delete(principal, resource_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


REINGEST_ERRORS = {
    **NOT_FOUND,
    409: documented_error("`resource_processing`: it is being ingested"),
    402: documented_error("`insufficient_credits`"),
    429: documented_error("`job_quota`"),
}


@router.post("/resources/{resource_id}/reingest", status_code=status.HTTP_202_ACCEPTED, responses=REINGEST_ERRORS)
async def reingest_resource(resource_id: str, principal: CurrentPrincipal, services: ServicesDep) -> ResourceRead:
    """Ingest again from the original: after a failure or a cancel, or to re-embed with another model."""
    return await rag(services).reingest(principal, resource_id)


@router.get("/resources/{resource_id}/chunks/{chunk_id}/passage", responses=NOT_FOUND)
async def get_passage(resource_id: str, chunk_id: str, principal: CurrentPrincipal, services: ServicesDep) -> Passage:
    """What a citation opens: the PDF page or the document section that holds the chunk, the chunk's span marked."""
    return await rag(services).passage(principal, resource_id, chunk_id)


@router.post("/search", responses={404: documented_error("one of `resource_ids` is not a resource of yours")})
async def search(body: SearchRequest, principal: CurrentPrincipal, services: ServicesDep) -> SearchResults:
    """The best passages of your ready resources (or of `resource_ids`): `hybrid` fuses full-text and vector
    rankings (reciprocal rank fusion), `keyword` and `vector` use one. Each hit has its resource's title, its
    position (page, heading, character offsets), a snippet with the matching words' offsets in `marks`, and a score."""
    return await rag(services).search(principal, body)
