"""Reply text that reads well on screen and aloud: "1,50,000 rupees", not "₹150000".

Conversations (turns with a session) are what the voice and phone channels speak, so
their replies write amounts as rupees with Indian digit grouping ("1,50,000 rupees"), and
`aloud()` turns them into the words an Indian listener expects ("one lakh fifty thousand
rupees") just before the speech synthesiser reads them. The documented stateless replies
keep their documented "₹" form.
"""

import re

RUPEE_AMOUNT = re.compile(r"₹(?P<rupees>\d+)(?:\.(?P<paise>\d{2}))?")
# An amount as spoken_amount() writes it: "1,50,000 rupees", "10 rupees 50 paise", "50 paise".
WRITTEN_AMOUNT = re.compile(
    r"\b(?P<rupees>\d{1,3}(?:,\d\d)*(?:,\d{3})?|\d+) (?P<unit>rupees?)"
    r"(?: (?P<paise>\d{1,2}) paise)?"
    r"|\b(?P<only_paise>\d{1,2}) paise"
)
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen".split()
_ONES += "fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
# Indian scales, largest first: crore, lakh, thousand, hundred.
_SCALES = ((10**7, "crore"), (10**5, "lakh"), (1000, "thousand"), (100, "hundred"))


def indian_grouping(number: int) -> str:
    """Digits grouped the Indian way: 1,000; 10,000; 1,50,000; 1,20,00,000."""
    digits = str(abs(number))
    head, tail = digits[:-3], digits[-3:]
    groups = [head[max(0, end - 2) : end] for end in range(len(head), 0, -2)][::-1]
    return ("-" if number < 0 else "") + ",".join([*groups, tail] if head else [tail])


def indian_words(number: int) -> str:
    """A whole number in words with Indian scales: 150000 → "one lakh fifty thousand"."""
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    for scale, name in _SCALES:
        if number >= scale:
            count, rest = divmod(number, scale)
            said = f"{indian_words(count)} {name}"
            return said + (f" {indian_words(rest)}" if rest else "")
    raise AssertionError("unreachable")  # pragma: no cover


def spoken_amount(paise: int) -> str:
    """500 rupees, 1 rupee, 1,50,000 rupees, 10 rupees 50 paise, 50 paise."""
    rupees, rest = divmod(paise, 100)
    parts = []
    if rupees or not rest:
        parts.append(f"{indian_grouping(rupees)} rupee" + ("" if rupees == 1 else "s"))
    if rest:
        parts.append(f"{rest} paise")
    return " ".join(parts)


def speakable(text: str) -> str:
    """Every "₹" amount in the text written as rupees (and paise)."""
    return RUPEE_AMOUNT.sub(
        lambda match: spoken_amount(int(match["rupees"]) * 100 + int(match["paise"] or 0)), text
    )


def aloud(text: str) -> str:
    """The text with every written amount in words: "1,50,000 rupees" → "one lakh fifty
    thousand rupees". A speech synthesiser says "150000" the Western way ("one hundred
    fifty thousand"); Indian listeners count in lakhs and crores."""

    def words(match: re.Match[str]) -> str:
        if match["only_paise"]:
            return f"{indian_words(int(match['only_paise']))} paise"
        said = f"{indian_words(int(match['rupees'].replace(',', '')))} {match['unit']}"
        return said + (f" {indian_words(int(match['paise']))} paise" if match["paise"] else "")

    return WRITTEN_AMOUNT.sub(words, text)
