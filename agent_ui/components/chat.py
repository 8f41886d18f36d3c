"""The conversation: a thread that scrolls between a toolbar (model, system prompt, usage) and a composer pinned at the
bottom; streamed markdown answers with tool cards; branches ("‹ 1/2 ›") from regenerating and editing; copy; resources
attached to the turns, and the sources an answer cites opening beside it; the MCP servers whose tools the turns get."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nicegui import background_tasks, ui
from pydantic import ValidationError

from agent_ui.components.a11y import named
from agent_ui.components.branches import Conversation
from agent_ui.components.chat_assets import ChatMarkdown
from agent_ui.components.citations import (
    CITE_CLICK,
    Attachments,
    OpenSource,
    Source,
    SourcePanel,
    cited,
    grounded_resource_ids,
    source_chips,
    sources_of,
)
from agent_ui.components.tool_cards import provide_card_context
from agent_ui.site import Site
from services.auth import Principal
from services.auth.scopes import Scope, grants
from services.chat import ChatService
from services.chat.schemas import ChatStreamRequest, MessageRead, SessionDetail
from services.container import Services
from services.errors import DomainError, NotFoundError
from services.llm.local import LocalModelRunner
from services.llm.schemas import ModelInfo
from services.mcp import McpRegistry
from services.mcp.models import McpServer
from services.rag import RagService
from services.runs import RunEvent
from services.tts import TtsService
from services.tts.schemas import SynthesizeRequest

FLUSH_SECONDS = 0.08  # markdown resends all its HTML per update: batch the tokens
LOAD_POLL_SECONDS = 0.5
STATUS_TEXT = {
    "cancelled": "Stopped.",
    "failed": "The answer failed.",
    "interrupted": "Interrupted by a server restart.",
}


def icon_button(icon: str, label: str, on_click: Callable[..., object] | None = None) -> ui.button:
    """An icon-only button with a name for screen readers and a tooltip for everyone else."""
    button = named(ui.button(icon=icon, on_click=on_click).props("flat dense round size=sm color=grey-7"), label)
    button.tooltip(label)
    return button


def model_label(model: ModelInfo) -> str:
    """Name · size or provider · local or remote · price: what a person choosing a model needs to know."""
    name = (model.title or model.id).removesuffix(" (local)")
    where = "runs on this server" if model.local else f"remote ({model.provider})"
    if model.price_prompt_per_1k == 0 and model.price_completion_per_1k == 0:
        price = "free"
    else:
        price = f"{model.price_prompt_per_1k:g} in / {model.price_completion_per_1k:g} out credits per 1k tokens"
    return " · ".join(part for part in (name, model.size, where, price) if part)


def text_of(message: MessageRead) -> str:
    return "".join(part.get("text", "") for part in message.content if part.get("type") == "text")


class WaitingIndicator:
    """Between sending and the first token: dots; while the local model is starting, what it is doing and how far."""

    def __init__(self, runner: LocalModelRunner | None) -> None:
        self._runner = runner
        with ui.column().classes("gap-1 w-full").mark("waiting") as self.element:
            with ui.element("div").classes("chat-dots").props('role="status" aria-label="Waiting for the answer"'):
                for _ in range(3):
                    ui.element("span")
            with ui.column().classes("gap-1 w-full max-w-sm") as self.loading:
                self.label = ui.label().classes("text-sm text-grey-7").mark("model-loading")
                self.bar = ui.linear_progress(value=0, show_value=False).props("rounded size=6px")
        self.loading.visible = False
        self._timer = ui.timer(LOAD_POLL_SECONDS, self.poll) if runner is not None else None
        self.poll()

    def poll(self) -> None:
        if self._runner is None:
            return
        progress = self._runner.progress()
        self.loading.visible = progress.loading
        if not progress.loading:
            return
        typical = max(progress.typical_s, 1.0)
        if progress.phase == "joining" and progress.parts_total:
            self.label.set_text(
                f"Loading the model… preparing its weights ({progress.parts_done}/{progress.parts_total})"
            )
            self.bar.set_value(0.3 * progress.parts_done / progress.parts_total)
        else:
            self.label.set_text(f"Loading the model… {progress.elapsed_s:.0f} s (usually about {typical:.0f} s)")
            self.bar.set_value(min(progress.elapsed_s / typical, 0.97))

    def thinking(self) -> None:
        self.label.set_text("Thinking…")
        self.loading.visible = True
        self.bar.visible = False

    def remove(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.element.delete()


@dataclass
class StreamingAnswer:
    """The assistant bubble being written: tokens collect in ``pending`` and reach the page on a timer."""

    column: ui.element
    waiting: WaitingIndicator | None
    sources: dict[int, Source]  # numbered as the citation events arrive (before the text that cites them)
    open_source: OpenSource
    markdown: ChatMarkdown | None = None
    text: str = ""  # of the block being written (a tool card starts a new one)
    written: str = ""  # of the whole answer, for the sources it cites
    pending: str = ""
    error: str | None = None  # what the run said went wrong (the stored answer only knows that it failed)
    chips: ui.element | None = None
    chipped: tuple[int, ...] = ()

    def add(self, text: str) -> None:
        self.pending += text

    def started(self) -> None:
        """Something arrived: the dots go."""
        if self.waiting is not None:
            self.waiting.remove()
            self.waiting = None

    def flush(self) -> None:
        if not self.pending:
            return
        self.started()
        self.text += self.pending
        self.written += self.pending
        self.pending = ""
        labels = {n: source.label for n, source in self.sources.items()}
        if self.markdown is None:
            with self.column:
                self.markdown = ChatMarkdown(self.text, citations=labels).mark("answer-text")
        else:
            self.markdown.set_citations(labels)
            self.markdown.set_content(self.text)
        self._chips()

    def _chips(self) -> None:
        """The sources cited so far, under the text (redrawn only when that set changes)."""
        shown = cited(self.written, self.sources)
        numbers = tuple(source.n for source in shown)
        if numbers == self.chipped:
            if self.chips is not None:
                self.chips.move(self.column)  # stays last, below any block added since
            return
        if self.chips is not None:
            self.chips.delete()
        self.chipped, self.chips = numbers, None
        if shown:
            with self.column:
                self.chips = source_chips(shown, self.open_source)

    def cut(self) -> None:
        """A tool card comes next: the following text starts a new block below it."""
        self.flush()
        self.started()
        self.markdown, self.text = None, ""


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class McpPicker:
    """The MCP servers whose tools this chat's turns are offered: a button in the composer opening a menu with a
    checkbox per server (all on at first). The choice lasts while the page does and applies to every turn sent
    from it (new questions, edits, regenerations)."""

    def __init__(self, servers: list[McpServer]) -> None:
        self.servers = servers
        self.off: set[str] = set()  # the servers unchecked: a server registered later is on, as "all" implies

    @property
    def ids(self) -> list[str] | None:
        """What the turn's ``mcp_server_ids`` says: None while every server is on, else the ones checked."""
        if not self.off:
            return None
        return [server.id for server in self.servers if server.id not in self.off]

    def button(self) -> ui.button:
        """The composer's button; a badge says how many servers are on once it is not all of them."""
        self.trigger = ui.button(icon="extension").props("flat round dense color=grey-8").classes("self-end")
        self.trigger.mark("mcp-picker")
        with self.trigger:
            self.badge = ui.badge().props("floating rounded color=primary")
            self.badge.style("font-size: 10px; line-height: 12px; min-height: 14px; padding: 1px 4px; top: -2px")
            self.badge.mark("mcp-picker-count")
            self.tooltip = ui.tooltip()
            with ui.menu().props('anchor="top left" self="bottom left" :offset="[0, 8]"') as self.menu:
                self._menu()
        # The pointer still rests on the button once the menu is open: its tooltip would cover the menu.
        self.menu.on_value_change(lambda e: self.tooltip.set_visibility(not e.value))
        self._show()
        return self.trigger

    def _menu(self) -> None:
        with ui.column().classes("gap-1 p-3 w-72 max-w-[calc(100vw-32px)]").mark("mcp-picker-menu"):
            ui.label("MCP servers").classes("text-sm font-medium").props('role="heading" aria-level="2"')
            ui.label("Their tools are offered to the next messages in this chat.").classes("text-xs text-grey-7")
            with ui.column().classes("gap-0 w-full py-1"):
                for server in self.servers:
                    with ui.row().classes("items-center no-wrap w-full gap-2"):
                        box = ui.checkbox(server.name, value=True,
                                          on_change=lambda e, s=server: self._toggle(s.id, bool(e.value)))  # fmt: skip
                        box.classes("min-w-0 grow").props("dense").mark("mcp-server-option", f"mcp-option-{server.id}")
                        ui.label(self._status(server)).classes("text-xs text-grey-7 shrink-0").mark("mcp-tool-count")
            ui.link("Manage servers", "/settings#mcp-servers").classes("text-sm").mark("mcp-picker-manage")

    @staticmethod
    def _status(server: McpServer) -> str:
        if server.tools or server.last_status != "error":
            return count(len(server.tools), "tool")
        return "unreachable"

    def _toggle(self, server_id: str, on: bool) -> None:
        if on:
            self.off.discard(server_id)
        else:
            self.off.add(server_id)
        self._show()

    def _show(self) -> None:
        total = len(self.servers)
        on = total - len(self.off)
        self.badge.set_text(str(on))
        self.badge.visible = on < total
        self.trigger.props(f"color={'grey-8' if on == total else 'primary'}")
        summary = f"MCP servers: {'all ' if on == total else ''}{on} of {total} on"
        named(self.trigger, summary)
        self.tooltip.set_text(summary)


class ChatView:
    def __init__(
        self,
        site: Site,
        principal: Principal,
        session_id: str | None,
        *,
        on_session_created: Callable[[str], Awaitable[None]],
        on_turn_finished: Callable[[], Awaitable[None]],
        toggle_sessions: Callable[[int], None],
    ) -> None:
        self.site = site
        self.principal = principal
        self.session_id = session_id
        self.on_session_created = on_session_created
        self.on_turn_finished = on_turn_finished
        self.toggle_sessions = toggle_sessions
        self.run_id: str | None = None
        self.leaf_id: str | None = None  # the end of the branch on screen
        self.conversation = Conversation([])
        self.streaming: StreamingAnswer | None = None
        self.cards: dict[str, tuple[ui.element, dict[str, Any]]] = {}
        self.follow_task: asyncio.Task[None] | None = None
        self.answer_sources: dict[int, dict[int, Source]] = {}  # by the answer's column: what its [n] open
        self.attachments: Attachments | None = None
        self.mcp: McpPicker | None = None

    @property
    def user_id(self) -> str:
        return self.principal.user.id

    @property
    def services(self) -> Services:
        return self.site.services

    @property
    def chat(self) -> ChatService:
        return self.site.services.get(ChatService)

    async def build(self) -> None:
        # Handlers may run from elements this view deletes (a regenerate button): keep the page's client.
        self.client = ui.context.client
        self.client.on_delete(self._client_gone)
        provide_card_context(self.services, self.principal)  # for cards that look their work up (a job they follow)
        models = {m.id: model_label(m) for m in self.services.models.models()}
        detail = await self._detail()
        with ui.element("div").classes("chat-main").mark("chat-main"):
            with ui.element("div").classes("chat-toolbar"):
                # The browser says how wide it is: a desktop folds the list, a phone opens it as a sheet.
                icon_button("view_sidebar", "Show or hide chats").on(
                    "click", lambda e: self.toggle_sessions(int(e.args)), js_handler="() => emit(window.innerWidth)"
                ).mark("sessions-toggle")
                self.model = (
                    ui.select(
                        models,
                        value=detail.model if detail and detail.model in models else self.services.models.default_model,
                    )
                    .props('dense outlined options-dense aria-label="Model"')
                    .classes("min-w-0 w-64 max-sm:grow")
                    .mark("model")
                )
                self.model.add_slot(
                    "selected-item", '<span class="ellipsis">{{ props.opt.label.split(" · ")[0] }}</span>'
                )
                self.model.add_slot(
                    "option",
                    """<q-item v-bind="props.itemProps"><q-item-section>
                    <q-item-label>{{ props.opt.label.split(" · ")[0] }}</q-item-label>
                    <q-item-label caption>{{ props.opt.label.split(" · ").slice(1).join(" · ") }}</q-item-label>
                    </q-item-section></q-item>""",
                )
                self._system_prompt_dialog(detail)
                icon_button("tune", "System prompt", self.prompt_dialog.open).mark("system-prompt-open")
                ui.space()
                self.usage = ui.label().classes("text-xs text-grey-7 truncate chat-desktop-only").mark("usage")
            with ui.element("div").classes("chat-scroll-wrap"):
                with ui.element("div").classes("chat-scroll").mark("chat-scroll"):
                    self.thread = ui.element("div").classes("chat-thread").mark("thread")
                ui.button(icon="arrow_downward").props(
                    'round unelevated color=grey-8 size=sm aria-label="Jump to the latest message"'
                ).classes("chat-jump").on("click", js_handler="() => window.agentChat.toBottom()").mark("jump-latest")
            with ui.element("div").classes("chat-composer"):
                rag = self.services.find(RagService)
                if rag is not None:  # off: nothing to attach
                    self.attachments = Attachments(rag, self.principal)
                if servers := await self._mcp_servers():  # none usable: nothing to choose
                    self.mcp = McpPicker(servers)
                composer_box = ui.element("div").classes("chat-composer-box")
            with composer_box:
                if self.attachments is not None:
                    self.attachments.button()
                if self.mcp is not None:
                    self.mcp.button()
                self.input = (
                    ui.textarea(placeholder="Ask anything…")
                    .props('borderless autogrow dense rows=1 aria-label="Message"')
                    .classes("grow self-center")
                    .mark("message")
                )
                self.send_button = (
                    ui.button(icon="arrow_upward", on_click=self.send)
                    .props('round unelevated size=md aria-label="Send"')
                    .mark("send")
                )
                self.stop_button = (
                    ui.button(icon="stop", color="negative", on_click=self.stop)
                    .props('round unelevated size=md aria-label="Stop"')
                    .mark("stop")
                )
        self.source_panel = SourcePanel(self.services.find(RagService), self.principal)
        self.stop_button.visible = False
        self.input.on("keydown.enter.exact.prevent", self.send)
        self.flusher = ui.timer(FLUSH_SECONDS, self._flush, active=False)
        await self._render(detail)
        if self.attachments is not None and self.leaf_id in self.conversation.by_id:
            # What the chat's latest turn was grounded in stays attached (as it was before the page was left).
            await self.attachments.restore(grounded_resource_ids(self.conversation.by_id[self.leaf_id].content))

    async def _mcp_servers(self) -> list[McpServer]:
        """The servers whose tools a turn may get (none when MCP is off here or the caller may not use it)."""
        registry = self.services.find(McpRegistry)
        if registry is None or not grants(self.principal.scopes, Scope.MCP):
            return []
        return await registry.usable(self.principal)

    def _system_prompt_dialog(self, detail: SessionDetail | None) -> None:
        with ui.dialog() as self.prompt_dialog, ui.card().classes("w-[36rem] max-w-full"):
            ui.label("System prompt").classes("text-lg font-medium")
            ui.label("How the model should behave in this chat; empty for the default.").classes("text-sm text-grey-7")
            self.system_prompt = (
                ui.textarea(
                    placeholder=self.services.settings.chat.system_prompt,
                    value=(detail.system_prompt if detail else None) or "",
                )
                .classes("w-full")
                .props("outlined autogrow")
                .mark("system-prompt")
            )
            with ui.row().classes("justify-end w-full"):
                ui.button("Done", on_click=self.prompt_dialog.close).props("flat").mark("system-prompt-done")

    async def _detail(self) -> SessionDetail | None:
        if self.session_id is None:
            return None
        return await self.chat.get_session(self.user_id, self.session_id)

    # -- the thread --------------------------------------------------------------------------------

    async def _render(self, detail: SessionDetail | None) -> None:
        """Draw the branch that ends at ``leaf_id`` (the newest when unset or gone); follow a running answer."""
        self.thread.clear()
        self.answer_sources.clear()
        self.conversation = Conversation(detail.messages if detail else [])
        if not self.conversation.messages:
            with self.thread:
                ui.label("Start a conversation. The built-in model runs on this machine.").classes(
                    "text-grey-7 self-center mt-8"
                ).mark("empty-thread")
            await self._show_usage()
            return
        if self.leaf_id not in self.conversation.by_id:
            self.leaf_id = self.conversation.newest
        for message in self.conversation.path(self.leaf_id):
            if message.role == "user":
                self._user_bubble(message)
            elif message.status == "streaming" and message.run_id and detail and detail.active_run_id == message.run_id:
                self._follow(message.run_id, message.id, message.model, after=0)
            else:
                self._answer(message)
        await self._show_usage()

    def _user_bubble(self, message: MessageRead) -> None:
        with self.thread:
            box = ui.element("div").classes("chat-user").mark("user-turn")
        self._fill_user(box, message)

    def _fill_user(self, box: ui.element, message: MessageRead) -> None:
        box.clear()
        box.classes(remove="chat-user-editor")
        with box:
            ui.label(text_of(message)).classes("chat-user-bubble whitespace-pre-wrap").mark("user-message")
            with ui.element("div").classes("chat-actions"):
                self._branch_nav(message, "version")
                icon_button("edit", "Edit message", lambda: self._edit(box, message)).mark("edit")

    def _edit(self, box: ui.element, message: MessageRead) -> None:
        """The question becomes an editor in place; saving asks it anew beside the old one (a new branch)."""
        if self.run_id is not None:
            ui.notify("Wait for the answer, or stop it, before editing.", type="warning")
            return
        box.clear()
        box.classes(add="chat-user-editor")
        with box:
            editor = ui.textarea(value=text_of(message)).props("outlined autogrow autofocus").classes("w-full")
            editor.mark("edit-input")

            async def save() -> None:
                text = (editor.value or "").strip()
                if text:
                    await self._ask(text, parent_id=message.id, redraw=True)

            def cancel() -> None:
                self._fill_user(box, message)

            editor.on("keydown.enter.exact.prevent", save)  # as in the composer; Shift+Enter is a new line
            editor.on("keydown.esc", cancel)
            with ui.row().classes("gap-2 justify-end w-full"):
                ui.button("Cancel", on_click=cancel).props("flat no-caps").mark("edit-cancel")
                ui.button("Save & send", on_click=save).props("unelevated no-caps").mark("edit-save")

    def _answer(self, message: MessageRead) -> None:
        self._fill_answer(self._answer_column(), message)

    def _answer_column(self) -> ui.element:
        """An answer's bubble; a click on a citation in it (its text's badges, its search card's passages) opens
        that source."""
        with self.thread:
            column = ui.element("div").classes("chat-answer").mark("assistant-message")
        column.on("click", lambda e: self.open_cited(column, e.args), js_handler=CITE_CLICK)
        return column

    async def open_cited(self, column: ui.element, n: object) -> None:
        source = self.answer_sources.get(column.id, {}).get(n if isinstance(n, int) else -1)
        if source is not None:
            await self.source_panel.open(source)

    def _fill_answer(self, column: ui.element, message: MessageRead, error: str | None = None) -> None:
        column.clear()
        sources = self.answer_sources[column.id] = sources_of(message.content)
        labels = {n: source.label for n, source in sources.items()}
        with column:
            results = {p["call_id"]: p for p in message.content if p.get("type") == "tool_result"}
            text = ""
            for part in message.content:
                if part.get("type") == "text":
                    text += part.get("text", "")
                elif part.get("type") == "tool_call":
                    if text:
                        ChatMarkdown(text, citations=labels).mark("answer-text")
                        text = ""
                    self.site.tool_cards.render(part, results.get(part["call_id"]))
            if text:
                ChatMarkdown(text, citations=labels).mark("answer-text")
            if shown := cited(text_of(message), sources):
                source_chips(shown, self.source_panel.open)
            if error is not None:
                ui.label(error).classes("text-negative").mark("answer-error")
            elif message.status in STATUS_TEXT:
                ui.label(STATUS_TEXT[message.status]).classes("text-xs text-orange-8").mark("answer-status")
            speaker = self.services.find(TtsService)
            if speaker is not None and text_of(message).strip() and grants(self.principal.scopes, Scope.TTS):
                player = ui.element("div").classes("w-full")  # where "Read aloud" puts its player
            else:
                speaker = None
            with ui.element("div").classes("chat-actions"):
                self._branch_nav(message, "answer")
                icon_button("content_copy", "Copy answer").on(
                    "click", js_handler=f"() => window.agentChat.copy({json.dumps(text_of(message))})"
                ).mark("copy")
                question = self.conversation.by_id.get(message.parent_id or "")
                if question is not None:
                    icon_button("refresh", "Regenerate", lambda q=question: self.regenerate(q)).mark("regenerate")
                if speaker is not None:
                    read = icon_button("volume_up", "Read aloud", lambda p=player: self.read_aloud(speaker, message, p))
                    read.mark("read-aloud")

    async def read_aloud(self, speaker: TtsService, message: MessageRead, player: ui.element) -> None:
        """The answer spoken with the user's voice and speed, in a player under it (its text up to the TTS limit)."""
        text = text_of(message)[: self.services.settings.tts.max_chars]
        try:
            speech = await speaker.synthesize(self.principal, SynthesizeRequest(text=text))
        except DomainError as exc:
            ui.notify(exc.message, type="negative")
            return
        player.clear()
        with player:
            source = "data:audio/mpeg;base64," + base64.b64encode(speech.data).decode()
            ui.audio(source, autoplay=True).classes("w-full").mark("read-aloud-audio")

    def _branch_nav(self, message: MessageRead, noun: str) -> None:
        """‹ n/m › when there are other versions of this message; each shows the newest conversation through it."""
        siblings = self.conversation.siblings(message)
        if len(siblings) < 2:
            return
        index = next(i for i, m in enumerate(siblings) if m.id == message.id)
        with ui.element("div").classes("chat-branch").mark("branch"):
            back = icon_button("chevron_left", f"Previous {noun}", lambda: self.show(siblings[index - 1]))
            back.mark("branch-prev").set_enabled(index > 0)
            ui.label(f"{index + 1}/{len(siblings)}").mark("branch-position")
            onward = icon_button(
                "chevron_right", f"Next {noun}", lambda: self.show(siblings[(index + 1) % len(siblings)])
            )
            onward.mark("branch-next").set_enabled(index < len(siblings) - 1)

    async def show(self, message: MessageRead) -> None:
        """Switch to another version of a message."""
        if self.run_id is not None:
            ui.notify("Wait for the answer, or stop it, before switching.", type="warning")
            return
        self.leaf_id = self.conversation.newest_leaf(message.id)
        await self._render(await self._detail())

    async def _show_usage(self) -> None:
        if self.session_id is None:
            self.usage.set_text("")
            return
        try:
            usage = await self.chat.usage(self.user_id, self.session_id)
        except DomainError:
            self.usage.set_text("0 tokens")
            return
        tokens = usage.total_prompt_tokens + usage.total_completion_tokens
        self.usage.set_text(f"{tokens:,} tokens · {usage.credits:.4f} credits")

    # -- asking and streaming ----------------------------------------------------------------------

    async def send(self) -> None:
        text = (self.input.value or "").strip()
        if not text:
            return
        leaf = self.conversation.by_id.get(self.leaf_id or "")
        # Continue the branch on screen, which need not be the newest one.
        if await self._ask(text, parent_id=leaf.id if leaf is not None and leaf.role == "assistant" else None):
            self.input.set_value("")

    async def regenerate(self, question: MessageRead) -> None:
        """Answer the same question again; the old answer stays as the first version."""
        await self._ask(text_of(question), parent_id=question.id, redraw=True)

    async def _ask(self, text: str, *, parent_id: str | None, redraw: bool = False) -> bool:
        if self.run_id is not None:
            ui.notify("Wait for the answer, or stop it.", type="warning")
            return False
        attached = self.attachments.ids if self.attachments is not None else []
        try:
            request = ChatStreamRequest(
                session_id=self.session_id,
                message=text,
                model=self.model.value,
                system_prompt=self.system_prompt.value or None,
                parent_message_id=parent_id,
                rag_resource_ids=attached or None,
                mcp_server_ids=self.mcp.ids if self.mcp is not None else None,
            )
            started = await self.chat.start_turn(self.principal, request)
        except ValidationError:
            ui.notify("That message cannot be sent (too long?).", type="warning")
            return False
        except NotFoundError as exc:
            gone = await self.attachments.prune() if self.attachments is not None and attached else []
            if gone:
                ui.notify(f"No longer available, so detached: {', '.join(gone)}. Send again to ask without it.",
                          type="warning")  # fmt: skip
            else:
                ui.notify(exc.message, type="negative")
            return False
        except DomainError as exc:
            ui.notify(exc.message, type="negative")
            return False
        self.leaf_id = started.message_id
        ui.run_javascript("window.agentChat && window.agentChat.toBottom()")
        if self.session_id is None:
            self.session_id = started.session_id
            await self.on_session_created(started.session_id)
        if redraw:  # a new branch: draw it (the answer streams at its end)
            await self._render(await self._detail())
            if self.run_id is None:  # already finished
                await self.on_turn_finished()
            return True
        if not self.conversation.messages:
            self.thread.clear()
        question = MessageRead(
            id=started.user_message_id, parent_id=parent_id, role="user", content=[{"type": "text", "text": text}],
            status="complete", model=None, run_id=None, prompt_tokens=0, completion_tokens=0,
            created_at=self.principal.user.created_at,
        )  # fmt: skip
        self._user_bubble(question)
        self._follow(started.run_id, started.message_id, started.model, after=1)
        return True

    def _runner_for(self, model_id: str | None) -> LocalModelRunner | None:
        """The local model's runner when this answer waits on it (its progress is worth showing)."""
        model = next((m for m in self.services.models.models() if m.id == model_id), None)
        return self.services.models.local_runner() if model is not None and model.local else None

    def _follow(self, run_id: str, answer_id: str, model_id: str | None, *, after: int) -> None:
        self.run_id = run_id
        column = self._answer_column()
        with column:
            waiting = WaitingIndicator(self._runner_for(model_id))
        sources = self.answer_sources[column.id] = {}
        self.streaming = StreamingAnswer(column, waiting, sources, self.source_panel.open)
        self.cards = {}
        self._running(True)
        self.follow_task = background_tasks.create(
            self._consume(run_id, answer_id, after), name=f"follow-{run_id}", context=self.client
        )

    def _client_gone(self) -> None:
        """The browser left for good: stop following (the run itself goes on; a reload follows it again)."""
        if self.follow_task is not None and not self.follow_task.done():
            self.follow_task.cancel()

    async def _consume(self, run_id: str, answer_id: str, after: int) -> None:
        cancelled = False
        try:
            async for batch in await self.chat.follow(self.principal, run_id, after):
                for event in batch:
                    self._on_event(event)
        except DomainError as exc:
            ui.notify(exc.message, type="negative")
        except asyncio.CancelledError:
            cancelled = True  # the page is gone: nothing left to draw on
            raise
        finally:
            if not cancelled:
                await self._finish(answer_id)

    async def _finish(self, answer_id: str) -> None:
        """The run ended: the streamed bubble becomes the stored answer (with its actions), in place."""
        self._flush()
        self.run_id = None
        self._running(False)
        detail = await self._detail()
        self.conversation = Conversation(detail.messages if detail else [])
        answer = self.conversation.by_id.get(answer_id)
        if self.streaming is not None:
            if self.streaming.waiting is not None:
                self.streaming.started()
            if answer is not None:
                self._fill_answer(self.streaming.column, answer, self.streaming.error)
        self.streaming = None
        await self._show_usage()
        await self.on_turn_finished()

    def _on_event(self, event: RunEvent) -> None:
        answer = self.streaming
        if answer is None:
            return
        if event.type == "content.delta":
            answer.add(event.data["text"])
        elif event.type == "reasoning.delta":
            if answer.waiting is not None:
                answer.waiting.thinking()
        elif event.type == "tool_call":
            answer.cut()
            with answer.column:
                card = self.site.tool_cards.render(event.data, None)
            self.cards[event.data["call_id"]] = (card, event.data)
        elif event.type == "citation":
            if (source := Source.of(event.data)) is not None:
                answer.sources[source.n] = source
        elif event.type == "tool_result":
            shown = self.cards.get(event.data["call_id"])
            if shown is not None:
                card, call = shown
                with answer.column:
                    replacement = self.site.tool_cards.render(call, event.data)
                replacement.move(answer.column, target_index=list(answer.column).index(card))
                card.delete()
        elif event.type == "error":
            answer.flush()
            answer.started()
            answer.error = str(event.data.get("message") or "The answer failed.")
            with answer.column:
                ui.label(answer.error).classes("text-negative").mark("answer-error")

    def _flush(self) -> None:
        if self.streaming is not None:
            self.streaming.flush()

    def _running(self, running: bool) -> None:
        self.stop_button.visible = running
        self.send_button.visible = not running
        self.flusher.active = running

    async def stop(self) -> None:
        if self.run_id is None:
            return
        try:
            await self.chat.stop(self.principal, self.run_id)
        except DomainError as exc:
            ui.notify(exc.message, type="warning")
