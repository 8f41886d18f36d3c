"""Credit accounts (balance and held amount), the append-only ledger, and holds of running work."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.db.base import SQLModel as _Base  # noqa: F401  (naming convention first)
from services.db.types import UTCDateTime


class CreditAccount(SQLModel, table=True):
    """Per user: ``balance_micro`` always equals the sum of the user's ledger; ``held_micro`` the sum of holds."""

    __tablename__ = "credit_accounts"

    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    balance_micro: int = Field(default=0, sa_type=sa.BigInteger)
    held_micro: int = Field(default=0, sa_type=sa.BigInteger)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class LedgerEntry(SQLModel, table=True):
    """One change of a balance: ``grant`` and ``refund`` add, ``charge`` subtracts. Never updated or deleted."""

    __tablename__ = "credit_ledger"
    __table_args__ = (sa.UniqueConstraint("user_id", "idempotency_key"),)

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    kind: str = Field(max_length=16)
    amount_micro: int = Field(sa_type=sa.BigInteger)  # signed: negative for charges
    balance_after_micro: int = Field(sa_type=sa.BigInteger)
    cause_type: str | None = Field(default=None, max_length=16)
    cause_id: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=500)
    idempotency_key: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


class CreditHold(SQLModel, table=True):
    """Credits reserved for running work, kept apart from the ledger until the work is settled."""

    __tablename__ = "credit_holds"

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    amount_micro: int = Field(sa_type=sa.BigInteger)
    cause_type: str | None = Field(default=None, max_length=16)
    cause_id: str | None = Field(default=None, max_length=64)
    owner_instance: str | None = Field(default=None, max_length=32, index=True)  # the process whose work it pays
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
