"""The repayment waterfall: table cases and hypothesis properties (no DB, no Django)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servicing.domain.allocation import (
    COMPONENTS,
    DEFAULT_ORDER,
    Allocation,
    AllocationError,
    AllocationLine,
    InstalmentDue,
    allocate,
    validate_order,
)

D = Decimal


def due(key: int, day: str, **outstanding: str) -> InstalmentDue:
    amounts = {k: D(v) for k, v in outstanding.items()}
    return InstalmentDue(key=key, due_date=date.fromisoformat(day), outstanding=amounts)


def triples(alloc: Allocation) -> list[tuple[int, str, str]]:
    return [(line.key, line.component, str(line.amount)) for line in alloc.lines]


# Two instalments as a 100,000 / 6 % / 12-month annuity would have them, the first overdue.
JAN = due(1, "2026-01-10", penalty="12.50", fee="5.00", interest="500.00", principal="8106.64")
FEB = due(2, "2026-02-10", interest="459.47", principal="8147.17")


class TestTable:
    def test_exact_cover_of_two_instalments(self) -> None:
        total = D("12.50") + D("5.00") + D("500.00") + D("8106.64") + D("459.47") + D("8147.17")
        alloc = allocate(total, [FEB, JAN])  # input order does not matter: oldest first
        assert triples(alloc) == [
            (1, "penalty", "12.50"),
            (1, "fee", "5.00"),
            (1, "interest", "500.00"),
            (1, "principal", "8106.64"),
            (2, "interest", "459.47"),
            (2, "principal", "8147.17"),
        ]
        assert alloc.applied == total
        assert alloc.remainder == D("0.00")
        assert alloc.by_key() == {
            1: {"penalty": D("12.50"), "fee": D("5.00"), "interest": D("500.00"), "principal": D("8106.64")},
            2: {"interest": D("459.47"), "principal": D("8147.17")},
        }

    def test_partial_within_one_instalment_follows_default_order(self) -> None:
        alloc = allocate(D("300.00"), [JAN, FEB])
        assert triples(alloc) == [
            (1, "penalty", "12.50"),
            (1, "fee", "5.00"),
            (1, "interest", "282.50"),
        ]
        assert (alloc.applied, alloc.remainder) == (D("300.00"), D("0.00"))

    def test_compound_comes_between_penalty_and_fee(self) -> None:
        inst = due(7, "2026-03-10", penalty="1.00", compound="0.20", fee="3.00", interest="9.00")
        alloc = allocate(D("2.00"), [inst])
        assert triples(alloc) == [(7, "penalty", "1.00"), (7, "compound", "0.20"), (7, "fee", "0.80")]

    def test_custom_order_principal_first(self) -> None:
        order = ("principal", "interest", "fee", "compound", "penalty")
        alloc = allocate(D("8200.00"), [JAN, FEB], order)
        assert triples(alloc) == [(1, "principal", "8106.64"), (1, "interest", "93.36")]

    def test_custom_order_still_pays_oldest_instalment_first(self) -> None:
        order = ("principal", "interest", "fee", "compound", "penalty")
        alloc = allocate(D("9000.00"), [JAN, FEB], order)
        assert triples(alloc) == [
            (1, "principal", "8106.64"),
            (1, "interest", "500.00"),
            (1, "fee", "5.00"),
            (1, "penalty", "12.50"),
            (2, "principal", "375.86"),
        ]

    def test_same_due_date_breaks_tie_on_key(self) -> None:
        a = due(5, "2026-01-10", principal="10.00")
        b = due(3, "2026-01-10", principal="10.00")
        assert triples(allocate(D("15.00"), [a, b])) == [(3, "principal", "10.00"), (5, "principal", "5.00")]

    def test_overpayment_leaves_a_credit_balance(self) -> None:
        alloc = allocate(D("20000.00"), [JAN, FEB])
        assert alloc.applied == D("17230.78")
        assert alloc.remainder == D("2769.22")
        assert len(alloc.lines) == 6

    def test_nothing_due_everything_is_remainder(self) -> None:
        alloc = allocate(D("50"), [])
        assert alloc.lines == ()
        assert (str(alloc.applied), str(alloc.remainder)) == ("0.00", "50.00")

    def test_zero_amount(self) -> None:
        alloc = allocate(D("0"), [JAN, FEB])
        assert alloc == Allocation(lines=(), applied=D("0.00"), remainder=D("0.00"))
        assert str(alloc.applied) == "0.00"

    def test_zero_components_produce_no_lines(self) -> None:
        inst = due(1, "2026-01-10", penalty="0.00", fee="0", interest="1.00")
        assert allocate(D("5.00"), [inst]).lines == (AllocationLine(1, "interest", D("1.00")),)

    @pytest.mark.parametrize(
        ("amount", "message"),
        [
            (D("10.005"), "more than two decimals"),
            (D("-0.01"), "negative"),
            (D("NaN"), "not a finite"),
            (D("Infinity"), "not a finite"),
            (10.5, "must be a Decimal"),
            ("10.50", "must be a Decimal"),
        ],
    )
    def test_bad_amount(self, amount: object, message: str) -> None:
        with pytest.raises(AllocationError, match=message):
            allocate(amount, [JAN])  # type: ignore[arg-type]

    def test_integer_amount_is_accepted(self) -> None:
        assert allocate(10, [JAN]).applied == D("10.00")

    @pytest.mark.parametrize(
        ("outstanding", "message"),
        [
            ({"interest": D("-1.00")}, "interest -1.00 is negative"),
            ({"interest": D("1.001")}, "more than two decimals"),
            ({"collection_fee": D("5.00")}, "unknown component.*'collection_fee'"),
        ],
    )
    def test_bad_outstanding(self, outstanding: dict[str, Decimal], message: str) -> None:
        inst = InstalmentDue(key=9, due_date=date(2026, 1, 10), outstanding=outstanding)
        with pytest.raises(AllocationError, match=message):
            allocate(D("1.00"), [inst])

    def test_bad_outstanding_is_refused_even_when_amount_is_used_up(self) -> None:
        bad = due(2, "2026-02-10", interest="-5.00")
        with pytest.raises(AllocationError, match="instalment 2 interest"):
            allocate(D("1.00"), [JAN, bad])

    def test_duplicate_instalment_key(self) -> None:
        with pytest.raises(AllocationError, match="instalment 1 is listed twice"):
            allocate(D("1.00"), [JAN, due(1, "2026-02-10", principal="1.00")])


class TestOrder:
    def test_default_order(self) -> None:
        assert DEFAULT_ORDER == ("penalty", "compound", "fee", "interest", "principal")
        assert validate_order(list(DEFAULT_ORDER)) == DEFAULT_ORDER

    @pytest.mark.parametrize(
        ("order", "message"),
        [
            (
                ("penalty", "compound", "fees", "interest", "principal"),
                "unknown component.*'fees'.*missing.*'fee'",
            ),
            (("penalty", "compound", "fee", "interest"), "missing component.*'principal'"),
            (
                ("penalty", "penalty", "compound", "fee", "interest", "principal"),
                "repeated component.*'penalty'",
            ),
            ((), "missing component.*'penalty', 'compound', 'fee', 'interest', 'principal'"),
            ("penalty", "not a string"),
        ],
    )
    def test_bad_order_names_the_component(self, order: tuple[str, ...], message: str) -> None:
        with pytest.raises(AllocationError, match=message):
            validate_order(order)
        with pytest.raises(AllocationError, match=message):
            allocate(D("1.00"), [JAN], order)


# ---------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------

money = st.integers(min_value=0, max_value=10**9).map(lambda n: D(n).scaleb(-2))
small_money = st.one_of(
    st.just(D("0.00")), st.integers(min_value=0, max_value=200_000).map(lambda n: D(n).scaleb(-2))
)


@st.composite
def dues_lists(draw: st.DrawFn) -> list[InstalmentDue]:
    keys = draw(st.lists(st.integers(min_value=1, max_value=60), unique=True, max_size=6))
    out = []
    for key in keys:
        # few distinct dates so ties on due_date (broken by key) are exercised
        day = date(2026, 1, 10) + timedelta(days=30 * draw(st.integers(min_value=0, max_value=4)))
        comps = draw(st.lists(st.sampled_from(COMPONENTS), unique=True))
        out.append(InstalmentDue(key=key, due_date=day, outstanding={c: draw(small_money) for c in comps}))
    return out


@st.composite
def cases(draw: st.DrawFn) -> tuple[Decimal, list[InstalmentDue], tuple[str, ...]]:
    dues = draw(dues_lists())
    total_due = sum((v for d in dues for v in d.outstanding.values()), D(0))
    # bias amounts around what is owed so partial, exact and over-payments all occur
    amount = draw(
        st.one_of(
            money,
            st.just(total_due),
            st.integers(min_value=0, max_value=int(total_due * 100)).map(lambda n: D(n).scaleb(-2)),
        )
    )
    order = tuple(draw(st.permutations(COMPONENTS)))
    return amount, dues, order


def _owed(d: InstalmentDue, c: str) -> Decimal:
    return d.outstanding.get(c, D(0))


@settings(max_examples=300)
@given(cases())
def test_allocation_properties(case: tuple[Decimal, list[InstalmentDue], tuple[str, ...]]) -> None:
    amount, dues, order = case
    alloc = allocate(amount, dues, order)
    paid = alloc.by_key()

    # Conservation: not a fen lost or created.
    assert sum((line.amount for line in alloc.lines), D(0)) + alloc.remainder == amount
    assert alloc.applied + alloc.remainder == amount
    assert alloc.remainder >= 0

    # Every figure is a positive (lines) or non-negative amount with exactly two decimals.
    for value in [alloc.applied, alloc.remainder, *(line.amount for line in alloc.lines)]:
        assert value.as_tuple().exponent == -2
    assert all(line.amount > 0 for line in alloc.lines)

    # At most one line per key/component, never more than was outstanding there.
    assert len({(line.key, line.component) for line in alloc.lines}) == len(alloc.lines)
    by_key = {d.key: d for d in dues}
    for line in alloc.lines:
        assert line.amount <= _owed(by_key[line.key], line.component)

    # Oldest first, then in the order: lines are applied in waterfall sequence, and nothing
    # earlier in the waterfall is left unpaid once something later received money.
    waterfall = [(d, c) for d in sorted(dues, key=lambda d: (d.due_date, d.key)) for c in order]
    rank = {(d.key, c): i for i, (d, c) in enumerate(waterfall)}
    ranks = [rank[(line.key, line.component)] for line in alloc.lines]
    assert ranks == sorted(ranks)
    unpaid = [i for i, (d, c) in enumerate(waterfall) if paid.get(d.key, {}).get(c, D(0)) < _owed(d, c)]
    if alloc.lines and unpaid:
        assert min(unpaid) >= max(ranks)  # only the last line's slot may be partly paid

    # An older instalment is never left owing while a newer one got money.
    for older in dues:
        for newer in dues:
            if (older.due_date, older.key) < (newer.due_date, newer.key) and paid.get(newer.key):
                for c in COMPONENTS:
                    assert paid.get(older.key, {}).get(c, D(0)) == _owed(older, c)

    # A credit balance exists only when everything due is paid; otherwise all money is applied.
    everything_paid = not unpaid
    if alloc.remainder > 0:
        assert everything_paid
    if not everything_paid:
        assert alloc.remainder == 0


@given(cases(), st.randoms(use_true_random=False))
def test_allocation_ignores_input_order_of_dues(case, rnd) -> None:  # type: ignore[no-untyped-def]
    amount, dues, order = case
    shuffled = list(dues)
    rnd.shuffle(shuffled)
    assert allocate(amount, shuffled, order) == allocate(amount, dues, order)


@given(st.permutations(COMPONENTS))
def test_any_permutation_is_a_valid_order(order: list[str]) -> None:
    assert validate_order(order) == tuple(order)
