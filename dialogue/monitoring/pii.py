"""Personal data in a user's message: what kinds it holds, and a copy with them masked.

The kinds and their names follow seeds/002's conversation metadata (`pii_detected:
["account_number"]`). Digits are matched as whole runs, so an amount ("send 500") is
never taken for a number of this kind; a card number must also pass the Luhn check.
"""

import re
from dataclasses import dataclass

PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("card_number", re.compile(r"(?<![\d-])\d{4}(?:[ -]?\d{4}){2}[ -]?\d{1,7}(?![\d-])")),
    ("aadhaar_number", re.compile(r"(?<!\d)(?<!\d )\d{4} \d{4} \d{4}(?! ?\d)")),
    ("phone_number", re.compile(r"(?<![\w+])(?:\+91[ -]?)?[6-9]\d{9}(?!\d)")),
    ("account_number", re.compile(r"(?<![\d,.])\d{9,18}(?![\d,.]\d)")),
    ("pan", re.compile(r"\b[A-Z]{5}\d{4}[A-Z]\b")),
]


@dataclass(frozen=True)
class Found:
    kind: str
    text: str


def find(message: str) -> list[Found]:
    """The personal data in `message`, each piece once, under the first kind it fits."""
    found: list[Found] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in PATTERNS:
        for match in pattern.finditer(message):
            start, end = match.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            if kind == "card_number" and not _luhn(match.group()):
                continue
            taken.append((start, end))
            found.append(Found(kind, match.group()))
    return found


def masked(piece: Found) -> str:
    """A digit string keeps its last four digits; an email its first letter and domain."""
    if piece.kind == "email":
        name, _, domain = piece.text.partition("@")
        return f"{name[:1]}***@{domain}"
    digits = re.sub(r"\D", "", piece.text)
    return f"****{digits[-4:]}"


def mask_in(text: str, pieces: list[Found]) -> str:
    """`text` with every piece of `pieces` it repeats masked."""
    for piece in sorted(pieces, key=lambda p: len(p.text), reverse=True):
        text = text.replace(piece.text, masked(piece))
    return text


def _luhn(number: str) -> bool:
    digits = [int(d) for d in re.sub(r"\D", "", number)]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0
