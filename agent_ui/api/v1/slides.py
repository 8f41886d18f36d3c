"""Decks: start one (a generation job), then manage its slides (add, edit, remove, reorder, rewrite one, versions),
download it, and see each slide's thumbnail. Templates: upload a .pptx whose layouts decks use."""

from __future__ import annotations

from typing import Any

from fastapi import Path, Query, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse

from agent_ui.deps import BODY_LIMIT_KEY, CurrentPrincipal, RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope, documented_error
from agent_ui.uploads import read_file_form
from services.auth import Scope
from services.container import Services
from services.generation import DeckService
from services.generation.schemas import (
    DeckList,
    DeckRead,
    DeckRequest,
    RegenerateRequest,
    ReorderRequest,
    SlideCreate,
    SlideEdit,
    SlideVersionList,
    TemplateList,
    TemplateRead,
)
from services.jobs import JobRead

COMMON: dict[int | str, dict[str, Any]] = {401: {"model": ErrorEnvelope}, 403: {"model": ErrorEnvelope},
                                           503: documented_error("`generation_disabled`")}  # fmt: skip
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: documented_error("`not_found`; `slide_not_found`")}
CONFLICT: dict[int | str, dict[str, Any]] = {409: documented_error("`edit_conflict`: changed meanwhile, reload")}
Index = Path(ge=0, le=1000, description="the slide's position, from 0")

generation = api_router(prefix="/generation", tags=["generation"], guard=RequireScope(Scope.GENERATION),
                        responses=COMMON)  # fmt: skip
router = api_router(prefix="/slides", tags=["slides"], guard=RequireScope(Scope.GENERATION), responses=COMMON)


def decks(services: Services) -> DeckService:
    return services.get(DeckService, "decks are disabled on this instance", code="generation_disabled")


@generation.post(
    "/ppt",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: documented_error("`not_found`: a resource or the template is not yours"),
        409: documented_error("`resource_not_ready`: a resource is still being read, or failed"),
        422: documented_error("`validation_error` (e.g. `slide_count` outside 1..50); `unknown_model`"),
        429: documented_error("`job_quota`: too many jobs waiting"),
    },
)
async def create_deck(body: DeckRequest, principal: CurrentPrincipal, services: ServicesDep) -> JobRead:
    """Start a deck job: the model plans the slides and writes each (grounded in your resources, cited in the
    notes), the deck is rendered as a .pptx and its thumbnails are drawn. Follow it at
    `/generation/jobs/{id}/events`; when it is done, `GET /slides/{id}` has the slides."""
    return await decks(services).submit(principal, body)


@router.get("")
async def list_decks(principal: CurrentPrincipal, services: ServicesDep) -> DeckList:
    """Your decks, newest first."""
    return await decks(services).list_decks(principal)


@router.get("/templates")
async def list_templates(principal: CurrentPrincipal, services: ServicesDep) -> TemplateList:
    """Your uploaded templates with their layouts."""
    return await decks(services).list_templates(principal)


_TEMPLATE_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary", "description": "a .pptx (checked by content)"},
                       "name": {"type": "string", "minLength": 1, "maxLength": 200}},
    }}},
}  # fmt: skip


@router.post(
    "/templates",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={BODY_LIMIT_KEY: "generation.max_template_bytes", "requestBody": _TEMPLATE_BODY},
    responses={
        413: documented_error("`payload_too_large`"),
        415: documented_error("`not_a_pptx`: the file is not a PowerPoint presentation (by its content)"),
        422: documented_error("`file_missing`; `malformed_multipart`"),
    },
)
async def upload_template(request: Request, principal: CurrentPrincipal, services: ServicesDep) -> TemplateRead:
    """Upload a .pptx (multipart, field `file`, optional `name`): its slide masters and layouts are used by decks
    made with its `template_id`."""
    form = await read_file_form(request, fields=("name",))
    label = form.fields.get("name", "").strip() or form.filename or "template"
    return await decks(services).upload_template(principal, label[:200], form.data)


@router.delete("/templates/{template_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_template(template_id: str, principal: CurrentPrincipal, services: ServicesDep) -> Response:
    """Delete a template; decks made with it keep their slides and use their theme from then on."""
    await decks(services).delete_template(principal, template_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{deck_id}", responses=NOT_FOUND)
async def get_deck(deck_id: str, principal: CurrentPrincipal, services: ServicesDep) -> DeckRead:
    """The deck with its slides in order (title, bullets, notes, layout, table, chart, citations, version, thumbnail)
    and its .pptx artifact (404 while the job is still making it)."""
    return await decks(services).get(principal, deck_id)


@router.delete("/{deck_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_deck(deck_id: str, principal: CurrentPrincipal, services: ServicesDep) -> Response:
    """Delete the deck, its job and its files."""
    await decks(services).delete(principal, deck_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{deck_id}/slides", status_code=status.HTTP_201_CREATED,
             responses={**NOT_FOUND, 422: documented_error("`validation_error`; `too_many_slides`")})  # fmt: skip
async def add_slide(deck_id: str, body: SlideCreate, principal: CurrentPrincipal, services: ServicesDep) -> DeckRead:
    """Add a slide at `position` (default: the end); the slides after it move down."""
    return await decks(services).add_slide(principal, deck_id, body)


@router.patch("/{deck_id}/slides/{index}", responses={**NOT_FOUND, **CONFLICT})
async def edit_slide(deck_id: str, body: SlideEdit, principal: CurrentPrincipal, services: ServicesDep,
                     index: int = Index) -> DeckRead:  # fmt: skip
    """Change a slide's fields (a new version of it; the .pptx and its thumbnail follow)."""
    return await decks(services).edit_slide(principal, deck_id, index, body)


@router.delete("/{deck_id}/slides/{index}",
               responses={**NOT_FOUND, 409: documented_error("`last_slide`: a deck keeps one slide")})  # fmt: skip
async def delete_slide(deck_id: str, principal: CurrentPrincipal, services: ServicesDep,
                       index: int = Index) -> DeckRead:  # fmt: skip
    """Remove a slide; the slides after it move up."""
    return await decks(services).delete_slide(principal, deck_id, index)


@router.post("/{deck_id}/reorder",
             responses={**NOT_FOUND, **CONFLICT, 422: documented_error("`not_a_permutation`")})  # fmt: skip
async def reorder_slides(deck_id: str, body: ReorderRequest, principal: CurrentPrincipal,
                         services: ServicesDep) -> DeckRead:  # fmt: skip
    """Put the slides in a new order, given as their current positions (every slide once)."""
    return await decks(services).reorder(principal, deck_id, body)


@router.post("/{deck_id}/slides/{index}/regenerate",
             responses={**NOT_FOUND, **CONFLICT, 402: documented_error("`insufficient_credits`"),
                        502: documented_error("`malformed_output`: the model's slide was not valid JSON")})  # fmt: skip
async def regenerate_slide(deck_id: str, principal: CurrentPrincipal, services: ServicesDep,
                           body: RegenerateRequest | None = None, index: int = Index) -> DeckRead:  # fmt: skip
    """Have the model write this slide again (with `instructions`, in another `layout`); the others stay as they are.
    The call is paid like any model call."""
    return await decks(services).regenerate(principal, deck_id, index, body or RegenerateRequest())


@router.get("/{deck_id}/slides/{index}/versions", responses=NOT_FOUND)
async def slide_versions(deck_id: str, principal: CurrentPrincipal, services: ServicesDep,
                         index: int = Index) -> SlideVersionList:  # fmt: skip
    """Every version of the slide, newest first, and which is current."""
    return await decks(services).versions(principal, deck_id, index)


@router.post("/{deck_id}/slides/{index}/versions/{version}/restore", responses=NOT_FOUND)
async def restore_slide_version(deck_id: str, principal: CurrentPrincipal, services: ServicesDep,
                                index: int = Index, version: int = Path(ge=1, le=1_000_000)) -> DeckRead:  # fmt: skip
    """Make an earlier version the slide's content again (as a new version: nothing is lost)."""
    return await decks(services).restore(principal, deck_id, index, version)


@router.get(
    "/{deck_id}/export",
    response_class=Response,
    responses={**NOT_FOUND, 200: {"content": {"application/vnd.openxmlformats-officedocument.presentationml."
                                              "presentation": {}}, "description": "the .pptx"}},
)  # fmt: skip
async def export_deck(deck_id: str, principal: CurrentPrincipal, services: ServicesDep) -> Response:
    """The deck as a .pptx file, with every change made so far."""
    download = await decks(services).export(principal, deck_id)
    return FileResponse(download.path, media_type=download.media_type, filename=download.filename,
                        headers={"ETag": f'"{download.sha256}"', "Cache-Control": "private, max-age=0"})  # fmt: skip


@router.get(
    "/{deck_id}/slides/{index}/thumbnail",
    response_class=Response,
    responses={
        **NOT_FOUND,
        200: {"content": {"image/png": {}}, "description": "the slide as it is now"},
        202: {"model": ErrorEnvelope, "description": "`thumbnail_pending`: being drawn; ask again (Retry-After)"},
        503: documented_error("`thumbnails_unavailable`: LibreOffice is not installed"),
    },
)
async def slide_thumbnail(deck_id: str, principal: CurrentPrincipal, services: ServicesDep, index: int = Index,
                          wait: float = Query(default=20, ge=0, le=60,
                                              description="seconds to wait while it is drawn"),
                          v: str | None = Query(default=None, max_length=80,
                                                description="the version you saw (`thumbnail_url` has it)"),
                          ) -> Response:  # fmt: skip
    """A PNG of the slide's current version (drawn by LibreOffice in the background after a change; cached per
    version). Waits up to `wait` seconds for it, then answers 202 to ask again."""
    png, etag = await decks(services).thumbnail(principal, deck_id, index, wait)
    if png is None:
        return JSONResponse({"error": {"code": "thumbnail_pending", "message": "the thumbnail is being drawn",
                                       "details": None}}, status_code=status.HTTP_202_ACCEPTED,
                            headers={"Retry-After": "2"})  # fmt: skip
    # A URL naming the version it shows never changes; one by position alone does with every edit.
    cache = "private, max-age=31536000, immutable" if v is not None and f'"{v}"' == etag else "private, no-cache"
    return Response(png, media_type="image/png", headers={"ETag": etag, "Cache-Control": cache})
