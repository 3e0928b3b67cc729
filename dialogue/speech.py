"""Reply text that reads well on screen and aloud: "500 rupees", not "₹500" or "₹10.50".

Conversations (turns with a session) are what the voice and phone channels speak, so
their replies say amounts in words a speech synthesiser reads naturally. The documented
stateless replies keep their documented "₹" form.
"""

import re

RUPEE_AMOUNT = re.compile(r"₹(?P<rupees>\d+)(?:\.(?P<paise>\d{2}))?")


def spoken_amount(paise: int) -> str:
    """500 rupees, 1 rupee, 10 rupees 50 paise, 50 paise."""
    rupees, rest = divmod(paise, 100)
    parts = []
    if rupees or not rest:
        parts.append(f"{rupees} rupee" + ("" if rupees == 1 else "s"))
    if rest:
        parts.append(f"{rest} paise")
    return " ".join(parts)


def speakable(text: str) -> str:
    """Every "₹" amount in the text said in words."""
    return RUPEE_AMOUNT.sub(
        lambda match: spoken_amount(int(match["rupees"]) * 100 + int(match["paise"] or 0)), text
    )
