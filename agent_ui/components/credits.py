"""Settings → Credits: the balance, spend per day, usage per session and the ledger."""

from __future__ import annotations

from nicegui import ui

from services.auth import Principal
from services.chat import ChatService
from services.container import Services

LEDGER_COLUMNS = [
    {"name": "created_at", "label": "When (UTC)", "field": "created_at", "align": "left"},
    {"name": "kind", "label": "Kind", "field": "kind", "align": "left"},
    {"name": "amount", "label": "Amount", "field": "amount", "align": "right"},
    {"name": "balance_after", "label": "Balance after", "field": "balance_after", "align": "right"},
    {"name": "cause", "label": "Cause", "field": "cause", "align": "left"},
]
USAGE_COLUMNS = [
    {"name": "session", "label": "Session", "field": "session", "align": "left"},
    {"name": "tokens", "label": "Tokens (prompt + completion)", "field": "tokens", "align": "right"},
    {"name": "credits", "label": "Credits", "field": "credits", "align": "right"},
]


async def credits_section(services: Services, principal: Principal) -> None:
    user_id = principal.user.id
    balance = await services.credits.balance(user_id)
    spend = await services.credits.spend_by_day(user_id, days=30)
    ledger = await services.credits.history(user_id, limit=100, cursor=None)
    usage = await services.get(ChatService).usage_page(user_id, limit=100, cursor=None)

    with ui.card().classes("w-full gap-3").props("id=credits"):
        ui.label("Credits").classes("text-lg font-medium")
        with ui.row().classes("gap-8"):
            for label, value, marker in [("Balance", balance.balance, "credits-balance"),
                                         ("Held by running work", balance.held, "credits-held"),
                                         ("Available", balance.available, "credits-available")]:  # fmt: skip
                with ui.column().classes("gap-0"):
                    ui.label(label).classes("text-xs text-grey-7")
                    ui.label(f"{value:,.6f}").classes("text-xl font-mono").mark(marker)

        ui.label("Spend per day (last 30 days)").classes("text-sm font-medium mt-2")
        ui.echart({
            "tooltip": {"trigger": "axis"},
            "grid": {"left": 50, "right": 10, "top": 10, "bottom": 30},
            "xAxis": {"type": "category", "data": [day.day.isoformat()[5:] for day in spend]},
            "yAxis": {"type": "value"},
            "series": [{"type": "bar", "name": "credits", "data": [float(day.credits) for day in spend]}],
        }).classes("w-full h-56").mark("spend-chart")  # fmt: skip

        ui.label("Usage per chat session").classes("text-sm font-medium mt-2")
        ui.table(
            columns=USAGE_COLUMNS,
            rows=[{"session": u.session_id, "tokens": f"{u.total_prompt_tokens:,} + {u.total_completion_tokens:,}",
                   "credits": f"{u.credits:.6f}"} for u in usage.items],
            row_key="session", pagination=10,
        ).classes("w-full").props("flat dense").mark("usage-table")  # fmt: skip

        ui.label("Ledger").classes("text-sm font-medium mt-2")
        ui.table(
            columns=LEDGER_COLUMNS,
            rows=[{"id": e.id, "created_at": f"{e.created_at:%Y-%m-%d %H:%M:%S}", "kind": e.kind,
                   "amount": f"{e.amount:+.6f}", "balance_after": f"{e.balance_after:.6f}",
                   "cause": " ".join(filter(None, [e.cause_type, e.cause_id, e.reason]))} for e in ledger.items],
            row_key="id", pagination=15,
        ).classes("w-full").props("flat dense").mark("ledger-table")  # fmt: skip
