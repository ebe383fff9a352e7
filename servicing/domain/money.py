"""Money primitives: CNY to the fen, ROUND_HALF_UP, Decimal only.

PostgreSQL's numeric rounds half away from zero, Python's Decimal defaults to half-even:
everything that is stored goes through :func:`fen` first so both agree.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN = Decimal("0.01")
ZERO = Decimal("0.00")


class MoneyError(ValueError):
    """An amount that is not a valid CNY figure."""


def fen(value: Decimal | int | str) -> Decimal:
    """Round to the fen, half up. Floats are refused: they cannot carry money."""
    if isinstance(value, float):
        raise MoneyError("floats are not money; use Decimal or str")
    try:
        return Decimal(value).quantize(FEN, rounding=ROUND_HALF_UP)
    except (InvalidOperation, TypeError) as exc:
        raise MoneyError(f"'{value}' is not a number") from exc


def parse_amount(text: str, *, allow_zero: bool = False) -> Decimal:
    """Parse a user-given yuan amount with at most two decimals ("1234.50")."""
    try:
        value = Decimal(str(text).strip().replace(",", ""))
    except InvalidOperation as exc:
        raise MoneyError(f"amount '{text}' is not a number") from exc
    if not value.is_finite():
        raise MoneyError(f"amount '{text}' is not a number")
    if value != value.quantize(FEN):
        raise MoneyError(f"amount '{text}' has more than two decimals")
    if value < 0 or (value == 0 and not allow_zero):
        raise MoneyError(f"amount '{text}' must be greater than zero")
    return value.quantize(FEN)


def yuan_to_fen_int(value: Decimal) -> int:
    return int(fen(value) * 100)


def fen_int_to_yuan(value: int) -> Decimal:
    return (Decimal(value) / 100).quantize(FEN)


def format_amount(value: Decimal | None) -> str:
    """Plain two decimals, "1234.50": the machine-read form (JSON, API, command output, bank and CSV files).

    None is 0.00. The value is formatted as given, not rounded to the fen first.
    """
    return f"{ZERO if value is None else value:.2f}"


def format_amount_grouped(value: Decimal | None) -> str:
    """Grouped two decimals, "1,234.50": the human-read form (notice texts, certificates, messages).

    None is 0.00. The value is formatted as given, not rounded to the fen first.
    """
    return f"{ZERO if value is None else value:,.2f}"


def format_cny(value: Decimal | None) -> str:
    """¥1,234.56 as the ops console shows money."""
    if value is None:
        return "—"
    value = fen(value)
    sign = "-" if value < 0 else ""
    return f"{sign}¥{abs(value):,.2f}"


_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ["", "拾", "佰", "仟"]
_SECTIONS = ["", "万", "亿", "万亿"]


def _section(n: int) -> str:
    out = ""
    zero = False
    for i in range(3, -1, -1):
        d = (n // 10**i) % 10
        if d == 0:
            if out:
                zero = True
        else:
            if zero:
                out += "零"
                zero = False
            out += _DIGITS[d] + _UNITS[i]
    return out


def chinese_capital(amount: Decimal) -> str:
    """Amount in Chinese financial capitals (大写), e.g. 100000 → 壹拾万元整."""
    amount = fen(amount)
    if amount < 0:
        return "负" + chinese_capital(-amount)
    yuan = int(amount)
    jiao = int(amount * 10) % 10
    fen_ = int(amount * 100) % 10
    if yuan == 0:
        text = ""
    else:
        parts = []
        section_index = 0
        need_zero = False
        while yuan > 0:
            sec = yuan % 10000
            if sec:
                s = _section(sec) + _SECTIONS[section_index]
                if need_zero:
                    s += "零"
                parts.insert(0, s)
                need_zero = sec < 1000
            else:
                need_zero = bool(parts)
            yuan //= 10000
            section_index += 1
        text = "".join(parts)
        text = text.replace("零零", "零")
        if text.endswith("零"):
            text = text[:-1]
        text += "元"
    if jiao == 0 and fen_ == 0:
        return (text or "零元") + "整"
    if jiao:
        text += _DIGITS[jiao] + "角"
    elif text:
        text += "零"
    if fen_:
        text += _DIGITS[fen_] + "分"
    else:
        text += "整"
    return text
