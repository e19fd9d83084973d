"""The quote model: validating a quote or a request for quotation (RFQ), exact amounts and totals,
and which of its texts are translated.

Amounts are exact decimals, strings on the wire (`"2.35"`, never a float). A line's amount is
quantity × unit price rounded half-up to the currency's minor units (ISO 4217); the totals are
the sums of the line amounts, one per currency. Products, notes and payment terms are the only
texts a reader sees translated; numbers, units, currencies, Incoterms and places never are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Literal, overload

from server.realtime.errors import INVALID, AppError
from server.trade.codes import CURRENCIES, INCOTERMS, UNITS

QUOTE_ID_RE = re.compile(r"^q_[0-9a-f]{16}\Z")
ACTIONS = ("accept", "decline", "counter")
# What a quote or an RFQ says besides its items (the payload of quote.send / quote.request and
# of a counter, less the envelope fields).
TERM_FIELDS = frozenset(
    {"items", "incoterm", "place", "lead_time_days", "valid_until", "payment_terms", "notes"}
)
ITEM_FIELDS = frozenset({"product", "quantity", "unit", "unit_price", "currency"})


@dataclass(frozen=True)
class QuoteLimits:
    """Every bound a quote's fields are checked against (docs/protocol.md, Limits)."""

    max_items: int = 50
    max_product_chars: int = 200
    max_place_chars: int = 100
    max_payment_terms_chars: int = 500
    max_notes_chars: int = 2000
    quantity_digits: int = 12  # before the decimal point
    quantity_decimals: int = 3
    price_digits: int = 12
    price_decimals: int = 6
    max_amount: Decimal = Decimal(10) ** 15  # a line's amount, and a total
    max_lead_time_days: int = 3650
    max_valid_days: int = 1826  # valid_until at most about five years ahead
    max_versions: int = 50  # a quote and its counters


class FieldInvalid(AppError):
    """`invalid`, naming the field (`items[2].unit_price`) in the message and in `error.field`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(INVALID, f"{field} {message}")
        self.field = field

    def ack(self) -> dict[str, Any]:
        ack = super().ack()
        ack["error"]["field"] = self.field
        return ack


def _decimal_re(digits: int, decimals: int) -> re.Pattern[str]:
    return re.compile(rf"^(0|[1-9][0-9]{{0,{digits - 1}}})(\.[0-9]{{1,{decimals}}})?\Z")


def decimal_field(value: Any, field: str, digits: int, decimals: int) -> Decimal:
    """A decimal given as a string of up to `digits` digits and `decimals` decimals."""
    if not isinstance(value, str) or not _decimal_re(digits, decimals).match(value):
        raise FieldInvalid(
            field,
            f'must be a decimal number as a string, like "2.35" (up to {digits} digits and '
            f"{decimals} decimals, no sign or exponent)",
        )
    return Decimal(value)


def text_field(
    data: dict[str, Any], key: str, max_chars: int, required: bool, field: str | None = None
) -> str | None:
    """`data[key]`: a text of 1..max_chars characters, not only whitespace (None when absent
    and optional); errors name `field` (default: the key)."""
    field = field or key
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise FieldInvalid(field, "must be a non-empty string")
    if len(value) > max_chars:
        raise FieldInvalid(field, f"is longer than {max_chars} characters")
    return value


def minor_units(currency: str) -> int:
    """Digits after the decimal point in `currency` (ISO 4217)."""
    return CURRENCIES[currency]


def money(amount: Decimal, currency: str) -> str:
    """`amount` rounded half-up to the currency's minor units, as a string."""
    step = Decimal(1).scaleb(-minor_units(currency))
    with localcontext() as ctx:
        ctx.prec = 60
        return str(amount.quantize(step, rounding=ROUND_HALF_UP))


def line_amount(quantity: str, unit_price: str, currency: str) -> str:
    """Quantity × unit price, exact, then rounded to the currency's minor units."""
    with localcontext() as ctx:
        ctx.prec = 60
        return money(Decimal(quantity) * Decimal(unit_price), currency)


def totals(items: list[dict[str, Any]]) -> dict[str, str]:
    """The sum of the line amounts, per currency (sorted by code)."""
    sums: dict[str, Decimal] = {}
    for item in items:
        if item.get("amount") is not None:
            sums[item["currency"]] = sums.get(item["currency"], Decimal(0)) + Decimal(
                item["amount"]
            )
    return {code: money(sums[code], code) for code in sorted(sums)}


def _item(value: Any, n: int, priced: bool, limits: QuoteLimits) -> dict[str, Any]:
    where = f"items[{n}]"
    if not isinstance(value, dict):
        raise FieldInvalid(
            where, "must be an object {product, quantity, unit, unit_price, currency}"
        )
    unknown = set(value) - ITEM_FIELDS
    if unknown:
        raise FieldInvalid(f"{where}.{sorted(unknown)[0]}", "is not a field of an item")
    product = text_field(value, "product", limits.max_product_chars, True, f"{where}.product")
    item: dict[str, Any] = {"product": product}
    quantity = decimal_field(
        value.get("quantity"),
        f"{where}.quantity",
        limits.quantity_digits,
        limits.quantity_decimals,
    )
    if quantity <= 0:
        raise FieldInvalid(f"{where}.quantity", "must be more than 0")
    item["quantity"] = value["quantity"]
    unit = value.get("unit")
    if unit not in UNITS:
        raise FieldInvalid(f"{where}.unit", f"must be one of {', '.join(UNITS)}")
    item["unit"] = unit
    currency = value.get("currency")
    if priced or currency is not None:
        if not isinstance(currency, str) or currency not in CURRENCIES:
            raise FieldInvalid(
                f"{where}.currency", "must be an ISO 4217 currency code such as USD, EUR, CNY"
            )
    item["currency"] = currency
    if not priced:
        if "unit_price" in value:
            raise FieldInvalid(f"{where}.unit_price", "is not allowed: a request has no prices")
        return item
    decimal_field(
        value.get("unit_price"), f"{where}.unit_price", limits.price_digits, limits.price_decimals
    )
    item["unit_price"] = value["unit_price"]
    item["amount"] = line_amount(item["quantity"], item["unit_price"], item["currency"])
    if Decimal(item["amount"]) > limits.max_amount:
        raise FieldInvalid(f"{where}.unit_price", "makes the line amount too large")
    return item


def parse_terms(
    data: dict[str, Any], priced: bool, limits: QuoteLimits, today: date | None = None
) -> dict[str, Any]:
    """A quote's terms (`priced`) or an RFQ's (no prices), every field checked; raises
    FieldInvalid naming the first bad field. Adds each line's `amount` and the `totals`."""
    today = today or datetime.now(UTC).date()
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise FieldInvalid("items", "must be a non-empty list")
    if len(items) > limits.max_items:
        raise FieldInvalid("items", f"has more than {limits.max_items} lines")
    parsed = [_item(item, n, priced, limits) for n, item in enumerate(items)]
    incoterm = data.get("incoterm")
    if incoterm not in INCOTERMS:
        raise FieldInvalid("incoterm", f"must be an Incoterms 2020 rule: {', '.join(INCOTERMS)}")
    lead = data.get("lead_time_days")
    if isinstance(lead, bool) or not isinstance(lead, int):
        raise FieldInvalid("lead_time_days", "must be a whole number of days")
    if not 0 <= lead <= limits.max_lead_time_days:
        raise FieldInvalid("lead_time_days", f"must be from 0 to {limits.max_lead_time_days}")
    valid_until = _date(data.get("valid_until"), "valid_until")
    if valid_until < today:
        raise FieldInvalid("valid_until", "is in the past")
    if valid_until > today + timedelta(days=limits.max_valid_days):
        raise FieldInvalid("valid_until", f"is more than {limits.max_valid_days} days ahead")
    terms: dict[str, Any] = {
        "items": parsed,
        "incoterm": incoterm,
        "place": text_field(data, "place", limits.max_place_chars, False),
        "lead_time_days": lead,
        "valid_until": valid_until.isoformat(),
        "payment_terms": text_field(data, "payment_terms", limits.max_payment_terms_chars, False),
        "notes": text_field(data, "notes", limits.max_notes_chars, False),
    }
    if priced:
        terms["totals"] = totals(parsed)
        if any(Decimal(t) > limits.max_amount for t in terms["totals"].values()):
            raise FieldInvalid("items", "add up to a total that is too large")
    return terms


def _date(value: Any, field: str) -> date:
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}\Z", value):
        raise FieldInvalid(field, "must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FieldInvalid(field, "must be a date YYYY-MM-DD") from None


@overload
def quote_id(data: dict[str, Any], field: str, required: Literal[True]) -> str: ...
@overload
def quote_id(data: dict[str, Any], field: str, required: bool) -> str | None: ...
def quote_id(data: dict[str, Any], field: str, required: bool) -> str | None:
    """A quote id `q_` + 16 hex digits."""
    value = data.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not QUOTE_ID_RE.match(value):
        raise FieldInvalid(field, "must be a quote id like q_0123456789abcdef")
    return value


def expired(terms: dict[str, Any], now: datetime | None = None) -> bool:
    """Whether the terms' `valid_until` day (UTC) is over."""
    now = now or datetime.now(UTC)
    return now.date() > date.fromisoformat(terms["valid_until"])


def texts(terms: dict[str, Any]) -> list[str]:
    """The texts a reader sees in their language, in a fixed order: each item's product, then
    the payment terms and the notes when present."""
    out = [item["product"] for item in terms["items"]]
    out += [terms[f] for f in ("payment_terms", "notes") if terms.get(f) is not None]
    return out


def reader_texts(terms: dict[str, Any], translated: list[str | None]) -> dict[str, Any]:
    """`translated` (in the order of `texts`, None where one failed) as a reader's view:
    `{"items": [product], "payment_terms"?, "notes"?}`."""
    n = len(terms["items"])
    view: dict[str, Any] = {"items": translated[:n]}
    rest = iter(translated[n:])
    for f in ("payment_terms", "notes"):
        if terms.get(f) is not None:
            view[f] = next(rest)
    return view
