"""RAG in the chat: the resources attached to a chat's turns, the sources an answer cites (``[n]`` badges in its
text and chips under it), the passage a citation opens in a side panel, and the ``rag_search`` call's card."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nicegui import ui

from agent_ui.components.a11y import named
from agent_ui.components.resources import highlighted
from agent_ui.components.tool_cards import as_dict
from services.auth import Principal
from services.chat.citations import cited_numbers
from services.errors import DomainError, NotFoundError
from services.rag import RagService
from services.rag.schemas import Passage, ResourceRead

# The markers services.chat.citations.cited_numbers reads ("[1]", "[2, 3]"): a test keeps the two in step.
MARKER = re.compile(r"\[(\d{1,3})(?:\s*[,;]\s*\d{1,3})*\]")
NUMBER = re.compile(r"\d{1,3}")
TAG = re.compile(r"(<[^>]*>)")
TAG_NAME = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)")
NO_MARKERS_IN = frozenset({"code", "pre", "a", "button"})  # "[1]" in code is code, not a citation
# A click on a citation badge (in the answer's HTML, or a passage in the search card) anywhere in an answer: one
# listener on the answer sends the badge's number.
CITE_CLICK = "(e) => { const cite = e.target.closest('[data-cite]'); if (cite) emit(Number(cite.dataset.cite)); }"
SEARCH_TOOL = "rag_search"

OpenSource = Callable[["Source"], Awaitable[None]]


@dataclass(frozen=True)
class Source:
    """One numbered source of an answer, from its ``citation`` event or the stored ``citation`` part."""

    n: int
    resource_id: str
    chunk_id: str
    title: str
    page: int | None = None
    heading: str | None = None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Source | None:
        """None for anything that is not a complete citation (the answer then simply does not link it)."""
        position = data.get("position")
        position = position if isinstance(position, dict) else {}
        try:
            return cls(n=int(data["n"]), resource_id=str(data["resource_id"]), chunk_id=str(data["chunk_id"]),
                       title=str(data.get("title") or "Untitled"), page=_int(position.get("page")),
                       heading=str(position["heading"]) if position.get("heading") else None)  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def where(self) -> str:
        """Short, for a chip: "p. 7" or the heading."""
        return f"p. {self.page}" if self.page is not None else (self.heading or "")

    @property
    def label(self) -> str:
        """What a badge or chip is called for a screen reader: "handbook, p. 7"."""
        return f"{self.title}, {self.where}" if self.where else self.title


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float | str) and str(value).isdigit() else None


def sources_of(parts: Iterable[Mapping[str, Any]]) -> dict[int, Source]:
    """The sources stored with an answer, by number."""
    found = (Source.of(part) for part in parts if part.get("type") == "citation")
    return {source.n: source for source in found if source is not None}


def cited(text: str, sources: Mapping[int, Source]) -> list[Source]:
    """The sources the text cites, in number order: a source found but not cited is not shown."""
    return [sources[n] for n in sorted(cited_numbers(text)) if n in sources]


def grounded_resource_ids(parts: Iterable[Mapping[str, Any]]) -> list[str]:
    """The resources a turn was grounded in: its answer starts with the ``rag_search`` call the turn made over them
    (before any text; a search the model chose later is not an attachment)."""
    for part in parts:
        if part.get("type") == "text" and part.get("text"):
            return []
        if part.get("type") == "tool_call" and part.get("name") == SEARCH_TOOL:
            ids = as_dict(part.get("arguments")).get("resource_ids")
            return [str(i) for i in ids] if isinstance(ids, list) else []
    return []


def link_markers(rendered: str, labels: Mapping[int, str]) -> str:
    """The answer's HTML with each citation marker of a known source as small numbered buttons (``data-cite``);
    markers inside code or links and numbers without a source stay text. Labels are escaped (titles are the user's)."""
    if not labels or "[" not in rendered:
        return rendered
    pieces, inside = [], 0
    for piece in TAG.split(rendered):
        if piece.startswith("<"):
            tag = TAG_NAME.match(piece)
            if tag is not None and tag.group(2).lower() in NO_MARKERS_IN and not piece.endswith("/>"):
                inside = max(0, inside - 1) if tag.group(1) else inside + 1
            pieces.append(piece)
        else:
            pieces.append(piece if inside else MARKER.sub(lambda m: _badges(m, labels), piece))
    return "".join(pieces)


def _badges(marker: re.Match[str], labels: Mapping[int, str]) -> str:
    numbers = [int(n) for n in NUMBER.findall(marker.group(0))]
    if not any(n in labels for n in numbers):
        return marker.group(0)
    badges = []
    for n in numbers:
        if n in labels:
            label = html.escape(f"Source {n}: {labels[n]}", quote=True)
            badges.append(f'<button type="button" class="chat-cite" data-cite="{n}" aria-label="{label}" '
                          f'title="{html.escape(labels[n], quote=True)}">{n}</button>')  # fmt: skip
        else:
            badges.append(f'<span class="chat-cite chat-cite--none">{n}</span>')
    return f'<span class="chat-cites">{"".join(badges)}</span>'


def source_chips(sources: list[Source], on_open: OpenSource) -> ui.element:
    """Under an answer: one chip per source it cites, numbered as in the text."""
    with ui.element("div").classes("chat-sources").mark("sources") as row:
        row.props('role="group" aria-label="Sources"')
        for source in sources:
            chip = ui.button(on_click=lambda s=source: on_open(s)).props("flat no-caps dense")
            chip.classes("chat-source-chip")
            named(chip, f"Source {source.n}: {source.label}").mark("source-chip", f"source-chip-{source.n}")
            with chip:
                ui.label(str(source.n)).classes("chat-source-n")
                ui.label(source.title).classes("chat-source-title")
                if source.where:
                    ui.label(source.where).classes("chat-source-where")
    return row


def position_text(page: int | None, pages: int | None, heading: str | None) -> str:
    """Where a passage is: "Page 7 of 10", the heading, or both."""
    parts = []
    if page is not None:
        parts.append(f"Page {page} of {pages}" if pages else f"Page {page}")
    if heading:
        parts.append(heading)
    return " · ".join(parts)


class SourcePanel:
    """The passage a citation opens: its page (PDF) or section with the cited span marked and scrolled into view.
    Beside the chat on a desktop (the thread narrows), a sheet over it on a phone; Escape or the close button
    closes it and focus goes back to the citation."""

    def __init__(self, rag: RagService | None, principal: Principal) -> None:
        self._rag = rag
        self._principal = principal
        self.current: Source | None = None
        self.passage: Passage | None = None
        with ui.element("div").classes("chat-source-wrap").mark("source-panel") as self.wrap:
            ui.element("div").classes("chat-source-backdrop").on("click", self.close)
            with ui.element("aside").classes("chat-source") as self.panel:
                self.panel.props('aria-label="Source" tabindex="-1"')
                with ui.element("div").classes("chat-source-head"):
                    ui.icon("menu_book", size="20px").classes("text-grey-7 mt-1").props('aria-hidden="true"')
                    with ui.element("div").classes("grow min-w-0"):
                        self.title = ui.label().classes("chat-source-heading").mark("source-title")
                        self.title.props('role="heading" aria-level="2"')
                        self.where = ui.label().classes("text-sm text-grey-7").mark("source-where")
                    close = ui.button(icon="close", on_click=self.close).props("flat round dense color=grey-8")
                    named(close, "Close the source").tooltip("Close").mark("source-close")
                with ui.element("div").classes("chat-source-body"):
                    self.note = ui.label().classes("chat-source-note").mark("source-note")
                    self.text = ui.html("", sanitize=True).classes("chat-source-text").mark("source-text")
        self.wrap.visible = False
        self.panel.on("keydown.esc", self.close)

    async def open(self, source: Source) -> None:
        self.current, self.passage = source, None
        self.title.set_text(source.title)
        self.where.set_text(position_text(source.page, None, source.heading))
        self._note("Loading the passage…")
        self.text.set_content("")
        self.wrap.visible = True
        shown = await self._fetch(source)
        if self.current is not source:  # another citation was opened meanwhile
            return
        if isinstance(shown, str):
            self._note(shown)
            ui.run_javascript(f"window.agentChat && window.agentChat.showSource({self.wrap.id}, null)")
            return
        self.passage = shown
        self.title.set_text(shown.title)
        self.where.set_text(position_text(shown.page, shown.pages, shown.heading))
        self._note("")
        # Escaped text with the cited span in <mark>; the wrapper names the chunk so the browser scrolls to this one.
        self.text.set_content(f'<div data-chunk="{html.escape(source.chunk_id, quote=True)}">'
                              f"{highlighted(shown.text, [shown.highlight])}</div>")  # fmt: skip
        ui.run_javascript(
            f"window.agentChat && window.agentChat.showSource({self.wrap.id}, {json.dumps(source.chunk_id)})"
        )

    async def _fetch(self, source: Source) -> Passage | str:
        """The passage, or what to say instead."""
        if self._rag is None:
            return "Documents are turned off on this server."
        try:
            return await self._rag.passage(self._principal, source.resource_id, source.chunk_id)
        except NotFoundError:
            return "This source was deleted."
        except DomainError as exc:
            return f"The passage cannot be shown: {exc.message}."

    def _note(self, text: str) -> None:
        self.note.set_text(text)
        self.note.visible = bool(text)

    def close(self) -> None:
        if not self.wrap.visible:
            return
        self.current = None
        self.wrap.visible = False
        ui.run_javascript("window.agentChat && window.agentChat.sourceClosed()")


class Attachments:
    """The resources attached to a chat's turns: chips above the message box (each removable) and a picker of the
    user's ready resources with a filter. They stay attached for the chat's next turns until removed."""

    def __init__(self, rag: RagService, principal: Principal) -> None:
        self._rag = rag
        self._principal = principal
        self.chosen: dict[str, str] = {}  # id -> title, in the order attached
        self.ready: list[ResourceRead] = []
        self.processing = 0  # resources still being indexed: not attachable yet
        self.row = ui.element("div").classes("chat-attachments").mark("attachments")
        self.row.props('role="group" aria-label="Attached resources"')
        self.row.visible = False
        with ui.dialog() as self.dialog, ui.card().classes("chat-picker").mark("resource-picker"):
            with ui.row().classes("items-center w-full no-wrap gap-2"):
                ui.label("Attach resources").classes("text-lg font-medium grow").props('role="heading" aria-level="2"')
                close = ui.button(icon="close", on_click=self.dialog.close).props("flat round dense color=grey-8")
                named(close, "Close").mark("picker-close")
            ui.label("The next messages in this chat search them and cite what they use.").classes(
                "text-sm text-grey-7"
            )
            self.filter = ui.input(placeholder="Filter by title").props("outlined dense clearable type=search")
            named(self.filter, "Filter resources").classes("w-full").mark("picker-filter")
            self.filter.on_value_change(self._filtered)
            self.options = ui.column().classes("chat-picker-list w-full gap-0").mark("picker-list")
            with ui.row().classes("items-center w-full gap-2"):
                ui.link("Manage resources", "/resources").classes("text-sm").mark("picker-manage")
                ui.space()
                ui.button("Done", on_click=self.dialog.close).props("unelevated no-caps").mark("picker-done")
        self.boxes: dict[str, tuple[ui.element, str]] = {}  # each option's row and its title to filter by
        self.no_match: ui.label | None = None

    @property
    def ids(self) -> list[str]:
        return list(self.chosen)

    def button(self) -> ui.button:
        """The composer's button that opens the picker."""
        button = ui.button(icon="library_books", on_click=self.open).props("flat round dense color=grey-8")
        button.classes("chat-attach self-end")
        return named(button, "Attach resources").tooltip("Attach resources").mark("attach")

    async def _load(self) -> bool:
        try:
            resources = await self._rag.list_resources(self._principal)
        except DomainError as exc:
            ui.notify(f"Your resources cannot be listed: {exc.message}.", type="negative")
            return False
        self.ready = [r for r in resources if r.status == "ready"]
        self.processing = sum(r.status == "processing" for r in resources)
        return True

    async def open(self) -> None:
        if not await self._load():
            return
        self.filter.set_value("")
        self._list()
        self.dialog.open()

    def _list(self) -> None:
        self.options.clear()
        self.boxes, self.no_match = {}, None
        with self.options:
            if not self.ready:
                with ui.column().classes("gap-1 px-3 py-2").mark("picker-empty"):
                    ui.label("You have no resources ready to attach yet.")
                    ui.link("Add documents on the Resources page", "/resources").mark("picker-add")
            for resource in self.ready:
                with ui.element("div").classes("chat-picker-item") as item:
                    box = ui.checkbox(resource.title, value=resource.id in self.chosen,
                                      on_change=lambda e, r=resource: self._toggle(r, bool(e.value)))  # fmt: skip
                    box.mark("picker-option", f"picker-{resource.id}").classes("min-w-0")
                    if meta := _meta(resource):
                        ui.label(meta).classes("text-xs text-grey-7 chat-picker-meta")
                self.boxes[resource.id] = (item, resource.title.casefold())
            if self.ready:
                self.no_match = ui.label("").classes("text-sm text-grey-7 px-3 py-2").mark("picker-no-match")
                self.no_match.visible = False
            if self.processing:
                ui.label(f"{self.processing} more still being indexed: they can be attached once ready.").classes(
                    "text-xs text-grey-7 px-3 py-1"
                ).mark("picker-processing")

    def _filtered(self) -> None:
        words = (self.filter.value or "").casefold().split()
        shown = 0
        for item, title in self.boxes.values():
            item.visible = all(word in title for word in words)
            shown += item.visible
        if self.no_match is not None:
            self.no_match.set_text(f"No resource matches “{self.filter.value}”.")
            self.no_match.visible = shown == 0

    def _toggle(self, resource: ResourceRead, on: bool) -> None:
        if on:
            self.chosen[resource.id] = resource.title
        else:
            self.chosen.pop(resource.id, None)
        self._chips()

    def remove(self, resource_id: str) -> None:
        self.chosen.pop(resource_id, None)
        self._chips()

    def _chips(self) -> None:
        self.row.clear()
        with self.row:
            for resource_id, title in self.chosen.items():
                chip = ui.chip(title, icon="description", removable=True, color="blue-1", text_color="blue-10",
                               on_value_change=lambda _e, i=resource_id: self.remove(i))  # fmt: skip
                chip.props("dense").props["remove-aria-label"] = f"Remove {title}"  # a prop value: any title is safe
                chip.classes("chat-attachment").mark("attachment", f"attachment-{resource_id}")
        self.row.visible = bool(self.chosen)

    async def restore(self, resource_ids: list[str]) -> None:
        """Attach again what the chat's latest turn was grounded in (those still ready)."""
        if not resource_ids or not await self._load():
            return
        titles = {r.id: r.title for r in self.ready}
        self.chosen = {i: titles[i] for i in resource_ids if i in titles}
        self._chips()

    async def prune(self) -> list[str]:
        """Detach what is no longer ready (deleted elsewhere, say): the titles detached."""
        if not self.chosen or not await self._load():
            return []
        ready = {r.id for r in self.ready}
        gone = [title for i, title in self.chosen.items() if i not in ready]
        self.chosen = {i: title for i, title in self.chosen.items() if i in ready}
        self._chips()
        return gone


def _meta(resource: ResourceRead) -> str:
    parts = []
    if resource.pages:
        parts.append(f"{resource.pages} page" + ("s" if resource.pages != 1 else ""))
    if resource.filename and resource.filename != resource.title:
        parts.append(resource.filename)
    elif resource.url:
        parts.append(resource.url)
    return " · ".join(parts)


def rag_search_card(call: dict[str, Any], result: dict[str, Any] | None) -> ui.element:
    """The search of the user's documents as one line ("Searched your documents: <query>", how many passages);
    opened, the passages it found, each opening its source."""
    query = " ".join(str(as_dict(call.get("arguments")).get("query") or "").split())
    ok = result is not None and bool(result.get("ok"))
    output = as_dict(result.get("output")) if result is not None and ok else {}
    passages = [p for p in output.get("passages") or [] if isinstance(p, dict)]
    if result is None:
        title, caption, icon = f"Searching your documents: {query}", "searching…", "manage_search"
    elif not ok:
        title, caption, icon = f"Searching your documents failed: {query}", "failed", "error"
    else:
        count = len(passages)
        title, icon = f"Searched your documents: {query}", "manage_search"
        caption = f"{count} passage{'s' if count != 1 else ''}" if count else "nothing found"
    card = ui.expansion(title, caption=caption, icon=icon).classes("w-full tool-card chat-rag-card")
    card.mark("tool-card", "rag-search-card")
    with card:
        if result is not None and not ok:
            ui.label(str(result.get("error") or "the search failed")).classes("text-negative text-sm")
        for passage in passages:
            position = {"page": passage.get("page"), "heading": passage.get("heading")}
            source = Source.of({**passage, "position": position})
            if source is None:
                continue
            line = ui.button().props("flat no-caps dense align=left").classes("chat-rag-hit")
            line.props["data-cite"] = str(source.n)
            named(line, f"Source {source.n}: {source.label}").mark("rag-hit")
            with line:
                ui.label(str(source.n)).classes("chat-source-n")
                ui.label(source.label).classes("chat-rag-hit-title")
    return card
