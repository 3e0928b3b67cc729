"""Money as integer paise, and the two ways people see it: text and JSON numbers."""

from decimal import Decimal, InvalidOperation

PAISE_PER_RUPEE = 100


class InvalidAmount(ValueError):
    """An amount that cannot be expressed as a whole number of paise."""


def rupees_to_paise(rupees: Decimal | int | str) -> int:
    """Convert a rupee amount to paise, refusing fractions of a paisa, NaN and infinity."""
    try:
        value = Decimal(rupees)
    except (InvalidOperation, TypeError, ValueError) as error:
        raise InvalidAmount(f"not a number: {rupees!r}") from error
    if not value.is_finite():
        raise InvalidAmount("amount must be a finite number")
    paise = value * PAISE_PER_RUPEE
    if paise != paise.to_integral_value():
        raise InvalidAmount("amount has a fraction of a paisa")
    return int(paise)


def format_rupees(paise: int) -> str:
    """'₹10000' for whole rupees, '₹10000.50' otherwise (the contract's style: no separators)."""
    sign = "-" if paise < 0 else ""
    rupees, rest = divmod(abs(paise), PAISE_PER_RUPEE)
    return f"{sign}₹{rupees}" if rest == 0 else f"{sign}₹{rupees}.{rest:02d}"


def rupees_number(paise: int) -> int | float:
    """The JSON number for an amount: an integer when whole, else rupees with two decimals.

    The float exists only at the JSON boundary; two-decimal values print exactly.
    """
    rupees, rest = divmod(paise, PAISE_PER_RUPEE)
    return rupees if rest == 0 else round(paise / PAISE_PER_RUPEE, 2)
