"""Chat: start a turn (session, messages, run), stop it, follow it; sessions and their usage."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.auth.authz import require_scope
from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.chat.agent import AgentLoop, Turn, TurnOutcome, fold_events
from services.chat.history import branch, build_history, text_of
from services.chat.metering import SessionMetricsRecorder
from services.chat.models import ChatMessage, ChatSession, SessionMetrics
from services.chat.schemas import (
    ChatStreamRequest,
    MessageRead,
    RunRead,
    RunStarted,
    SessionDetail,
    SessionRead,
    SessionUpdate,
    SessionUsage,
)
from services.clock import Clock, utcnow
from services.db.database import Database
from services.db.fulltext import FullTextIndex
from services.db.owned import get_owned
from services.db.pagination import Page, keyset_page
from services.errors import ConflictError, NotFoundError, ValidationFailedError
from services.ids import new_id
from services.llm.metered import ModelCalls, Payer
from services.llm.registry import ModelRegistry
from services.llm.schemas import ModelInfo, ToolCallRequest
from services.llm.tokens import estimate_tokens
from services.money import to_credits
from services.references import References
from services.runs import Run, RunEvent, RunKind, RunService, RunStatus
from services.settings import ChatSettings
from services.tools import Tool, ToolCatalog

log = logging.getLogger(__name__)
# The answer is stored a tick after its question, so creation order is also conversation order.
ONE_TICK = timedelta(microseconds=1)
RUN_KIND = "chat"
# A turn grounded in resources (``rag_resource_ids``) starts with this tool of the RAG capability.
GROUNDING_GROUP, GROUNDING_TOOL = "rag", "rag_search"
GROUNDING_QUERY_CHARS = 500
STATUS_BY_OUTCOME = {"complete": RunStatus.DONE, "cancelled": RunStatus.CANCELLED, "failed": RunStatus.FAILED}


class ChatService:
    def __init__(
        self,
        *,
        db: Database,
        runs: RunService,
        models: ModelRegistry,
        calls: ModelCalls,
        tools: ToolCatalog,
        settings: ChatSettings,
        references: References | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._db = db
        self._references = references or References()
        self._runs = runs
        self._models = models
        self._calls = calls
        self._tools = tools
        self._settings = settings
        self._clock = clock
        self._metrics = SessionMetricsRecorder(backend=db.backend, clock=clock)
        self._loop = AgentLoop(calls=calls)
        # Titles (keyed by session id) and message texts (by message id), grouped by session, owned by its user.
        self._search = FullTextIndex(backend=db.backend, scope="chat")

    def run_kind(self) -> RunKind:
        """Chat turns are runs of kind ``chat``, read and stopped with the ``chat`` scope."""
        return RunKind(name=RUN_KIND, scope=Scope.CHAT, on_interrupted=self._on_interrupted)

    # -- turns -----------------------------------------------------------------------------------

    async def start_turn(self, principal: Principal, request: ChatStreamRequest) -> RunStarted:
        """Store the user message and start the answer as a run; returns at once (the answer streams as events)."""
        require_scope(principal, Scope.CHAT)
        user_id = principal.user.id
        if len(request.message) > self._settings.max_message_chars:
            raise ValidationFailedError(
                f"message is longer than {self._settings.max_message_chars} characters", code="message_too_long"
            )
        if not request.message.strip():
            raise ValidationFailedError("message is empty", code="message_empty")
        groups = self._tools.resolve_groups(principal, request.tools)
        max_rounds = min(
            request.max_tool_rounds if request.max_tool_rounds is not None else self._settings.max_tool_rounds,
            self._settings.max_tool_rounds,
        )
        model = await self._model_for_turn(user_id, request)
        tools = await self._tools.tools_for(principal, groups) if groups else []
        if request.mcp_server_ids is not None:  # the composer's choice of servers (the tools with a subject)
            chosen = set(request.mcp_server_ids)
            tools = [tool for tool in tools if tool.subject is None or tool.subject in chosen]
        grounding = await self._grounding(principal, request)
        if not grounding and max_rounds > 0:  # a turn allowed no tool rounds gets no tool unasked either
            grounding = _asked_for(tools, request.message, model)
        now = self._clock()
        lock = f"chat-session:{request.session_id}" if request.session_id else None
        async with self._db.transaction(exclusive=lock) as session:
            chat = await self._session_for_turn(session, user_id, request)
            system_prompt = request.system_prompt if request.system_prompt is not None else chat.system_prompt
            budget = model.context_window - model.max_output_tokens
            if estimate_tokens(request.message) > budget:
                raise ValidationFailedError(
                    f"message does not fit the context window of {model.id}", code="message_too_long"
                )
            question = await self._question_for_turn(session, chat, user_id, request, now)
            run = self._runs.new_run(user_id=user_id, kind=RUN_KIND, subject_id=chat.id)
            answer = ChatMessage(
                id=new_id("msg"), session_id=chat.id, user_id=user_id, parent_id=question.id, role="assistant",
                content=[], status="streaming", model=model.id, run_id=run.id, created_at=now + ONE_TICK,
            )  # fmt: skip
            chat.model, chat.system_prompt, chat.active_run_id, chat.updated_at = model.id, system_prompt, run.id, now
            # Parents first (the tables have no ORM relationships to order the inserts by).
            session.add_all([chat, run])
            await session.flush()
            session.add_all([question, answer])
            await session.flush()
            if request.session_id is None:
                await self._index_title(session, chat)
            await self._index_message(session, question)
            path = branch(await self._messages(session, chat.id), question.id)
            history = build_history(
                system_prompt=system_prompt or self._settings.system_prompt, path=path, budget_tokens=budget,
                native_tools=model.native_tools,
            )
            # The first call's credits, held in this transaction: a turn the balance cannot start is a 402 that
            # leaves no session, message or run behind, however many turns race for the same balance.
            hold = await self._calls.hold_for_call(user_id, model, history, cause_id=run.id, session=session)
        handle = self._runs.open(run)
        handle.emit("run", {"run_id": run.id, "session_id": chat.id, "message_id": answer.id, "model": model.id})
        payer = Payer(user_id=user_id, run=handle, record=self._metrics.for_session(user_id, chat.id))
        # A regenerated answer (the same question again) is sampled: another answer, not the same one twice.
        regenerating = question.id == request.parent_message_id
        turn = Turn(run=handle, principal=principal, session_id=chat.id, model=model, messages=history,
                    tools=tools, max_tool_rounds=max_rounds, payer=payer, hold=hold,
                    temperature=self._settings.regenerate_temperature if regenerating else None,
                    first_calls=grounding)  # fmt: skip
        self._runs.launch(handle, lambda _handle: self._run_turn(turn, answer.id))
        return RunStarted(run_id=run.id, session_id=chat.id, message_id=answer.id,
                          user_message_id=question.id, model=model.id)  # fmt: skip

    async def _grounding(self, principal: Principal, request: ChatStreamRequest) -> list[tuple[Tool, ToolCallRequest]]:
        """A turn grounded in chosen resources starts by searching them for the question (before the model is
        asked), so its answer can cite what was found. 422 when RAG is off, 403 without the ``rag`` scope, 404 for a
        resource that is not the caller's."""
        if not request.rag_resource_ids:
            return []
        self._tools.resolve_groups(principal, [GROUNDING_GROUP])
        ids = list(dict.fromkeys(request.rag_resource_ids))
        for resource_id in ids:
            await self._references.ensure_owned(principal.user.id, resource_id)
        offered = await self._tools.tools_for(principal, {GROUNDING_GROUP})
        tool = next((tool for tool in offered if tool.name == GROUNDING_TOOL), None)
        if tool is None:  # offered only to users with something ready to search
            raise ConflictError("none of your resources is ready to search yet", code="resources_not_ready")
        arguments = json.dumps({"query": request.message.strip()[:GROUNDING_QUERY_CHARS], "resource_ids": ids})
        return [(tool, ToolCallRequest(call_id=f"call_{new_id('grd')[-12:]}", name=tool.name, arguments=arguments))]

    async def _model_for_turn(self, user_id: str, request: ChatStreamRequest) -> ModelInfo:
        """The model asked for, else the session's (when this instance still has it), else the default."""
        if request.model or request.session_id is None:
            return self._models.resolve(request.model)
        async with self._db.transaction(readonly=True) as session:
            chat = await self._owned(session, user_id, request.session_id)
        return self._models.resolve(chat.model if self._models.has(chat.model) else None)

    async def _session_for_turn(self, session: AsyncSession, user_id: str, request: ChatStreamRequest) -> ChatSession:
        if request.session_id is None:
            now = self._clock()
            title = " ".join(request.message.split())[:60] or "New chat"
            return ChatSession(id=new_id("chs"), user_id=user_id, title=title,
                               model=self._models.resolve(request.model).id, system_prompt=request.system_prompt,
                               created_at=now, updated_at=now)  # fmt: skip
        chat = await self._owned(session, user_id, request.session_id)
        if chat.active_run_id is not None:
            raise ConflictError("this session is already answering; stop it or wait", code="run_active",
                                details={"run_id": chat.active_run_id})  # fmt: skip
        return chat

    async def _question_for_turn(
        self, session: AsyncSession, chat: ChatSession, user_id: str, request: ChatStreamRequest, now: datetime
    ) -> ChatMessage:
        """The user message this turn answers.

        Without ``parent_message_id`` it follows the newest message. With it, the turn branches:
        from an assistant message, the new question continues there; from a user message with the same
        text, that question is answered again (regenerate); with other text, the new question becomes
        its sibling (edit). Nothing is overwritten.
        """
        parent_id: str | None
        if request.parent_message_id is None:
            statement = (
                select(ChatMessage.id)
                .where(ChatMessage.session_id == chat.id)
                .order_by(col(ChatMessage.created_at).desc(), col(ChatMessage.id).desc())
                .limit(1)
            )
            parent_id = (await session.exec(statement)).first()
        else:
            parent = await session.get(ChatMessage, request.parent_message_id)
            if parent is None or parent.session_id != chat.id:
                raise NotFoundError("parent message not found in this session")
            if parent.role == "user" and text_of(parent.content) == request.message.strip():
                return parent
            parent_id = parent.parent_id if parent.role == "user" else parent.id
        return ChatMessage(
            id=new_id("msg"), session_id=chat.id, user_id=user_id, parent_id=parent_id, role="user",
            content=[{"type": "text", "text": request.message}], created_at=now,
        )  # fmt: skip

    async def _messages(self, session: AsyncSession, session_id: str) -> list[ChatMessage]:
        statement = (
            select(ChatMessage)
            .where(ChatMessage.session_id == session_id)
            .order_by(col(ChatMessage.created_at), col(ChatMessage.id))
        )
        return list((await session.exec(statement)).all())

    async def _run_turn(self, turn: Turn, answer_id: str) -> None:
        outcome = TurnOutcome(status="failed", error_code="internal")
        try:
            outcome = await self._loop.run(turn)
        finally:
            if (unused := turn.take_hold()) is not None:  # the turn ended before its first call
                await self._calls.release(unused)
            await self._settle(turn, answer_id, outcome)

    async def _settle(self, turn: Turn, answer_id: str, outcome: TurnOutcome) -> None:
        """Fold the turn into the assistant message, free the session, close the run."""
        try:
            async with self._db.transaction() as session:
                answer = await session.get(ChatMessage, answer_id)
                if answer is not None:
                    answer.content = outcome.parts
                    answer.status = outcome.status
                    answer.prompt_tokens = outcome.prompt_tokens
                    answer.completion_tokens = outcome.completion_tokens
                    session.add(answer)
                    await self._index_message(session, answer)
                await session.exec(
                    sa.update(ChatSession)
                    .where(col(ChatSession.id) == turn.session_id, col(ChatSession.active_run_id) == turn.run.run_id)
                    .values(active_run_id=None, updated_at=self._clock())
                )
        finally:
            await turn.run.finish(STATUS_BY_OUTCOME.get(outcome.status, RunStatus.FAILED), outcome.error_code)

    async def stop(self, principal: Principal, run_id: str) -> RunRead:
        return _run_read(await self._runs.request_stop(principal, run_id, kinds={RUN_KIND}))

    async def follow(self, principal: Principal, run_id: str, after: int = 0) -> AsyncIterator[list[RunEvent]]:
        return await self._runs.follow(principal, run_id, after, kinds={RUN_KIND})

    async def get_run(self, principal: Principal, run_id: str) -> RunRead:
        return _run_read(await self._runs.get(principal, run_id, kinds={RUN_KIND}))

    async def _on_interrupted(self, runs: list[Run]) -> None:
        """Turns whose instance died: each answer gets back what its run's persisted events hold (the text
        streamed so far, tool calls and results, tokens), is marked interrupted, and its session is freed."""
        run_ids = [run.id for run in runs]
        events = {run_id: await self._runs.stored_events(run_id) for run_id in run_ids}
        async with self._db.transaction() as session:
            answers = await session.exec(
                select(ChatMessage)
                .where(col(ChatMessage.run_id).in_(run_ids), col(ChatMessage.status) == "streaming")
            )  # fmt: skip
            for answer in answers.all():
                outcome = fold_events(events.get(answer.run_id or "", []))
                answer.content = outcome.parts
                answer.prompt_tokens, answer.completion_tokens = outcome.prompt_tokens, outcome.completion_tokens
                answer.status = "interrupted"
                session.add(answer)
                await self._index_message(session, answer)
            await session.exec(
                sa.update(ChatSession).where(col(ChatSession.active_run_id).in_(run_ids)).values(active_run_id=None)
            )

    # -- sessions ----------------------------------------------------------------------------------

    async def list_sessions(
        self, user_id: str, *, limit: int, cursor: str | None, query: str | None = None
    ) -> Page[SessionRead]:
        """The user's sessions, most recently active first; with ``query``, only those whose title or any message
        text holds every word of it (each as a prefix). Punctuation and operators in ``query`` are ignored; a query
        of no words finds nothing."""
        statement = select(ChatSession).where(ChatSession.user_id == user_id)
        if query and query.strip():
            statement = statement.where(col(ChatSession.id).in_(self._search.matching_groups(query, owner=user_id)))
        async with self._db.transaction(readonly=True) as session:
            rows, next_cursor = await keyset_page(
                session, statement, created_at=ChatSession.updated_at, row_id=ChatSession.id,
                limit=limit, cursor=cursor,
            )  # fmt: skip
        return Page(items=[SessionRead.model_validate(row) for row in rows], next_cursor=next_cursor)

    async def get_session(self, user_id: str, session_id: str) -> SessionDetail:
        async with self._db.transaction(readonly=True) as session:
            chat = await self._owned(session, user_id, session_id)
            messages = await self._messages(session, chat.id)
        return SessionDetail(
            **SessionRead.model_validate(chat).model_dump(),
            messages=[MessageRead.model_validate(message) for message in messages],
        )

    async def update_session(self, user_id: str, session_id: str, update: SessionUpdate) -> SessionRead:
        async with self._db.transaction() as session:
            chat = await self._owned(session, user_id, session_id)
            if update.title is not None:
                chat.title = update.title
                await self._index_title(session, chat)
            if update.model is not None:
                chat.model = self._models.resolve(update.model).id
            if update.system_prompt is not None:
                chat.system_prompt = update.system_prompt or None
            chat.updated_at = self._clock()
            session.add(chat)
        return SessionRead.model_validate(chat)

    async def delete_session(self, user_id: str, session_id: str) -> None:
        """Delete a session and its messages; its metrics stay. A running answer is stopped first."""
        async with self._db.transaction() as session:
            chat = await self._owned(session, user_id, session_id)
            active = chat.active_run_id
        if active:
            self._runs.stop_here(active)
            await self._runs.wait(active, timeout_s=10)
        async with self._db.transaction() as session:
            chat = await self._owned(session, user_id, session_id)
            await self._search.delete_group(session, chat.id)
            await session.delete(chat)

    async def usage(self, user_id: str, session_id: str) -> SessionUsage:
        async with self._db.transaction(readonly=True) as session:
            metrics = await get_owned(session, SessionMetrics, session_id, user_id, missing="no usage for this session")
        return _usage(metrics)

    async def usage_page(self, user_id: str, *, limit: int, cursor: str | None) -> Page[SessionUsage]:
        async with self._db.transaction(readonly=True) as session:
            rows, next_cursor = await keyset_page(
                session, select(SessionMetrics).where(SessionMetrics.user_id == user_id),
                created_at=SessionMetrics.updated_at, row_id=SessionMetrics.session_id, limit=limit, cursor=cursor,
            )  # fmt: skip
        return Page(items=[_usage(row) for row in rows], next_cursor=next_cursor)

    async def _index_title(self, session: AsyncSession, chat: ChatSession) -> None:
        await self._search.put(session, key=chat.id, text=chat.title, owner=chat.user_id, group=chat.id)

    async def _index_message(self, session: AsyncSession, message: ChatMessage) -> None:
        """What a message says (its text parts; tool calls and results stay out of search)."""
        text = "\n".join(part.get("text", "") for part in message.content if part.get("type") == "text")
        await self._search.put(session, key=message.id, text=text, owner=message.user_id, group=message.session_id)

    @staticmethod
    async def _owned(session: AsyncSession, user_id: str, session_id: str) -> ChatSession:
        return await get_owned(session, ChatSession, session_id, user_id, missing="session not found")


def _run_read(run: Run) -> RunRead:
    return RunRead(id=run.id, session_id=run.subject_id, status=run.status, created_at=run.created_at,
                   finished_at=run.finished_at, last_event_id=run.last_event_id)  # fmt: skip


def _usage(metrics: SessionMetrics) -> SessionUsage:
    return SessionUsage(
        session_id=metrics.session_id,
        credits=to_credits(metrics.credits_micro),
        total_prompt_tokens=metrics.total_prompt_tokens,
        total_completion_tokens=metrics.total_completion_tokens,
    )


def _asked_for(tools: list[Tool], message: str, model: ModelInfo) -> list[tuple[Tool, ToolCallRequest]]:
    """The call a message plainly asks for, made before a model without native tool calls is asked (the first tool
    on offer whose ``intent`` matches); none for a model that calls tools itself."""
    if model.native_tools:
        return []
    for tool in tools:
        if tool.intent is not None and (arguments := tool.intent(message)) is not None:
            call_id = f"call_{new_id('int')[-12:]}"
            return [(tool, ToolCallRequest(call_id=call_id, name=tool.name, arguments=json.dumps(arguments)))]
    return []
