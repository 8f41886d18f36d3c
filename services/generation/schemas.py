"""Decks, slides and prose: the API's in and out, and the content of a slide as it is stored and rendered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.artifacts import ArtifactRead

Layout = Literal["title", "bullets", "two_columns", "table", "chart", "section"]
ChartType = Literal["bar", "column", "line", "pie"]
ThemeName = Literal["light", "dark", "ocean", "sunset"]
ProseStyle = Literal["article", "summary", "email", "story"]
ProseLength = Literal["short", "medium", "long"]
ResourceId = Annotated[str, StringConstraints(min_length=1, max_length=32)]
ModelId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Line = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]
Cell = Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Finite = Annotated[float, Field(allow_inf_nan=False)]  # JSON has no NaN: a stored one would read back as null


class TableData(BaseModel):
    """A table: a header row and up to 12 rows, each as wide as the header."""

    model_config = ConfigDict(extra="forbid")
    columns: list[Cell] = Field(min_length=1, max_length=8)
    rows: list[list[Cell]] = Field(min_length=1, max_length=12)

    @model_validator(mode="after")
    def _rectangular(self) -> TableData:
        width = len(self.columns)
        self.rows = [(row + [""] * width)[:width] for row in self.rows]
        return self


class ChartSeries(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Cell
    values: list[Finite] = Field(min_length=1, max_length=24)


class ChartData(BaseModel):
    """A native chart: one value per category in each series (a pie uses the first series)."""

    model_config = ConfigDict(extra="forbid")
    type: ChartType = "column"
    categories: list[Cell] = Field(min_length=1, max_length=24)
    series: list[ChartSeries] = Field(min_length=1, max_length=6)

    @model_validator(mode="after")
    def _as_long_as_categories(self) -> ChartData:
        width = len(self.categories)
        for series in self.series:
            series.values = (series.values + [0.0] * width)[:width]
        return self


class SlideCitation(BaseModel):
    n: int = Field(description="the source's number in the deck's `sources`")
    resource_id: str
    chunk_id: str
    title: str
    page: int | None = None
    heading: str | None = None


class SlideContent(BaseModel):
    """What a slide says. Which fields show depends on the layout: `title` (title and `subtitle`), `bullets`,
    `two_columns` (`bullets` left, `right` right), `table`, `chart`, `section` (a section header: title and
    `subtitle`). Notes are the speaker notes; the citations are added to them in the file."""

    model_config = ConfigDict(extra="forbid")
    layout: Layout = "bullets"
    title: Title = ""
    subtitle: Line | None = None
    bullets: list[Line] = Field(default_factory=list, max_length=12)
    right: list[Line] = Field(default_factory=list, max_length=12, description="the right column of `two_columns`")
    notes: Annotated[str, StringConstraints(max_length=4000)] = ""
    table: TableData | None = None
    chart: ChartData | None = None
    citations: list[SlideCitation] = Field(default_factory=list)


class DeckSpec(BaseModel):
    """A whole deck as the renderer takes it."""

    title: Title
    slides: list[SlideContent]


# -- decks: in ------------------------------------------------------------------------------------------------


class DeckRequest(BaseModel):
    """What the deck is about (a topic, your text, your resources, or a topic over resources) and how it looks."""

    model_config = ConfigDict(extra="forbid")
    title: Title | None = Field(default=None, description="the deck's title (default: the model's)")
    topic: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] | None = Field(
        default=None, description="what the deck is about; with resources, what to look for in them"
    )
    text: Annotated[str, StringConstraints(min_length=1, max_length=50_000)] | None = Field(
        default=None, description="material to make the deck from"
    )
    rag_resource_ids: list[ResourceId] | None = Field(
        default=None, min_length=1, max_length=20, description="ready resources to ground the slides in (cited)"
    )
    slide_count: int = Field(default=6, ge=1, le=50, description="slides in all, the title slide included")
    theme: ThemeName = Field(default="light", description="the look when no template is given")
    template_id: ResourceId | None = Field(default=None, description="an uploaded template (`GET /slides/templates`)")
    model: ModelId | None = Field(default=None, description="the model that writes the slides (default: the default)")

    @model_validator(mode="after")
    def _has_material(self) -> DeckRequest:
        if self.text is None and self.topic is None and not self.rag_resource_ids:
            raise ValueError("give a topic, text or rag_resource_ids")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty")
        return self


class SlideEdit(BaseModel):
    """The fields to change (left out: unchanged; `table`/`chart`/`subtitle` null: removed). `version` makes the
    edit conditional: 409 `edit_conflict` when the slide is no longer at that version."""

    model_config = ConfigDict(extra="forbid")
    layout: Layout | None = None
    title: Title | None = None
    subtitle: Line | None = None
    bullets: list[Line] | None = Field(default=None, max_length=12)
    right: list[Line] | None = Field(default=None, max_length=12)
    notes: Annotated[str, StringConstraints(max_length=4000)] | None = None
    table: TableData | None = None
    chart: ChartData | None = None
    version: int | None = Field(default=None, ge=1, description="the slide's version you edited")


class SlideCreate(SlideContent):
    """A new slide at `position` (from 0; default: the end)."""

    position: int | None = Field(default=None, ge=0, le=1000)


class ReorderRequest(BaseModel):
    """The new order as the slides' current positions: `[1, 0, 2]` swaps the first two. Must name every slide once."""

    model_config = ConfigDict(extra="forbid")
    order: list[int] = Field(min_length=1, max_length=200)
    version: int | None = Field(default=None, ge=1, description="the deck's version you reordered")


class RegenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instructions: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = Field(
        default=None, description="what to change, e.g. 'shorter bullets' or 'focus on costs'"
    )
    layout: Layout | None = Field(default=None, description="another layout (default: the slide's)")
    model: ModelId | None = None


# -- decks: out -----------------------------------------------------------------------------------------------


class SlideRead(SlideContent):
    model_config = ConfigDict(extra="ignore")  # an answer, not a request: what a slide says, where and how it is now

    index: int = Field(description="its position, from 0 (`/slides/{deck_id}/slides/{index}`)")
    id: str = Field(description="stable across reorders")
    version: int
    thumbnail_url: str = Field(description="its PNG (made in the background; 202 until it is ready)")
    thumbnail_ready: bool
    updated_at: datetime


class DeckSummary(BaseModel):
    id: str = Field(description="the job's id")
    title: str
    theme: str
    template_id: str | None
    slide_count: int
    version: int
    artifact_id: str
    created_at: datetime
    updated_at: datetime


class DeckRead(DeckSummary):
    topic: str
    model: str
    slides: list[SlideRead]
    sources: list[SlideCitation] = Field(description="every passage the slides were written from, by number")
    pptx: ArtifactRead = Field(description="the .pptx (its id stays; `version` grows with each change)")
    export_url: str


class DeckList(BaseModel):
    items: list[DeckSummary]


class SlideVersionRead(BaseModel):
    version: int
    cause: str = Field(description="generated, added, edited, regenerated or restored")
    current: bool
    content: SlideContent
    created_at: datetime


class SlideVersionList(BaseModel):
    items: list[SlideVersionRead]


class TemplateRead(BaseModel):
    id: str
    name: str
    layouts: list[str] = Field(description="the template's slide layouts by name")
    artifact_id: str
    created_at: datetime


class TemplateList(BaseModel):
    items: list[TemplateRead]


# -- prose ----------------------------------------------------------------------------------------------------


class ProseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8000)]
    style: ProseStyle = "article"
    length: ProseLength = Field(default="medium", description="short ~150 words, medium ~400, long ~900")
    title: Title | None = None
    rag_resource_ids: list[ResourceId] | None = Field(
        default=None, min_length=1, max_length=20, description="ready resources to ground the text in (cited [n])"
    )
    model: ModelId | None = None
