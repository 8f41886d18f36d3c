"""The chat view: sessions sidebar, streamed markdown answers, tool-call cards, stop, model, system prompt, usage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nicegui import background_tasks, ui
from pydantic import ValidationError

from agent_ui.site import Site
from services.auth import Principal
from services.chat import ChatService
from services.chat.history import branch
from services.chat.schemas import ChatStreamRequest, MessageRead, SessionDetail, SessionUpdate
from services.container import Services
from services.errors import DomainError
from services.runs import RunEvent

FLUSH_SECONDS = 0.08  # markdown resends all its HTML per update: batch the tokens


@dataclass
class StreamingAnswer:
    """The assistant bubble being written: tokens collect in ``pending`` and reach the page on a timer."""

    column: ui.column
    markdown: ui.markdown | None = None
    text: str = ""
    pending: str = ""

    def add(self, text: str) -> None:
        self.pending += text

    def flush(self) -> None:
        if not self.pending:
            return
        self.text += self.pending
        self.pending = ""
        if self.markdown is None:
            with self.column:
                self.markdown = ui.markdown(self.text).classes("w-full").mark("answer-text")
        else:
            self.markdown.set_content(self.text)

    def cut(self) -> None:
        """A tool card comes next: the following text starts a new block below it."""
        self.flush()
        self.markdown, self.text = None, ""


@dataclass
class ChatView:
    site: Site
    principal: Principal
    session_id: str | None
    on_session_created: Callable[[str], None]
    on_turn_finished: Callable[[], Awaitable[None]]
    run_id: str | None = None
    messages: list[MessageRead] = field(default_factory=list)

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
        models = [m.id for m in self.services.models.models()]
        detail = await self._detail()
        with ui.row().classes("w-full items-center gap-2"):
            self.model = ui.select(models, value=(detail.model if detail and detail.model in models
                                                  else self.services.models.default_model),
                                   label="Model").props("dense outlined").classes("w-64").mark("model")  # fmt: skip
            self.usage = ui.label().classes("text-sm text-grey-7 ml-auto").mark("usage")
        with ui.expansion("System prompt", icon="tune").classes("w-full").mark("system-prompt-panel"):
            self.system_prompt = (
                ui.textarea(
                    placeholder=self.services.settings.chat.system_prompt,
                    value=(detail.system_prompt if detail else None) or "",
                )
                .classes("w-full")
                .props("outlined autogrow")
                .mark("system-prompt")
            )
        self.thread = ui.column().classes("w-full gap-3").mark("thread")
        with ui.row().classes("w-full items-end gap-2 no-wrap"):
            self.input = (
                ui.textarea(placeholder="Ask anything…  (Enter to send, Shift+Enter for a new line)")
                .props("outlined autogrow")
                .classes("grow")
                .mark("message")
            )
            self.send_button = ui.button(icon="send", on_click=self.send).props("round").mark("send")
            self.stop_button = ui.button(icon="stop", color="negative", on_click=self.stop).props("round").mark("stop")
        self.stop_button.visible = False
        self.input.on("keydown.enter.exact.prevent", self.send)
        self.flusher = ui.timer(FLUSH_SECONDS, self._flush, active=False)
        self.streaming: StreamingAnswer | None = None
        self.cards: dict[str, tuple[ui.element, dict[str, Any]]] = {}
        await self._render(detail)

    async def _detail(self) -> SessionDetail | None:
        if self.session_id is None:
            return None
        return await self.chat.get_session(self.user_id, self.session_id)

    async def _render(self, detail: SessionDetail | None) -> None:
        self.thread.clear()
        self.messages = []
        if detail is None:
            with self.thread:
                ui.label("Start a conversation. The built-in model runs on this machine.").classes("text-grey-7").mark(
                    "empty-thread"
                )
            await self._show_usage()
            return
        leaf = detail.messages[-1].id if detail.messages else None
        by_id = {m.id: m for m in detail.messages}
        path = branch(list(by_id.values()), leaf) if leaf else []  # type: ignore[arg-type]
        self.messages = path  # type: ignore[assignment]
        for message in path:
            if message.role == "user":
                self._user_bubble(message)
            elif message.status == "streaming" and detail.active_run_id:
                self._follow(detail.active_run_id, after=0, resumed=True)
            else:
                self._assistant_bubble(message)
        await self._show_usage()

    def _user_bubble(self, message: MessageRead) -> None:
        text = "".join(part.get("text", "") for part in message.content if part.get("type") == "text")
        with self.thread, ui.row().classes("w-full justify-end"):
            ui.label(text).classes("bg-primary text-white rounded-lg px-3 py-2 max-w-[80%] whitespace-pre-wrap").mark(
                "user-message"
            )

    def _assistant_bubble(self, message: MessageRead) -> None:
        with self.thread, ui.column().classes("w-full gap-2").mark("assistant-message"):
            results = {p["call_id"]: p for p in message.content if p.get("type") == "tool_result"}
            text = ""
            for part in message.content:
                if part.get("type") == "text":
                    text += part.get("text", "")
                elif part.get("type") == "tool_call":
                    if text:
                        ui.markdown(text).classes("w-full").mark("answer-text")
                        text = ""
                    self.site.tool_cards.render(part, results.get(part["call_id"]))
            if text:
                ui.markdown(text).classes("w-full").mark("answer-text")
            if message.status in ("cancelled", "failed", "interrupted"):
                ui.label({"cancelled": "Stopped.", "failed": "The answer failed.",
                          "interrupted": "Interrupted by a server restart."}[message.status]).classes(
                    "text-xs text-orange-8"
                ).mark("answer-status")  # fmt: skip
            self._answer_actions(message, text_of(message))

    def _answer_actions(self, message: MessageRead, text: str) -> None:
        question = next((m for m in self.messages if m.id == message.parent_id), None)
        with ui.row().classes("gap-1"):

            async def copy() -> None:
                await ui.clipboard.write(text)
                ui.notify("Copied")

            ui.button(icon="content_copy", on_click=copy).props("flat dense round size=sm").tooltip("Copy").mark("copy")
            if question is not None:
                ui.button(icon="refresh", on_click=lambda q=question: self.send(regenerate=q)).props(
                    "flat dense round size=sm"
                ).tooltip("Regenerate").mark("regenerate")

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

    # -- sending and streaming -------------------------------------------------------------------

    async def send(self, regenerate: MessageRead | None = None) -> None:
        if self.run_id is not None:
            return
        text = text_of(regenerate) if isinstance(regenerate, MessageRead) else (self.input.value or "").strip()
        if not text:
            return
        try:
            request = ChatStreamRequest(
                session_id=self.session_id,
                message=text,
                model=self.model.value,
                system_prompt=self.system_prompt.value or None,
                parent_message_id=regenerate.id if isinstance(regenerate, MessageRead) else None,
            )
            started = await self.chat.start_turn(self.principal, request)
        except ValidationError:
            ui.notify("That message cannot be sent (too long?).", type="warning")
            return
        except DomainError as exc:
            ui.notify(exc.message, type="negative")
            return
        self.input.set_value("")
        if self.session_id is None:
            self.session_id = started.session_id
            self.on_session_created(started.session_id)
        if isinstance(regenerate, MessageRead):
            await self._render(await self._detail())  # the new branch replaces the old one on screen
            return
        if not self.messages:
            self.thread.clear()
        self._user_bubble(MessageRead(id=started.user_message_id, parent_id=None, role="user",
                                      content=[{"type": "text", "text": text}], status="complete", model=None,
                                      run_id=None, prompt_tokens=0, completion_tokens=0,
                                      created_at=self.principal.user.created_at))  # fmt: skip
        self._follow(started.run_id, after=1, resumed=False)

    def _follow(self, run_id: str, *, after: int, resumed: bool) -> None:
        self.run_id = run_id
        with self.thread:
            column = ui.column().classes("w-full gap-2").mark("assistant-message")
        self.streaming = StreamingAnswer(column)
        self.cards = {}
        self._running(True)
        background_tasks.create(self._consume(run_id, after), name=f"follow-{run_id}", context=self.client)

    async def _consume(self, run_id: str, after: int) -> None:
        try:
            async for batch in await self.chat.follow(self.principal, run_id, after):
                for event in batch:
                    self._on_event(event)
        except DomainError as exc:
            ui.notify(exc.message, type="negative")
        finally:
            self._flush()
            self.run_id = None
            self._running(False)
            await self._render(await self._detail())
            await self.on_turn_finished()

    def _on_event(self, event: RunEvent) -> None:
        answer = self.streaming
        assert answer is not None
        if event.type == "content.delta":
            answer.add(event.data["text"])
        elif event.type == "tool_call":
            answer.cut()
            with answer.column:
                card = self.site.tool_cards.render(event.data, None)
            self.cards[event.data["call_id"]] = (card, event.data)
        elif event.type == "tool_result":
            card, call = self.cards.get(event.data["call_id"], (None, None))
            if card is not None and call is not None:
                with answer.column:
                    replacement = self.site.tool_cards.render(call, event.data)
                replacement.move(answer.column, target_index=list(answer.column).index(card))
                card.delete()
        elif event.type == "error":
            answer.flush()
            with answer.column:
                ui.label(event.data.get("message", "The answer failed.")).classes("text-negative").mark("answer-error")

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

    async def save_settings(self) -> None:
        if self.session_id is not None:
            await self.chat.update_session(self.user_id, self.session_id, SessionUpdate(model=self.model.value))


def text_of(message: MessageRead) -> str:
    return "".join(part.get("text", "") for part in message.content if part.get("type") == "text")
