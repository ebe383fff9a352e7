"""The repayment waterfall: how one payment is split over what is due.

Pure and Decimal-only so the same split can be checked in tests and replayed by
the ledger. Rule (domain.md, "Allocation"): the oldest due instalment first; within
an instalment the product's order (default penalty -> compound -> fee -> interest ->
principal). Whatever is left becomes the borrower's credit balance (挂账).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from servicing.domain.money import FEN, ZERO, fen

COMPONENTS: tuple[str, ...] = ("penalty", "compound", "fee", "interest", "principal")
DEFAULT_ORDER: tuple[str, ...] = COMPONENTS  # penalty -> compound -> fees -> interest -> principal


class AllocationError(ValueError):
    """A payment, a due amount or an allocation order that cannot be allocated."""


@dataclass(frozen=True)
class InstalmentDue:
    """What one instalment still owes, per component (a missing component owes 0)."""

    key: int
    due_date: date
    outstanding: Mapping[str, Decimal]


@dataclass(frozen=True)
class AllocationLine:
    """One amount applied to one component of one instalment."""

    key: int
    component: str
    amount: Decimal


@dataclass(frozen=True)
class Allocation:
    """The result of a split: lines in the order applied, plus what was left over."""

    lines: tuple[AllocationLine, ...]
    applied: Decimal
    remainder: Decimal  # becomes the borrower's credit balance (挂账)

    def by_key(self) -> dict[int, dict[str, Decimal]]:
        """Amounts per instalment key, then per component, for posting and display."""
        return per_instalment((line.key, line.component, line.amount) for line in self.lines)


def per_instalment(lines: Iterable[tuple[int, str, Decimal]]) -> dict[int, dict[str, Decimal]]:
    """(instalment key, component, amount) lines summed per key, then per component, in the order first met."""
    out: dict[int, dict[str, Decimal]] = {}
    for key, component, amount in lines:
        per_key = out.setdefault(key, {})
        per_key[component] = per_key.get(component, ZERO) + amount
    return out


def validate_order(order: Sequence[str]) -> tuple[str, ...]:
    """Check that ``order`` is a permutation of COMPONENTS, so no component is ever skipped."""
    if isinstance(order, str):
        raise AllocationError("allocation order must be a sequence of component names, not a string")
    names = tuple(order)
    problems: list[str] = []
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        problems.append("unknown component(s): " + ", ".join(repr(n) for n in unknown))
    missing = [c for c in COMPONENTS if c not in names]
    if missing:
        problems.append("missing component(s): " + ", ".join(repr(c) for c in missing))
    repeated = sorted({n for n in names if names.count(n) > 1 and n in COMPONENTS})
    if repeated:
        problems.append("repeated component(s): " + ", ".join(repr(n) for n in repeated))
    if problems:
        raise AllocationError(
            "allocation order must list each of "
            + ", ".join(COMPONENTS)
            + " exactly once; "
            + "; ".join(problems)
        )
    return names


def _money(value: object, what: str) -> Decimal:
    """A non-negative amount with at most two decimals, normalised to 2 places."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise AllocationError(f"{what} must be a Decimal, got {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite():
        raise AllocationError(f"{what} {value} is not a finite amount")
    if value != value.quantize(FEN):
        raise AllocationError(f"{what} {value} has more than two decimals")
    if value < 0:
        raise AllocationError(f"{what} {value} is negative")
    return fen(value)  # exact here: only normalises the exponent to 0.01


def allocate(
    amount: Decimal,
    dues: Sequence[InstalmentDue],
    order: Sequence[str] = DEFAULT_ORDER,
) -> Allocation:
    """Split ``amount`` over ``dues``: oldest instalment first (due_date, then key), then ``order``.

    The caller passes only instalments that are due; anything left after all of them
    is returned as ``remainder`` (credit balance), never spread over future instalments.
    """
    components = validate_order(order)
    left = _money(amount, "payment amount")

    seen: set[int] = set()
    for due in dues:
        if due.key in seen:
            raise AllocationError(f"instalment {due.key} is listed twice")
        seen.add(due.key)
        unknown = [c for c in due.outstanding if c not in COMPONENTS]
        if unknown:
            raise AllocationError(
                f"instalment {due.key}: unknown component(s) " + ", ".join(repr(c) for c in unknown)
            )

    lines: list[AllocationLine] = []
    for due in sorted(dues, key=lambda d: (d.due_date, d.key)):
        for component in components:
            owed = _money(due.outstanding.get(component, ZERO), f"instalment {due.key} {component}")
            if left == 0:
                continue  # keep validating the remaining dues, but nothing more to apply
            paid = min(left, owed)
            if paid > 0:
                lines.append(AllocationLine(key=due.key, component=component, amount=paid))
                left -= paid

    applied = fen(sum((line.amount for line in lines), ZERO))
    return Allocation(lines=tuple(lines), applied=applied, remainder=fen(left))
