"""Credits: balances, the append-only ledger, holds, and the meter that bills model calls."""

from services.credits.meter import CreditMeter
from services.credits.schemas import Balance, GrantRequest, LedgerEntryRead
from services.credits.service import CreditService

__all__ = ["Balance", "CreditMeter", "CreditService", "GrantRequest", "LedgerEntryRead"]
