"""Credits are exposed as decimals and held as integer micro-credits; these are the only conversions."""

from __future__ import annotations

from decimal import Decimal

MICRO = 1_000_000


def to_credits(micro: int) -> Decimal:
    return (Decimal(micro) / MICRO).quantize(Decimal("0.000001"))


def to_micro(credits: Decimal) -> int:
    return int((credits * MICRO).to_integral_value())
