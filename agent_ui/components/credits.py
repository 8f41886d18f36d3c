"""Settings → Credits: the balance, spend per day, usage per chat and the statement.

Lists, not tables: each line stacks what it paid for over when, with the amount on the right, so the section fits
a phone (390 px) without scrolling sideways. Credits show with 4 decimals, as the header badge does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypeVar

from nicegui import ui
from nicegui.element import Element

from services.auth import Principal
from services.chat import ChatService
from services.container import Services
from services.credits import StatementLine

T = TypeVar("T", bound=Element)
PAGE_SIZE = 25
SMALLEST = Decimal("0.0001")  # the smallest amount 4 decimals show


def credits_text(amount: Decimal, *, signed: bool = False) -> str:
    """``1,234.5000``; ``+0.0012`` when signed; an amount too small for 4 decimals reads ``<0.0001``, never 0."""
    if amount and abs(amount) < SMALLEST:
        return f"{'-' if amount < 0 else '+' if signed else ''}<{SMALLEST}"
    return f"{amount:+,.4f}" if signed else f"{amount:,.4f}"


def tagged(element: T, marker: str) -> T:
    """The marker for the `user` fixture, and the same name as ``data-testid`` for browser tests."""
    return element.mark(marker).props(f"data-testid={marker}")


class CreditsSection:
    """The section's card; the statement grows by a page at a time ("Show more")."""

    def __init__(self, services: Services, principal: Principal) -> None:
        self._services = services
        self._user_id = principal.user.id
        self._cursor: str | None = None
        self._lines: ui.column | None = None
        self._more: ui.button | None = None

    async def build(self) -> None:
        credits = self._services.credits
        balance = await credits.balance(self._user_id)
        spend = await credits.spend_by_day(self._user_id, days=30)
        with ui.card().classes("w-full gap-3 min-w-0").props("id=credits"):
            ui.label("Credits").classes("text-lg font-medium")
            with ui.row().classes("gap-x-8 gap-y-2 flex-wrap"):
                for label, value, marker in [("Balance", balance.balance, "credits-balance"),
                                             ("Held by running work", balance.held, "credits-held"),
                                             ("Available", balance.available, "credits-available")]:  # fmt: skip
                    with ui.column().classes("gap-0"):
                        ui.label(label).classes("text-xs text-grey-7 dark:text-grey-5")
                        tagged(ui.label(credits_text(value)).classes("text-xl font-mono"), marker)

            ui.label("Spend per day (last 30 days)").classes("text-sm font-medium mt-2")
            ui.echart({
                "tooltip": {"trigger": "axis", ":valueFormatter": "(value) => value.toFixed(4)"},
                "grid": {"left": 50, "right": 10, "top": 10, "bottom": 30},
                "xAxis": {"type": "category", "data": [day.day.isoformat()[5:] for day in spend]},
                "yAxis": {"type": "value", "splitLine": {"lineStyle": {"color": "rgba(128, 128, 128, 0.25)"}}},
                "series": [{"type": "bar", "name": "credits", "data": [float(day.credits) for day in spend]}],
            }).classes("w-full h-56").mark("spend-chart")  # fmt: skip

            await self._usage()

            ui.label("Statement").classes("text-sm font-medium mt-2")
            self._lines = ui.column().classes("w-full gap-0").mark("ledger")
            self._more = ui.button("Show more", on_click=self._load).props("flat no-caps").mark("ledger-more")
            await self._load()

    async def _usage(self) -> None:
        """Credits and tokens per chat, titled (a deleted chat keeps its usage under "Deleted chat")."""
        chat = self._services.find(ChatService)
        if chat is None:
            return
        usage = (await chat.usage_page(self._user_id, limit=100, cursor=None)).items
        titles = await self._services.core.references.describe(self._user_id, [u.session_id for u in usage])
        ui.label("Usage per chat").classes("text-sm font-medium mt-2")
        with ui.column().classes("w-full gap-0").mark("usage-list"):
            if not usage:
                ui.label("No chats yet.").classes("text-sm text-grey-7 dark:text-grey-5")
            for item in usage:
                tokens = f"{item.total_prompt_tokens:,} + {item.total_completion_tokens:,} tokens"
                self._line(titles.get(item.session_id, "Deleted chat"), tokens, credits_text(item.credits),
                           None, marker="usage-line")  # fmt: skip

    async def _load(self) -> None:
        page = await self._services.credits.statement(self._user_id, limit=PAGE_SIZE, cursor=self._cursor)
        self._cursor = page.next_cursor
        if self._lines is None or self._more is None:  # built by build(), which calls this first
            return
        with self._lines:
            for line in page.items:
                self._statement_line(line)
        self._more.set_visibility(page.next_cursor is not None)

    def _statement_line(self, line: StatementLine) -> None:
        when = f"{line.created_at:%Y-%m-%d %H:%M} UTC"
        self._line(line.label, " · ".join(filter(None, [when, line.detail])), credits_text(line.amount, signed=True),
                   f"balance {credits_text(line.balance_after)}", marker="ledger-line",
                   positive=line.amount > 0)  # fmt: skip

    @staticmethod
    def _line(title: str, subtitle: str, amount: str, after: str | None, *, marker: str,
              positive: bool = False) -> None:  # fmt: skip
        """Title over subtitle on the left (wrapping), the amount over the balance after it on the right."""
        with tagged(ui.row().classes("w-full items-start no-wrap gap-3 py-2 border-b border-gray-200 "
                                     "dark:border-gray-700"), marker):  # fmt: skip
            with ui.column().classes("gap-0 min-w-0 grow"):
                tagged(ui.label(title).classes("text-sm font-medium break-words min-w-0"), f"{marker}-title")
                tagged(ui.label(subtitle).classes("text-xs text-grey-7 dark:text-grey-5"), f"{marker}-detail")
            with ui.column().classes("gap-0 items-end shrink-0"):
                color = " text-positive" if positive else ""
                tagged(ui.label(amount).classes("text-sm font-mono" + color), f"{marker}-amount")
                if after is not None:
                    tagged(ui.label(after).classes("text-xs font-mono text-grey-7 dark:text-grey-5"), f"{marker}-after")


async def credits_section(services: Services, principal: Principal) -> None:
    await CreditsSection(services, principal).build()
