"""Credits: balances, the append-only ledger, and holds that reserve credits for running work."""

from services.credits.schemas import Balance, GrantRequest, LedgerEntryRead, StatementLine
from services.credits.service import CreditService, Hold, Settlement

__all__ = ["Balance", "CreditService", "GrantRequest", "Hold", "LedgerEntryRead", "Settlement", "StatementLine"]
