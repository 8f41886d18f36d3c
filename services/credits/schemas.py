"""Credits in and out. Amounts are exposed as decimal credits and stored as integer micro-credits."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

Credits = Annotated[Decimal, Field(max_digits=18, decimal_places=6)]


class Balance(BaseModel):
    balance: Decimal
    held: Decimal
    available: Decimal


class LedgerEntryRead(BaseModel):
    id: str
    kind: str
    amount: Decimal
    balance_after: Decimal
    cause_type: str | None
    cause_id: str | None
    reason: str | None
    created_at: datetime


class StatementLine(BaseModel):
    """One line of the statement a person reads: a ledger entry, or the entries of one cause summed (a chat turn's
    model calls, a job's fee and calls). The ledger keeps one entry per call; this is only how it is shown."""

    id: str  # the newest entry's id
    kind: str  # grant | charge | refund
    label: str  # what it was for: "Chat: Trip to Rome", "Sign-up grant", "Grant by admin: welcome"
    detail: str | None  # "3 model calls"
    amount: Decimal  # signed, summed over the entries
    balance_after: Decimal  # after the newest entry
    entries: int
    cause_type: str | None
    cause_id: str | None
    created_at: datetime  # of the newest entry


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    amount: Annotated[Decimal, Field(gt=0, le=Decimal("1000000000"), decimal_places=6)]
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _one_target(self) -> GrantRequest:
        if (self.user_id is None) == (self.email is None):
            raise ValueError("give exactly one of user_id or email")
        return self


class DailySpend(BaseModel):
    day: date
    credits: Decimal
