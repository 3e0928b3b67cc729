"""Numbers and money amounts as people say or type them, turned into digits and Decimals.

Handles spoken cardinals ("two hundred and fifty", "fifteen hundred", "one fifty five"),
Western and Indian scales ("million", "lakh", "crore", "5k"), decimals ("two point five",
"1.5 lakh"), signs ("minus sixty") and digit groupings ("1,200", "10,00,000").
"""

import re
from decimal import Decimal, localcontext

_UNIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEEN_WORDS: tuple[str, ...] = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen")
_TEEN_WORDS += ("sixteen", "seventeen", "eighteen", "nineteen")
_TENS_WORDS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SHORT_SCALES: tuple[str, ...] = ("thousand", "million", "billion", "trillion", "quadrillion")
_SHORT_SCALES += ("quintillion", "sextillion", "septillion", "octillion", "nonillion", "decillion")

UNITS = {w: n for n, w in enumerate(_UNIT_WORDS)}
TEENS = {w: n + 10 for n, w in enumerate(_TEEN_WORDS)}
TENS = {w: (n + 2) * 10 for n, w in enumerate(_TENS_WORDS)}
SCALES: dict[str, int] = {w: 1000 ** (n + 1) for n, w in enumerate(_SHORT_SCALES)}
SCALES |= {"lakh": 10**5, "lac": 10**5, "crore": 10**7}
# Spoken digits after "point", where "oh" and "o" mean zero.
DIGIT_WORDS = UNITS | {"oh": 0, "o": 0}
SIGN_WORDS = {"minus", "negative"}
_NUMBER_WORDS = UNITS.keys() | TEENS.keys() | TENS.keys() | SCALES.keys() | {"hundred"}

MAJOR_CURRENCY = {"rupee", "rupees", "rs", "inr", "₹", "dollar", "dollars", "usd", "$"}
MAJOR_CURRENCY |= {"euro", "euros", "eur", "€", "pound", "pounds", "gbp", "£"}
MAJOR_CURRENCY |= {"yen", "jpy", "¥", "yuan", "cny", "rmb", "won", "krw", "₩"}
MINOR_CURRENCY = {"cent", "cents", "paisa", "paise", "penny", "pennies", "pence"}

# A number in digits ("1,200", "10,00,000", "-3", "2.5", ".5"), maybe with a "k" stuck to it;
# a word (with inner apostrophes or hyphens); or any other single character.
_TOKEN = re.compile(
    r"(?P<num>(?:(?<![\w.,])-)?(?:\d{1,3}(?:(?:,\d{3})+|(?:,\d{2})+,\d{3})(?!\d)|\d+)(?:\.\d+)?"
    r"|(?<![\w.])\.\d+)(?P<k>k(?![a-z\d]))?"
    r"|(?P<word>[a-z]+(?:['’-][a-z]+)*)"
    r"|\S",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"-?(?:\d[\d,]*(?:\.\d+)?|\.\d+)")

Parsed = tuple[Decimal, int]  # a value and the index of the first word after it


def _tokenize(text: str) -> list[tuple[str, bool]]:
    """Split text into (token, preceded by whitespace) pairs; "5k" and "twenty-five" split up."""
    tokens = []
    for match in _TOKEN.finditer(text):
        space = match.start() > 0 and text[match.start() - 1].isspace()
        word = match["word"] or ""
        if match["k"]:
            tokens += [(match["num"], space), (match["k"], False)]
        elif "-" in word and all(p in _NUMBER_WORDS for p in word.lower().split("-")):
            tokens += [(part, space or n > 0) for n, part in enumerate(word.split("-"))]
        else:
            tokens.append((match[0], space))
    return tokens


def _at(words: list[str], i: int) -> str:
    return words[i] if i < len(words) else ""


def _digits(word: str) -> Decimal | None:
    return Decimal(word.replace(",", "")) if _DIGITS.fullmatch(word) else None


def _scale(word: str, bare: bool = False) -> int | None:
    """The multiplier a scale word stands for; `bare` ones may also stand alone ("thousand")."""
    if word in SCALES:
        return SCALES[word]
    if bare:
        return None
    if word == "k":
        return 1000
    return SCALES.get(word[:-1]) if word.endswith("s") else None


def _below_hundred(words: list[str], i: int) -> tuple[int, int] | None:
    """ "seven", "fifteen", "forty" or "forty two"."""
    word, after = _at(words, i), _at(words, i + 1)
    if word in TENS and UNITS.get(after, 0) > 0:
        return TENS[word] + UNITS[after], i + 2
    for table in (UNITS, TEENS, TENS):
        if word in table:
            return table[word], i + 1
    return None


def _paired(words: list[str], i: int) -> tuple[int, int] | None:
    """The second half of a number said in two parts: "(nineteen) ninety", "(one) oh five"."""
    if _at(words, i) in ("oh", "o") and _at(words, i + 1) in UNITS:
        return UNITS[words[i + 1]], i + 2
    if _at(words, i) in TEENS or _at(words, i) in TENS:
        return _below_hundred(words, i)
    return None


def _group(words: list[str], i: int) -> Parsed | None:
    """A number in digits, or in words below a thousand ("twenty one hundred and eleven")."""
    word, after = _at(words, i), _at(words, i + 1)
    if (digits := _digits(word)) is not None:
        # "15 hundred", as speech-to-text writes "fifteen hundred". Nobody says "three
        # hundred hundred": "300 hundred" is a speech-to-text echo, not 30,000.
        if after == "hundred" and digits == digits.to_integral_value() and 0 < digits < 100:
            return digits * 100, i + 2
        return digits, i + 1
    if word == "a" and (after == "hundred" or _scale(after, bare=True)):
        value, i = 1, i + 1  # "a hundred", "a lakh"
    elif word == "hundred" or _scale(word, bare=True):
        value = 1  # "hundred rupees", "thousand rupees": the scale word itself comes next
    elif head := _below_hundred(words, i):
        value, i = head
    else:
        return None
    if _at(words, i) == "hundred":
        value, i = value * 100, i + 1
        skip_and = 1 if _at(words, i) == "and" else 0
        if tail := _below_hundred(words, i + skip_and):
            value, i = value + tail[0], tail[1]
    elif value and (tail := _paired(words, i)):
        value, i = value * 100 + tail[0], tail[1]
    return Decimal(value), i


def _quantity(words: list[str], i: int) -> Parsed | None:
    """A group, maybe with a fraction: "two point five", "point five", "one and a half",
    "half a" (lakh)."""
    group = _group(words, i)
    if group is None:
        # "half a lakh", "half lakh": half of the scale said next (not "half a glass").
        skip = 2 if words[i : i + 2] == ["half", "a"] else 1 if _at(words, i) == "half" else 0
        if skip and _scale(_at(words, i + skip)):
            return Decimal("0.5"), i + skip
    value, j = group or (Decimal(0), i)
    if _at(words, j) == "point" and _at(words, j + 1).isdigit():
        # "point five lakh" as speech-to-text writes it: "Point 5 lakh." (not 5 lakh)
        return value + Decimal("0." + words[j + 1]), j + 2
    if _at(words, j) == "point" and _at(words, j + 1) in DIGIT_WORDS:
        j += 1
        fraction = ""
        while _at(words, j) in DIGIT_WORDS:
            fraction, j = fraction + str(DIGIT_WORDS[words[j]]), j + 1
        return value + Decimal("0." + fraction), j
    if group and words[j : j + 3] == ["and", "a", "half"]:
        return value + Decimal("0.5"), j + 3
    return group


def _unsigned(words: list[str], i: int) -> Parsed | None:
    """The longest number without a sign that starts at words[i]."""
    total, start, end = Decimal(0), i, i
    largest = last = 0  # the largest scale so far and the last one used
    with localcontext(prec=100):
        while quantity := _quantity(words, i):
            value, j = quantity
            scale = _scale(_at(words, j))
            if not scale:
                return total + value, j
            if scale > largest:
                total, largest = (total + value) * scale, scale
            elif scale < last:
                total += value * scale
            else:  # "one thousand two thousand": the second one is a number of its own
                break
            last, j = scale, j + 1
            while (bigger := _scale(_at(words, j))) and bigger > largest:  # "one lakh crore"
                total, largest, last, j = total * bigger, bigger, bigger, j + 1
            end = j
            i = j + 1 if _at(words, j) == "and" else j
    return (total, end) if end > start else None


def _number(words: list[str], i: int) -> Parsed | None:
    """The longest number, maybe with "minus" before it, that starts at words[i]."""
    if _at(words, i) in SIGN_WORDS and (parsed := _unsigned(words, i + 1)):
        return -parsed[0], parsed[1]
    return _unsigned(words, i)


def _format(value: Decimal) -> str:
    """Plain digits: no exponent or separators, a decimal point only for a fraction."""
    return str(int(value)) if value == value.to_integral_value() else format(value, "f")


def normalise_numbers(text: str) -> str:
    """Replace every number in words or formatted digits by plain digits; keep the rest."""
    tokens = _tokenize(text)
    words = [token.lower() for token, _ in tokens]
    pieces: list[str] = []
    i = 0
    while i < len(tokens):
        token, space = tokens[i]
        parsed = _number(words, i)
        if parsed is None:
            piece, j = token, i + 1
        elif parsed[1] == i + 1 and _digits(words[i]) is not None:
            piece, j = token.replace(",", ""), i + 1  # keeps "007" and "10.50" as written
        else:
            piece, j = _format(parsed[0]), parsed[1]
        pieces.append(" " + piece if space and pieces else piece)
        i = j
    return "".join(pieces)


def parse_number(text: str) -> Decimal | None:
    """The value of text that is exactly one number, in words or digits; else None."""
    words = [token for token, _ in _tokenize(text.strip().lower())]
    parsed = _number(words, 0)
    return parsed[0] if parsed and parsed[1] == len(words) else None


def _currency(words: list[str], i: int) -> tuple[str, int] | None:
    """("major" or "minor", index after it) for a currency name at words[i]."""
    if _at(words, i) in MINOR_CURRENCY:
        return "minor", i + 1
    if words[i : i + 2] == ["united", "states"]:
        i += 2
    elif _at(words, i) == "us":
        i += 1
    return ("major", i + 1) if _at(words, i) in MAJOR_CURRENCY else None


def parse_money(text: str) -> Decimal | None:
    """The amount of the first money phrase in text, in major units ("₹5 and 50 paise" → 5.5)."""
    words = [token for token, _ in _tokenize(text.strip().lower())]
    parsed = next(filter(None, (_number(words, i) for i in range(len(words)))), None)
    if parsed is None:
        return None
    amount, i = parsed
    unit = _currency(words, i)
    if unit and unit[0] == "minor":
        return amount / 100
    i = unit[1] if unit else i
    minor = _number(words, i + 1 if _at(words, i) == "and" else i)
    if minor and 0 <= minor[0] < 100:
        minor_unit = _currency(words, minor[1])
        if (minor_unit and minor_unit[0] == "minor") or (unit and not minor_unit):
            with localcontext(prec=100):
                amount += minor[0] / 100
    return amount
